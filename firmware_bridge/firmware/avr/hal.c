#include "hal.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <util/atomic.h>

#include "ng_config.h"

static volatile uint32_t ms_ticks;
static volatile uint8_t rx_ring[HAL_RX_RING];
static volatile uint8_t rx_head, rx_tail, rx_overflow;
static volatile uint8_t tx_ring[HAL_TX_RING];
static volatile uint8_t tx_head, tx_tail;
/* Shared with the two ISRs below; the main loop touches it only with interrupts off. */
static ng_sampler_t sampler;

/* ADC: AVcc reference (5 V on an Uno), right-adjusted result, clk/128 = 125 kHz (the datasheet's
 * 50-200 kHz for the full 10 bits): 13 ADC clocks = 104 us per conversion. ADCSRA is always written
 * whole, never read-modify-written: a read-back ADIF of 1 would be written back and clear it. */
#define ADC_ON ((uint8_t)((1u << ADEN) | (1u << ADIE) | (1u << ADPS2) | (1u << ADPS1) | (1u << ADPS0)))

static void adc_start(uint8_t ch)
{
    ADMUX = (uint8_t)((1u << REFS0) | ch);
    ADCSRA = (uint8_t)(ADC_ON | (1u << ADSC));
}

/* The 1 kHz tick; every period_ms ticks it starts a scan (the first input's conversion). */
ISR(TIMER0_COMPA_vect)
{
    uint8_t ch;
    ms_ticks++;
    ch = ng_sampler_tick(&sampler);
    if (ch != NG_SAMPLER_NONE) {
        adc_start(ch);
    }
}

/* Conversion complete: store the result, start the scan's next input. */
ISR(ADC_vect)
{
    uint8_t ch = ng_sampler_result(&sampler, ADC);
    if (ch != NG_SAMPLER_NONE) {
        adc_start(ch);
    }
}

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

/* Data register empty: the next byte of the transmit ring, or nothing more to send. */
ISR(USART_UDRE_vect)
{
    uint8_t t = tx_tail;
    if (t == tx_head) {
        UCSR0B = (uint8_t)(UCSR0B & (uint8_t)~(1u << UDRIE0));
        return;
    }
    UDR0 = tx_ring[t];
    tx_tail = (uint8_t)((t + 1u) & (HAL_TX_RING - 1u));
}

void hal_init(void)
{
    /* UART 8N1 with U2X, like the Arduino core: UBRR = F_CPU / (8 * baud) - 1, 3 at 500 000 baud (exact),
     * 16 at 115 200 (-2.1 %). */
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
    /* Into the transmit ring, which the data-register-empty interrupt sends: the main loop goes on
     * (its 1 ms tick, the received bytes, the ADC scans) while a frame is on the wire. A full ring
     * (three frames: only when more than the line's rate was queued) waits for room, so no byte is
     * ever dropped here; bytes go out in the order they were written. */
    for (i = 0; i < len; i++) {
        uint8_t next = (uint8_t)((tx_head + 1u) & (HAL_TX_RING - 1u));
        while (next == tx_tail) {
        }
        tx_ring[tx_head] = data[i];
        tx_head = next;
        /* After the byte is in: the interrupt, if it runs now, finds it. Only this bit of UCSR0B is
         * ever changed after hal_init, by the interrupt (clearing it) and here (setting it). */
        UCSR0B = (uint8_t)(UCSR0B | (1u << UDRIE0));
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

void hal_adc_configure(uint8_t mask, uint16_t period_ms)
{
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        /* Off first: aborts a conversion in progress and clears its flag, so no result of the old
         * configuration can land in the new one. */
        ADCSRA = (uint8_t)(1u << ADIF);
        /* The digital input buffers of the analog inputs in use are switched off (A6/A7 have none). */
        DIDR0 = (uint8_t)(mask & 0x3Fu);
        ng_sampler_configure(&sampler, mask, period_ms);
        if (mask != 0u) {
            ADMUX = (uint8_t)(1u << REFS0);
            ADCSRA = ADC_ON;
        }
    }
}

uint8_t hal_adc_take(ng_scan_t *scan)
{
    uint8_t got;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { got = ng_sampler_pop(&sampler, scan); }
    return got;
}
