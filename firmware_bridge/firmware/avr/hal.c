#include "hal.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <util/atomic.h>

#include "ng_config.h"

static volatile uint32_t ms_ticks;
static volatile uint8_t rx_ring[HAL_RX_RING];
static volatile uint8_t rx_head, rx_tail, rx_overflow;

ISR(TIMER0_COMPA_vect) { ms_ticks++; }

ISR(USART_RX_vect)
{
    uint8_t b = UDR0;
    uint8_t next = (uint8_t)((rx_head + 1u) & (HAL_RX_RING - 1u));
    if (next == rx_tail) {
        rx_overflow = 1; /* reported to the core as a fault; the frame's CRC catches the loss */
    } else {
        rx_ring[rx_head] = b;
        rx_head = next;
    }
}

void hal_init(void)
{
    /* UART 115200 8N1 with U2X: UBRR = F_CPU / (8 * baud) - 1 = 16 (-2.1 %, like the Arduino core). */
    UCSR0A = (uint8_t)(1u << U2X0);
    UBRR0 = (uint16_t)((F_CPU / (8UL * HAL_BAUD)) - 1UL);
    UCSR0B = (uint8_t)((1u << RXEN0) | (1u << TXEN0) | (1u << RXCIE0));
    UCSR0C = (uint8_t)((1u << UCSZ01) | (1u << UCSZ00));

    /* Timer0: CTC, clk/64, OCR0A 249 -> 1 kHz. */
    TCCR0A = (uint8_t)(1u << WGM01);
    TCCR0B = (uint8_t)((1u << CS01) | (1u << CS00));
    OCR0A = 249u;
    TIMSK0 = (uint8_t)(1u << OCIE0A);

    /* Timer1: fast PWM mode 14 (TOP = ICR1), clk/8 -> 0.5 us per count, ICR1 = 39999 -> 20 ms.
     * OCR1x are double-buffered (updated at BOTTOM), so a pulse is never cut short. */
    DDRB |= (uint8_t)((1u << DDB1) | (1u << DDB2));
    ICR1 = 39999u;
    OCR1A = 2u * 1500u - 1u;
    OCR1B = 2u * 1500u - 1u;
    TCCR1A = (uint8_t)((1u << COM1A1) | (1u << COM1B1) | (1u << WGM11));
    TCCR1B = (uint8_t)((1u << WGM13) | (1u << WGM12) | (1u << CS11));
    /* E-stop input: PD2 with its pull-up (a normally-closed switch holds it low). */
    DDRD &= (uint8_t)~(1u << DDD2);
    PORTD |= (uint8_t)(1u << PORTD2);
    sei();
}

uint8_t hal_estop_pressed(void)
{
    return (uint8_t)((PIND & (1u << PIND2)) != 0u);
}

uint32_t hal_millis(void)
{
    uint32_t t;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { t = ms_ticks; }
    return t;
}

uint8_t hal_uart_read(uint8_t *byte)
{
    uint8_t got = 0;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        if (rx_tail != rx_head) {
            *byte = rx_ring[rx_tail];
            rx_tail = (uint8_t)((rx_tail + 1u) & (HAL_RX_RING - 1u));
            got = 1;
        }
    }
    return got;
}

uint8_t hal_uart_take_overflow(void)
{
    uint8_t f;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        f = rx_overflow;
        rx_overflow = 0;
    }
    return f;
}

void hal_uart_write(void *ctx, const uint8_t *data, size_t len)
{
    size_t i;
    (void)ctx;
    /* Polled: a reply is at most 39 bytes (3.4 ms at 115200); received bytes keep arriving in the
     * interrupt-driven ring meanwhile. */
    for (i = 0; i < len; i++) {
        while (!(UCSR0A & (1u << UDRE0))) {
        }
        UDR0 = data[i];
    }
}

void hal_servo_us(uint8_t joint, uint16_t us)
{
    if (us < NG_PULSE_MIN_US) {
        us = NG_PULSE_MIN_US;
    } else if (us > NG_PULSE_MAX_US) {
        us = NG_PULSE_MAX_US;
    }
    if (joint == 0u) {
        OCR1A = (uint16_t)(2u * us - 1u);
    } else {
        OCR1B = (uint16_t)(2u * us - 1u);
    }
}
