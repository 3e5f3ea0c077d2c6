"""Per task, how training splits its data honestly: the training side of the task registry
(:mod:`edge.tasks`), so ``training.pipeline`` has no per-task branches.  A new task adds one entry.

How a task's data are read and what ``evaluate`` holds out of them are the edge's
(:mod:`edge.evaluation.held_out`, :mod:`edge.evaluation.datasets`: evaluation runs on the Pi); a
:class:`TaskProtocol` is that part and the task's splits.  Every split keeps test data out of
fitting and out of every choice (model, threshold, epoch): the tune block chooses, the test block
only reports, and it is the block ``evaluate`` scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.evaluation.held_out import BLOCKS, FILES, HeldOut, file_blocks, held_out_for, recording_blocks
from edge.evaluation.windows import WindowSet

WITHIN = "series 1-6 -> 7-8 (within subject)"
LSO = "leave-subjects-out (series 7-8 of held-out subjects)"
LSO_EMO = "leave-subject-out (whole recordings of the held-out subject)"


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


def emotion_splits(ws: WindowSet, window_s: float, lso: bool) -> list[Split]:
    fit, tune, test = recording_blocks(ws, window_s)
    splits = [Split(fit, tune, test, BLOCKS)]
    if lso:
        for s in sorted(set(ws.subject)):
            held = ws.subject == s
            splits.append(Split((fit | test) & ~held, tune & ~held, held, LSO_EMO, str(s)))
    return splits


def file_splits(ws: WindowSet, window_s: float, recordings) -> list[Split]:
    """:data:`edge.evaluation.held_out.FILES`: the time blocks of each recorded file
    (:func:`edge.evaluation.held_out.file_blocks`) as one split."""
    return [Split(*file_blocks(ws, window_s, recordings), FILES)]


@dataclass(frozen=True)
class TaskProtocol(HeldOut):
    """How one task is trained and evaluated: how its data are read and what ``evaluate`` holds out
    (the edge's :class:`edge.evaluation.held_out.HeldOut`), and its splits.

    Attributes
    ----------
    splits : callable (windows, task config, quick, lso_folds) -> list of Split; the first is the
        main (exported) split.  None for a task whose protocol is its own (:attr:`own`: EMG
        gestures pre-train on other people and calibrate per person): :mod:`training.train` hands
        its data (when not recorded files) to its own module (:data:`training.train.OWN`).
    """

    splits: Callable[..., list[Split]] | None = None


# Each task's splits; the rest of its protocol is its held-out part (edge.evaluation.held_out.HELD_OUT).
SPLITS: dict[str, Callable[..., list[Split]]] = {
    "grasp-lift": lambda ws, cfg, quick, lso_folds: grasp_lift_splits(
        ws, 0 if quick else (3 if lso_folds is None else lso_folds)),
    "emotion": lambda ws, cfg, quick, lso_folds: emotion_splits(ws, cfg.window_ms / 1000, lso=not quick),
}


def protocol_for(task: str) -> TaskProtocol:
    """The training protocol of a registered task (ValueError naming the trainable ones)."""
    return TaskProtocol(**vars(held_out_for(task)), splits=SPLITS.get(task))


def is_table(data) -> bool:
    """A single file given as emotion data is the seed's ``emotions.csv`` feature table."""
    return Path(str(data)).is_file()


__all__ = [
    "LSO",
    "LSO_EMO",
    "SPLITS",
    "WITHIN",
    "Split",
    "TaskProtocol",
    "emotion_splits",
    "file_splits",
    "grasp_lift_splits",
    "is_table",
    "protocol_for",
]
