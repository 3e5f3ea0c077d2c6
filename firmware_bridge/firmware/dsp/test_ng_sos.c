/*
 * Golden-vector test of ng_sos against edge/chain/dsp.py (the Python reference writes the vectors).
 * Usage: test_ng_sos GOLDEN_FILE
 * File (text, whitespace separated):
 *   n_cases
 *   per case: n_sections n_channels n_samples input_frac chunk
 *             n_sections x (c0 c1 c2 c3 c4 pre_shift fb_shift)
 *             n_samples*n_channels int32 inputs, n_samples*n_channels int64 expected outputs,
 *             expected saturation count
 * Each case is run in chunks of `chunk` samples to exercise state carry-over.
 * Prints "N passed, M failed".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "ng_sos.h"

#define MAX_SECTIONS 16
#define MAX_VALUES 65536

static int32_t in_buf[MAX_VALUES];
static int64_t want_buf[MAX_VALUES];
static int64_t got_buf[MAX_VALUES];
static int64_t state[MAX_SECTIONS * 4 * 64];

int main(int argc, char **argv)
{
    FILE *f;
    int n_cases, i, passed = 0, failed = 0;
    if (argc != 2 || (f = fopen(argv[1], "r")) == NULL) {
        fprintf(stderr, "usage: %s GOLDEN_FILE\n", argv[0]);
        return 2;
    }
    if (fscanf(f, "%d", &n_cases) != 1) return 2;
    for (i = 0; i < n_cases; ++i) {
        ng_sos_section sec[MAX_SECTIONS];
        unsigned ns, nc, nt, frac, chunk, k, v, t;
        uint32_t sat = 0, want_sat;
        int ok = 1;
        if (fscanf(f, "%u %u %u %u %u", &ns, &nc, &nt, &frac, &chunk) != 5 || ns > MAX_SECTIONS ||
            nc > 64 || nt * nc > MAX_VALUES || chunk == 0) {
            fprintf(stderr, "case %d: bad header\n", i);
            return 2;
        }
        for (k = 0; k < ns; ++k) {
            int pre, fb;
            for (v = 0; v < 5; ++v) {
                if (fscanf(f, "%" SCNd32, &sec[k].c[v]) != 1) return 2;
            }
            if (fscanf(f, "%d %d", &pre, &fb) != 2) return 2;
            sec[k].pre_shift = (int8_t)pre;
            sec[k].fb_shift = (int8_t)fb;
        }
        for (v = 0; v < nt * nc; ++v) {
            if (fscanf(f, "%" SCNd32, &in_buf[v]) != 1) return 2;
        }
        for (v = 0; v < nt * nc; ++v) {
            if (fscanf(f, "%" SCNd64, &want_buf[v]) != 1) return 2;
        }
        if (fscanf(f, "%" SCNu32, &want_sat) != 1) return 2;
        for (v = 0; v < ns * 4 * nc; ++v) state[v] = 0;
        for (t = 0; t < nt; t += chunk) {
            unsigned n = (nt - t < chunk) ? nt - t : chunk;
            sat += ng_sos_run(sec, (uint16_t)ns, state, in_buf + t * nc, got_buf + t * nc, n, (uint16_t)nc,
                              (uint8_t)frac);
        }
        for (v = 0; v < nt * nc; ++v) {
            if (got_buf[v] != want_buf[v]) {
                fprintf(stderr, "case %d: value %u: got %" PRId64 ", want %" PRId64 "\n", i, v, got_buf[v],
                        want_buf[v]);
                ok = 0;
                break;
            }
        }
        if (sat != want_sat) {
            fprintf(stderr, "case %d: %" PRIu32 " saturations, want %" PRIu32 "\n", i, sat, want_sat);
            ok = 0;
        }
        if (ok) ++passed; else ++failed;
    }
    fclose(f);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
