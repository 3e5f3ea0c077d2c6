/* libFuzzer target: arbitrary bytes into the firmware's frame parser and message handling.
 *
 * Input: byte 0 sets the clock step between byte groups (its top two bits: how often a scan of the
 * analog inputs is lost before the core); the rest is the received byte stream. Every 8 bytes the
 * clock ticks and, while a stream runs (STREAM_START in the input), one ADC scan reaches the core.
 * Beyond the sanitizers' memory/UB checks, it aborts when a safety invariant breaks:
 *   - every reply the firmware writes is one valid frame with a firmware->host type;
 *   - every SAMPLES frame belongs to the running stream (its id and mask), holds 1 to
 *     scans_per_frame consecutive scans ending at the last one given, the frame seq counts up, and
 *     its values are exactly those scans' values;
 *   - no joint moves faster than the compile-time speed ceiling or leaves 0..180 degrees;
 *   - nothing moves while the e-stop is latched. */
#include <stdint.h>
#include <stdlib.h>

#include "ng_core.h"

static ng_core_t c;

static uint16_t pattern(uint32_t k, uint8_t ch) { return (uint16_t)((k * 7u + ch * 131u) & 0x3FFu); }

static void check_samples(const ng_frame_t *f)
{
    const ng_stream_t *s = &c.stream;
    uint32_t first;
    uint8_t n, i, j, ch;
    if (!s->active || f->len < NG_SAMPLES_HEADER) {
        abort();
    }
    first = (uint32_t)f->payload[0] | ((uint32_t)f->payload[1] << 8) | ((uint32_t)f->payload[2] << 16) |
            ((uint32_t)f->payload[3] << 24);
    n = f->payload[6];
    if (f->payload[4] != s->id || f->payload[5] != s->mask || n < 1u || n > s->scans_per_frame ||
        f->len != ng_samples_len(s->n_ch, n) || (uint32_t)(first + n) != s->next ||
        f->seq != (uint8_t)(s->frame_seq - 1u)) {
        abort();
    }
    for (i = 0; i < n; i++) {
        for (ch = 0, j = 0; ch < 8u; ch++) {
            if ((s->mask & (1u << ch)) &&
                ng_unpack10(f->payload + NG_SAMPLES_HEADER, (uint16_t)(i * s->n_ch + j++)) != pattern(first + i, ch)) {
                abort();
            }
        }
    }
}

static void check_reply(void *ctx, const uint8_t *d, size_t n)
{
    ng_frame_t f;
    (void)ctx;
    if (n < 2 || d[n - 1] != 0 || ng_frame_decode(d, n - 1, &f) != NG_PARSE_FRAME || f.type < 0x80) {
        abort();
    }
    if (f.type == NG_MSG_SAMPLES) {
        check_samples(&f);
    }
}

/* One scan of the running stream, as the sampler delivers it: index and values of its inputs. */
static void scan(uint32_t index)
{
    uint16_t v[NG_ADC_CHANNELS];
    uint8_t ch, n = 0;
    for (ch = 0; ch < NG_ADC_CHANNELS; ch++) {
        if (c.stream.mask & (1u << ch)) {
            v[n++] = pattern(index, ch);
        }
    }
    ng_core_scan(&c, index, v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t now = 1000, step, index = 0;
    size_t i;
    uint8_t j, gen, loss;
    if (size < 1) {
        return 0;
    }
    step = data[0] & 0x3Fu;
    loss = (uint8_t)(data[0] >> 6); /* 0: no scan lost; else every (4 << loss)-th is */
    ng_core_init(&c, now, check_reply, NULL);
    gen = c.stream.gen;
    for (i = 1; i < size; i++) {
        ng_core_rx(&c, data[i], now);
        if (c.stream.gen != gen) { /* the hardware layer restarts its sampler from index 0 */
            gen = c.stream.gen;
            index = 0;
        }
        if ((i & 7u) == 0u) {
            uint32_t before[NG_N_JOINTS];
            uint32_t dt = step > NG_TICK_MAX_MS ? NG_TICK_MAX_MS : step;
            int estopped = (c.faults & NG_FAULT_ESTOP) != 0;
            for (j = 0; j < NG_N_JOINTS; j++) {
                before[j] = c.pos_fine[j];
            }
            now += step;
            ng_core_tick(&c, now);
            if (c.stream.active) {
                if (loss != 0u && index % (4u << loss) == 3u) {
                    index++; /* lost before the core: the next frame starts after a gap */
                }
                scan(index++);
            }
            for (j = 0; j < NG_N_JOINTS; j++) {
                uint32_t moved = c.pos_fine[j] > before[j] ? c.pos_fine[j] - before[j] : before[j] - c.pos_fine[j];
                if (moved > (uint32_t)NG_SPEED_MAX_DDEG_S * dt || c.pos_fine[j] > NG_ANGLE_MAX_DDEG * 1000u ||
                    (estopped && moved != 0u)) {
                    abort();
                }
            }
        }
    }
    return 0;
}
