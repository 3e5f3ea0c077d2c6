/* ATmega328P firmware entry point: the portable core driven by the hardware layer. */
#include <avr/wdt.h>

#include "hal.h"
#include "ng_core.h"

static ng_core_t core;
static ng_scan_t scan;

int main(void)
{
    uint32_t last = 0;
    uint8_t j, b, adc_gen;
    /* The hardware watchdog resets the MCU if this loop ever hangs; after the reset the servos are
     * commanded to the safe pose. Disabled first: it stays enabled across a watchdog reset. */
    MCUSR = 0;
    wdt_disable();
    hal_init();
    ng_core_init(&core, hal_millis(), hal_uart_write, 0);
    adc_gen = core.stream.gen;
    for (j = 0; j < NG_N_JOINTS; j++) {
        hal_servo_us(j, ng_pulse_us(ng_core_position(&core, j)));
    }
    wdt_enable(WDTO_120MS);
    for (;;) {
        uint32_t now;
        wdt_reset();
        /* Tick before handling received bytes: a heartbeat that arrives after the watchdog
         * deadline must not undo the trip (same order as the host build). */
        now = hal_millis();
        if (now != last) {
            last = now;
            ng_core_tick(&core, now);
            ng_core_estop_input(&core, hal_estop_pressed());
            for (j = 0; j < NG_N_JOINTS; j++) {
                hal_servo_us(j, ng_pulse_us(ng_core_position(&core, j)));
            }
        }
        while (hal_uart_read(&b)) {
            ng_core_rx(&core, b, now);
        }
        if (hal_uart_take_overflow()) {
            ng_core_note_rx_overflow(&core);
        }
        /* The stream: a START or STOP (handled above, its reply already queued after the stream's
         * last frame) reconfigures the ADC sampler; then at most one completed scan per pass, so the
         * tick and received requests are served between two SAMPLES frames' encodings. */
        if (core.stream.gen != adc_gen) {
            adc_gen = core.stream.gen;
            hal_adc_configure(core.stream.active ? core.stream.mask : 0u, core.stream.period_ms);
        }
        if (hal_adc_take(&scan)) {
            ng_core_scan(&core, scan.index, scan.value);
        }
    }
}
