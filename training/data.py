"""Training data: recordings → the edge's own signal chain → windows and labels.

No second preprocessing path exists: every window is computed by :class:`edge.chain.signal_chain.SignalChain`
(the bit-exact fixed-point cascade the Pi runs) over one contiguous segment at a time, with the
chain reset at each segment start exactly as the runtime resets it after a gap, and windows are
placed by :func:`edge.chain.signal_chain.window_ends`, as :class:`edge.chain.signal_chain.WindowBuffer` places them live.

Labelling is causal: a window is labelled by its **last** sample and holds only samples up to it.
"""

from __future__ import annotations

import functools
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.chain.signal_chain import SignalChain, segment_windows
from edge.errors import RecordingError
from edge.recordings import (
    GRASP_LIFT_EVENTS,
    MUSE_EEG_CHANNELS,
    MUSE_STATES,
    Recording,
    find_grasp_lift_series,
    read_gameemo,
    read_grasp_lift,
    read_muse,
)
from edge.tasks import Task, get_task
from training.filter_design import FilterSpec, design_signal_chain


@dataclass(frozen=True)
class TaskConfig:
    """What defines a task's inputs; stored in the bundle through the chain and window sections.

    ``window_ms`` and ``stride_ms`` are converted to output-rate samples.  ``eval_stride_ms`` is
    the decision cadence the runtime uses (≤ 50 ms, docs/design.md §3); training may subsample
    windows more sparsely (``train_stride_ms``) since neighbours are near duplicates.
    """

    task: str
    filters: tuple[FilterSpec, ...]
    factor: int
    window_ms: float
    stride_ms: float
    train_stride_ms: float
    clip: float | None = 8.0  # normalised input bound (≈ 8 σ): see edge.model.inputs.normalise_windows
    features: bool = False    # model input = edge.model.inputs window features instead of raw windows

    @classmethod
    def of(cls, task: Task) -> TaskConfig:
        """The training configuration of a registered task (:mod:`edge.tasks`)."""
        return cls(task.name, tuple(FilterSpec(**dict(f)) for f in task.filters), task.factor, task.window_ms,
                   task.stride_ms, task.train_stride_ms, task.clip, task.features)

    def factor_for(self, fs: float) -> int:
        """The decimation factor for input rate ``fs``: at most ``factor``, and never so large that
        the chain's low-pass would alias (GAMEEMO's 128 Hz is not decimated; Muse's 256 Hz is)."""
        lows = [f.freqs[0] for f in self.filters if f.kind == "lowpass"]
        if not lows:
            return 1
        return max(1, min(self.factor, int(0.8 * fs / (2 * min(lows)))))

    def window_samples(self, fs: float) -> int:
        return round(self.window_ms * 1e-3 * fs / self.factor_for(fs))

    def stride_samples(self, fs: float, train: bool = False) -> int:
        ms = self.train_stride_ms if train else self.stride_ms
        return max(1, round(ms * 1e-3 * fs / self.factor_for(fs)))


# The tasks' chains and windows are data in the edge's task registry (edge/tasks.py, where the
# reasons for each number are); training designs the filters with scipy.
GRASP_LIFT = TaskConfig.of(get_task("grasp-lift"))
EMOTION = TaskConfig.of(get_task("emotion"))
TASKS = {cfg.task: cfg for cfg in (GRASP_LIFT, EMOTION)}


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


def build_windows(recordings, config: TaskConfig | None, label_names, *, train: bool = False,
                  chain: SignalChain | None = None, classes: bool = False,
                  geometry: tuple[int, int] | None = None) -> tuple[WindowSet, SignalChain]:
    """Windows for a list of recordings (all with the same channels and rate); ``classes``: see
    :func:`recording_windows`.  ``geometry`` = (length, stride) in output samples (a bundle's own,
    with its ``chain``) instead of ``config``'s."""
    recordings = list(recordings)
    if not recordings:
        raise ValueError("recordings: nothing to window")
    first = recordings[0]
    if chain is None:
        chain = design_signal_chain(config.filters, first.fs, len(first.channels), config.factor_for(first.fs))
    length, stride = geometry or (config.window_samples(first.fs), config.stride_samples(first.fs, train))
    sets, offset = [], 0
    for rec in recordings:
        if tuple(rec.channels) != tuple(first.channels):
            raise RecordingError(rec.source, 1, f"channels {rec.channels}", f"the same channels as {first.source}")
        ws = recording_windows(rec, chain, length, stride, tuple(label_names), offset, classes)
        offset += len(rec.segments)
        sets.append(ws)
    return WindowSet.concat(sets), chain


# --------------------------------------------------------------------------- data sources


_SUBJ = re.compile(r"subj(\d+)_series(\d+)")


def load_grasp_lift(data: str | Path, *, subjects=None, quick: bool = False, seed: int = 0) -> list[Recording]:
    """Grasp-lift recordings from a Kaggle-layout folder, or synthetic ones for ``data='synthetic'``."""
    if str(data) == "synthetic":
        from edge.recordings.synthetic import grasp_lift_series

        subjects = subjects or ((1, 2) if quick else (1, 2, 3))
        n_trials = 4 if quick else 12
        return [grasp_lift_series(s, m, seed=seed, n_trials=n_trials) for s in subjects for m in range(1, 9)]
    paths = find_grasp_lift_series(data)
    if not paths:
        raise RecordingError(data, None, "no subjN_seriesM_data.csv[.gz] files",
                             "a folder in the Kaggle Grasp-and-Lift layout (or 'synthetic')")
    recs = []
    for p in paths:
        m = _SUBJ.search(p.name)
        if subjects and int(m.group(1)) not in subjects:
            continue
        recs.append(read_grasp_lift(p))
    if quick:  # two subjects are enough to exercise every step
        keep = sorted({r.subject for r in recs})[:2]
        recs = [r for r in recs if r.subject in keep]
    return recs


def load_emotion(data: str | Path, *, quick: bool = False, seed: int = 0) -> tuple[list[Recording], tuple[str, ...]]:
    """Labelled-state recordings: a folder of Muse CSVs or GAMEEMO files, or ``'synthetic'`` (Muse)."""
    if str(data) == "synthetic":
        from edge.recordings.synthetic import muse_recording

        dur = 30.0 if quick else 60.0
        recs = [muse_recording(s, st, dur, seed=seed) for s in ("a", "b", "c", "d") for st in MUSE_STATES]
        return [_muse_eeg(r) for r in recs], MUSE_STATES
    data = Path(data)
    if not data.is_dir():
        raise RecordingError(data, None, "not a directory", "a folder of Muse or GAMEEMO recordings")
    muse = sorted(p for p in data.iterdir() if re.match(r"subject.+-.+-\d+\.csv(\.gz)?$", p.name))
    games = sorted(p for p in data.iterdir() if re.match(r"S\d+G[1-4]AllChannels\.csv(\.gz)?$", p.name))
    if muse:
        return [_muse_eeg(read_muse(p)) for p in muse], MUSE_STATES
    if games:
        from edge.recordings import GAMEEMO_GAMES

        if quick:
            games = games[:8]
        return [read_gameemo(p) for p in games], tuple(GAMEEMO_GAMES.values())
    raise RecordingError(data, None, "no Muse (subjectX-state-N.csv) or GAMEEMO (SxxGyAllChannels.csv) files",
                         "a folder of raw Muse or GAMEEMO recordings (or 'synthetic')")


def _muse_eeg(rec: Recording) -> Recording:
    """Drop the Muse's auxiliary channel: only the four EEG electrodes are modelled."""
    idx = [rec.channels.index(c) for c in MUSE_EEG_CHANNELS]
    rec.samples = np.ascontiguousarray(rec.samples[:, idx])
    rec.channels = tuple(MUSE_EEG_CHANNELS)
    return rec


GRASP_LIFT_LABELS = tuple(GRASP_LIFT_EVENTS)
