/*
 * The runtime's hot path in C: one call per chunk (ng_chain_run) and one per window
 * (ng_windows_int8) instead of a dozen numpy calls each, whose fixed overhead would cost more
 * than the arithmetic on chunks of a few samples.  Each equals its numpy reference in edge/ bit
 * for bit (tests check this).
 *
 * Host-side glue around the firmware's portable kernel (firmware_bridge/firmware/dsp/ng_sos.c),
 * built into edge/_ng_sos with it and called through ctypes.  The fixed arguments of each
 * function live in a struct that Python fills once (edge/native.py mirrors the layouts as ctypes
 * Structures and checks them against ng_layout() when it loads the library): converting a dozen
 * ctypes arguments costs more per call than filtering ten samples.  Compiled without -ffast-math, so every float step is one IEEE
 * operation, as in numpy.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ng_sos.h"

/* Mirrored by edge.native.ChainArgs (checked against ng_layout() at load). */
typedef struct {
    const ng_sos_section *sections;
    int64_t *state;        /* the FixedPointSOS state, [section][x1,x2,y1,y2][channel] */
    const double *in;      /* n_samples x n_channels float64, row-major */
    float *out;            /* up to ceil(n_samples / factor) rows of n_channels */
    int32_t *scratch_in;   /* block x n_channels */
    int64_t *scratch_out;  /* block x n_channels */
    double limit;          /* valid samples have |x| < limit <= (2^31 - 1) / 2^input_frac */
    uint32_t factor;       /* decimation factor >= 1 */
    uint32_t phase;        /* decimation phase in [0, factor), carried across calls */
    uint32_t block;        /* rows of the scratch buffers */
    uint32_t saturations;  /* incremented by the kernel's saturation count */
    uint16_t n_sections;
    uint16_t n_channels;
    uint8_t input_frac;
} ng_chain_args;

/*
 * ng_chain_run — one float64 chunk through a SignalChain (edge/chain/signal_chain.py), what
 * SignalChain.process(x).astype(float32) computes in numpy:
 *
 *   1. validate: every |x| < limit (NaN and inf fail); on failure return -1 and change nothing,
 *      so the caller can split the chunk around the bad samples;
 *   2. quantise: q = round-half-to-even(x * 2^input_frac) as int32 (numpy's np.round);
 *   3. filter: ng_sos_run, state carried across calls;
 *   4. decimate: keep output t when (phase + t) % factor == factor - 1, advance phase;
 *   5. convert: (float)((double)y * 2^-35), as numpy's `y * 2**-35` then `.astype(float32)`.
 *
 * The input goes through the scratch buffers `block` rows at a time, so nothing is allocated.
 * Returns the number of rows written to out, -1 for an invalid sample, -2 for bad arguments.
 */
int32_t ng_chain_run(ng_chain_args *a, uint32_t n_samples)
{
    const uint32_t n_channels = a->n_channels;
    const uint32_t total = n_samples * n_channels;
    const double scale = ldexp(1.0, a->input_frac);
    const double out_scale = ldexp(1.0, -NG_SOS_STATE_FRAC);
    uint32_t i, t0, rows = 0;

    if (a->factor == 0 || a->block == 0 || a->phase >= a->factor) {
        return -2;
    }
    for (i = 0; i < total; ++i) {
        if (!(fabs(a->in[i]) < a->limit)) {
            return -1;
        }
    }
    for (t0 = 0; t0 < n_samples; t0 += a->block) {
        uint32_t m = n_samples - t0 < a->block ? n_samples - t0 : a->block, t;
        const double *src = a->in + (size_t)t0 * n_channels;
        for (i = 0; i < m * n_channels; ++i) {
            a->scratch_in[i] = (int32_t)rint(src[i] * scale);
        }
        a->saturations += ng_sos_run(a->sections, a->n_sections, a->state, a->scratch_in, a->scratch_out, m,
                                     a->n_channels, a->input_frac);
        for (t = 0; t < m; ++t) {
            if (++a->phase == a->factor) {
                const int64_t *y = a->scratch_out + (size_t)t * n_channels;
                float *dst = a->out + (size_t)rows * n_channels;
                uint32_t c;
                for (c = 0; c < n_channels; ++c) {
                    dst[c] = (float)((double)y[c] * out_scale);
                }
                ++rows;
                a->phase = 0;
            }
        }
    }
    return (int32_t)rows;
}

/* rintf(v) (round half to even) where |rintf(v)| <= 2^22 matters, else a value at least as large.
 * Adding 1.5 * 2^23 leaves no fractional bits, so the FPU's round-to-nearest-even does the
 * rounding and the subtraction is exact; unlike rintf this vectorises on baseline SSE2.  It needs
 * single-precision evaluation (FLT_EVAL_METHOD 0: x86-64 SSE, aarch64) and no -ffast-math. */
static float round_half_even(float v)
{
#if FLT_EVAL_METHOD == 0
    const float magic = 12582912.0f, big = 4194304.0f; /* 1.5 * 2^23, 2^22 */
    v = v < -big ? -big : v;
    v = v > big ? big : v;
    return (v + magic) - magic;
#else
    return rintf(v);
#endif
}

/* Mirrored by edge.native.WindowArgs (checked against ng_layout() at load). */
typedef struct {
    const float *win;            /* n_windows x length x n_channels float32, row-major */
    int8_t *out;                 /* the same count of int8 */
    const float *channel_scale;  /* n_channels */
    float *mean;                 /* n_channels of scratch */
    float clip;                  /* > 0: clamp the normalised value to [-clip, clip]; 0: no clamp */
    float in_scale;              /* the model input's quantisation */
    int32_t zero_point;
    uint32_t length;
    uint16_t n_channels;
} ng_window_args;

/*
 * ng_windows_int8 — a raw-window bundle's int8 model input (edge.model.inputs.ModelInput): normalise
 * (edge.model.inputs.normalise_windows) then quantise (edge.model.inputs.quantise), in float32 as numpy:
 *
 *   mean[c] = (sequential float32 sum of the window's rows) / length
 *   v       = (w - mean[c]) / channel_scale[c], then clamped to [-clip, clip] when clip > 0
 *   q       = round-half-to-even(v / in_scale) + zero_point, clamped to [-128, 127]
 */
void ng_windows_int8(const ng_window_args *a, uint32_t n_windows)
{
    /* Everything in locals: a store through the int8 output may alias anything, so fields read
     * through `a` would be reloaded for every element. */
    const float zp = (float)a->zero_point, n = (float)a->length, in_scale = a->in_scale;
    const float clip = a->clip > 0.0f ? a->clip : INFINITY; /* no clip: clamping to +-inf changes nothing */
    const float *scale = a->channel_scale;
    const uint32_t length = a->length, n_channels = a->n_channels;
    float *mean = a->mean;
    uint32_t k, r, c;

    for (k = 0; k < n_windows; ++k) {
        const float *w = a->win + (size_t)k * length * n_channels;
        int8_t *o = a->out + (size_t)k * length * n_channels;
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
                float v = (w[i] - mean[c]) / scale[c];
                float q;
                v = v < -clip ? -clip : v;
                v = v > clip ? clip : v;
                q = round_half_even(v / in_scale) + zp; /* beyond 2^22 the clamp below decides */
                q = q >= -128.0f ? q : -128.0f; /* also maps NaN, which finite windows never give */
                q = q <= 127.0f ? q : 127.0f;
                o[i] = (int8_t)q;
            }
        }
    }
}

/*
 * ng_layout — the structs above as this compiler laid them out, so that edge/native.py can check
 * its ctypes mirrors before the first call (a mismatch would read and write the wrong memory):
 * out[0] = sizeof, then offsetof of each field in declaration order.  which: 0 ng_chain_args,
 * 1 ng_window_args, 2 ng_sos_section.  Returns the number of values written (0: unknown struct
 * or cap too small).
 */
#define NG_PUT(v) do { if (n >= cap) return 0; out[n++] = (uint32_t)(v); } while (0)
uint32_t ng_layout(uint32_t which, uint32_t *out, uint32_t cap)
{
    uint32_t n = 0;
    switch (which) {
    case 0:
        NG_PUT(sizeof(ng_chain_args));
        NG_PUT(offsetof(ng_chain_args, sections)); NG_PUT(offsetof(ng_chain_args, state));
        NG_PUT(offsetof(ng_chain_args, in)); NG_PUT(offsetof(ng_chain_args, out));
        NG_PUT(offsetof(ng_chain_args, scratch_in)); NG_PUT(offsetof(ng_chain_args, scratch_out));
        NG_PUT(offsetof(ng_chain_args, limit)); NG_PUT(offsetof(ng_chain_args, factor));
        NG_PUT(offsetof(ng_chain_args, phase)); NG_PUT(offsetof(ng_chain_args, block));
        NG_PUT(offsetof(ng_chain_args, saturations)); NG_PUT(offsetof(ng_chain_args, n_sections));
        NG_PUT(offsetof(ng_chain_args, n_channels)); NG_PUT(offsetof(ng_chain_args, input_frac));
        return n;
    case 1:
        NG_PUT(sizeof(ng_window_args));
        NG_PUT(offsetof(ng_window_args, win)); NG_PUT(offsetof(ng_window_args, out));
        NG_PUT(offsetof(ng_window_args, channel_scale)); NG_PUT(offsetof(ng_window_args, mean));
        NG_PUT(offsetof(ng_window_args, clip)); NG_PUT(offsetof(ng_window_args, in_scale));
        NG_PUT(offsetof(ng_window_args, zero_point)); NG_PUT(offsetof(ng_window_args, length));
        NG_PUT(offsetof(ng_window_args, n_channels));
        return n;
    case 2:
        NG_PUT(sizeof(ng_sos_section));
        NG_PUT(offsetof(ng_sos_section, c)); NG_PUT(offsetof(ng_sos_section, pre_shift));
        NG_PUT(offsetof(ng_sos_section, fb_shift));
        return n;
    default:
        return 0;
    }
}
#undef NG_PUT
