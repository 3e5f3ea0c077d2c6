/* The analog front end's scan sequencer and scan ring: portable, driven by a hardware layer's
 * interrupts (avr/hal.c, the Arduino sketch) or by an emulation of them (host/arm_host.c).
 *
 * A scan converts every selected input once, in ascending order. The 1 kHz tick starts one every
 * `period` ticks: the conversion of the first input is started by the tick's interrupt, each next
 * one by the ADC's conversion-complete interrupt, so the main loop never adds jitter. Each scan gets
 * the next sample index, also when it cannot be taken (the previous scan still converting, or the
 * ring full because the main loop lagged): a missing index is how the host sees every loss.
 *
 * Interrupt side: ng_sampler_tick() from the tick, ng_sampler_result() from conversion complete; each
 * returns the ADC input whose conversion to start now, or NG_SAMPLER_NONE. Main-loop side:
 * ng_sampler_configure() and ng_sampler_pop(), called with those interrupts excluded (interrupts off
 * on the AVR), since they change what the interrupts share. */
#ifndef NG_SAMPLER_H
#define NG_SAMPLER_H

#include <stdint.h>

#include "ng_config.h"

#define NG_SAMPLER_NONE 0xFFu

typedef struct {
    uint32_t index;                   /* sample index since the sampler was configured */
    uint16_t value[NG_ADC_CHANNELS];  /* ADC counts (0..1023) of the selected inputs, ascending */
} ng_scan_t;

typedef struct {
    uint8_t n;                      /* inputs per scan; 0: stopped */
    uint8_t ch[NG_ADC_CHANNELS];    /* the selected ADC inputs, ascending */
    uint16_t period;                /* ticks between scans */
    uint16_t countdown;             /* ticks until the next scan */
    uint8_t k;                      /* position of the conversion in progress; n: none */
    uint8_t head, tail;             /* the ring: the interrupt fills ring[head], the main loop reads tail */
    uint32_t next_index;            /* index of the next scan */
    uint16_t overruns;              /* scans skipped: the previous one was still converting */
    uint16_t dropped;               /* scans skipped: the ring was full (the main loop lagged) */
    ng_scan_t ring[NG_SAMPLER_RING];
} ng_sampler_t;

/* Start scanning the inputs of `mask` every `period` ticks, from index 0, the first scan at the next
 * tick; mask 0 stops. Forgets the ring and any conversion in progress (the hardware layer aborts it). */
void ng_sampler_configure(ng_sampler_t *s, uint8_t mask, uint16_t period);
/* The tick: returns the input to convert first when a scan starts now. */
uint8_t ng_sampler_tick(ng_sampler_t *s);
/* A conversion completed with `value`: returns the next input to convert, or NG_SAMPLER_NONE when the
 * scan is complete (it is then in the ring) or none was expected. */
uint8_t ng_sampler_result(ng_sampler_t *s, uint16_t value);
/* Take the oldest complete scan into *out; returns 0 when there is none. */
uint8_t ng_sampler_pop(ng_sampler_t *s, ng_scan_t *out);

#endif
