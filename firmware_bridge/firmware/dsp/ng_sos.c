#include "ng_sos.h"

#define LO_MASK (((int64_t)1 << NG_SOS_COEF_FRAC) - 1)

static int64_t floor_shift(int64_t v, unsigned k)
{
    /* floor(v / 2^k) for any sign.  GCC and Clang document >> of a negative value as an
     * arithmetic shift (= floor); elsewhere the portable form avoids implementation-defined
     * behaviour.  Both give identical results. */
#if defined(__GNUC__)
    return v >> k;
#else
    return v >= 0 ? (v >> k) : ~((~v) >> k);
#endif
}

static int64_t saturate(int64_t v, uint32_t *sat)
{
    if (v > NG_SOS_LIMIT) { ++*sat; return NG_SOS_LIMIT; }
    if (v < -NG_SOS_LIMIT) { ++*sat; return -NG_SOS_LIMIT; }
    return v;
}

static int64_t pre_scale(int64_t x, int8_t shift, uint32_t *sat)
{
    if (shift > 0) {
        return floor_shift(x + ((int64_t)1 << (shift - 1)), (unsigned)shift);
    }
    if (shift < 0) {
        int64_t lim = NG_SOS_LIMIT >> (unsigned)(-shift);
        if (x > lim) { ++*sat; return NG_SOS_LIMIT; }
        if (x < -lim) { ++*sat; return -NG_SOS_LIMIT; }
        return x * ((int64_t)1 << (unsigned)(-shift));
    }
    return x;
}

static int64_t rounded_dot(const int32_t *c, const int64_t *v, int n, int shift)
{
    /* round(sum(c[i] * v[i]) / 2^(30 + shift)), half up, exactly: each v = hi * 2^30 + lo with
     * 0 <= lo < 2^30, so sum = A * 2^30 + B with A = sum(c*hi), B = sum(c*lo).  |v| <= 2^55 and
     * |c| < 2^30 keep A and B (and B plus the rounding half) inside int64. */
    int64_t a = 0, b = 0;
    int i;
    for (i = 0; i < n; ++i) {
        a += (int64_t)c[i] * floor_shift(v[i], NG_SOS_COEF_FRAC);
        b += (int64_t)c[i] * (v[i] & LO_MASK);
    }
    if (shift >= 0) {
        b += (int64_t)1 << (NG_SOS_COEF_FRAC - 1 + shift);
        return floor_shift(a + floor_shift(b, NG_SOS_COEF_FRAC), (unsigned)shift);
    }
    b += (int64_t)1 << (NG_SOS_COEF_FRAC - 1 + shift);
    return a * ((int64_t)1 << (unsigned)(-shift)) + floor_shift(b, (unsigned)(NG_SOS_COEF_FRAC + shift));
}

static void cascade(const ng_sos_section *sections, uint16_t n_sections, int64_t *state,
                    int64_t *row, uint16_t n_channels, uint32_t *sat)
{
    /* One sample of every channel (row, in place) through the sections.  Sections outside,
     * channels inside: each section's coefficients and shifts are fixed over the inner loop and
     * its state rows x1, x2, y1, y2 are contiguous in the channel, so the loop body is the same
     * straight-line code for every channel.  The order of operations per channel is unchanged. */
    uint16_t k, c;
    for (k = 0; k < n_sections; ++k) {
        const ng_sos_section *s = &sections[k];
        int64_t *x1 = state + (uint32_t)k * 4u * n_channels;
        int64_t *x2 = x1 + n_channels, *y1 = x2 + n_channels, *y2 = y1 + n_channels;
        for (c = 0; c < n_channels; ++c) {
            int64_t xv[3], yv[2], y;
            xv[0] = pre_scale(row[c], s->pre_shift, sat);
            xv[1] = x1[c];
            xv[2] = x2[c];
            yv[0] = y1[c];
            yv[1] = y2[c];
            y = 2 * yv[0] - yv[1] + rounded_dot(s->c, xv, 3, 0) + rounded_dot(s->c + 3, yv, 2, s->fb_shift);
            y = saturate(y, sat);
            x2[c] = xv[1];
            x1[c] = xv[0];
            y2[c] = yv[0];
            y1[c] = y;
            row[c] = y;
        }
    }
}

uint32_t ng_sos_run64(const ng_sos_section *sections, uint16_t n_sections, int64_t *state,
                      const int64_t *in, int64_t *out, uint32_t n_samples, uint16_t n_channels)
{
    uint32_t sat = 0, t;
    uint16_t c;
    for (t = 0; t < n_samples; ++t) {
        int64_t *row = out + t * (uint32_t)n_channels;
        for (c = 0; c < n_channels; ++c) {
            row[c] = saturate(in[t * (uint32_t)n_channels + c], &sat);
        }
        cascade(sections, n_sections, state, row, n_channels, &sat);
    }
    return sat;
}

uint32_t ng_sos_run(const ng_sos_section *sections, uint16_t n_sections, int64_t *state,
                    const int32_t *in, int64_t *out, uint32_t n_samples, uint16_t n_channels,
                    uint8_t input_frac)
{
    uint32_t sat = 0, t;
    uint16_t c;
    /* Widening is a saturating left shift, so any input_frac (0..35) is safe. */
    int8_t widen = (int8_t)-(NG_SOS_STATE_FRAC - (input_frac > NG_SOS_STATE_FRAC ? NG_SOS_STATE_FRAC : input_frac));
    for (t = 0; t < n_samples; ++t) {
        int64_t *row = out + t * (uint32_t)n_channels;
        for (c = 0; c < n_channels; ++c) {
            row[c] = pre_scale((int64_t)in[t * (uint32_t)n_channels + c], widen, &sat);
        }
        cascade(sections, n_sections, state, row, n_channels, &sat);
    }
    return sat;
}
