"""``neurogrip evaluate``: a bundle through the edge path on held-out data, and its metrics.

Evaluating needs no TensorFlow and no scikit-learn: it runs on the Pi.  The held-out recordings are
read by :mod:`edge.recordings` (:mod:`edge.evaluation.datasets`), run through the bundle's own
fixed-point chain (``bundle.signal_chain()``, rebuilt from the manifest's integers; nothing is designed
again), windowed by :mod:`edge.evaluation.windows` as in training, quantised and run by the int8
interpreter (``bundle.model()``), and scored by :mod:`edge.evaluation.metrics` (numpy).  What is held
out is the task's (:mod:`edge.evaluation.held_out`); a task that brings its own evaluation
(``gesture``) runs it.  ``tests/edge/test_cli.py`` checks that this path imports without TensorFlow
and scikit-learn.
"""

from __future__ import annotations

import time

import numpy as np

from edge.bundle import load_bundle
from edge.errors import EvaluationError
from edge.evaluation.datasets import load_recorded
from edge.evaluation.gesture import evaluate_gesture
from edge.evaluation.held_out import FILES, file_blocks, held_out_for
from edge.evaluation.metrics import task_metrics
from edge.evaluation.windows import window_recordings
from edge.progress import Progress
from edge.recordings import recorded_files
from edge.tasks import get_task

# Tasks whose evaluation is their own (:attr:`edge.evaluation.held_out.HeldOut.own`): their evaluation.
OWN = {"gesture": evaluate_gesture}


def _log(progress, msg: str) -> None:
    if progress:
        progress(msg)


def evaluate(bundle_path, data, *, quick: bool = False, progress=print) -> dict:
    """Run a bundle through the edge path (fixed-point chain → int8 interpreter) on held-out data.

    The held-out part is the task's (:mod:`edge.evaluation.held_out`): grasp-lift, series 7–8 of
    the recordings in ``data``; emotion, the last 20 % of each recording; gesture, the given Myo
    sessions (:func:`edge.evaluation.gesture.evaluate_gesture`).  Recorded files (XDF, EDF, BDF:
    ``data`` one such file or a folder of them) are read for any task: their cue markers give the
    labels and the last 20 % of each file is evaluated (:data:`edge.evaluation.held_out.FILES`, the
    block ``train`` tests on; calibration holds out the last quarter, so a calibrated bundle never
    saw it either).  Returns the metrics as a dict (``int8``:
    :func:`edge.evaluation.metrics.task_metrics`); data that do not fit the bundle raise
    :class:`edge.errors.EvaluationError` or :class:`edge.errors.RecordingError` naming what is wrong.
    """
    bundle = load_bundle(bundle_path)
    task = bundle.task
    held = held_out_for(task)
    files = recorded_files(data)
    if files is None and held.own:
        return OWN[task](bundle_path, data, quick=quick, progress=progress)
    with Progress(2, "evaluate", progress, leave=False) as bar:  # the long parts: reading, then the int8 model
        return _evaluate(bundle_path, bundle, data, files, held, quick, progress, bar)


def _evaluate(bundle_path, bundle, data, files, held, quick: bool, progress, bar: Progress) -> dict:
    task = bundle.task
    bar.start(f"[evaluate] reading the {task} recordings of {data}")
    t0 = time.monotonic()
    if files is not None:
        recs, _ = load_recorded(files, task, bundle.labels)
    else:
        recs = held.held_out(held.load(data, quick, 0)[0])
    bar.step(f"[evaluate] {len(recs)} held-out recording(s) read in {time.monotonic() - t0:.1f} s")
    if not recs:
        raise EvaluationError(f"{data}: no held-out recordings for a {task} bundle (for grasp-lift, series 7 "
                              "and 8 of each subject: subjN_series7_data.csv[.gz] ...)")
    chain = bundle.signal_chain()
    missing = [c for c in bundle.channels if c not in recs[0].channels]
    if missing:
        raise EvaluationError(f"{data}: the recordings lack the {task} bundle's channels {missing}; "
                              f"give --data recordings with the channels {list(bundle.channels)}")
    rates = sorted({r.fs for r in recs if abs(r.fs - chain.fs) > 1e-6})
    if rates:
        raise EvaluationError(f"{data}: recordings sampled at {', '.join(f'{f:g}' for f in rates)} Hz, the "
                              f"bundle's chain expects {chain.fs:g} Hz; give --data recordings at {chain.fs:g} Hz")
    idx = [list(recs[0].channels).index(c) for c in bundle.channels]
    for r in recs:
        r.samples = np.ascontiguousarray(r.samples[:, idx])
        r.channels = tuple(bundle.channels)
    length, stride = int(bundle.window["length"]), int(bundle.window["stride"])
    classes = files is not None and not bundle.task_spec.multilabel
    try:  # the bundle's own chain and window geometry, as the runtime cuts windows
        ws = window_recordings(recs, chain, length, stride, bundle.labels, classes=classes)
    except ValueError as exc:  # e.g. every recording shorter than one window
        raise EvaluationError(f"{data}: {exc}") from exc
    window_s = length / chain.fs_out
    if files is not None:
        ws, protocol = ws.take(file_blocks(ws, window_s, recs)[2]), FILES + ", test blocks"
    else:
        ws, protocol = held.held_out_windows(ws, window_s)
    if not len(ws):
        raise EvaluationError(f"{data}: no held-out windows to evaluate ({protocol})")
    model = bundle.model()
    bar.start(f"[evaluate] {len(ws)} windows through the bundle's int8 model")
    t0 = time.monotonic()
    scores = model.predict(bundle.model_input(ws.X))
    bar.step(f"[evaluate] int8 model on {len(ws)} windows: {time.monotonic() - t0:.1f} s")
    try:
        metrics = task_metrics(task, ws.y, scores, len(bundle.labels))
    except ValueError as exc:  # e.g. no event in the held-out part: the AUC is undefined
        raise EvaluationError(f"{data}: {exc}") from exc
    result = {"bundle": str(bundle_path), "content_hash": bundle.content_hash, "task": task,
              "protocol": protocol, "n_windows": len(ws), "interpreter": f"{model.backend} {model.backend_version}",
              "int8": metrics, "bundle_metrics": bundle.manifest.get("metrics")}
    _log(progress, f"[evaluate] {protocol}: {len(ws)} windows, {result['interpreter']}")
    key = get_task(task).metric
    _log(progress, f"[evaluate] int8 {key} {metrics[key]:.4f}")
    return result
