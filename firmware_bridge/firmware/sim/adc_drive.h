/* Drives simavr's ADC inputs from an ADC feed (host/adc_feed.h), in simulated time: sample 0 at the
 * firmware's first conversion (its first ADSC), sample k at k / rate seconds after it, each applied
 * to the inputs A0.. as millivolts with avr_raise_irq(ADC_IRQ_ADC0 + ch) (simavr converts them
 * against AVcc = 5000 mV, set here). Used by sim/arm_sim.c and tests/test_avr_stream.c. */
#ifndef ADC_DRIVE_H
#define ADC_DRIVE_H

#include <simavr/sim_avr.h>

#include "adc_feed.h"

typedef struct adc_drive {
    avr_t *avr;
    adc_feed_t *feed;         /* NULL: the inputs stay at 0 mV */
    int started, ended;
    uint64_t start_cycle;     /* the cycle of the first conversion: sample 0 */
    int64_t base;             /* sample k's cycle is base + k x cycles_per_sample */
    double cycles_per_sample;
    uint64_t next;            /* the next sample to apply */
    /* Called when the feed starts ('A') and when it ends ('D'); may be NULL. */
    void (*event)(struct adc_drive *d, char what);
} adc_drive_t;

/* Set AVcc (and Vcc, AREF) to 5000 mV and hook the ADC's conversion trigger. */
void adc_drive_init(adc_drive_t *d, avr_t *avr, adc_feed_t *feed);
/* After avr_reset() (which drops every cycle timer): the feed goes on where it was, re-based on the
 * clock, which may have restarted (cycle_before: avr->cycle just before the reset). */
void adc_drive_after_reset(adc_drive_t *d, uint64_t cycle_before);

#endif
