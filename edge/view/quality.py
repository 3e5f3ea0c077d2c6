"""Per-channel signal quality for the live view: one mark per channel, and the episodes counted.

The runtime already refuses what it must (edge/runtime/pipeline.py: NaN/inf and out-of-range samples
restart the chain, a window with a flat channel is never decided on; counted for the whole stream).
The view says *which channel*, from the last second of signal, with the runtime's own numbers:

* ``disconnected`` — non-finite samples (a lead off, a dropped packet: the sources deliver NaN);
* ``railed`` — samples at or beyond the chain's input limit (the amplifier saturated; the runtime
  drops them as ``saturated``);
* ``flat`` — the filtered signal spans at most :data:`edge.config.FLAT_PTP` (electrode off,
  amplifier railed at a constant: the runtime's ``flat`` rule);
* ``mains`` — most of the raw signal's power (:data:`edge.config.VIEW_MAINS_FRACTION`) within
  ±:data:`edge.config.VIEW_MAINS_BAND_HZ` of 50 or 60 Hz: a loose electrode picking up the wiring.
  Judged on a capture of :data:`edge.config.VIEW_MAINS_CAPTURE_S` (1 s: spectral lines 1 Hz apart) with
  a Hann window, whose main lobe (±2 lines) lies within the band: a mains line's power is counted
  whole (a ±1 Hz band on a 0.5 s capture counted two thirds of it); a capture too short for that is
  not judged for mains;
* ``ok`` — none of these.

Pure functions and one small counter: fed arrays, they return marks (no threads, no I/O).
"""

from __future__ import annotations

import numpy as np

from edge import config as C

MARKS = ("ok", "disconnected", "railed", "flat", "mains")
BAD = MARKS[1:]
MAINS_HZ = (50.0, 60.0)


def mains_fraction(raw: np.ndarray, fs: float, band_hz: float | None = None) -> np.ndarray:
    """Per channel, the fraction of the (demeaned, Hann-windowed) power within ``band_hz`` (default
    :data:`edge.config.VIEW_MAINS_BAND_HZ`) of 50 or 60 Hz.

    ``raw`` is (n, channels) and finite; 0 where the signal has no power, the rate cannot show mains, or
    the capture is too short for the window's main lobe (±2 fs/n) to lie within the band.
    """
    band = C.VIEW_MAINS_BAND_HZ if band_hz is None else band_hz
    n = raw.shape[0]
    lines = [hz for hz in MAINS_HZ if hz + band < fs / 2]  # those the rate can show
    if n < 8 or not lines or 2 * fs / n > band * (1 + 1e-9):
        return np.zeros(raw.shape[1])
    x = (raw - raw.mean(axis=0)) * np.hanning(n)[:, None]
    power = np.abs(np.fft.rfft(x, axis=0)) ** 2
    f = np.fft.rfftfreq(n, 1.0 / fs)
    near = np.zeros(f.shape, bool)
    for hz in lines:
        near |= np.abs(f - hz) <= band * (1 + 1e-9)
    near[0] = False
    total = power[1:].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(total > 0, power[near].sum(axis=0) / np.where(total > 0, total, 1.0), 0.0)
    return frac


def channel_marks(n_channels: int, *, raw: np.ndarray | None = None, fs: float = 0.0,
                  filtered: np.ndarray | None = None, rail: float | None = None) -> list[str]:
    """One mark of :data:`MARKS` per channel.

    Parameters
    ----------
    raw : (n, channels) array, optional
        The latest raw samples (the bundle's channel order): non-finite → ``disconnected``,
        ``|x| >= rail`` → ``railed``, mostly mains → ``mains``.
    filtered : (n, channels) array, optional
        The latest filtered samples: span ≤ ``FLAT_PTP`` → ``flat``.  Without it, ``raw`` is judged flat.
    rail : float, optional
        The input limit (the chain's; none in ``record``, which has no chain).
    """
    marks = ["ok"] * n_channels
    bad = np.zeros(n_channels, bool)
    if raw is not None and len(raw):
        finite = np.isfinite(raw)
        gone = ~finite.all(axis=0)
        clean = np.where(finite, raw, 0.0)
        railed = (np.abs(clean) >= rail).any(axis=0) if rail is not None else np.zeros(n_channels, bool)
        for i in np.flatnonzero(gone):
            marks[i] = "disconnected"
        for i in np.flatnonzero(railed & ~gone):
            marks[i] = "railed"
        bad = gone | railed
        if filtered is None:
            filtered = clean  # (a channel with non-finite samples is already marked)
    if filtered is not None and len(filtered) > 1:
        span = filtered.max(axis=0) - filtered.min(axis=0)
        for i in np.flatnonzero((span <= C.FLAT_PTP) & ~bad):
            marks[i] = "flat"
            bad[i] = True
    if raw is not None and len(raw) and not bad.all():
        ok = np.flatnonzero(~bad)
        frac = mains_fraction(raw[:, ok], fs)
        for i in ok[frac > C.VIEW_MAINS_FRACTION]:
            marks[i] = "mains"
    return marks


class QualityCounts:
    """Per channel, how many times each bad mark began (an episode: ok → flat → ok counts one flat)."""

    def __init__(self, n_channels: int):
        self.marks = ["ok"] * n_channels
        self.counts = [dict.fromkeys(BAD, 0) for _ in range(n_channels)]

    def update(self, marks: list[str]) -> None:
        for i, (was, now) in enumerate(zip(self.marks, marks)):
            if now != was and now != "ok":
                self.counts[i][now] += 1
        self.marks = list(marks)

    def to_json(self) -> list[dict]:
        return [{"mark": m, "counts": {k: v for k, v in c.items() if v}} for m, c in zip(self.marks, self.counts)]
