/* ATmega328P hardware layer: UART (interrupt-driven receive and transmit rings), Timer1 50 Hz servo PWM on
 * OC1A (D9, joint 0) and OC1B (D10, joint 1), Timer0 1 kHz millisecond tick, which also starts the
 * ADC scans of the analog inputs (A0..A7, conversion-complete interrupt, core/ng_sampler.h). */
#ifndef NG_HAL_H
#define NG_HAL_H

#include <stddef.h>
#include <stdint.h>

#include "ng_config.h"
#include "ng_sampler.h"

#define HAL_BAUD ((unsigned long)NG_LINK_BAUD)
#define HAL_RX_RING 128u /* power of two; 2.6 ms of input at 500 000 baud, three whole frames */
#define HAL_TX_RING 128u /* power of two; three whole frames */

void hal_init(void);
uint32_t hal_millis(void);
/* Pop one received byte; returns 0 when the ring is empty. */
uint8_t hal_uart_read(uint8_t *byte);
/* Returns and clears the "a received byte was dropped" flag. */
uint8_t hal_uart_take_overflow(void);
void hal_uart_write(void *ctx, const uint8_t *data, size_t len);
/* The e-stop switch on D2 (PD2): a normally-closed switch to GND, the pin pulled up, so a pressed
 * switch, a cut wire or an unplugged switch all read "pressed" (fail-safe). Without a switch, a
 * jumper from D2 to GND. */
uint8_t hal_estop_pressed(void);
/* Servo pulse width in microseconds, clamped to 1000..2000 here as a last line of defence. */
void hal_servo_us(uint8_t joint, uint16_t us);
/* Scan the analog inputs of `mask` every `period_ms` ms, from sample index 0; mask 0 stops the ADC. */
void hal_adc_configure(uint8_t mask, uint16_t period_ms);
/* Take the oldest completed scan; returns 0 when there is none. */
uint8_t hal_adc_take(ng_scan_t *scan);

#endif
