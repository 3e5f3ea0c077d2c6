"""One split, one model: fit, evaluate honestly, quantise, export a bundle (``neurogrip train`` is
:func:`training.train.train`, which hands a task with its own protocol to its module).

Protocols (every number in a report names one)
----------------------------------------------
grasp-lift
    ``series 1-6 -> 7-8 (within subject)``: one model for all subjects, fitted on series 1–5,
    series 6 for early stopping and the decision thresholds, reported on series 7–8 of the same
    subjects (the Kaggle split).  ``leave-subjects-out``: k folds over subjects; each fold fits on
    the other subjects' series 1–5 (6 for early stopping) and reports on the held-out subjects'
    series 7–8.  Metric: mean column-wise ROC AUC over windows labelled by their last sample.
emotion
    ``time blocks 60/20/20``: each recording is cut in time into fit (first 60 %), tune (next
    20 %) and test (last 20 %) blocks; a window belongs to a block only if it lies inside it, so
    no two windows of different blocks overlap.  ``leave-subject-out``: one fold per subject.
    Metrics: accuracy, macro-F1, confusion matrix.

recorded files (any task)
    ``time blocks 60/20/20 (per recorded file)``: ``--data`` is an XDF, EDF or BDF file (e.g. one
    ``neurogrip record`` wrote) or a folder of them; labels come from the cue markers or
    annotations; each file is cut in time into fit, tune and test blocks as above.

Every protocol reports the float Keras model, the int8 model run through the edge path
(:class:`edge.chain.signal_chain.SignalChain` windows → :func:`edge.model.inputs.quantise` →
:class:`edge.model.inference.Int8Model`), and the filter-bank baseline fitted on the same split.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.chain.signal_chain import SignalChain
from edge.decision.policy import DecisionPolicy
from edge.evaluation.datasets import load_recorded
from edge.evaluation.windows import WindowSet
from edge.model.inference import Int8Model
from edge.model.inputs import channel_scale_of, model_inputs, normalise_windows, window_spec  # noqa: F401 (re-exported)
from edge.progress import Progress
from edge.recordings import recorded_files
from edge.tasks import get_task
from training.control import tune_multilabel
from training.convert import seal_exported
from training.data import TaskConfig, build_windows
from training.errors import TrainingError
from training.metrics import Baseline, logistic_regression, task_metrics
from training.protocols import Split, file_splits, is_table, protocol_for


@dataclass
class RunResult:
    bundle: Path
    report: dict
    report_dir: Path
    history: dict = field(default_factory=dict)


def _log(progress, msg: str) -> None:
    if progress:
        progress(msg)


# --------------------------------------------------------------------------- model fitting


def configure_tf(seed: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_inter_op_parallelism_threads(2)
        tf.config.threading.set_intra_op_parallelism_threads(2)
    except RuntimeError:
        pass  # already initialised in this process
    import keras

    keras.utils.set_random_seed(seed)
    return tf, keras


def _build(kind: str, task: str, input_shape: tuple, n_labels: int, n_channels: int):
    from training.models import build_cnn, build_feature_gru, build_gru

    out = get_task(task).activation
    if len(input_shape) == 1:  # window features: the seed's feature GRU, one step per band
        if kind != "gru":
            raise ValueError(f"a features bundle takes the feature GRU (--model gru), not {kind!r}")
        # Two steps of half the features each, wide and strongly regularised: on the 12 real Muse
        # recordings this matched the logistic-regression baseline where one step per band (6 × 4)
        # stayed 6 points below it.
        steps = 2 if input_shape[0] % 2 == 0 else 1
        return build_feature_gru(input_shape[0], n_labels, steps=steps, units=96, dropout=0.5, output=out)
    if kind == "cnn":
        return build_cnn(input_shape[0], input_shape[1], n_labels, output=out)
    if kind == "gru":
        return build_gru(input_shape[0], input_shape[1], n_labels, output=out)
    raise ValueError(f"model must be 'cnn' or 'gru', got {kind!r}")


def fit_model(kind, task, Xfit, yfit, Xtune, ytune, *, n_labels: int, n_channels: int, epochs: int, seed: int,
              progress=None):
    """Fit a Keras model with early stopping on the tune block; returns (model, history dict)."""
    _tf, keras = configure_tf(seed)
    model = _build(kind, task, Xfit.shape[1:], n_labels, n_channels)
    multilabel = get_task(task).multilabel
    loss = "binary_crossentropy" if multilabel else "sparse_categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    # Small feature models keep improving after a few flat epochs; window models on thousands of
    # windows do not need the patience.
    patience = 10 if Xfit.ndim == 2 else 3
    cb = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]
    with Progress(epochs, "epochs", progress, leave=False) as bar:
        cb.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: bar.step(
            f"    epoch {e + 1}/{epochs}: loss {logs['loss']:.4f}  val_loss {logs['val_loss']:.4f}")))
        hist = model.fit(Xfit, yfit.astype(np.float32) if multilabel else yfit,
                         validation_data=(Xtune, ytune.astype(np.float32) if multilabel else ytune),
                         epochs=epochs, batch_size=128, shuffle=True, verbose=0, callbacks=cb)
    return model, {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def _int8_scores(export, Xn: np.ndarray) -> np.ndarray:
    model = Int8Model(export.tflite)
    return model.predict(Xn)


def evaluate_split(task, kind, ws: WindowSet, split: Split, *, epochs, seed, fs_out, n_labels,
                   progress=None, keep_model=False, thin: int = 1, clip: float | None = None,
                   features: bool = False) -> dict:
    """Fit the model, the int8 export and the baseline on one split; metrics on its test part."""
    from training.convert import to_int8_tflite

    if not (split.fit.any() and split.tune.any() and split.test.any()):
        raise TrainingError(f"{split.protocol} {split.fold}: an empty fit/tune/test part "
                            f"({split.fit.sum()}/{split.tune.sum()}/{split.test.sum()} windows)")
    if thin > 1:  # neighbouring fit windows are near duplicates: fit on every thin-th one
        fit = np.zeros_like(split.fit)
        fit[np.flatnonzero(split.fit)[::thin]] = True
        split = Split(fit, split.tune, split.test, split.protocol, split.fold)
    spec = window_spec(ws.X[split.fit], fs_out, clip, features)
    Xf, Xt, Xs = (model_inputs(ws.X[m], spec) for m in (split.fit, split.tune, split.test))
    yf, yt, ys = ws.y[split.fit], ws.y[split.tune], ws.y[split.test]
    t0 = time.perf_counter()
    model, history = fit_model(kind, task, Xf, yf, Xt, yt, n_labels=n_labels, n_channels=ws.X.shape[2],
                               epochs=epochs, seed=seed, progress=progress)
    fit_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    export = to_int8_tflite(model, Xf[rng.permutation(len(Xf))[:500]])
    float_scores = model.predict(Xs, batch_size=512, verbose=0)
    int8_scores = _int8_scores(export, Xs)
    base = Baseline(task, fs_out, spec["channel_scale"]).fit(ws.X[split.fit], yf)
    base_scores = base.predict(ws.X[split.test])
    res = {"protocol": split.protocol, "fold": split.fold, "model": kind,
           "n_windows": {"fit": int(split.fit.sum()), "tune": int(split.tune.sum()), "test": int(split.test.sum())},
           "float": task_metrics(task, ys, float_scores, n_labels),
           "int8": task_metrics(task, ys, int8_scores, n_labels),
           "baseline": task_metrics(task, ys, base_scores, n_labels),
           "fit_seconds": round(fit_s, 1), "epochs_run": len(history.get("loss", []))}
    key = get_task(task).metric
    res["int8_minus_float"] = res["int8"][key] - res["float"][key]
    tune_scores = _int8_scores(export, Xt)
    if features:
        # The baseline's own kind of model on the bundle's features, as an int8 TFLite model, so
        # that it can be the exported default when the neural model does not beat it.  Which one
        # is exported is decided on the tune block, never on the test block.
        lr_model = logreg_model(Xf, yf)
        lr_export = to_int8_tflite(lr_model, Xf[rng.permutation(len(Xf))[:500]])
        lr_scores, lr_tune = _int8_scores(lr_export, Xs), _int8_scores(lr_export, Xt)
        res["logreg_int8"] = task_metrics(task, ys, lr_scores, n_labels)
        nn_tune = task_metrics(task, yt, tune_scores, n_labels)[key]
        lr_tune_metric = task_metrics(task, yt, lr_tune, n_labels)[key]
        res["tune"] = {kind: nn_tune, "logreg": lr_tune_metric}
        if lr_tune_metric >= nn_tune:
            res["exported"] = "logreg"
            model, export, int8_scores, tune_scores, float_scores = (
                lr_model, lr_export, lr_scores, lr_tune, lr_model.predict(Xs, verbose=0))
        else:
            res["exported"] = kind
    out = {"result": res}
    if keep_model:
        out.update(model=model, export=export, spec=spec, history=history,
                   tune_scores=tune_scores, tune_y=yt, test_scores=int8_scores, test_y=ys,
                   tune_t=ws.t_end[split.tune], tune_segment=ws.segment[split.tune],
                   tune_recording=np.array([f"{a}|{b}" for a, b in zip(ws.subject[split.tune], ws.session[split.tune])]),
                   float_test_scores=float_scores, baseline_test_scores=base_scores)
    return out


def logreg_model(X: np.ndarray, y: np.ndarray, C: float = 0.1):
    """Multinomial logistic regression (sklearn) on standardised features, as a Keras softmax layer."""
    import keras
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=C, max_iter=1000).fit(X, y)
    inp = keras.Input((X.shape[1],))
    dense = keras.layers.Dense(lr.coef_.shape[0], activation="softmax", name="logreg")
    model = keras.Model(inp, dense(inp), name="logreg")
    dense.set_weights([lr.coef_.T.astype(np.float32), lr.intercept_.astype(np.float32)])
    return model


# --------------------------------------------------------------------------- the command


def _code_version() -> str:
    try:
        here = Path(__file__).resolve().parents[1]
        rev = subprocess.run(["git", "-C", str(here), "describe", "--always", "--dirty"], capture_output=True, check=False,
                             text=True, timeout=5).stdout.strip()
        return rev or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _versions() -> dict:
    import keras
    import sklearn
    import tensorflow as tf

    return {"python": platform.python_version(), "numpy": np.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "scikit-learn": sklearn.__version__}


def _decision(task, labels, main, stride_ms: float) -> tuple[dict, dict | None]:
    """The bundle's decision section, chosen on the tune block (:mod:`training.control`): the task's
    label → command map and arm-state rules; for multi-label tasks the thresholds, dwell and vote
    by the control objective.  Returns ``(decision section, tuning report or None)``."""
    spec = get_task(task)
    commands = spec.commands_for(labels)
    if spec.multilabel:
        policy, chosen, curve = tune_multilabel(task, labels, main["tune_y"], main["tune_scores"], main["tune_t"],
                                                main["tune_segment"], main["tune_recording"], stride_ms)
        return policy.to_manifest(), {"objective": policy.objective, "tune_score": chosen, "curve": curve}
    return DecisionPolicy(labels=tuple(labels), mode=spec.mode, commands=commands, moves_arm=spec.moves_arm,
                          sequence=spec.sequence if spec.moves_arm else None).to_manifest(), None


def train(task: str, data, out, *, model_kind: str | None = None, quick: bool = False, seed: int = 0,
          epochs: int | None = None, lso_folds: int | None = None, participants=None, progress=print) -> RunResult:
    """Train, evaluate every protocol, export the within-split model as a bundle.

    Parameters
    ----------
    task : str
        A task of :mod:`edge.tasks` with a protocol in :mod:`training.protocols`.
    data : path or "synthetic"
    out : path of the bundle directory (or .zip) to write; the report and plots go to
        ``<out>.report/``.
    model_kind : {"cnn", "gru"}, default the task's ``default_model``.
    quick : bool
        Tiny data and few epochs: a smoke run (< 1 min) for tests and demos.
    participants : list of str, optional
        Tasks calibrated per person (gesture): the evaluation participants to calibrate.
    """
    proto = protocol_for(task)
    spec = get_task(task)
    files = recorded_files(data)
    if files is None and proto.own:
        raise TrainingError(f"{task} has its own protocol: train it with training.train.train")
    if participants:
        raise TrainingError(f"--participants picks Myo dataset participants to calibrate; {task} takes none"
                            + (" with recorded files (pass one file or a folder of one person's files)"
                               if files is not None else ""))
    if files is None and spec.features and is_table(data):
        return train_feature_table(data, out, quick=quick, seed=seed, epochs=epochs, progress=progress)
    cfg = TaskConfig.of(spec)
    kind = model_kind or spec.default_model
    epochs = epochs or (2 if quick else (80 if cfg.features else 25))
    t_start = time.perf_counter()
    _log(progress, f"[train] {task}: loading {data}")
    if files is not None:  # recorded sessions (XDF/EDF/BDF): labels from their cues, time blocks per file
        recs, labels = load_recorded(files, task)
        ws, chain = build_windows(recs, cfg, labels, classes=not spec.multilabel)
        splits = file_splits(ws, cfg.window_ms / 1000, recs)
    else:
        recs, labels = proto.load(data, quick, seed)
        ws, chain = build_windows(recs, cfg, labels)
        splits = proto.splits(ws, cfg, quick, lso_folds)
    _log(progress, f"[train] {len(recs)} recordings -> {len(ws)} windows of {ws.X.shape[1]} x {ws.X.shape[2]} "
                   f"at {chain.fs_out:g} Hz through the fixed-point chain ({ws.saturations} saturations)")
    results, main = [], None
    for i, split in enumerate(splits):
        _log(progress, f"[train] {split.protocol}{' fold ' + split.fold if split.fold else ''}: fitting {kind} "
                       f"on {split.fit.sum()} windows")
        r = evaluate_split(task, kind, ws, split, epochs=epochs, seed=seed, fs_out=chain.fs_out,
                           n_labels=len(labels), progress=progress, keep_model=(i == 0),
                           thin=max(1, round(cfg.train_stride_ms / cfg.stride_ms)), clip=cfg.clip,
                           features=cfg.features)
        if i == 0:
            main = r
        results.append(r["result"])
        _log(progress, "[train]   " + _summary_line(task, r["result"]))
    report = {"task": task, "model": kind, "exported": main["result"].get("exported", kind),
              "data": str(data), "quick": quick, "seed": seed,
              "protocols": _aggregate(task, results), "runs": results,
              "train_seconds": round(time.perf_counter() - t_start, 1)}
    manifest = _manifest(task, kind, cfg, chain, ws, labels, main, report, data, seed)
    out = Path(out)
    exported = seal_exported(out, manifest, main["export"].tflite)  # the edge's own checks, model tensors too
    path = exported.path
    report_dir = out.parent / (out.name + ".report")
    report_dir.mkdir(parents=True, exist_ok=True)
    report["bundle"] = {"path": str(path), "content_hash": exported.content_hash,
                        "model_bytes": len(main["export"].tflite)}
    # The float peers the benchmarks compare the int8 bundle with (workstation only; not in the bundle).
    from training.convert import to_float_tflite

    main["model"].save(report_dir / "model.keras")
    (report_dir / "model_float.tflite").write_bytes(to_float_tflite(main["model"]))
    (report_dir / "report.json").write_text(json.dumps(report, indent=1))
    (report_dir / "report.md").write_text(report_markdown(report))
    try:
        from training.plots import write_plots
        write_plots(report_dir, task, labels, main, ws)
    except ImportError as exc:  # matplotlib is part of the train extra; say so rather than fail the export
        _log(progress, f"[train] plots skipped: {exc}")
    _log(progress, f"[train] bundle {path} ({len(main['export'].tflite)} bytes model); report {report_dir}; "
                   f"{report['train_seconds']} s")
    return RunResult(path, report, report_dir, main["history"])


def make_manifest(task, *, architecture: str, cfg, chain: SignalChain, channels, window_length: int, spec: dict,
                  export, labels, decision: dict, metrics: dict, provenance: dict) -> dict:
    """A bundle manifest (docs/design.md §1.1) from what training produced; ``write_bundle`` seals it."""
    return {
        "task": task,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "signal": {"channels": list(channels), "fs": chain.fs, "units": get_task(task).unit,
                   "chain": chain.to_manifest()},
        "window": {"length": int(window_length), "stride": cfg.stride_samples(chain.fs),
                   **spec, "normalisation": "demean-scale-clip",
                   "length_ms": cfg.window_ms, "stride_ms": cfg.stride_ms},
        "model": {"architecture": architecture, "activation": get_task(task).activation,
                  "ops": export.ops,
                  "input": {"shape": list(export.input_shape), "dtype": "int8", "scale": export.input_scale,
                            "zero_point": export.input_zero_point},
                  "output": {"shape": list(export.output_shape), "dtype": "int8", "scale": export.output_scale,
                             "zero_point": export.output_zero_point}},
        "labels": list(labels),
        "decision": decision,
        "metrics": metrics,
        "provenance": {**provenance, "code_version": _code_version(), **_versions()},
    }


def _manifest(task, kind, cfg, chain: SignalChain, ws: WindowSet, labels, main, report, data, seed) -> dict:
    decision, tuning = _decision(task, labels, main, cfg.stride_ms)
    if tuning is not None:
        report["decision_tuning"] = tuning
    return make_manifest(task, architecture=report.get("exported", kind), cfg=cfg, chain=chain, channels=ws.channels,
                         window_length=ws.X.shape[1], spec=main["spec"], export=main["export"], labels=labels,
                         decision=decision,
                         metrics=report["protocols"],
                         provenance={"data": str(data), "n_recordings": len(ws.sources), "seed": seed})


def _summary_line(task, r) -> str:
    if get_task(task).metric == "auc":
        return (f"AUC float {r['float']['auc']:.4f}  int8 {r['int8']['auc']:.4f}  "
                f"baseline {r['baseline']['auc']:.4f}")
    line = (f"accuracy float {r['float']['accuracy']:.4f}  int8 {r['int8']['accuracy']:.4f}  "
            f"baseline {r['baseline']['accuracy']:.4f}  (macro-F1 int8 {r['int8']['macro_f1']:.4f})")
    if "logreg_int8" in r:
        line += (f"; logreg int8 {r['logreg_int8']['accuracy']:.4f}; exported {r['exported']} "
                 f"(better on the tune block)")
    return line


def _aggregate(task, results) -> dict:
    """Per protocol: the metric for float, int8 and baseline (mean over folds)."""
    keys = get_task(task).metrics
    out = {}
    for proto in dict.fromkeys(r["protocol"] for r in results):
        rs = [r for r in results if r["protocol"] == proto]
        out[proto] = {kind: {k: float(np.mean([r[kind][k] for r in rs])) for k in keys}
                      for kind in ("float", "int8", "baseline", "logreg_int8") if kind in rs[0]}
        out[proto]["folds"] = len(rs)
        out[proto]["int8_minus_float"] = float(np.mean([r["int8_minus_float"] for r in rs]))
    return out


def report_markdown(report) -> str:
    task = report["task"]
    keys = get_task(task).metrics
    kinds = [m for m in ("float", "int8", "baseline", "logreg_int8") if m in next(iter(report["protocols"].values()))]
    lines = [f"### {task} ({report['model']}, data: {report['data']}; exported: {report.get('exported', report['model'])})",
             "", "| protocol | folds | " + " | ".join(f"{m} {k}" for k in keys for m in kinds) + " | int8 − float |",
             "|---|---|" + "---|" * (len(kinds) * len(keys)) + "---|"]
    for proto, v in report["protocols"].items():
        cells = [f"{v[m][k]:.4f}" for k in keys for m in kinds]
        lines.append(f"| {proto} | {v['folds']} | " + " | ".join(cells) + f" | {v['int8_minus_float']:+.4f} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- emotions.csv (the seed's path)


def train_feature_table(path, out, *, quick: bool = False, seed: int = 0, epochs: int | None = None,
                        progress=print) -> dict:
    """The seed's exact path: an ``emotions.csv`` feature table → GRU → int8, with honest splits.

    The table's rows are precomputed features of overlapping windows with no subject or time
    column, so a random split would put near-copies of test rows in training.  The rows are
    split in file order into contiguous blocks (60 % fit, 20 % tune, 20 % test) instead.  The
    result is a model and a report, **not** an edge bundle: the edge computes no emotions.csv
    features (its emotion bundles classify raw streams, ``--data`` a folder of Muse files).
    """
    from edge.recordings import read_emotions_table
    from training.convert import to_int8_tflite
    from training.metrics import classification_metrics
    from training.models import build_feature_gru

    table = read_emotions_table(path)
    n = len(table.labels)
    if n < 30:
        raise TrainingError(f"{path}: {n} rows; at least 30 are needed for fit/tune/test blocks")
    a, b = int(0.6 * n), int(0.8 * n)
    X = table.features.astype(np.float32)
    mu, sd = X[:a].mean(0), X[:a].std(0) + 1e-6  # standardise with fit-block statistics only
    Xs = (X - mu) / sd
    y = table.labels
    k = len(table.label_names)
    _, keras = configure_tf(seed)
    # Four steps of a quarter of the features each (emotions.csv's 2548 = 4 x 637): with a single
    # step the GRU's recurrent weights would never be used.
    steps = 4 if X.shape[1] % 4 == 0 else 1
    model = build_feature_gru(X.shape[1], k, steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    hist = model.fit(Xs[:a], y[:a], validation_data=(Xs[a:b], y[a:b]), epochs=epochs or (3 if quick else 60),
                     batch_size=64, verbose=0,
                     callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=5,
                                                              restore_best_weights=True)])
    export = to_int8_tflite(model, Xs[:a])
    float_pred = model.predict(Xs[b:], verbose=0).argmax(1)
    int8_pred = Int8Model(export.tflite).predict(Xs[b:]).argmax(1)
    base_pred = logistic_regression().fit(Xs[:a], y[:a]).predict(Xs[b:])  # the features are the table's
    protocol = "emotions.csv contiguous row blocks 60/20/20 (file order)"
    report = {"task": "emotion-features", "data": str(path), "protocol": protocol, "rows": n,
              "float": classification_metrics(y[b:], float_pred, k),
              "int8": classification_metrics(y[b:], int8_pred, k),
              "baseline": classification_metrics(y[b:], base_pred, k),
              "labels": list(table.label_names), "model_bytes": export.size_bytes, "ops": export.ops,
              "epochs_run": len(hist.history["loss"])}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.tflite").write_bytes(export.tflite)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    _log(progress, f"[train] {protocol}: accuracy float {report['float']['accuracy']:.4f}  "
                   f"int8 {report['int8']['accuracy']:.4f}  baseline {report['baseline']['accuracy']:.4f}")
    _log(progress, f"[train] wrote {out}/model.tflite and report.json (a feature-table model, not an edge bundle)")
    return report
