/*
 * The runtime's hot path in C: one call per chunk (ng_chain_run_f64) and one per window
 * (ng_windows_int8), instead of a dozen numpy calls each, whose fixed overhead would cost more
 * than the arithmetic on chunks of a few samples.  Each function equals its numpy reference in
 * edge/ bit for bit (tests check this).
 *
 * ng_chain_run_f64 — one float64 chunk through a SignalChain (edge/chain.py).
 *
 * This is host-side glue around the firmware's portable kernel (firmware_bridge/firmware/dsp/ng_sos.c),
 * built into edge/_ng_sos with it and called from edge/chain.py through ctypes.  It does what
 * SignalChain.process() does in numpy, bit for bit, without numpy's per-call overhead:
 *
 *   1. validate: every |x| < limit (NaN and inf fail); on failure return -1 and change nothing,
 *      so the caller can split the chunk around the bad samples;
 *   2. quantise: q = round-half-to-even(x * 2^input_frac) as int32 (numpy's np.round);
 *   3. filter: ng_sos_run, state carried across calls;
 *   4. decimate: keep output t when (phase + t) % factor == factor - 1, advance phase;
 *   5. convert: (float)((double)y * 2^-35), what numpy's `y * 2**-35` then `.astype(float32)` give.
 *
 * limit must be at most (2^31 - 1) / 2^input_frac, so a valid sample always fits in int32.
 * The input is processed in blocks of `block` rows through caller-owned scratch buffers
 * (int32 and int64, block * n_channels each), so nothing is allocated here.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ng_sos.h"

int32_t ng_chain_run_f64(const ng_sos_section *sections, uint16_t n_sections, int64_t *state,
                         const double *in, float *out, uint32_t n_samples, uint16_t n_channels,
                         uint8_t input_frac, double limit, uint32_t factor, uint32_t *phase,
                         int32_t *scratch_in, int64_t *scratch_out, uint32_t block, uint32_t *saturations)
{
    const uint32_t total = n_samples * (uint32_t)n_channels;
    const double scale = ldexp(1.0, input_frac);
    const double out_scale = ldexp(1.0, -NG_SOS_STATE_FRAC);
    uint32_t i, t0, rows = 0;

    if (factor == 0 || block == 0 || *phase >= factor) {
        return -2;
    }
    for (i = 0; i < total; ++i) {
        if (!(fabs(in[i]) < limit)) {
            return -1;
        }
    }
    for (t0 = 0; t0 < n_samples; t0 += block) {
        uint32_t m = n_samples - t0 < block ? n_samples - t0 : block, t;
        const double *src = in + t0 * (uint32_t)n_channels;
        for (i = 0; i < m * (uint32_t)n_channels; ++i) {
            scratch_in[i] = (int32_t)nearbyint(src[i] * scale);
        }
        *saturations += ng_sos_run(sections, n_sections, state, scratch_in, scratch_out, m, n_channels,
                                   input_frac);
        for (t = 0; t < m; ++t) {
            if (++*phase == factor) {
                const int64_t *y = scratch_out + t * (uint32_t)n_channels;
                float *dst = out + rows * (uint32_t)n_channels;
                uint16_t c;
                for (c = 0; c < n_channels; ++c) {
                    dst[c] = (float)((double)y[c] * out_scale);
                }
                ++rows;
                *phase = 0;
            }
        }
    }
    return (int32_t)rows;
}

/*
 * ng_windows_int8 — edge.features.quantised_inputs for raw-window bundles: normalise
 * (edge.chain.normalise_windows) then quantise (edge.inference.quantise), in float32 as numpy does:
 *
 *   mean[c] = (sequential float32 sum of the window's rows) / length
 *   v       = (w - mean[c]) / channel_scale[c], then clamped to [-clip, clip] when clip > 0
 *   q       = round-half-to-even(v / in_scale) + zero_point, clamped to [-128, 127]
 *
 * win: n_windows x length x n_channels float32, row-major; out: the same count of int8.
 * mean: n_channels floats of scratch.  Compiled without -ffast-math, so every step is one IEEE
 * single-precision operation, as in numpy.
 */
void ng_windows_int8(const float *win, uint32_t n_windows, uint32_t length, uint16_t n_channels,
                     const float *channel_scale, float clip, float in_scale, int32_t zero_point,
                     float *mean, int8_t *out)
{
    const float zp = (float)zero_point;
    const float n = (float)length;
    uint32_t k, r;
    uint16_t c;

    for (k = 0; k < n_windows; ++k) {
        const float *w = win + (size_t)k * length * n_channels;
        int8_t *o = out + (size_t)k * length * n_channels;
        for (c = 0; c < n_channels; ++c) {
            mean[c] = w[c];
        }
        for (r = 1; r < length; ++r) {
            for (c = 0; c < n_channels; ++c) {
                mean[c] += w[(size_t)r * n_channels + c];
            }
        }
        for (c = 0; c < n_channels; ++c) {
            mean[c] /= n;
        }
        for (r = 0; r < length; ++r) {
            for (c = 0; c < n_channels; ++c) {
                size_t i = (size_t)r * n_channels + c;
                float v = (w[i] - mean[c]) / channel_scale[c];
                float q;
                if (clip > 0.0f) {
                    v = v < -clip ? -clip : v;
                    v = v > clip ? clip : v;
                }
                q = rintf(v / in_scale) + zp;
                q = q >= -128.0f ? q : -128.0f; /* also maps NaN, which finite windows never give */
                q = q <= 127.0f ? q : 127.0f;
                o[i] = (int8_t)q;
            }
        }
    }
}
