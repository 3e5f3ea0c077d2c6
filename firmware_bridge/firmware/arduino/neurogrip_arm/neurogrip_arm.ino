// neurogrip arm firmware for the Arduino IDE (Uno / Nano, ATmega328P, 16 MHz).
//
// The same portable core as the make-built firmware (firmware_bridge/firmware/core). src/ is not
// committed: `make -C firmware_bridge/firmware arduino` generates it (a copy of core/); run it
// before opening this sketch, and again after editing core/.
// Here the Arduino core provides the serial port and millis(); Timer1 drives the two servos
// directly (50 Hz, 1000-2000 us on pins 9 = gripper and 10 = lift), so do not use the Servo
// library or analogWrite() on pins 9/10 in this sketch. Timer2 ticks at 1 kHz to start the ADC
// scans of the analog inputs A0..A7 when the host streams them (PROTOCOL.md section 5), so do not
// use tone() or analogWrite() on pins 3/11 either, nor analogRead(): the ADC is the sampler's.
//
// Wiring: servo signal wires to D9 and D10, servo power from a separate 5-6 V supply whose ground
// is joined to the Arduino's GND (never power servos from the Uno's 5 V pin). The e-stop: a
// normally-closed (latching) switch from D2 to GND; pressed, cut or unplugged, the pin reads high
// and nothing moves (fail-safe). Without a switch, a jumper from D2 to GND. EMG sensors (0-5 V
// outputs) to A0..A5 (A6/A7 on a Nano), sharing the Arduino's GND.

extern "C" {
#include "src/ng_core.h"
#include "src/ng_sampler.h"
}
#include <util/atomic.h>
#include <avr/wdt.h>

// The Arduino core's receive ring (HardwareSerial.h); 64 bytes on an Uno.
#ifndef SERIAL_RX_BUFFER_SIZE
#define SERIAL_RX_BUFFER_SIZE 64
#endif

static ng_core_t core;
static ng_sampler_t sampler;  // shared with the two ISRs below; loop() touches it with interrupts off
static uint8_t adc_gen;

// ADC as in firmware/avr/hal.c: AVcc reference, clk/128 (104 us per conversion), ADCSRA written whole.
#define ADC_ON (_BV(ADEN) | _BV(ADIE) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0))

static void adc_start(uint8_t ch)
{
    ADMUX = _BV(REFS0) | ch;
    ADCSRA = ADC_ON | _BV(ADSC);
}

ISR(TIMER2_COMPA_vect)
{
    uint8_t ch = ng_sampler_tick(&sampler);
    if (ch != NG_SAMPLER_NONE) adc_start(ch);
}

ISR(ADC_vect)
{
    uint8_t ch = ng_sampler_result(&sampler, ADC);
    if (ch != NG_SAMPLER_NONE) adc_start(ch);
}

static void adc_configure(uint8_t mask, uint16_t period_ms)
{
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
        ADCSRA = _BV(ADIF);  // off: aborts a conversion in progress
        DIDR0 = mask & 0x3F;
        ng_sampler_configure(&sampler, mask, period_ms);
        if (mask != 0) {
            ADMUX = _BV(REFS0);
            ADCSRA = ADC_ON;
        }
    }
}

static void serial_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    Serial.write(data, len);
}

static void servo_us(uint8_t joint, uint16_t us)
{
    if (us < NG_PULSE_MIN_US) us = NG_PULSE_MIN_US;
    if (us > NG_PULSE_MAX_US) us = NG_PULSE_MAX_US;
    if (joint == 0) OCR1A = 2u * us - 1u;
    else OCR1B = 2u * us - 1u;
}

void setup()
{
    MCUSR = 0;
    wdt_disable();
    Serial.begin(NG_LINK_BAUD);  // 500 000 baud: exact at 16 MHz (PROTOCOL.md section 5)
    // Timer1: fast PWM mode 14, TOP = ICR1 = 39999, clk/8 -> 20 ms period, 0.5 us resolution.
    pinMode(9, OUTPUT);
    pinMode(10, OUTPUT);
    TCCR1A = 0;
    TCCR1B = 0;
    ICR1 = 39999u;
    pinMode(2, INPUT_PULLUP);  // the e-stop switch (normally closed to GND)
    ng_core_init(&core, millis(), serial_write, 0);
    adc_gen = core.stream.gen;
    // Timer2: CTC, clk/64, OCR2A 249 -> 1 kHz, the ADC scans' trigger (Timer0 is the core's millis()).
    TCCR2A = _BV(WGM21);
    TCCR2B = _BV(CS22);
    OCR2A = 249;
    TIMSK2 = _BV(OCIE2A);
    servo_us(0, ng_pulse_us(ng_core_position(&core, 0)));
    servo_us(1, ng_pulse_us(ng_core_position(&core, 1)));
    TCCR1A = _BV(COM1A1) | _BV(COM1B1) | _BV(WGM11);
    TCCR1B = _BV(WGM13) | _BV(WGM12) | _BV(CS11);
    wdt_enable(WDTO_120MS);  // resets the board if loop() ever hangs
}

void loop()
{
    static uint32_t last;
    wdt_reset();
    // Tick before handling received bytes, as firmware/avr/main.c does: a heartbeat that arrives
    // after the watchdog deadline must not undo the trip.
    uint32_t now = millis();
    if (now != last) {
        last = now;
        ng_core_tick(&core, now);
        ng_core_estop_input(&core, digitalRead(2) == HIGH);
        servo_us(0, ng_pulse_us(ng_core_position(&core, 0)));
        servo_us(1, ng_pulse_us(ng_core_position(&core, 1)));
    }
    // HardwareSerial drops a received byte silently when its ring is full and has no overflow
    // flag, so a full ring is reported as the RX_OVERFLOW fault (latched, in STATUS) the way
    // avr/main.c reports its own ring's overflow: at 500 000 baud the ring fills only if this loop
    // stalled for ~1.3 ms, and then the next byte is lost (the frame's CRC catches the loss).
    if (Serial.available() >= SERIAL_RX_BUFFER_SIZE - 1) {
        ng_core_note_rx_overflow(&core);
    }
    while (Serial.available() > 0) {
        ng_core_rx(&core, (uint8_t)Serial.read(), now);
    }
    // The stream, as in avr/main.c: a START or STOP reconfigures the sampler; one scan per pass.
    if (core.stream.gen != adc_gen) {
        adc_gen = core.stream.gen;
        adc_configure(core.stream.active ? core.stream.mask : 0, core.stream.period_ms);
    }
    ng_scan_t scan;
    uint8_t got;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { got = ng_sampler_pop(&sampler, &scan); }
    if (got) ng_core_scan(&core, scan.index, scan.value);
}
