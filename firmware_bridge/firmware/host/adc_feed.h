/* An ADC feed: per-channel millivolt samples at a fixed rate, for the simulated analog inputs of the
 * host build (host/arm_host.c) and of simavr's ATmega328P (sim/arm_sim.c, tests/test_avr_stream.c).
 *
 * Format (a file or a pipe; firmware_bridge/README.md, "The simulated arm"):
 *   one ASCII header line   NGADC1 <rate_hz> <n_channels>\n     (rate a decimal number, 1-8 channels)
 *   then, until the end     n_channels little-endian uint16 millivolts per sample, channel 0 (A0) first
 * Sample k applies from k / rate_hz seconds after the feed starts (the first ADC conversion) until
 * sample k + 1; after the last sample its values hold. Inputs the feed does not cover read 0 mV. The
 * ADC converts like simavr: counts = min(1023, mV x 1023 / 5000) against the 5 V AVcc reference.
 * Reading is sequential, so a pipe works: a writer slower than the rate holds the simulation up. */
#ifndef ADC_FEED_H
#define ADC_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ADC_FEED_MAX_CHANNELS 8u
#define ADC_FEED_VREF_MV 5000u

typedef struct {
    FILE *f;
    double rate_hz;
    unsigned n_ch;
    uint64_t n_read;                      /* samples read so far; mv[] is sample n_read - 1 */
    uint16_t mv[ADC_FEED_MAX_CHANNELS];   /* zero for channels the feed does not cover */
    int ended;                            /* the end was reached: mv[] holds the last sample */
} adc_feed_t;

/* Open PATH ("-" for standard input) and read its header. Returns 0, or -1 with a message in err. */
int adc_feed_open(adc_feed_t *a, const char *path, char *err, size_t err_len);
/* Make mv[] sample k's (k never goes back; past the end, the last sample's). Returns 1 on the call
 * that finds the end of the feed, 0 otherwise. */
int adc_feed_seek(adc_feed_t *a, uint64_t k);
/* The sample index in effect t_ms milliseconds after the feed started. */
uint64_t adc_feed_index_at_ms(const adc_feed_t *a, uint64_t t_ms);
/* ADC counts of a millivolt value, as simavr converts it. */
uint16_t adc_feed_counts(uint16_t mv);
void adc_feed_close(adc_feed_t *a);

#endif
