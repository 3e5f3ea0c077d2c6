#include "ng_sampler.h"

#define RING_MASK (NG_SAMPLER_RING - 1u)

void ng_sampler_configure(ng_sampler_t *s, uint8_t mask, uint16_t period)
{
    uint8_t i;
    s->n = 0;
    for (i = 0; i < NG_ADC_CHANNELS; i++) {
        if (mask & (1u << i)) {
            s->ch[s->n++] = i;
        }
    }
    s->period = period != 0u ? period : 1u;
    s->countdown = 1u;
    s->k = s->n;
    s->head = s->tail = 0;
    s->next_index = 0;
    s->overruns = s->dropped = 0;
}

uint8_t ng_sampler_tick(ng_sampler_t *s)
{
    if (s->n == 0u || --s->countdown != 0u) {
        return NG_SAMPLER_NONE;
    }
    s->countdown = s->period;
    if (s->k != s->n) {
        s->overruns++;
        s->next_index++;
        return NG_SAMPLER_NONE;
    }
    if (((s->head + 1u) & RING_MASK) == s->tail) {
        s->dropped++;
        s->next_index++;
        return NG_SAMPLER_NONE;
    }
    s->ring[s->head].index = s->next_index++;
    s->k = 0;
    return s->ch[0];
}

uint8_t ng_sampler_result(ng_sampler_t *s, uint16_t value)
{
    if (s->k >= s->n) {
        return NG_SAMPLER_NONE; /* nothing was expected: a conversion from before a reconfiguration */
    }
    s->ring[s->head].value[s->k++] = (uint16_t)(value & 0x3FFu);
    if (s->k < s->n) {
        return s->ch[s->k];
    }
    s->head = (uint8_t)((s->head + 1u) & RING_MASK);
    return NG_SAMPLER_NONE;
}

uint8_t ng_sampler_pop(ng_sampler_t *s, ng_scan_t *out)
{
    if (s->tail == s->head) {
        return 0;
    }
    *out = s->ring[s->tail];
    s->tail = (uint8_t)((s->tail + 1u) & RING_MASK);
    return 1;
}
