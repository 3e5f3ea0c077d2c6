"""The signal chain of a model bundle: fixed-point filtering, decimation and windowing.

This is the one preprocessing path.  Training builds every model input by running
:class:`SignalChain` and :class:`WindowBuffer` over recordings (:mod:`edge.evaluation.windows`),
and the Pi runs the very same classes on the live stream, so a window the model saw
in training and the window it sees on the Pi are computed by identical integer code.

Stages
------
1. :class:`SignalChain` — ``µV float → int32 (input_frac_bits) → FixedPointSOS cascade →
   keep one sample in `factor` → float µV``.  The cascade's last low-pass is the
   anti-aliasing filter of the decimation (checked at construction).
2. :class:`WindowBuffer` — a preallocated ring buffer that emits the window ending at
   every ``stride``-th output sample once ``length`` samples have been seen since the
   last reset.  Window positions are a pure function of the sample count since reset
   (:func:`window_ends`), so offline windowing gives the same windows.

What a window becomes for the model (normalisation, features, int8) is :mod:`edge.model.inputs`.
"""

from __future__ import annotations

import ctypes

import numpy as np

from edge import native
from edge._checks import check_int, check_positive, check_type
from edge.chain.dsp import STATE_FRAC_BITS, FixedPointSOS

_OUT_SCALE = 1.0 / (1 << STATE_FRAC_BITS)  # int64 state format → input units
_BLOCK = 256  # rows per step of the C chain call (its int32/int64 scratch buffers)


class SignalChain:
    """Fixed-point filter cascade plus integer-factor decimation, state carried across chunks.

    Parameters
    ----------
    filt : FixedPointSOS
        The cascade (high-pass, notch, low-pass...) at the input rate.
    fs : float
        Input sampling rate in Hz.
    factor : int, optional
        Decimation factor (1 = none).  The output sample ``k`` of a stream is the filtered
        input sample ``k·factor + factor − 1`` counted from the last :meth:`reset`.
    lowpass_hz : float or None
        Corner of the cascade's low-pass; required when ``factor > 1`` and must be at most
        0.8 × the output Nyquist frequency, otherwise decimation would alias.
    design : list of dict, optional
        The design parameters, kept for the manifest (informative; the integers rule).
    """

    def __init__(self, filt: FixedPointSOS, fs: float, factor: int = 1, lowpass_hz: float | None = None,
                 design: list | None = None):
        check_type(filt, FixedPointSOS, "filt")
        factor = check_int(factor, "factor", lo=1)
        fs = check_positive(fs, "fs")
        if factor > 1:
            limit = 0.8 * fs / (2 * factor)
            if lowpass_hz is None or lowpass_hz > limit + 1e-9:
                raise ValueError(f"lowpass_hz={lowpass_hz}: decimating {fs:g} Hz by {factor} needs a low-pass "
                                 f"at or below {limit:g} Hz in the chain (anti-aliasing)")
        self.filt = filt
        self.fs = float(fs)
        self.factor = int(factor)
        self.lowpass_hz = lowpass_hz
        self.design = list(design or [])
        self._phase = 0
        self._bind()

    # process_valid(): buffers reused by every call, their addresses in an argument struct filled
    # once, grown only for a chunk larger than any before, so the hot path allocates nothing.
    _C_STATE = ("_fast", "_cap", "_scratch_in", "_scratch_out", "_args", "_args_ptr", "_in", "_out")

    def _bind(self) -> None:
        self._fast = native.LIB is not None and self.filt.backend == "c"
        if not self._fast:
            return
        c = self.filt.n_channels
        self._scratch_in = np.empty((_BLOCK, c), np.int32)
        self._scratch_out = np.empty((_BLOCK, c), np.int64)
        sections, n_sections, state = self.filt._c_args
        self._args = native.ChainArgs(sections=sections, state=state, scratch_in=self._scratch_in.ctypes.data,
                                scratch_out=self._scratch_out.ctypes.data, limit=self.input_limit,
                                factor=self.factor, block=_BLOCK, n_sections=n_sections, n_channels=c,
                                input_frac=self.filt.input_frac_bits)
        self._args_ptr = ctypes.addressof(self._args)
        self._grow(_BLOCK)

    def __getstate__(self) -> dict:
        # Copies and unpickled chains get buffers and addresses of their own (see _bind).
        return {k: v for k, v in self.__dict__.items() if k not in self._C_STATE}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind()

    @property
    def n_channels(self) -> int:
        return self.filt.n_channels

    @property
    def fs_out(self) -> float:
        return self.fs / self.factor

    @property
    def saturations(self) -> int:
        return self.filt.saturations

    @property
    def input_limit(self) -> float:
        """Largest input magnitude the int32 input format holds (µV): ``(2**31 − 1) / 2**input_frac_bits``."""
        return (2**31 - 1) / 2**self.filt.input_frac_bits

    def reset(self) -> None:
        """Forget the past (after a gap or a dropped stream): filter state and decimation phase."""
        self.filt.reset()
        self._phase = 0

    def process_int(self, x) -> np.ndarray:
        """Float µV chunk (n, C) → decimated int64 output (35 fractional bits)."""
        y = self.filt.process_int(self.filt.quantise_input(x))
        if self.factor == 1:
            return y
        first = (self.factor - 1 - self._phase) % self.factor
        self._phase = (self._phase + y.shape[0]) % self.factor
        return y[first::self.factor]

    def process(self, x) -> np.ndarray:
        """Float µV chunk (n, C) → decimated float64 µV chunk (the exact fixed-point values)."""
        return self.process_int(x) * _OUT_SCALE

    def process_valid(self, x) -> np.ndarray | None:
        """The runtime's path: a float µV chunk → decimated float32 output, or None if a sample is bad.

        Returns exactly ``self.process(x).astype(np.float32)`` when every ``|x|`` is below
        :attr:`input_limit`, in one call of the C kernel (``edge/_ng_chain.c``) when it is built.
        When any sample is NaN, inf or out of range it returns None and changes no state, so the
        caller can split the chunk around the bad samples.

        Parameters
        ----------
        x : array_like, shape (n, C)

        Returns
        -------
        ndarray, float32, shape (k, C), or None
            A view of a buffer that the next call overwrites: copy it to keep it.
        """
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise ValueError(f"x must have shape (n_samples, {self.n_channels}), got {x.shape}")
        if not self._fast:
            if not np.abs(x).max(initial=0.0) < self.input_limit:  # NaN fails the comparison too
                return None
            return self.process(x).astype(np.float32)
        n = x.shape[0]
        if n > self._cap:
            if n * self.n_channels >= 2**31:  # the kernel counts values in 32 bits
                raise ValueError(f"a chunk of {n} samples x {self.n_channels} channels is too large; "
                                 "pass it in pieces")
            self._grow(n)
        np.copyto(self._in[:n], x)
        args = self._args
        args.phase = self._phase
        rows = native.LIB.ng_chain_run(self._args_ptr, n)
        if rows == -1:
            return None
        if rows < 0:  # not bad input: the argument struct is inconsistent (a bug)
            raise RuntimeError(f"ng_chain_run refused its arguments (code {rows}): phase {self._phase}, "
                               f"factor {self.factor}")
        self._phase = args.phase
        if args.saturations:
            self.filt.saturations += args.saturations
            args.saturations = 0
        return self._out[:rows]

    def _grow(self, n: int) -> None:
        self._cap = n
        self._in = np.empty((n, self.n_channels), np.float64)
        self._out = np.empty((-(-n // self.factor), self.n_channels), np.float32)
        self._args.inp, self._args.out = self._in.ctypes.data, self._out.ctypes.data

    def to_manifest(self) -> dict:
        return {"fs": self.fs, "factor": self.factor, "fs_out": self.fs_out, "lowpass_hz": self.lowpass_hz,
                "design": self.design, "filter": self.filt.to_manifest()}

    @classmethod
    def from_manifest(cls, spec: dict, n_channels: int, backend: str = "auto") -> SignalChain:
        if not isinstance(spec, dict):
            raise TypeError(f"spec must be a dict from SignalChain.to_manifest, got {type(spec).__name__}")
        try:
            filt = FixedPointSOS.from_manifest(spec["filter"], n_channels, backend)
            return cls(filt, float(spec["fs"]), int(spec["factor"]), spec.get("lowpass_hz"), spec.get("design"))
        except KeyError as exc:
            raise ValueError(f"spec: missing key {exc}") from None


def window_ends(n: int, length: int, stride: int) -> np.ndarray:
    """Indices (since reset) of the last sample of every window in a run of ``n`` samples.

    A window ends at ``i`` when ``i >= length − 1`` and ``(i − length + 1) % stride == 0``.
    """
    if n < length:
        return np.zeros(0, np.int64)
    return np.arange(length - 1, n, stride, dtype=np.int64)


def segment_windows(chain: SignalChain, samples, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window :class:`WindowBuffer` would emit for one contiguous segment, computed at once.

    The chain is reset first (as the runtime resets after a gap).  Returns ``(windows, ends)``:
    float32 (k, length, C) and the index of each window's last sample in the chain's output.
    """
    chain.reset()
    out = chain.process(samples).astype(np.float32)
    ends = window_ends(out.shape[0], length, stride)
    if not len(ends):
        return np.zeros((0, length, out.shape[1]), np.float32), ends
    view = np.lib.stride_tricks.sliding_window_view(out, length, axis=0)  # (n - length + 1, C, length)
    return view[ends - length + 1].transpose(0, 2, 1), ends


class WindowBuffer:
    """Preallocated buffer emitting (length, C) windows every ``stride`` samples.

    ``process(chunk)`` returns ``(windows, ends)``: a (k, length, C) float32 array and the
    index since reset of each window's last sample, following :func:`window_ends`.
    Nothing grows: the buffer holds ``length + max_chunk`` samples, appends until the next
    chunk would not fit, then moves the last ``length − 1`` samples to the front; a chunk larger
    than ``max_chunk`` is split.
    """

    def __init__(self, length: int, n_channels: int, stride: int, max_chunk: int = 1024):
        for name, v in (("length", length), ("n_channels", n_channels), ("stride", stride),
                        ("max_chunk", max_chunk)):
            check_int(v, name, lo=1)
        self.length, self.n_channels, self.stride = int(length), int(n_channels), int(stride)
        self.max_chunk = int(max_chunk)
        self._buf = np.zeros((self.length + self.max_chunk, self.n_channels), np.float32)
        self._none = (np.zeros((0, self.length, self.n_channels), np.float32), np.zeros(0, np.int64))
        for a in self._none:
            a.flags.writeable = False
        self.reset()

    def reset(self) -> None:
        self._fill = 0                    # samples held, at the start of the buffer
        self._count = 0                   # samples seen since reset
        self._next_end = self.length - 1  # index since reset of the next window's last sample

    @property
    def count(self) -> int:
        return self._count

    def process(self, chunk) -> tuple[np.ndarray, np.ndarray]:
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or chunk.shape[1] != self.n_channels:
            raise ValueError(f"chunk must have shape (n, {self.n_channels}), got {chunk.shape}")
        if chunk.shape[0] <= self.max_chunk:
            return self._process(chunk)
        outs, ends = [], []
        for start in range(0, chunk.shape[0], self.max_chunk):
            w, e = self._process(chunk[start:start + self.max_chunk])
            if len(e):
                outs.append(w)
                ends.append(e)
        if not ends:
            return self._none
        return (outs[0], ends[0]) if len(outs) == 1 else (np.concatenate(outs), np.concatenate(ends))

    def _process(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = chunk.shape[0]
        buf = self._buf
        if self._fill + m > buf.shape[0]:
            keep = min(self._fill, self.length - 1)
            buf[:keep] = buf[self._fill - keep:self._fill]
            self._fill = keep
        buf[self._fill:self._fill + m] = chunk
        self._fill += m
        self._count += m
        if self._count <= self._next_end:  # most chunks complete no window
            return self._none
        k = (self._count - 1 - self._next_end) // self.stride + 1
        e = np.arange(self._next_end, self._next_end + k * self.stride, self.stride, dtype=np.int64)
        self._next_end += k * self.stride
        start = int(e[0]) - (self._count - self._fill) - self.length + 1  # buf row of the first window's start
        if k == 1:
            return buf[None, start:start + self.length].copy(), e
        idx = (start + self.stride * np.arange(k))[:, None] + np.arange(self.length)[None, :]
        return buf[idx], e

