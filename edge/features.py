"""Window features: filter-bank log band power and slow trend, per channel (numpy only).

One implementation serves three users: the runtime (bundles whose model takes features instead
of raw windows), training (the same bundles), and the baseline every model is compared with.

The filter bank is the FFT of the Hann-tapered window summed over each band — the band-limited
variance of the window — and the trend is the mean of the window's last quarter minus its first
quarter.  Both use only the window's own samples, so they are as causal as the window.
"""

from __future__ import annotations

import ctypes

import numpy as np

from edge import dsp
from edge.chain import normalise_windows
from edge.inference import quantise

DEFAULT_BANDS = ((1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 45.0))
_EPS = 1e-6


def window_features(windows: np.ndarray, fs: float, bands=DEFAULT_BANDS) -> np.ndarray:
    """(k, length, C) normalised windows → (k, C · (n_bands + 1)) float32 features.

    Bands above the Nyquist frequency or narrower than one FFT bin are skipped, so the feature
    count depends on ``fs`` and the window length; :func:`n_features` says how many.
    """
    w = np.asarray(windows, np.float32)
    n = w.shape[1]
    spec = np.abs(np.fft.rfft(w * np.hanning(n).astype(np.float32)[None, :, None], axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    feats = []
    for lo, hi in bands:
        sel = (freqs >= lo) & (freqs < hi)
        if sel.any():
            feats.append(np.log(spec[:, sel].sum(axis=1) + _EPS))
    q = max(1, n // 4)
    feats.append(w[:, -q:].mean(axis=1) - w[:, :q].mean(axis=1))
    return np.concatenate(feats, axis=1).astype(np.float32)


def n_features(length: int, n_channels: int, fs: float, bands=DEFAULT_BANDS) -> int:
    freqs = np.fft.rfftfreq(length, 1.0 / fs)
    used = sum(bool(((freqs >= lo) & (freqs < hi)).any()) for lo, hi in bands)
    return n_channels * (used + 1)


def standardise(features: np.ndarray, center, scale, clip: float | None = None) -> np.ndarray:
    """``(f − center) / scale``, clipped to ±clip: the model's input for a features bundle."""
    out = (np.asarray(features, np.float32) - np.asarray(center, np.float32)) / np.asarray(scale, np.float32)
    if clip is not None:
        np.clip(out, -clip, clip, out=out)
    return out


def model_inputs(windows: np.ndarray, window_spec: dict) -> np.ndarray:
    """The float model input for windows, as a bundle's ``window`` section defines it.

    Raw-window bundles: the normalised windows (k, length, C).  Feature bundles
    (``window_spec["features"]``): the standardised window features (k, n_features).
    Training and the runtime both call this, so they feed the model identically.
    """
    x = normalise_windows(windows, window_spec["channel_scale"], window_spec.get("clip"))
    f = window_spec.get("features")
    if not f:
        return x
    feats = window_features(x, float(f["fs"]), tuple(tuple(b) for b in f["bands"]))
    return standardise(feats, f["center"], f["scale"], f.get("clip"))


class _WindowArgs(ctypes.Structure):
    """``ng_window_args`` of edge/_ng_chain.c, field for field."""

    _fields_ = [("win", ctypes.c_void_p), ("out", ctypes.c_void_p), ("channel_scale", ctypes.c_void_p),
                ("mean", ctypes.c_void_p), ("clip", ctypes.c_float), ("in_scale", ctypes.c_float),
                ("zero_point", ctypes.c_int32), ("length", ctypes.c_uint32), ("n_channels", ctypes.c_uint16)]


class ModelInput:
    """Stateful stage: windows → a bundle's int8 model input, ``quantise(model_inputs(windows, spec))``.

    Raw-window bundles take one call of the C kernel (``ng_windows_int8`` in ``edge/_ng_chain.c``,
    bit-identical to the numpy functions) when it is built; feature bundles and builds without
    the kernel run the numpy functions.

    Parameters
    ----------
    window_spec : dict
        The bundle's ``window`` section (see :func:`model_inputs`).
    input_quant : (float, int)
        The model input's ``(scale, zero_point)``.
    """

    def __init__(self, window_spec: dict, input_quant):
        self.spec = window_spec
        self.scale, self.zero_point = float(input_quant[0]), int(input_quant[1])
        clip = window_spec.get("clip")
        # The kernel reads a clip of 0 as "no clip": a clip that is 0 in float32 stays with numpy.
        self._fast = (dsp._C_KERNEL is not None and not window_spec.get("features")
                      and (clip is None or np.float32(clip) > 0))
        self._bind()

    _C_STATE = ("_channel_scale", "_mean", "_in", "_out", "_args", "_args_ptr")

    def _bind(self) -> None:
        if not self._fast:
            return
        clip = self.spec.get("clip")
        self._channel_scale = np.ascontiguousarray(self.spec["channel_scale"], np.float32)
        self._mean = np.empty(len(self._channel_scale), np.float32)
        # The windows are copied into _in so that the kernel's pointers stay fixed (reading a
        # new array's address costs more than the copy); both grow to the largest k seen.
        self._in = np.empty((0, 0, 0), np.float32)
        self._args = _WindowArgs(channel_scale=self._channel_scale.ctypes.data, mean=self._mean.ctypes.data,
                                 clip=0.0 if clip is None else float(clip), in_scale=self.scale,
                                 zero_point=self.zero_point, n_channels=len(self._channel_scale))
        self._args_ptr = ctypes.addressof(self._args)

    def __getstate__(self) -> dict:
        # Copies and unpickled stages get buffers and addresses of their own (see _bind).
        return {k: v for k, v in self.__dict__.items() if k not in self._C_STATE}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind()

    def process(self, windows) -> np.ndarray:
        """(k, length, C) windows → int8 model input; on the C path a view of a buffer the next
        call overwrites (feed it to the model before processing more windows)."""
        if not self._fast:
            return quantise(model_inputs(windows, self.spec), self.scale, self.zero_point)
        w = np.asarray(windows)
        if w.ndim != 3 or w.shape[2] != len(self._channel_scale) or w.shape[1] < 1:
            raise ValueError(f"windows must have shape (k, length, {len(self._channel_scale)}), got {w.shape}")
        k = w.shape[0]
        if k > self._in.shape[0] or w.shape[1:] != self._in.shape[1:]:
            self._in = np.empty((max(k, 1), *w.shape[1:]), np.float32)
            self._out = np.empty(self._in.shape, np.int8)
            self._args.win, self._args.out = self._in.ctypes.data, self._out.ctypes.data
            self._args.length = w.shape[1]
        np.copyto(self._in[:k], w)
        dsp._C_KERNEL.ng_windows_int8(self._args_ptr, k)
        return self._out[:k]
