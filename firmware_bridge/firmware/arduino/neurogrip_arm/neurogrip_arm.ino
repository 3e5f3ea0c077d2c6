// neurogrip arm firmware for the Arduino IDE (Uno / Nano, ATmega328P, 16 MHz).
//
// The same portable core as the make-built firmware (firmware_bridge/firmware/core). src/ is not
// committed: `make -C firmware_bridge/firmware arduino` generates it (a copy of core/); run it
// before opening this sketch, and again after editing core/.
// Here the Arduino core provides the serial port and millis(); Timer1 drives the two servos
// directly (50 Hz, 1000-2000 us on pins 9 = gripper and 10 = lift), so do not use the Servo
// library or analogWrite() on pins 9/10 in this sketch.
//
// Wiring: servo signal wires to D9 and D10, servo power from a separate 5-6 V supply whose ground
// is joined to the Arduino's GND (never power servos from the Uno's 5 V pin). The e-stop: a
// normally-closed (latching) switch from D2 to GND; pressed, cut or unplugged, the pin reads high
// and nothing moves (fail-safe). Without a switch, a jumper from D2 to GND.

extern "C" {
#include "src/ng_core.h"
}
#include <avr/wdt.h>

// The Arduino core's receive ring (HardwareSerial.h); 64 bytes on an Uno.
#ifndef SERIAL_RX_BUFFER_SIZE
#define SERIAL_RX_BUFFER_SIZE 64
#endif

static ng_core_t core;

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
    Serial.begin(115200);
    // Timer1: fast PWM mode 14, TOP = ICR1 = 39999, clk/8 -> 20 ms period, 0.5 us resolution.
    pinMode(9, OUTPUT);
    pinMode(10, OUTPUT);
    TCCR1A = 0;
    TCCR1B = 0;
    ICR1 = 39999u;
    pinMode(2, INPUT_PULLUP);  // the e-stop switch (normally closed to GND)
    ng_core_init(&core, millis(), serial_write, 0);
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
    // avr/main.c reports its own ring's overflow: at 115200 baud the ring fills only if this loop
    // stalled for ~5 ms, and then the next byte is lost (the frame's CRC catches the loss).
    if (Serial.available() >= SERIAL_RX_BUFFER_SIZE - 1) {
        ng_core_note_rx_overflow(&core);
    }
    while (Serial.available() > 0) {
        ng_core_rx(&core, (uint8_t)Serial.read(), now);
    }
}
