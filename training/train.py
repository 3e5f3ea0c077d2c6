"""``neurogrip train``: the task's protocol, one entry point.

Most tasks follow one protocol, "one split, one model" (:func:`training.pipeline.train`).  A task
whose protocol is its own (:attr:`training.protocols.TaskProtocol.own`: EMG gestures pre-train on
other people and calibrate per person, :mod:`training.gesture`) is handed to its module here, at
the top of the package, so the generic pipeline never imports a task's module (no import circle:
docs/architecture.md).  Recorded files (XDF, EDF, BDF) always take the generic protocol.
"""

from __future__ import annotations

from edge.recordings import recorded_files
from training import gesture, pipeline
from training.protocols import protocol_for

# Tasks whose protocol is their own: how they train.
OWN = {"gesture": gesture.train_gesture}


def train(task: str, data, out, *, model_kind: str | None = None, quick: bool = False, seed: int = 0,
          epochs: int | None = None, lso_folds: int | None = None, participants=None, progress=print):
    """Train ``task`` on ``data`` and export a bundle to ``out`` (see :func:`training.pipeline.train`
    for the parameters); returns what the protocol returns (a ``RunResult`` or the gesture report)."""
    if recorded_files(data) is None and protocol_for(task).own:
        return OWN[task](data, out, quick=quick, seed=seed, epochs=epochs, progress=progress,
                         participants=participants, lso_folds=lso_folds)
    return pipeline.train(task, data, out, model_kind=model_kind, quick=quick, seed=seed, epochs=epochs,
                          lso_folds=lso_folds, participants=participants, progress=progress)
