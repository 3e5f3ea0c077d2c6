"""What ``neurogrip evaluate`` holds out of each task's data: one :class:`HeldOut` per task.

* grasp-lift: series 7–8 of each subject of the given recordings (the Kaggle split);
* emotion: the test blocks of :data:`BLOCKS`, the last 20 % in time of each recording;
* gesture: its own evaluation on the given Myo sessions (:mod:`edge.evaluation.gesture`);
* recorded files (XDF, EDF, BDF), any task: the test blocks of :data:`FILES`, the last 20 % in time
  of each file (calibration holds out the last quarter, so a calibrated bundle never saw it either).

Training's honest splits are cut from the same blocks (``training.protocols``): the test block a
training report scores is the block ``evaluate`` scores.  Numpy and :mod:`edge.recordings` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge.evaluation.datasets import GRASP_LIFT_LABELS, load_emotion, load_grasp_lift
from edge.evaluation.windows import WindowSet
from edge.recordings import Recording, find_myo_sessions, read_myo_session, read_recording, recorded_files

BLOCKS = "time blocks 60/20/20 (per recording)"
FILES = "time blocks 60/20/20 (per recorded file; labels from its cue markers)"


def _time_blocks(ws: WindowSet, window_s: float, rec_ids: np.ndarray, spans=None) -> tuple[np.ndarray, ...]:
    """Fit (first 60 %), tune (next 20 %) and test (last 20 %) blocks in time of each group of
    ``rec_ids``; a window belongs to a block only if it lies inside it.  The blocks divide each
    group's ``spans[id]`` = (first, last) second when given, else the span of its windows."""
    fit = np.zeros(len(ws), bool)
    tune, test = fit.copy(), fit.copy()
    t_start = ws.t_end - window_s
    for rid in np.unique(rec_ids):
        m = rec_ids == rid
        lo, hi = spans[rid] if spans else (ws.t_end[m].min() - window_s, ws.t_end[m].max())
        b1, b2 = lo + 0.6 * (hi - lo), lo + 0.8 * (hi - lo)
        fit |= m & (ws.t_end <= b1)
        tune |= m & (t_start >= b1) & (ws.t_end <= b2)
        test |= m & (t_start >= b2)
    return fit, tune, test


def recording_blocks(ws: WindowSet, window_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:data:`BLOCKS`: the fit, tune and test masks of the time blocks 60/20/20 of each recording
    (one subject, session and state), over the span of its windows."""
    rec_ids = np.array([f"{s}|{p}|{y}" for s, p, y in zip(ws.subject, ws.session, ws.y)])
    return _time_blocks(ws, window_s, rec_ids)


def file_blocks(ws: WindowSet, window_s: float, recordings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:data:`FILES`: time blocks 60/20/20 of each recorded file's whole time span (its ``session``
    is the file), labelled or not — so the test block is the file's last 20 %, inside the last
    quarter calibration holds out, whatever lead-in or unlabelled tail the file has."""
    spans = {str(r.session): (r.sample_index[0] / r.fs, r.sample_index[-1] / r.fs) for r in recordings}
    return _time_blocks(ws, window_s, np.asarray(ws.session, dtype=str), spans)


@dataclass(frozen=True)
class HeldOut:
    """How ``evaluate`` reads one task's data and what of it is held out.

    Attributes
    ----------
    load : callable (data, quick, seed) -> (recordings, label names)
        Every recording of ``data`` (a dataset folder in its own layout, or ``'synthetic'``).
    held_out : callable (recordings) -> recordings
        What ``evaluate`` keeps of :attr:`load`'s recordings before :attr:`held_out_windows`
        (grasp-lift: series 7–8).
    held_out_windows : callable (windows, window seconds) -> (windows, protocol name)
    own : bool
        The task's evaluation is its own (EMG gestures: window accuracy and continuous use per Myo
        session, :mod:`edge.evaluation.gesture`), and so is its training; recorded files still take
        the generic path.
    recordings : callable (data) -> recordings, optional
        What ``evaluate`` reads of ``data``, as continuous recordings (for a timeline picture),
        when the task has no ``load``.
    """

    load: Callable[..., tuple[list[Recording], tuple[str, ...]]] | None = None
    held_out: Callable[[list[Recording]], list[Recording]] | None = None
    held_out_windows: Callable[[WindowSet, float], tuple[WindowSet, str]] | None = None
    own: bool = False
    recordings: Callable[..., list[Recording]] | None = None


def _test_blocks(ws: WindowSet, window_s: float) -> tuple[WindowSet, str]:
    return ws.take(recording_blocks(ws, window_s)[2]), BLOCKS + ", test blocks"


def _test_session(data):
    """The first evaluation test session under ``data`` (never a pre-training or calibration one),
    or the first session when ``data`` names one directly."""
    sessions = find_myo_sessions(data)
    tests = [s for s in sessions if s.name.startswith("Test") and s.parent.parent.name != "PreTrainingDataset"]
    return (tests or sessions)[0]


HELD_OUT: dict[str, HeldOut] = {
    "grasp-lift": HeldOut(
        load=lambda data, quick, seed: (load_grasp_lift(data, quick=quick, seed=seed), GRASP_LIFT_LABELS),
        held_out=lambda recs: [r for r in recs if int(r.session) >= 7],
        held_out_windows=lambda ws, window_s: (ws, "series 7-8 of the given recordings")),
    "emotion": HeldOut(
        load=lambda data, quick, seed: load_emotion(data, quick=quick, seed=seed),
        held_out=lambda recs: recs,
        held_out_windows=_test_blocks),
    "gesture": HeldOut(
        own=True,
        recordings=lambda data: [read_myo_session(_test_session(data))]),
}


def held_out_for(task: str) -> HeldOut:
    """The held-out part of a registered task (ValueError naming the tasks that have one)."""
    try:
        return HELD_OUT[task]
    except KeyError:
        raise ValueError(f"task must be one of {sorted(HELD_OUT)}, got {task!r}") from None


def first_held_out(task: str, data) -> Recording:
    """One held-out recording of ``data`` for a picture: the first the task's evaluation uses."""
    files = recorded_files(data)
    if files:  # the test block of the first file: its last 20 % in time (FILES)
        return _tail(read_recording(files[0]), 0.2)
    held = held_out_for(task)
    recs = held.recordings(data) if held.recordings else held.held_out(held.load(data, False, 0)[0])
    if not recs:
        raise ValueError(f"{data}: no held-out recording for {task}")
    return recs[0]


def _tail(rec: Recording, fraction: float) -> Recording:
    """The last ``fraction`` of a recording's time span, as a recording of its own."""
    t = rec.sample_index
    return rec.rows(int(np.searchsorted(t, t[0] + (1 - fraction) * (t[-1] - t[0]))), rec.n_samples)
