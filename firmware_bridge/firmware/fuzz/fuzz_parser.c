/* libFuzzer target: arbitrary bytes into the firmware's frame parser and message handling.
 *
 * Input: byte 0 sets the clock step between byte groups; the rest is the received byte stream.
 * Beyond the sanitizers' memory/UB checks, it aborts when a safety invariant breaks:
 *   - every reply the firmware writes is one valid frame with a firmware->host type;
 *   - no joint moves faster than the compile-time speed ceiling or leaves 0..180 degrees;
 *   - nothing moves while the e-stop is latched. */
#include <stdint.h>
#include <stdlib.h>

#include "ng_core.h"

static void check_reply(void *ctx, const uint8_t *d, size_t n)
{
    ng_frame_t f;
    (void)ctx;
    if (n < 2 || d[n - 1] != 0 || ng_frame_decode(d, n - 1, &f) != NG_PARSE_FRAME || f.type < 0x80) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ng_core_t c;
    uint32_t now = 1000, step;
    size_t i;
    uint8_t j;
    if (size < 1) {
        return 0;
    }
    step = data[0] & 0x3Fu;
    ng_core_init(&c, now, check_reply, NULL);
    for (i = 1; i < size; i++) {
        ng_core_rx(&c, data[i], now);
        if ((i & 7u) == 0u) {
            uint32_t before[NG_N_JOINTS];
            uint32_t dt = step > NG_TICK_MAX_MS ? NG_TICK_MAX_MS : step;
            int estopped = (c.faults & NG_FAULT_ESTOP) != 0;
            for (j = 0; j < NG_N_JOINTS; j++) {
                before[j] = c.pos_fine[j];
            }
            now += step;
            ng_core_tick(&c, now);
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
