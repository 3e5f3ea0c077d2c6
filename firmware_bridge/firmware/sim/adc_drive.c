#include "adc_drive.h"

#include <math.h>

#include <simavr/avr_adc.h>
#include <simavr/sim_cycle_timers.h>

static void apply(adc_drive_t *d, uint64_t k)
{
    unsigned ch;
    if (adc_feed_seek(d->feed, k)) {
        d->ended = 1;
        if (d->event != NULL) {
            d->event(d, 'D');
        }
    }
    for (ch = 0; ch < d->feed->n_ch; ch++) {
        avr_raise_irq(avr_io_getirq(d->avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0 + ch), d->feed->mv[ch]);
    }
}

static avr_cycle_count_t cycle_of(const adc_drive_t *d, uint64_t k)
{
    return (avr_cycle_count_t)(d->base + (int64_t)llround((double)k * d->cycles_per_sample));
}

static avr_cycle_count_t on_sample(avr_t *avr, avr_cycle_count_t when, void *param)
{
    adc_drive_t *d = (adc_drive_t *)param;
    (void)avr;
    (void)when;
    apply(d, d->next++);
    return d->ended ? 0 : cycle_of(d, d->next); /* after the end the last values hold */
}

static void schedule(adc_drive_t *d)
{
    avr_cycle_count_t at = cycle_of(d, d->next);
    avr_cycle_timer_register(d->avr, at > d->avr->cycle ? at - d->avr->cycle : 1u, on_sample, d);
}

/* The firmware starts a conversion: the first one starts the feed. */
static void on_trigger(struct avr_irq_t *irq, uint32_t value, void *param)
{
    adc_drive_t *d = (adc_drive_t *)param;
    (void)irq;
    (void)value;
    if (d->started || d->feed == NULL) {
        return;
    }
    d->started = 1;
    d->start_cycle = d->avr->cycle;
    d->base = (int64_t)d->avr->cycle;
    if (d->event != NULL) {
        d->event(d, 'A');
    }
    apply(d, 0); /* read by the conversion when it completes: simavr converts at the ADCL read */
    d->next = 1;
    if (!d->ended) {
        schedule(d);
    }
}

void adc_drive_init(adc_drive_t *d, avr_t *avr, adc_feed_t *feed)
{
    d->avr = avr;
    d->feed = feed;
    d->started = d->ended = 0;
    d->next = 0;
    d->cycles_per_sample = feed != NULL ? (double)avr->frequency / feed->rate_hz : 0.0;
    avr->vcc = avr->avcc = avr->aref = ADC_FEED_VREF_MV;
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_OUT_TRIGGER), on_trigger, d);
}

void adc_drive_after_reset(adc_drive_t *d, uint64_t cycle_before)
{
    d->base += (int64_t)d->avr->cycle - (int64_t)cycle_before;
    if (d->started && !d->ended) {
        schedule(d);
    }
}
