"""The data a task is trained and evaluated on, as labelled recordings: the public datasets in their
own layouts (Grasp-and-Lift, Muse, GAMEEMO; ``'synthetic'`` for each) and recorded files (XDF, EDF,
BDF) labelled by their cues.  Numpy and :mod:`edge.recordings` only: ``neurogrip evaluate`` reads
them on the Pi, ``neurogrip train`` on the workstation.

Which part of them is held out is :mod:`edge.evaluation.held_out`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edge.errors import RecordingError
from edge.recordings import (
    GAMEEMO_GAMES,
    GRASP_LIFT_EVENTS,
    MUSE_EEG_CHANNELS,
    MUSE_STATES,
    Recording,
    find_grasp_lift_series,
    read_gameemo,
    read_grasp_lift,
    read_muse,
    read_recording,
    task_labels,
)
from edge.tasks import get_task

GRASP_LIFT_LABELS = tuple(GRASP_LIFT_EVENTS)

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
