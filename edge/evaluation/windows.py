"""Windows of recordings through a signal chain, with their labels: what a model is fitted and scored on.

No second preprocessing path exists: every window is computed by :class:`edge.chain.signal_chain.SignalChain`
(the bit-exact fixed-point cascade the Pi runs) over one contiguous segment at a time, with the
chain reset at each segment start exactly as the runtime resets it after a gap, and windows are
placed by :func:`edge.chain.signal_chain.window_ends`, as :class:`edge.chain.signal_chain.WindowBuffer` places them live.
``neurogrip evaluate`` cuts them with a bundle's own chain and window geometry
(:mod:`edge.evaluation.evaluate`); training with a chain it designs (``training.data.build_windows``).

Labelling is causal: a window is labelled by its **last** sample and holds only samples up to it.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field

import numpy as np

from edge.chain.signal_chain import SignalChain, segment_windows
from edge.errors import RecordingError
from edge.recordings import Recording


@dataclass
class WindowSet:
    """Windows of the chain's output with their labels and grouping keys.

    Attributes
    ----------
    X : float32 (n, length, C) — the chain output in µV (not yet normalised)
    y : (n, k) uint8 multi-label targets, or (n,) int64 class indices
    subject, session : (n,) str arrays
    t_end : (n,) float — time of the window's last sample in seconds on the recording clock
    segment : (n,) int — running segment id (windows of one segment overlap each other)
    """

    X: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    session: np.ndarray
    t_end: np.ndarray
    segment: np.ndarray
    label_names: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    fs_out: float = 0.0
    saturations: int = 0
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def take(self, mask) -> WindowSet:
        idx = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask)
        return WindowSet(self.X[idx], self.y[idx], self.subject[idx], self.session[idx], self.t_end[idx],
                         self.segment[idx], self.label_names, self.channels, self.fs_out, self.saturations,
                         self.sources)

    @staticmethod
    def concat(sets) -> WindowSet:
        sets = [s for s in sets if len(s)]
        if not sets:
            raise ValueError("no windows: every recording was shorter than one window")
        first = sets[0]
        return WindowSet(np.concatenate([s.X for s in sets]), np.concatenate([s.y for s in sets]),
                         np.concatenate([s.subject for s in sets]), np.concatenate([s.session for s in sets]),
                         np.concatenate([s.t_end for s in sets]), np.concatenate([s.segment for s in sets]),
                         first.label_names, first.channels, first.fs_out, sum(s.saturations for s in sets),
                         functools.reduce(operator.iadd, (s.sources for s in sets), []))


def recording_windows(rec: Recording, chain: SignalChain, length: int, stride: int,
                      label_names: tuple[str, ...], segment_offset: int = 0, classes: bool = False) -> WindowSet:
    """Run ``chain`` over every contiguous segment of ``rec`` and cut causal windows.

    The chain is reset at each segment start (as the runtime does after a gap); no window
    crosses a gap.  Multi-label recordings (``rec.labels``) give (n, k) targets taken at each
    window's last input sample; whole-recording states give class indices into ``label_names``.
    With ``classes``, ``rec.labels`` are one-hot classes (cues of a recorded session): a window's
    target is the class index of its last sample, and windows whose last sample is unlabelled
    (before the first cue, a pause) are dropped.
    """
    if len(rec.channels) != chain.n_channels:
        raise ValueError(f"{rec.source}: {len(rec.channels)} channels, the chain filters {chain.n_channels}")
    if abs(rec.fs - chain.fs) > 1e-6:
        raise ValueError(f"{rec.source}: sampled at {rec.fs:g} Hz, the chain expects {chain.fs:g} Hz")
    if classes and rec.labels is None:
        raise ValueError(f"{rec.source}: classes=True needs per-sample one-hot labels")
    f = chain.factor
    xs, ys, ts, segs = [], [], [], []
    sat0 = chain.saturations
    for k, (start, stop) in enumerate(rec.segments):
        windows, ends = segment_windows(chain, rec.samples[start:stop], length, stride)
        if not len(ends):
            continue
        rows = start + ends * f + f - 1  # input row of each window's last sample
        if classes:
            keep = rec.labels[rows].any(axis=1)
            windows, ends, rows = windows[keep], ends[keep], rows[keep]
            if not len(ends):
                continue
            y = rec.labels[rows].argmax(axis=1).astype(np.int64)
        elif rec.labels is not None:
            y = rec.labels[rows].astype(np.uint8)
        else:
            if rec.state not in label_names:
                raise RecordingError(rec.source, None, f"state {rec.state!r} is not a known label",
                                     f"one of {label_names}")
            y = np.full(len(ends), label_names.index(rec.state), np.int64)
        xs.append(windows)
        ys.append(y)
        ts.append(rec.sample_index[rows] / rec.fs)
        segs.append(np.full(len(ends), segment_offset + k))
    n = sum(len(t) for t in ts)
    if n == 0:
        empty_y = (np.zeros((0, len(label_names)), np.uint8) if rec.labels is not None and not classes
                   else np.zeros(0, np.int64))
        return WindowSet(np.zeros((0, length, chain.n_channels), np.float32), empty_y, np.zeros(0, str),
                         np.zeros(0, str), np.zeros(0), np.zeros(0, int), label_names, tuple(rec.channels),
                         chain.fs_out, 0, [str(rec.source)])
    return WindowSet(np.concatenate(xs), np.concatenate(ys), np.full(n, rec.subject, dtype=object),
                     np.full(n, rec.session, dtype=object), np.concatenate(ts), np.concatenate(segs),
                     label_names, tuple(rec.channels), chain.fs_out, chain.saturations - sat0, [str(rec.source)])


def window_recordings(recordings, chain: SignalChain, length: int, stride: int, label_names, *,
                      classes: bool = False) -> WindowSet:
    """Windows of ``length`` output samples every ``stride`` for a list of recordings (all with the
    same channels and rate), each through ``chain``; ``classes``: see :func:`recording_windows`.
    A recording's segments are numbered on from the previous recording's."""
    recordings = list(recordings)
    if not recordings:
        raise ValueError("recordings: nothing to window")
    first = recordings[0]
    sets, offset = [], 0
    for rec in recordings:
        if tuple(rec.channels) != tuple(first.channels):
            raise RecordingError(rec.source, 1, f"channels {rec.channels}", f"the same channels as {first.source}")
        ws = recording_windows(rec, chain, length, stride, tuple(label_names), offset, classes)
        offset += len(rec.segments)
        sets.append(ws)
    return WindowSet.concat(sets)
