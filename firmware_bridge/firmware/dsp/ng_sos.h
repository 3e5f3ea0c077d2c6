/*
 * ng_sos — neurogrip's fixed-point biquad cascade (Direct Form I, 32-bit coefficients,
 * 64-bit state).  Portable C99: the same arithmetic as edge/chain/dsp.py, bit for bit.
 *
 * Where it is built: for the Pi, as the edge's C filter kernel edge/_ng_sos (setup.py); for the
 * ATmega328P only by the tests (tests/edge/test_dsp_c_golden.py), to prove it builds there
 * warning-free.  It is not linked into the arm firmware (firmware_bridge/firmware/avr) yet.
 *
 * Number formats
 *   numerator     int32, Q1.30: c[0..2] = b' = b * 2^pre_shift * 2^30, |b'| < 2^30.
 *   feedback      int32: c[3] = -(a1 + 2) * 2^(30+fb_shift), c[4] = -(a2 - 1) * 2^(30+fb_shift).
 *                 Poles near z = 1 make a1 ~ -2 and a2 ~ 1; the exact integer part 2*y1 - y2
 *                 is applied separately, so these small remainders keep 30 significant bits.
 *   signal/state  int64 with NG_SOS_STATE_FRAC fractional bits (value = s / 2^35).
 *   input         int32 with `input_frac` fractional bits, widened by multiplication.
 *
 * Per section and sample:
 *   x' = round(x * 2^-pre_shift)                       (pre-scaling, see edge/chain/dsp.py)
 *   y  = 2*y1 - y2 + round((c0 x' + c1 x1 + c2 x2) / 2^30)
 *                  + round((c3 y1 + c4 y2) / 2^(30+fb_shift))       each exact, half up,
 *        computed without 128-bit types by splitting each state into hi/lo 30-bit parts
 *   y  saturated to +/- NG_SOS_LIMIT, and every saturation counted.
 * Right shifts are floor shifts written so they do not rely on implementation-defined
 * behaviour of >> on negative values; left shifts are multiplications.
 */
#ifndef NG_SOS_H
#define NG_SOS_H

#include <stdint.h>

#define NG_SOS_COEF_FRAC 30
#define NG_SOS_STATE_FRAC 35
#define NG_SOS_LIMIT ((int64_t)36028797018963967) /* 2^55 - 1 */

typedef struct {
    int32_t c[5];      /* b0', b1', b2' (Q1.30), then the feedback remainders (see above) */
    int8_t pre_shift;  /* input scaling exponent: x' = x * 2^-pre_shift */
    int8_t fb_shift;   /* extra fractional bits of the feedback remainders, -2..40 */
} ng_sos_section;

/*
 * Filter n_samples x n_channels interleaved (row-major) samples through the cascade.
 *   state: n_sections * 4 * n_channels int64 values, laid out [section][x1,x2,y1,y2][channel].
 *   in:    int32 input with `input_frac` fractional bits (0 <= input_frac <= 35).
 *   out:   int64 output with NG_SOS_STATE_FRAC fractional bits (may not alias in).
 * Every |c| must be < 2^30, which keeps the exact accumulations inside int64; edge/chain/dsp.py
 * guarantees it when it quantises a design.
 * Returns the number of saturated values (section outputs clipped to +/- NG_SOS_LIMIT).
 */
uint32_t ng_sos_run(const ng_sos_section *sections, uint16_t n_sections, int64_t *state,
                    const int32_t *in, int64_t *out, uint32_t n_samples, uint16_t n_channels,
                    uint8_t input_frac);

/* The same on int64 input already in the state format (used by decimators and chains). */
uint32_t ng_sos_run64(const ng_sos_section *sections, uint16_t n_sections, int64_t *state,
                      const int64_t *in, int64_t *out, uint32_t n_samples, uint16_t n_channels);

#endif
