"""Window → int8 model input: the one home of everything between a window and the model.

A bundle's ``window`` section defines the model input, and training, the runtime and the
baseline all compute it here, so they feed the model identically:

1. :func:`normalise_windows` — per-window, per-channel mean removal, a fixed per-channel scale
   from the manifest and clipping to ±``clip``.  Mean removal uses only the window's own (past)
   samples, so it is causal; it makes the model blind to electrode offsets, which differ between
   sessions and would otherwise dominate a short window.
2. For feature bundles, :func:`window_features` (filter-bank log band power and slow trend per
   channel) and :func:`standardise`.
3. :func:`quantise` to the model's int8 input.

:class:`ModelInput` is the streaming stage doing all of it in one C call per window when the
kernel is built (``ng_windows_int8`` through :mod:`edge.native`).

The filter bank is the FFT of the Hann-tapered window summed over each band — the band-limited
variance of the window — and the trend is the mean of the window's last quarter minus its first
quarter.  Both use only the window's own samples, so they are as causal as the window.
"""

from __future__ import annotations

import ctypes

import numpy as np

from edge import native

DEFAULT_BANDS = ((1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 45.0))
_EPS = 1e-6


def normalise_windows(windows: np.ndarray, channel_scale, clip: float | None = None) -> np.ndarray:
    """Remove each window's per-channel mean, divide by the manifest's per-channel scale, clip.

    ``windows`` is (k, length, C); returns float32 of the same shape.  Causal: a window's
    mean is taken over its own samples only.  ``clip`` bounds the result to ±clip: a movement
    artefact of a hundred times the usual amplitude would otherwise set the int8 input scale
    and leave ordinary EEG one or two quantisation steps wide.
    """
    w = np.asarray(windows, np.float32)
    if w.ndim != 3 or w.shape[1] < 1:
        raise ValueError(f"windows must have shape (k, length, C), got {w.shape}")
    # The mean is a sequential float32 sum over the window's samples, written out rather than
    # w.mean(axis=1): numpy sums pairwise or sequentially depending on memory layout, and the
    # runtime's C path (edge/_ng_chain.c, ng_windows_int8) must give the same bits.  For windows
    # of two or more channels in the (k, length, C) layout it is exactly what w.mean did.
    mean = w[:, :1].copy()
    for r in range(1, w.shape[1]):
        mean += w[:, r:r + 1]
    mean /= np.float32(w.shape[1])
    out = np.subtract(w, mean)
    out /= np.asarray(channel_scale, np.float32)
    if clip is not None:
        np.clip(out, -clip, clip, out=out)
    return out


def quantise(x, scale: float, zero_point: int) -> np.ndarray:
    """float → int8: ``round(x / scale) + zero_point`` (round half to even), saturated to int8."""
    q = np.asarray(x, np.float32) / np.float32(scale)
    np.rint(q, out=q)  # np.round without its Python wrapper: half to even
    q += np.float32(zero_point)
    np.maximum(q, -128, out=q)
    np.minimum(q, 127, out=q)
    return q.astype(np.int8)


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


def td_features(windows: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Hudgins' time-domain EMG features per channel: (k, length, C) → (k, 4·C) float32.

    Mean absolute value, waveform length (sum of |Δx|), zero crossings and slope sign changes
    (Hudgins, Parker & Scott, IEEE TBME 1993), the classic features of myoelectric pattern
    recognition and the baseline every EMG model is compared with (LDA on them).  A crossing or
    slope change counts only when the step around it is at least ``threshold`` (noise rejection,
    in the window's units).  Only the window's own samples: as causal as the window.
    """
    w = np.asarray(windows, np.float32)
    if w.ndim != 3 or w.shape[1] < 3:
        raise ValueError(f"windows must have shape (k, length >= 3, C), got {w.shape}")
    d = np.diff(w, axis=1)
    mav = np.abs(w).mean(axis=1)
    wl = np.abs(d).sum(axis=1)
    zc = ((w[:, :-1] * w[:, 1:] < 0) & (np.abs(d) >= threshold)).sum(axis=1)
    ssc = ((d[:, :-1] * d[:, 1:] < 0) & ((np.abs(d[:, :-1]) >= threshold) | (np.abs(d[:, 1:]) >= threshold))
           ).sum(axis=1)
    return np.concatenate([mav, wl, zc, ssc], axis=1).astype(np.float32)


def log_td_features(xq: np.ndarray, zero_point: int, lengths, threshold: float) -> np.ndarray:
    """Log time-domain features of int8 model inputs, over each window's last ``L`` samples for each
    ``L`` in ``lengths``: (k, length, C) int8 → (k, 4·C·len(lengths)) float64.

    The features of :func:`td_features` on the quantised window (in input steps, so integer-valued
    and exact on every architecture), with mean absolute value and waveform length as ``log1p``:
    EMG amplitude is roughly log-normal across contraction levels, and a linear classifier separates
    gestures far better in log amplitude (docs/design.md § 7).  ``threshold`` (input steps) rejects
    zero crossings and slope changes smaller than it.  A short ``L`` follows a new gesture sooner
    than the whole window (multi-resolution).
    """
    x = np.asarray(xq, np.float64) - float(zero_point)
    if x.ndim != 3:
        raise ValueError(f"int8 windows must have shape (k, length, C), got {x.shape}")
    c = x.shape[2]
    out = []
    for n in lengths:
        f = td_features(x[:, -int(n):], threshold).astype(np.float64)
        f[:, :2 * c] = np.log1p(f[:, :2 * c])
        out.append(f)
    return np.concatenate(out, axis=1)


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


def channel_scale_of(X: np.ndarray) -> list[float]:
    """Per-channel scale: the median absolute deviation of mean-removed windows, × 1.4826 (≈ σ).

    One channel at a time (issue 24): the whole-array expression held five copies of the windows
    at once (the peak of on-device calibration).  The values are the same: the means are the same
    reduction over the same array, the deviations the same elementwise operations, and a median is
    an order statistic of the same values.
    """
    X = np.asarray(X)
    mean = X.mean(axis=1, keepdims=True)
    col = np.empty(X.shape[:2], (X[:0] - mean[:0]).dtype)
    mad = np.empty(X.shape[2], col.dtype)
    for c in range(X.shape[2]):
        np.subtract(X[:, :, c], mean[:, 0, c:c + 1], out=col)
        np.abs(col, out=col)
        mad[c] = np.median(col)
    mad = mad * 1.4826
    return [float(max(v, 1e-3)) for v in mad]


def window_spec(X_fit: np.ndarray, fs_out: float, clip: float | None, features: bool) -> dict:
    """The manifest's normalisation parameters, estimated on the fit windows only (training, and
    on-device calibration re-estimating them for one person)."""
    spec = {"channel_scale": channel_scale_of(X_fit), "clip": clip}
    if features:  # in batches of windows (each window's features are its own): not the FFT of all at once
        f = np.concatenate([window_features(normalise_windows(X_fit[a:a + 256], spec["channel_scale"], clip), fs_out)
                            for a in range(0, max(len(X_fit), 1), 256)])
        spec["features"] = {"kind": "bandpower", "fs": fs_out, "bands": [list(b) for b in DEFAULT_BANDS],
                            "center": [float(v) for v in f.mean(axis=0)],
                            "scale": [float(max(v, 1e-3)) for v in f.std(axis=0)], "clip": 8.0}
    return spec


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
        self._fast = (native.LIB is not None and not window_spec.get("features")
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
        self._args = native.WindowArgs(channel_scale=self._channel_scale.ctypes.data, mean=self._mean.ctypes.data,
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
        native.LIB.ng_windows_int8(self._args_ptr, k)
        return self._out[:k]
