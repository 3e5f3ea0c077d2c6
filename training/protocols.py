"""Per task, how training gets its data and evaluates honestly: loaders, splits, held-out sets.

This is the training side of the task registry (:mod:`edge.tasks`): one :class:`TaskProtocol`
per task, so ``training.pipeline`` has no per-task branches.  A new task adds one entry.
Every split keeps test data out of fitting and out of every choice (model, threshold, epoch):
the tune block chooses, the test block only reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import RecordingError
from edge.recordings import Recording, read_recording, recorded_files, task_labels
from edge.tasks import get_task
from training.data import GRASP_LIFT_LABELS, TaskConfig, WindowSet, load_emotion, load_grasp_lift

WITHIN = "series 1-6 -> 7-8 (within subject)"
LSO = "leave-subjects-out (series 7-8 of held-out subjects)"
BLOCKS = "time blocks 60/20/20 (per recording)"
LSO_EMO = "leave-subject-out (whole recordings of the held-out subject)"
FILES = "time blocks 60/20/20 (per recorded file; labels from its cue markers)"


@dataclass
class Split:
    fit: np.ndarray
    tune: np.ndarray
    test: np.ndarray
    protocol: str
    fold: str = ""


def grasp_lift_splits(ws: WindowSet, lso_folds: int) -> list[Split]:
    series = np.array([int(s) for s in ws.session])
    fit, tune, test = series <= 5, series == 6, series >= 7
    splits = [Split(fit, tune, test, WITHIN)]
    subjects = sorted(set(ws.subject), key=lambda s: int(s) if str(s).isdigit() else s)
    if lso_folds and len(subjects) >= 2:
        groups = np.array_split(np.array(subjects, dtype=object), min(lso_folds, len(subjects)))
        for g in groups:
            held = np.isin(ws.subject, g)
            splits.append(Split(fit & ~held, tune & ~held, test & held, LSO, ",".join(map(str, g))))
    return splits


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


def emotion_splits(ws: WindowSet, window_s: float, lso: bool) -> list[Split]:
    rec_ids = np.array([f"{s}|{p}|{y}" for s, p, y in zip(ws.subject, ws.session, ws.y)])
    fit, tune, test = _time_blocks(ws, window_s, rec_ids)
    splits = [Split(fit, tune, test, BLOCKS)]
    if lso:
        for s in sorted(set(ws.subject)):
            held = ws.subject == s
            splits.append(Split((fit | test) & ~held, tune & ~held, held, LSO_EMO, str(s)))
    return splits


def file_splits(ws: WindowSet, window_s: float, recordings) -> list[Split]:
    """:data:`FILES`: time blocks 60/20/20 of each recorded file's whole time span (its ``session``
    is the file), labelled or not — so the test block is the file's last 20 %, inside the last
    quarter calibration holds out, whatever lead-in or unlabelled tail the file has."""
    spans = {str(r.session): (r.sample_index[0] / r.fs, r.sample_index[-1] / r.fs) for r in recordings}
    return [Split(*_time_blocks(ws, window_s, np.asarray(ws.session, dtype=str), spans), FILES)]


def load_recorded(files, task: str, labels=None) -> tuple[list[Recording], tuple[str, ...]]:
    """Recorded files (XDF/EDF/BDF: :func:`edge.recordings.recorded_files`) as labelled recordings.

    Labels come from each file's cue markers or annotations in ``labels``' order (default: the
    task's), as calibration reads them (:func:`edge.recordings.task_labels`); of a multi-label
    (event) task trained on the files (``labels`` not given) only the events some cue marks are kept.  Each file is its own ``session`` (its
    time blocks are its own).  A file with none of the labels, or with other
    channels or another rate than the first, raises :class:`edge.errors.RecordingError`.
    """
    spec = get_task(task)
    given = labels is not None  # a bundle's labels (evaluate): kept, cued or not
    labels = tuple(labels or spec.labels)
    recs = []
    for path in files:
        rec = read_recording(path)
        y = task_labels(rec, labels, spec.multilabel)
        if y is None:
            raise RecordingError(path, None, f"no cue markers or annotations naming the {task} labels "
                                             f"({', '.join(labels)}); it has {len(rec.markers)} markers",
                                 f"a session recorded with 'neurogrip record --paradigm {task}'")
        if recs and (tuple(rec.channels) != tuple(recs[0].channels) or abs(rec.fs - recs[0].fs) > 1e-6):
            raise RecordingError(path, None, f"{len(rec.channels)} channels at {rec.fs:g} Hz",
                                 f"the channels and rate of {recs[0].source} ({len(recs[0].channels)} at "
                                 f"{recs[0].fs:g} Hz): one montage per training run")
        rec.labels, rec.label_names, rec.state = y, labels, None
        rec.session = Path(path).name
        rec.subject = rec.subject or Path(path).stem
        recs.append(rec)
    if spec.multilabel and not given:
        # An event no cue marks (the grasp-lift paradigm cues 4 of the 6) has no positive window to
        # learn from: the bundle trained on these files detects the cued events only.
        cued = np.any([r.labels.any(axis=0) for r in recs], axis=0)
        keep = [k for k in range(len(labels)) if cued[k]]
        for r in recs:
            r.labels, r.label_names = np.ascontiguousarray(r.labels[:, keep]), tuple(labels[k] for k in keep)
        labels = tuple(labels[k] for k in keep)
    return recs, labels


@dataclass(frozen=True)
class TaskProtocol:
    """How one task is trained and evaluated.

    Attributes
    ----------
    load : callable (data, quick, seed) -> (recordings, label names)
    splits : callable (windows, task config, quick, lso_folds) -> list of Split; the first is the
        main (exported) split
    held_out : callable (recordings, quick) -> recordings; what ``evaluate`` reads of a folder
        before :attr:`held_out_windows` (grasp-lift: series 7–8)
    held_out_windows : callable (windows, window seconds) -> (windows, protocol name)
    own : bool
        The task's protocol is not "one split, one model" (EMG gestures: pre-train on other
        people, calibrate per person): :mod:`training.train` and :mod:`training.evaluate` hand
        its data (when not recorded files) to its own module (:data:`training.train.OWN`).
    recordings : callable (data) -> recordings, optional
        What ``evaluate`` reads of ``data``, as continuous recordings (for a timeline picture),
        when the task has no ``load``.
    """

    load: Callable[..., tuple[list[Recording], tuple[str, ...]]] | None = None
    splits: Callable[..., list[Split]] | None = None
    held_out: Callable[[list[Recording]], list[Recording]] | None = None
    held_out_windows: Callable[[WindowSet, float], tuple[WindowSet, str]] | None = None
    own: bool = False
    recordings: Callable[..., list[Recording]] | None = None


def _emotion_test_blocks(ws: WindowSet, window_s: float) -> tuple[WindowSet, str]:
    return ws.take(emotion_splits(ws, window_s, lso=False)[0].test), BLOCKS + ", test blocks"


PROTOCOLS: dict[str, TaskProtocol] = {
    "grasp-lift": TaskProtocol(
        load=lambda data, quick, seed: (load_grasp_lift(data, quick=quick, seed=seed), GRASP_LIFT_LABELS),
        splits=lambda ws, cfg, quick, lso_folds: grasp_lift_splits(
            ws, 0 if quick else (3 if lso_folds is None else lso_folds)),
        held_out=lambda recs: [r for r in recs if int(r.session) >= 7],
        held_out_windows=lambda ws, window_s: (ws, "series 7-8 of the given recordings")),
    "emotion": TaskProtocol(
        load=lambda data, quick, seed: load_emotion(data, quick=quick, seed=seed),
        splits=lambda ws, cfg, quick, lso_folds: emotion_splits(ws, cfg.window_ms / 1000, lso=not quick),
        held_out=lambda recs: recs,
        held_out_windows=_emotion_test_blocks),
    "gesture": TaskProtocol(
        own=True,
        recordings=lambda data: [_myo().read_myo_session(_test_session(data))]),
}


def _test_session(data):
    """The first evaluation test session under ``data`` (never a pre-training or calibration one),
    or the first session when ``data`` names one directly."""
    sessions = _myo().find_myo_sessions(data)
    tests = [s for s in sessions if s.name.startswith("Test") and s.parent.parent.name != "PreTrainingDataset"]
    return (tests or sessions)[0]


def _myo():
    from edge.recordings import myo

    return myo



def protocol_for(task: str) -> TaskProtocol:
    """The training protocol of a registered task (ValueError naming the trainable ones)."""
    try:
        return PROTOCOLS[task]
    except KeyError:
        raise ValueError(f"task must be one of {sorted(PROTOCOLS)}, got {task!r}") from None


def first_held_out(task: str, data) -> Recording:
    """One held-out recording of ``data`` for a picture: the first the task's evaluation uses."""
    files = recorded_files(data)
    if files:  # the test block of the first file: its last 20 % in time (FILES)
        return _tail(read_recording(files[0]), 0.2)
    proto = protocol_for(task)
    recs = proto.recordings(data) if proto.recordings else proto.held_out(proto.load(data, False, 0)[0])
    if not recs:
        raise ValueError(f"{data}: no held-out recording for {task}")
    return recs[0]


def _tail(rec: Recording, fraction: float) -> Recording:
    """The last ``fraction`` of a recording's time span, as a recording of its own."""
    t = rec.sample_index
    return rec.rows(int(np.searchsorted(t, t[0] + (1 - fraction) * (t[-1] - t[0]))), rec.n_samples)


def is_table(data) -> bool:
    """A single file given as emotion data is the seed's ``emotions.csv`` feature table."""
    return Path(str(data)).is_file()


__all__ = [
    "BLOCKS",
    "FILES",
    "LSO",
    "LSO_EMO",
    "PROTOCOLS",
    "WITHIN",
    "Split",
    "TaskConfig",
    "TaskProtocol",
    "emotion_splits",
    "file_splits",
    "first_held_out",
    "grasp_lift_splits",
    "is_table",
    "load_recorded",
    "protocol_for",
]
