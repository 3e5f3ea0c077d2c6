"""Fixed-point streaming IIR filtering: the one signal chain shared by training, the Pi and the firmware.

Structure and number formats (the "why" is in docs/fixed-point.md)
--------------------------------------------------------------------------
A cascade of Direct Form I biquads in the spirit of CMSIS-DSP's 32×64 biquad
(``arm_biquad_cas_df1_32x64_q31``), which is the known answer for poles next
to the unit circle (0.1–1 Hz corners at 500 Hz):

* coefficients: int32.  Each section's numerator is normalised by a power
  of two, ``b' = b·2**pre_shift`` with ``0.5 <= max|b'| < 1`` (Q1.30), and
  the section input is scaled by ``2**-pre_shift`` instead, so the tiny
  numerators of low-pass sections keep 30 bits of precision;
* feedback: poles near z = 1 give a1 ≈ −2, a2 ≈ 1, and plain Q1.30
  rounding of those moves the response near DC (1 + a1 + a2 ≈ 1e-6 for a
  0.1 Hz high-pass).  So the kernel applies the exact integer part
  ``2·y1 − y2`` and stores only the remainders ``a1 + 2`` and ``a2 − 1``,
  scaled by ``2**(30 + fb_shift)`` to keep 30 significant bits;
* signal and state: int64 with ``STATE_FRAC_BITS = 35`` fractional bits.  The
  feedback path therefore keeps ~30 bits below a 1 µV signal, which is what
  poles at radius 0.9987 need (their noise gain is ~10⁵);
* products: exact.  ``c·s`` would need 96 bits; each state word is split into
  30-bit halves so ``Σ c·s / 2**(30+m)`` is formed exactly in int64 and
  rounded once, half up (once for the numerator, once for the feedback);
* overflow: every section output is saturated to ±(2**55 − 1) and each clip
  is counted in :attr:`FixedPointSOS.saturations`.  With the default input
  format (±131 072 µV) and the L1 gain bounds stored by the designer, the
  limit is provably never reached for in-range input; the counter is the
  runtime's evidence if something is out of range anyway.

The same arithmetic lives in C (``firmware_bridge/firmware/dsp/ng_sos.c``), built
into ``edge._ng_sos`` at install time and loaded with ctypes by :mod:`edge.native`; the numpy kernel here
is the always-available reference and the two are bit-exact (tests check this).
"""

from __future__ import annotations

import numpy as np

from edge import native
from edge._checks import check_int, check_option

COEF_FRAC_BITS = 30
STATE_FRAC_BITS = 35
STATE_LIMIT = (1 << 55) - 1
DEFAULT_INPUT_FRAC_BITS = 14  # int32 input: ±131 072 µV at 6.1e-5 µV resolution
FORMAT_NAME = "ng-sos-df1-q30x64-fb"

FB_SHIFT_RANGE = (-2, 40)
_INT32_MAX = float(2**31 - 1)
_OUT_SCALE = 1.0 / (1 << STATE_FRAC_BITS)
_LO_MASK = np.int64((1 << COEF_FRAC_BITS) - 1)
_HALF = np.int64(1 << (COEF_FRAC_BITS - 1))


# --------------------------------------------------------------------------- quantisation


def quantise_sos(sos) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantise scipy-format second-order sections to the kernel's integer format.

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6)
        ``[b0, b1, b2, a0, a1, a2]`` rows as returned by ``scipy.signal.*(output="sos")``.

    Returns
    -------
    coeffs : ndarray, shape (n_sections, 5), int64
        ``[b0', b1', b2']`` in Q1.30, then ``-(a1 + 2)`` and ``-(a2 - 1)`` scaled by
        ``2**(30 + fb_shift)``.
    pre_shift : ndarray, shape (n_sections,), int64
        Per-section input scaling exponent (``x' = x·2**-pre_shift``).
    fb_shift : ndarray, shape (n_sections,), int64
        Extra fractional bits of the feedback remainders.

    Raises
    ------
    TypeError, ValueError
        ``sos`` is not a finite (n, 6) array, has ``a0 == 0``, or a section is not
        stable (``|a2| >= 1`` or ``|a1| >= 1 + a2``).
    """
    sos = _check_sos(sos)
    coeffs = np.empty((sos.shape[0], 5), np.int64)
    shifts = np.empty(sos.shape[0], np.int64)
    fb_shifts = np.empty(sos.shape[0], np.int64)
    scale = float(1 << COEF_FRAC_BITS)
    for k, row in enumerate(sos):
        b = row[:3] / row[3]
        a1, a2 = row[4] / row[3], row[5] / row[3]
        if not (abs(a2) < 1 and abs(a1) < 1 + a2):
            raise ValueError(f"sos: section {k} is not stable (a1={a1:.6g}, a2={a2:.6g}); "
                             "design a stable filter (poles inside the unit circle)")
        peak = np.max(np.abs(b))
        if peak == 0:
            shift = 0
        else:
            # 0.5 <= max|b'| < 1, so sum(|c|) < 6·2^30 and the C accumulator cannot overflow.
            shift = int(np.floor(-np.log2(peak))) - 1
            while np.max(np.abs(np.round(b * 2.0**shift * scale))) >= scale:
                shift -= 1
        if not -20 <= shift <= 60:
            raise ValueError(f"sos: section {k} numerator scale 2^{-shift} is outside the supported range")
        coeffs[k, :3] = _quantise_numerator(b * 2.0**shift * scale)
        d = np.array([-(a1 + 2.0), -(a2 - 1.0)])
        peak_d = np.max(np.abs(d))
        fb = FB_SHIFT_RANGE[1] if peak_d == 0 else int(np.floor(-np.log2(peak_d))) - 1
        fb = min(max(fb, FB_SHIFT_RANGE[0]), FB_SHIFT_RANGE[1])
        while np.max(np.abs(np.round(d * 2.0 ** (COEF_FRAC_BITS + fb)))) >= scale:
            fb -= 1
        coeffs[k, 3:] = np.round(d * 2.0 ** (COEF_FRAC_BITS + fb))
        shifts[k] = shift
        fb_shifts[k] = fb
    return coeffs, shifts, fb_shifts


def _quantise_numerator(b: np.ndarray) -> np.ndarray:
    """Round a scaled numerator so that N(1) and N(-1) stay as exact as possible.

    High-pass and band-pass sections have zeros at z = 1 (b0 + b1 + b2 = 0); plain rounding
    can leave that sum at ±1 LSB, which lets DC offsets of hundreds of µV through at a gain
    of ~1e-3.  b0 and b2 are rounded; b1 is chosen so the numerator's value at whichever of
    z = ±1 it is smaller (the zero that matters) is the correctly rounded one.
    """
    b0, b2 = np.round(b[0]), np.round(b[2])
    n_plus, n_minus = b.sum(), b[0] - b[1] + b[2]
    if abs(n_plus) <= abs(n_minus):
        b1 = np.round(n_plus) - b0 - b2
    else:
        b1 = b0 + b2 - np.round(n_minus)
    return np.array([b0, b1, b2])


def _check_sos(sos) -> np.ndarray:
    try:
        arr = np.asarray(sos, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"sos must be a float array of shape (n_sections, 6), got {type(sos).__name__}") from None
    if arr.ndim != 2 or arr.shape[1] != 6 or arr.shape[0] < 1:
        raise ValueError(f"sos must have shape (n_sections, 6), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("sos contains NaN or inf")
    if np.any(arr[:, 3] == 0):
        raise ValueError("sos: a0 must be non-zero in every section")
    return arr


def sos_from_integers(coeffs, pre_shift, fb_shift) -> np.ndarray:
    """The float sections that the integer coefficients represent (for analysis)."""
    coeffs = np.asarray(coeffs, np.float64)
    pre = 2.0 ** -np.asarray(pre_shift, np.float64)
    fb = 2.0 ** -(COEF_FRAC_BITS + np.asarray(fb_shift, np.float64))
    out = np.zeros((coeffs.shape[0], 6))
    out[:, :3] = coeffs[:, :3] / (1 << COEF_FRAC_BITS) * pre[:, None]
    out[:, 3] = 1.0
    out[:, 4] = -coeffs[:, 3] * fb - 2.0
    out[:, 5] = -coeffs[:, 4] * fb + 1.0
    return out


# --------------------------------------------------------------------------- kernels


def _floor_shift(v: np.ndarray, k: int) -> np.ndarray:
    return v >> np.int64(k)  # numpy's >> on int64 is an arithmetic (floor) shift


def _saturate(v: np.ndarray, counter: list) -> np.ndarray:
    over = np.abs(v) > STATE_LIMIT
    if over.any():
        counter[0] += int(over.sum())
        v = np.clip(v, -STATE_LIMIT, STATE_LIMIT)
    return v


def _pre_scale(x: np.ndarray, shift: int, counter: list) -> np.ndarray:
    if shift > 0:
        return _floor_shift(x + np.int64(1 << (shift - 1)), shift)
    if shift < 0:
        lim = STATE_LIMIT >> (-shift)
        over = np.abs(x) > lim
        if over.any():
            counter[0] += int(over.sum())
            return np.where(x > lim, STATE_LIMIT, np.where(x < -lim, -STATE_LIMIT, x * np.int64(1 << -shift)))
        return x * np.int64(1 << -shift)
    return x


def _rounded_dot(cs, vs, shift: int):
    """round(Σ c·v / 2**(30+shift)), half up, exactly in int64 (see ng_sos.c)."""
    a = np.zeros_like(vs[0])
    b = np.zeros_like(vs[0])
    for c, v in zip(cs, vs):
        a += c * _floor_shift(v, COEF_FRAC_BITS)
        b += c * (v & _LO_MASK)
    b += np.int64(1 << (COEF_FRAC_BITS - 1 + shift))
    if shift >= 0:
        return _floor_shift(a + _floor_shift(b, COEF_FRAC_BITS), shift)
    return a * np.int64(1 << -shift) + _floor_shift(b, COEF_FRAC_BITS + shift)


def _numpy_run64(coeffs, shifts, fb_shifts, state, x, counter) -> np.ndarray:
    """Reference kernel: section-major, vectorised over channels, one Python step per sample.

    ``state`` (n_sections, 4, n_channels) int64 is updated in place.
    """
    y = x
    for k in range(coeffs.shape[0]):
        cb, cd, fb = coeffs[k, :3], coeffs[k, 3:], int(fb_shifts[k])
        x1, x2, y1, y2 = (row.copy() for row in state[k])  # copies: state[k] is rewritten below
        out = np.empty_like(y)
        xs = _pre_scale(y, int(shifts[k]), counter)
        for t in range(xs.shape[0]):
            yt = 2 * y1 - y2 + _rounded_dot(cb, (xs[t], x1, x2), 0) + _rounded_dot(cd, (y1, y2), fb)
            yt = _saturate(yt, counter)
            x2, x1 = x1, xs[t]
            y2, y1 = y1, yt
            out[t] = yt
        state[k] = (x1, x2, y1, y2)
        y = out
    return y




def available_backends() -> tuple[str, ...]:
    """Kernel backends usable here: always ``"numpy"``, plus ``"c"`` when the C kernel is built."""
    return ("c", "numpy") if native.LIB is not None else ("numpy",)


# --------------------------------------------------------------------------- streaming stages


class FixedPointSOS:
    """A stateful fixed-point biquad cascade over (n_samples, n_channels) chunks.

    Parameters
    ----------
    sos : array_like, shape (n_sections, 6)
        The float design, scipy's layout.
    n_channels : int
        Number of channels filtered in parallel (each with its own state).
    input_frac_bits : int, optional
        Input quantisation: ``x_int = round(x · 2**input_frac_bits)`` as int32.  The
        default 14 covers ±131 072 input units (µV) at a 6.1e-5 µV step.
    backend : {"auto", "c", "numpy"}
        ``"auto"`` uses the C kernel when built; all backends give identical integers.

    Attributes
    ----------
    saturations : int
        Values clipped so far (input outside the declared range, or a section output at
        the state limit).  Zero in correct operation; the runtime reports it as a fault.
    """

    def __init__(self, sos, n_channels: int, input_frac_bits: int = DEFAULT_INPUT_FRAC_BITS,
                 backend: str = "auto", *, _quantised=None):
        n_channels = check_int(n_channels, "n_channels", lo=1, hi=65535)
        input_frac_bits = check_int(input_frac_bits, "input_frac_bits", lo=0, hi=STATE_FRAC_BITS)
        check_option(backend, "backend", ("auto", "c", "numpy"))
        if backend == "c" and native.LIB is None:
            raise ValueError("backend='c' but the C kernel is not built; reinstall neurogrip with a C compiler")
        if backend == "auto":
            backend = "c" if native.LIB is not None else "numpy"
        self.backend = backend
        if _quantised is None:
            self.coeffs, self.pre_shift, self.fb_shift = quantise_sos(sos)
        else:
            self.coeffs, self.pre_shift, self.fb_shift = _quantised
        self.n_channels = int(n_channels)
        self.input_frac_bits = int(input_frac_bits)
        self._sections = np.zeros(self.coeffs.shape[0], native.SECTION_DTYPE)
        self._sections["c"] = self.coeffs
        self._sections["pre_shift"] = self.pre_shift
        self._sections["fb_shift"] = self.fb_shift
        self._state = np.zeros((self.coeffs.shape[0], 4, self.n_channels), np.int64)
        self._bind()
        self.saturations = 0

    def _bind(self) -> None:
        # Both arrays live as long as the filter (reset() zeroes in place), so their addresses are
        # looked up once: numpy's .ctypes.data costs ~3 µs a call, more than filtering a chunk.
        self._c_args = (self._sections.ctypes.data, self.n_sections, self._state.ctypes.data)

    def __getstate__(self) -> dict:
        # A copy or an unpickled filter has arrays of its own: never carry the raw addresses over.
        return {k: v for k, v in self.__dict__.items() if k != "_c_args"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind()

    @property
    def n_sections(self) -> int:
        return int(self.coeffs.shape[0])

    def reset(self) -> None:
        """Clear the filter state and the saturation counter (e.g. after a gap in the stream)."""
        self._state[:] = 0
        self.saturations = 0

    # -- integer entry points -------------------------------------------------------------

    def quantise_input(self, x) -> np.ndarray:
        """Float input units → int32 with ``input_frac_bits`` (saturating, counted)."""
        x = self._check_chunk(x)
        scaled = np.round(x * float(1 << self.input_frac_bits))
        # One reduction answers both questions on the hot path: NaN propagates into the max.
        peak = np.abs(scaled).max(initial=0.0)
        if not np.isfinite(peak):
            raise ValueError("x contains NaN or inf; flag the window instead of filtering it")
        if peak > _INT32_MAX:
            over = np.abs(scaled) > _INT32_MAX
            self.saturations += int(over.sum())
            scaled = np.clip(scaled, -_INT32_MAX, _INT32_MAX)
        return scaled.astype(np.int32)

    def process_int(self, x_int) -> np.ndarray:
        """Filter int32 input (``input_frac_bits`` format); returns int64 with 35 fractional bits."""
        if not (isinstance(x_int, np.ndarray) and x_int.dtype == np.int32 and x_int.flags.c_contiguous):
            x_int = np.ascontiguousarray(x_int, dtype=np.int32)
        self._check_shape(x_int)
        if self.backend == "c":
            return self._run_c(x_int, None)
        counter = [0]
        widened = _pre_scale(x_int.astype(np.int64), self.input_frac_bits - STATE_FRAC_BITS, counter)
        self.saturations += counter[0]
        return self.process_state(widened)

    def process_state(self, x) -> np.ndarray:
        """Filter int64 input already in the 35-fractional-bit state format (chains, decimators)."""
        x = np.ascontiguousarray(x, dtype=np.int64)
        self._check_shape(x)
        if self.backend == "c":
            return self._run_c(None, x)
        counter = [0]
        y = _numpy_run64(self.coeffs, self.pre_shift, self.fb_shift, self._state, _saturate(x, counter), counter)
        self.saturations += counter[0]
        return y

    def _run_c(self, x32, x64) -> np.ndarray:
        x = x32 if x32 is not None else x64
        out = np.empty(x.shape, np.int64)
        n = x.shape[0]
        if n == 0:
            return out
        if x32 is not None:
            sat = native.LIB.ng_sos_run(*self._c_args, x32.ctypes.data, out.ctypes.data, n, self.n_channels,
                                       self.input_frac_bits)
        else:
            sat = native.LIB.ng_sos_run64(*self._c_args, x64.ctypes.data, out.ctypes.data, n, self.n_channels)
        self.saturations += int(sat)
        return out

    # -- float entry point -----------------------------------------------------------------

    def process(self, x) -> np.ndarray:
        """Filter a float chunk (n_samples, n_channels) in input units; returns float64, same shape.

        The computation is the fixed-point kernel; the float output is its exact value
        ``y_int / 2**35``.  State carries over to the next call.
        """
        y = self.process_int(self.quantise_input(x))
        return y * _OUT_SCALE

    def _check_chunk(self, x) -> np.ndarray:
        if isinstance(x, np.ndarray) and x.dtype == np.float64:
            self._check_shape(x)
            return x
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"x must be a numeric array (n_samples, n_channels), got {type(x).__name__}") from None
        self._check_shape(arr)
        return arr

    def _check_shape(self, arr) -> None:
        if arr.ndim != 2 or arr.shape[1] != self.n_channels:
            raise ValueError(f"x must have shape (n_samples, {self.n_channels}), got {arr.shape}")

    # -- manifest ----------------------------------------------------------------------------

    def to_manifest(self) -> dict:
        """Everything the Pi needs to rebuild this filter without scipy (JSON-serialisable)."""
        return {
            "format": FORMAT_NAME,
            "coef_frac_bits": COEF_FRAC_BITS,
            "state_frac_bits": STATE_FRAC_BITS,
            "input_frac_bits": self.input_frac_bits,
            "state_limit": STATE_LIMIT,
            "sections": [{"c": [int(v) for v in c], "pre_shift": int(s), "fb_shift": int(f)}
                         for c, s, f in zip(self.coeffs, self.pre_shift, self.fb_shift)],
        }

    @classmethod
    def from_manifest(cls, spec: dict, n_channels: int, backend: str = "auto") -> FixedPointSOS:
        """Rebuild a filter from :meth:`to_manifest` output; refuses formats it does not know."""
        if not isinstance(spec, dict):
            raise TypeError(f"spec must be a dict from FixedPointSOS.to_manifest, got {type(spec).__name__}")
        if spec.get("format") != FORMAT_NAME or spec.get("coef_frac_bits") != COEF_FRAC_BITS \
                or spec.get("state_frac_bits") != STATE_FRAC_BITS:
            raise ValueError(f"spec: filter format {spec.get('format')!r} (coef {spec.get('coef_frac_bits')}, "
                             f"state {spec.get('state_frac_bits')} bits) is not {FORMAT_NAME} "
                             f"({COEF_FRAC_BITS}/{STATE_FRAC_BITS}); re-export the bundle with this version")
        try:
            coeffs = np.array([s["c"] for s in spec["sections"]], np.int64)
            shifts = np.array([s["pre_shift"] for s in spec["sections"]], np.int64)
            fb_shifts = np.array([s["fb_shift"] for s in spec["sections"]], np.int64)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"spec: malformed sections ({exc})") from None
        if coeffs.ndim != 2 or coeffs.shape[1] != 5 or coeffs.shape[0] < 1:
            raise ValueError(f"spec: sections must each have 5 coefficients, got shape {coeffs.shape}")
        if np.any(np.abs(coeffs) >= 1 << COEF_FRAC_BITS) or np.any(np.abs(shifts) > 60) \
                or np.any(fb_shifts < FB_SHIFT_RANGE[0]) or np.any(fb_shifts > FB_SHIFT_RANGE[1]):
            raise ValueError("spec: coefficients or shifts outside the kernel's safe range "
                             f"(|c| < 2^30, fb_shift in {FB_SHIFT_RANGE}); re-export the bundle")
        return cls(None, n_channels, spec.get("input_frac_bits", DEFAULT_INPUT_FRAC_BITS), backend,
                   _quantised=(coeffs, shifts, fb_shifts))

