"""The ``gesture`` task (surface EMG, Myo armband): pre-train on other people, calibrate to each
person, and measure continuous use — the protocols of Côté-Allard et al. (IEEE TNSRE 2019), whose
dataset this reads (``../shared/data/myo_armband``; cite it wherever these numbers appear).

Protocols (every figure in the report names one; int8 through the edge path, float and the LDA
baseline beside it):

1. **calibrated** — a causal CNN pre-trained on the PreTrainingDataset participants (cycles 0–2 fit,
   cycle 3 chooses the stopping epoch), then fine-tuned on one evaluation participant's
   ``training0``: cycles 0–2 fit while cycle 3 chooses the epoch count and the decision parameters,
   then the same epochs from the pre-trained model on all four cycles.  Tested on their ``Test0``
   + ``Test1``; mean window accuracy over participants.  Baseline: LDA on Hudgins'
   time-domain features fitted on the same participant's ``training0``.
2. **no calibration** — the pre-trained model alone on the same test sessions (baseline: an LDA
   fitted on the pre-training participants).
3. **continuous use** — each test session replayed as one continuous stream (files in recorded
   order) through the edge's own :class:`edge.runtime.Pipeline` and the participant's calibrated
   int8 bundle; commands scored by :mod:`edge.evaluation.scoring`.  The decision parameters (confidence
   rejection, vote, dwell, refractory) are chosen on the participant's ``training0`` cycle 3
   only, by :data:`OBJECTIVE` (:func:`objective_key`): among the policies with at most 0.5 false
   activations a minute of rest, at most 1 wrong command a minute and at least 97 % of gestures
   commanded, the shortest p50 delay from gesture start (Farrell & Weir 2007: the delay is what a
   user feels), then the most gestures commanded, then the fewest wrong commands.

Test sessions never choose anything: not the epoch, not a threshold, not the model.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.decision import DecisionPolicy
from edge.evaluation.replay import continuous_score, fired_commands, replay_probs
from edge.evaluation.scoring import brief, combine, score_continuous, score_line, segments_of
from edge.evaluation.windows import WindowSet, recording_windows
from edge.model.inputs import model_inputs, td_features, window_spec
from edge.progress import Progress
from edge.recordings import Recording
from edge.recordings.myo import as_continuous, find_myo_sessions, read_myo_session
from edge.tasks import get_task
from training.convert import seal_exported
from training.data import TaskConfig
from training.errors import TrainingError
from training.filter_design import FilterSpec, design_signal_chain
from training.pipeline import RunResult, configure_tf, make_manifest

TASK = "gesture"
CALIBRATED = "calibrated (pre-trained on PreTrainingDataset, fine-tuned on the participant's training0, " \
             "tested on Test0+Test1)"
NO_CALIBRATION = "no calibration (pre-trained model only, tested on Test0+Test1)"
CONTINUOUS = "continuous use (Test0 and Test1 each replayed as one stream through the edge runtime, " \
             "calibrated int8 bundle, decision parameters chosen on training0 cycle 3)"
CONTINUOUS_BASE = "continuous use, no calibration (pre-trained bundle, decision parameters chosen on the " \
                  "pre-training participants' cycle 3)"
TEST_SESSIONS = ("Test0", "Test1")
TUNE_CYCLE = 3
FILES_PER_CYCLE = 7
TD_THRESHOLD = 1.0  # Myo units: a zero crossing or slope change smaller than one ADC step is noise
MAX_FA_PER_MIN, MAX_WRONG_PER_MIN, MIN_COMMANDED = 0.5, 1.0, 0.97  # design § 3, EMG gestures
OBJECTIVE = {"minimise": "p50 delay from gesture start to its command",
             "subject_to": [f"<= {MAX_FA_PER_MIN} false activations/min of rest",
                            f"<= {MAX_WRONG_PER_MIN} wrong commands/min", f">= {MIN_COMMANDED:.0%} gestures commanded"],
             "then": ["most gestures commanded", "fewest wrong commands/min"],
             "otherwise": "least excess over the bounds, then most commanded, then shortest delay",
             "data": "calibration cycle 3 only"}
# The decision grid: confidence rejection, majority vote, dwell, per-action refractory time.
GRID = {"reject_below": (0.5, 0.6, 0.7, 0.8, 0.9), "vote": (1, 2, 3, 5), "min_dwell_ms": (0.0, 25.0, 50.0, 100.0, 200.0),
        "refractory_ms": (0.0, 500.0)}
# The accumulate filter's grid (edge/decision/evidence.py; tools/gesture-dev-cv --filters): threshold, floor, leak.
ACCUMULATE_GRID = {"filter": ("accumulate",), "vote": (1,), "min_dwell_ms": (0.0,), "commit_nats": (
    15.0, 17.5, 20.0, 22.5, 25.0, 27.5, 30.0, 35.0, 40.0), "evidence_floor": (0.01, 0.003, 0.001, 0.0001),
    "leak_ms": (0.0, 100.0, 200.0, 400.0), "reject_below": (0.5, 0.9), "refractory_ms": (0.0, 500.0)}


def _log(progress, msg: str) -> None:
    if progress:
        progress(msg)


# --------------------------------------------------------------------------- data


def _participant_sessions(root: Path, part: str) -> dict[str, dict[str, Path]]:
    folder = root / part
    if not folder.is_dir():
        raise TrainingError(f"{root}: no {part}/ folder; --data must be the Myo armband dataset's root "
                            "(PreTrainingDataset/ and EvaluationDataset/)")
    participants: dict[str, dict[str, Path]] = {}
    for s in find_myo_sessions(folder):
        participants.setdefault(s.parent.name, {})[s.name] = s
    return participants


def _file_hashes(session: Path) -> set[str]:
    return {hashlib.sha256(f.read_bytes()).hexdigest() for f in session.glob("classe_*.dat")}


def exclude_leaks(pre: dict[str, dict[str, Path]], ev: dict[str, dict[str, Path]], progress=None) -> dict:
    """Drop pre-training participants whose files are copies of evaluation sessions.

    The shared copy of the dataset holds such copies (``PreTrainingDataset/Female7..9`` are
    ``EvaluationDataset/Female0``'s training0, Test0 and Test1, byte for byte); pre-training on them
    would put test sessions into the model.  Found by content, not by name; returns what was dropped.
    """
    seen = {h: f"EvaluationDataset/{name}/{sess}" for name, sessions in ev.items()
            for sess, path in sessions.items() for h in _file_hashes(path)}
    dropped = {}
    for name in list(pre):
        copies = sorted({seen[h] for path in pre[name].values() for h in _file_hashes(path) if h in seen})
        if copies:
            dropped[name] = copies
            del pre[name]
            _log(progress, f"[train] PreTrainingDataset/{name} holds copies of {', '.join(copies)}: excluded from "
                           "pre-training (it would leak test data)")
    return dropped


def session_windows(rec: Recording, chain, cfg: TaskConfig, *, train: bool = False) -> WindowSet:
    """Windows of one session read per file (no window crosses two files); ``y`` the class index,
    ``segment`` the file number K (so ``segment // 7`` is the cycle)."""
    chain.reset()
    return recording_windows(rec, chain, cfg.window_samples(rec.fs), cfg.stride_samples(rec.fs, train),
                             rec.label_names, classes=True)  # every Myo row is labelled: none dropped


def _cycle(ws: WindowSet) -> np.ndarray:
    return ws.segment // FILES_PER_CYCLE


def continuous_cycle(rec: Recording, cycle: int) -> Recording:
    """The files of one cycle of a continuous session, as their own continuous recording."""
    segs = segments_of(rec.labels.argmax(axis=1))
    a, b = segs[cycle * FILES_PER_CYCLE].start, segs[(cycle + 1) * FILES_PER_CYCLE - 1].stop
    # one continuous stream: a single segment over the files, numbered from 0
    return replace(rec.rows(a, b), segments=np.array([[0, b - a]]), sample_index=np.arange(b - a, dtype=np.int64),
                   session=f"{rec.session} cycle {cycle}")


# --------------------------------------------------------------------------- models


def _keras(seed: int):

    return configure_tf(seed)[1]


def build_model(window: int, n_channels: int, n_classes: int):
    """A small causal CNN for EMG windows: 3 dilated blocks (receptive field 29 samples, 145 ms)."""
    from training.models import build_cnn

    return build_cnn(window, n_channels, n_classes, output="softmax", spatial_filters=16, filters=(32, 32, 48),
                     dilations=(1, 2, 4), kernel_size=5, pool_last=0, global_pool=True, dropout=0.2,
                     name="emg_cnn")


def fit(model, Xf, yf, Xt, yt, *, epochs: int, lr: float, patience: int | None, seed: int, progress=None,
        what=""):
    """Fit with early stopping on the tune part (restoring its best epoch); returns the history.

    ``patience=None``: exactly ``epochs`` epochs, no early stopping and no restoring (Keras restores
    the best weights at the end even when it never stopped early) — for the refit on all the
    calibration data, whose "tune part" is then training data and must not choose anything.
    """
    keras = _keras(seed)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    cb = [] if patience is None else [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]
    with Progress(epochs, f"{what}epochs", progress, leave=False) as bar:
        cb.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: bar.step(
            f"    {what}epoch {e + 1}/{epochs}: loss {logs['loss']:.4f}  val_loss {logs['val_loss']:.4f}  "
            f"val_acc {logs['val_accuracy']:.4f}")))
        hist = model.fit(Xf, yf, validation_data=(Xt, yt), epochs=epochs, batch_size=256, shuffle=True,
                         verbose=0, callbacks=cb)
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def _clone(model, seed: int):
    keras = _keras(seed)
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def _export(model, Xf, seed: int):
    from training.convert import to_int8_tflite

    rng = np.random.default_rng(seed)
    return to_int8_tflite(model, Xf[rng.permutation(len(Xf))[:500]])


def _accuracy(y, scores) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == y))


def lda_baseline(ws_fit: WindowSet, ws_test: WindowSet) -> float:
    """Accuracy of LDA on Hudgins' TD features (per channel), fitted on ``ws_fit``."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    lda.fit(td_features(ws_fit.X, TD_THRESHOLD), ws_fit.y)
    return float(np.mean(lda.predict(td_features(ws_test.X, TD_THRESHOLD)) == ws_test.y))


# --------------------------------------------------------------------------- decisions and replay


def score(policy: DecisionPolicy, replays, command_of: dict, grace_s: float) -> dict:
    """Pooled continuous-use score of a policy over replays [(truth, fs, probs, idx)]."""
    return combine([score_continuous(truth, fs, fired_commands(policy, probs, idx, fs), command_of, grace_s=grace_s)
                    for truth, fs, probs, idx in replays])


def objective_key(s: dict) -> tuple:
    """:data:`OBJECTIVE` as a sort key of a pooled continuous-use score (larger is better)."""
    fa, wrong = s["false_activations_per_min"] or 0.0, s["wrong_per_min"] or 0.0
    commanded = s["detected_fraction"] or 0.0
    delay = s.get("delay_ms", {}).get("p50") if s.get("delay_ms", {}).get("n") else None
    delay = 1e9 if delay is None else delay
    excess = max(fa - MAX_FA_PER_MIN, 0.0) + max(wrong - MAX_WRONG_PER_MIN, 0.0) + max(MIN_COMMANDED - commanded, 0.0)
    if excess == 0.0:
        return (1, -delay, commanded, -wrong)
    return (0, -excess, commanded, -delay)


def choose_policy(labels, replays, command_of: dict, grace_s: float, grid: dict | None = None):
    """The decision policy chosen on calibration replays by :data:`OBJECTIVE` over ``grid`` (default
    :data:`GRID`; :data:`ACCUMULATE_GRID` for the accumulate filter); returns (policy, its score)."""
    from edge.errors import DecisionError
    spec = get_task(TASK)
    commands = {lab: spec.commands.get(lab) for lab in labels}
    grid = GRID if grid is None else grid
    best = None
    for values in itertools.product(*grid.values()):
        try:
            pol = DecisionPolicy(labels=tuple(labels), mode="multiclass", moves_arm=True, commands=commands,
                                 **dict(zip(grid, values)), objective=OBJECTIVE, sequence=spec.sequence,
                                 refractory_scope="joint")
        except DecisionError:  # a combination the policy refuses (accumulate: one window could commit)
            continue
        s = score(pol, replays, command_of, grace_s)
        key = objective_key(s)
        if best is None or key > best[0]:
            best = (key, pol, s)
    return best[1], best[2]


# --------------------------------------------------------------------------- the command


def _bundle_for(out: Path, *, model, export, cfg, chain, spec, labels, policy, metrics, provenance):
    """The bundle of ``export`` written to ``out`` and loaded (validated and hashed once)."""

    manifest = make_manifest(TASK, architecture="emg_cnn", cfg=cfg, chain=chain, channels=chain_channels(chain),
                             window_length=cfg.window_samples(chain.fs), spec=spec, export=export, labels=labels,
                             decision=policy.to_manifest(), metrics=metrics, provenance=provenance)
    return seal_exported(out, manifest, export.tflite)


def chain_channels(chain) -> tuple[str, ...]:
    from edge.recordings.myo import MYO_CHANNELS

    if chain.n_channels != len(MYO_CHANNELS):
        raise TrainingError(f"the chain filters {chain.n_channels} channels, the Myo has {len(MYO_CHANNELS)}")
    return MYO_CHANNELS


def train_gesture(data, out, *, quick: bool = False, seed: int = 0, epochs: int | None = None, progress=print,
                  participants=None, lso_folds=None) -> dict:
    """Pre-train, calibrate per participant, evaluate the three protocols, export the base bundle.

    Returns a :class:`training.pipeline.RunResult`; the report is also written to
    ``<out>.report/report.json`` and the calibrated bundles of the evaluation participants
    (``participants``: a subset, default all) to ``<out>.report/calibrated/<participant>/``.
    """

    t_start = time.perf_counter()
    root = Path(str(data))
    if not root.is_dir():
        raise TrainingError(f"{root}: not a folder; --data must be the Myo armband dataset's root")
    task = get_task(TASK)
    cfg = TaskConfig.of(task)
    labels = task.labels
    command_of = {i: task.commands.get(lab) for i, lab in enumerate(labels)}
    grace_s = cfg.window_ms / 1000.0
    epochs = epochs or (2 if quick else 25)
    ft_epochs = 2 if quick else 30
    pre = _participant_sessions(root, "PreTrainingDataset")
    ev = _participant_sessions(root, "EvaluationDataset")
    leaks = exclude_leaks(pre, ev, progress)
    if participants:
        unknown = sorted(set(participants) - set(ev))
        if unknown:
            raise TrainingError(f"{root}/EvaluationDataset has no participant(s) {unknown}; it has {', '.join(ev)}")
        ev = {n: ev[n] for n in participants}
    if quick:  # a smoke run: enough participants to exercise every step
        pre = dict(list(pre.items())[:3])
        ev = dict(list(ev.items())[:2])
    if not pre or not ev:
        raise TrainingError(f"{root}: no pre-training or evaluation participants found")
    chain = design_signal_chain([FilterSpec(**dict(f)) for f in task.filters], 200.0, 8, cfg.factor)
    _log(progress, f"[train] gesture: {len(pre)} pre-training and {len(ev)} evaluation participants from {root}")

    # ---- pre-training windows (per file), cycle 3 of each participant tunes the epoch
    # Each person's EMG amplitude differs (skin, fat, armband fit): every participant is normalised by
    # their own channel scale, so the model learns shapes, not one person's gain; a calibration
    # re-estimates the scale of the new person.  The base bundle (no calibration) carries the
    # median scale of the pre-training participants.  (Chosen on pre-training participants held
    # out as a development set, never on the evaluation participants: docs/design.md § 2.)
    pre_recs = {name: read_myo_session(s["training0"], continuous=False) for name, s in pre.items()}
    sets = [session_windows(rec, chain, cfg, train=True) for rec in pre_recs.values()]
    specs = [window_spec(w.X[_cycle(w) < TUNE_CYCLE], chain.fs_out, cfg.clip, False) for w in sets]
    pre_ws = WindowSet.concat(sets)
    fit_m, tune_m = _cycle(pre_ws) < TUNE_CYCLE, _cycle(pre_ws) == TUNE_CYCLE
    Xf = np.concatenate([model_inputs(w.X[_cycle(w) < TUNE_CYCLE], sp) for w, sp in zip(sets, specs)])
    Xt = np.concatenate([model_inputs(w.X[_cycle(w) == TUNE_CYCLE], sp) for w, sp in zip(sets, specs)])
    spec = {"channel_scale": [float(v) for v in np.median([sp["channel_scale"] for sp in specs], axis=0)],
            "clip": cfg.clip}
    _log(progress, f"[train] pre-training: {fit_m.sum()} fit and {tune_m.sum()} tune windows of "
                   f"{pre_ws.X.shape[1]} x {pre_ws.X.shape[2]} at {chain.fs_out:g} Hz ({pre_ws.saturations} saturations)")
    _keras(seed)
    base = build_model(pre_ws.X.shape[1], pre_ws.X.shape[2], len(labels))
    history = fit(base, Xf, pre_ws.y[fit_m], Xt, pre_ws.y[tune_m], epochs=epochs, lr=1e-3, patience=3, seed=seed,
                  progress=progress, what="pre-train ")
    base_export = _export(base, Xf, seed)
    report_dir = Path(out).parent / (Path(out).name + ".report")
    (report_dir / "calibrated").mkdir(parents=True, exist_ok=True)
    provenance = {"data": str(root), "seed": seed, "pretraining_participants": list(pre),
                  "excluded_as_copies_of_test_data": leaks,
                  "dataset": "Côté-Allard et al., IEEE TNSRE 2019 (Myo armband)"}
    scratch = report_dir / "scratch"

    # ---- the base bundle's decision parameters: chosen on the pre-training participants' cycle 3
    base_policy = DecisionPolicy(labels=labels, mode="multiclass", moves_arm=True,
                                 commands=dict(task.commands), sequence=task.sequence, refractory_scope="joint")
    tmp = _bundle_for(scratch / "base", model=base, export=base_export, cfg=cfg, chain=chain,
                      spec=spec, labels=labels, policy=base_policy, metrics={}, provenance=provenance)
    pre_replays = []
    for rec in list(pre_recs.values())[: 2 if quick else 6]:
        rec = continuous_cycle(as_continuous(rec), TUNE_CYCLE)
        pre_replays.append((rec.labels.argmax(axis=1), rec.fs, *replay_probs(tmp, rec)))
    base_policy, base_tune = choose_policy(labels, pre_replays, command_of, grace_s)

    # ---- per evaluation participant: calibrate, test, replay
    runs = {}
    lda_pooled = None
    for name, sessions in ev.items():
        t0 = time.perf_counter()
        if "training0" not in sessions or not all(t in sessions for t in TEST_SESSIONS):
            raise TrainingError(f"{root}/EvaluationDataset/{name}: needs training0, Test0 and Test1")
        cal_rec = read_myo_session(sessions["training0"], continuous=False)
        test_recs = [read_myo_session(sessions[t], continuous=False) for t in TEST_SESSIONS]
        cal = session_windows(cal_rec, chain, cfg, train=True)
        test = WindowSet.concat([session_windows(r, chain, cfg) for r in test_recs])
        cf, ct = _cycle(cal) < TUNE_CYCLE, _cycle(cal) == TUNE_CYCLE
        own = window_spec(cal.X, chain.fs_out, cfg.clip, False)  # this person's scale, from calibration only
        Xcf, Xct, Xs = (model_inputs(w, own) for w in (cal.X[cf], cal.X[ct], test.X))
        Xs_base = model_inputs(test.X, spec)
        # Fine-tune on cycles 0-2 with cycle 3 choosing the epoch (and, below, the decision
        # parameters); then the same number of epochs from the base on all four cycles.
        draft_model = _clone(base, seed)
        ft_hist = fit(draft_model, Xcf, cal.y[cf], Xct, cal.y[ct], epochs=ft_epochs, lr=3e-4, patience=5, seed=seed)
        best_epochs = int(np.argmin(ft_hist["val_loss"])) + 1
        model = _clone(base, seed)
        Xcal = np.concatenate([Xcf, Xct])
        fit(model, Xcal, np.concatenate([cal.y[cf], cal.y[ct]]), Xct, cal.y[ct], epochs=best_epochs, lr=3e-4,
            patience=None, seed=seed)
        export = _export(model, Xcal, seed)
        draft_export = _export(draft_model, Xcf, seed)
        from edge.model.inference import Int8Model

        res = {"float": _accuracy(test.y, model.predict(Xs, batch_size=1024, verbose=0)),
               "int8": _accuracy(test.y, Int8Model(export.tflite).predict(Xs)),
               "base_float": _accuracy(test.y, base.predict(Xs_base, batch_size=1024, verbose=0)),
               "base_int8": _accuracy(test.y, Int8Model(base_export.tflite).predict(Xs_base)),
               "lda": lda_baseline(cal, test), "epochs": best_epochs,
               "n_windows": {"calibration": len(cal), "test": len(test)}}
        if lda_pooled is None:
            lda_pooled = _pooled_lda(pre_ws)
        res["lda_no_calibration"] = float(np.mean(lda_pooled.predict(td_features(test.X, TD_THRESHOLD)) == test.y))
        # decision parameters on training0 cycle 3, replayed continuously through this participant's bundle
        draft = _bundle_for(scratch / name, model=draft_model, export=draft_export, cfg=cfg, chain=chain,
                            spec=own, labels=labels, policy=base_policy, metrics={}, provenance=provenance)
        tune_rec = continuous_cycle(as_continuous(cal_rec), TUNE_CYCLE)
        policy, tune_score = choose_policy(labels, [(tune_rec.labels.argmax(axis=1), tune_rec.fs,
                                                      *replay_probs(draft, tune_rec))], command_of, grace_s)
        bundle = _bundle_for(report_dir / "calibrated" / name, model=model, export=export, cfg=cfg, chain=chain,
                             spec=own, labels=labels, policy=policy,
                             metrics={"calibration": {"tune_cycle": TUNE_CYCLE, "decision_tune": brief(tune_score)}},
                             provenance={**provenance, "participant": name, "parent": base_export_hash(base_export)})
        path = bundle.path
        # each test session replayed as one stream: the calibrated bundle, and the pre-trained one
        # (its scratch copy, with the base policy chosen above)
        streams = [as_continuous(r) for r in test_recs]
        cont = [continuous_score(bundle, rec) for rec in streams]
        cont_base = [continuous_score(tmp, rec, base_policy) for rec in streams]
        res["continuous"] = [brief(c) for c in cont]
        res["continuous_base"] = [brief(c) for c in cont_base]
        res["_scores"], res["_scores_base"] = cont, cont_base
        res["decision"] = {k: getattr(policy, k) for k in GRID}
        res["bundle"] = str(path)
        res["seconds"] = round(time.perf_counter() - t0, 1)
        runs[name] = res
        _log(progress, f"[train]   {name}: int8 {res['int8']:.4f} (float {res['float']:.4f}, LDA {res['lda']:.4f}; "
                       f"no calibration int8 {res['base_int8']:.4f}); continuous: "
                       f"{score_line(combine(cont))}")

    report = _report(runs, base_policy, base_tune, history, root, quick, seed, base_export, t_start)
    manifest_metrics = {k: {kk: vv for kk, vv in v.items() if kk != "per_participant"}
                        for k, v in report["protocols"].items()}
    exported = _bundle_for(Path(out), model=base, export=base_export, cfg=cfg, chain=chain, spec=spec,
                           labels=labels, policy=base_policy, metrics=manifest_metrics,
                           provenance={**provenance, "evaluation_participants": list(ev)})
    path = exported.path
    report["bundle"] = {"path": str(path), "content_hash": exported.content_hash,
                        "model_bytes": len(base_export.tflite)}
    report["train_seconds"] = round(time.perf_counter() - t_start, 1)
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    (report_dir / "report.json").write_text(json.dumps(report, indent=1))
    (report_dir / "report.md").write_text(report_markdown(report))
    _log(progress, f"[train] bundle {path} ({len(base_export.tflite)} bytes model); report {report_dir}; "
                   f"{report['train_seconds']} s")
    return RunResult(path, report, report_dir, history)


def base_export_hash(export) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(export.tflite).hexdigest()


def _pooled_lda(ws: WindowSet):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(td_features(ws.X, TD_THRESHOLD), ws.y)





def _report(runs, base_policy, base_tune, history, root, quick, seed, base_export, t_start) -> dict:
    def mean(key):
        return float(np.mean([r[key] for r in runs.values()]))

    cont = combine([c for r in runs.values() for c in r.pop("_scores")])
    cont_base = combine([c for r in runs.values() for c in r.pop("_scores_base")])
    return {
        "task": TASK, "model": "emg_cnn", "data": str(root), "quick": quick, "seed": seed,
        "dataset": "Côté-Allard et al., IEEE TNSRE 27(4) 2019, Myo armband dataset",
        "protocols": {
            CALIBRATED: {"float": {"accuracy": mean("float")}, "int8": {"accuracy": mean("int8")},
                         "baseline": {"accuracy": mean("lda"), "kind": "per-participant LDA on Hudgins TD features"},
                         "int8_minus_float": mean("int8") - mean("float"), "participants": len(runs),
                         "per_participant": {n: {k: r[k] for k in ("float", "int8", "lda")} for n, r in runs.items()}},
            NO_CALIBRATION: {"float": {"accuracy": mean("base_float")}, "int8": {"accuracy": mean("base_int8")},
                             "baseline": {"accuracy": mean("lda_no_calibration"),
                                          "kind": "LDA on Hudgins TD features fitted on the pre-training participants"},
                             "int8_minus_float": mean("base_int8") - mean("base_float"), "participants": len(runs),
                             "per_participant": {n: {"int8": r["base_int8"], "float": r["base_float"],
                                                     "lda": r["lda_no_calibration"]} for n, r in runs.items()}},
            CONTINUOUS: {**brief(cont), "objective": OBJECTIVE,
                         "per_participant": {n: r["continuous"] for n, r in runs.items()}},
            CONTINUOUS_BASE: {**brief(cont_base), "decision_tune": brief(base_tune)},
        },
        "runs": runs,
        "base_decision": {k: getattr(base_policy, k) for k in GRID},
        "history": history,
    }


def report_markdown(report: dict) -> str:
    p = report["protocols"]
    lines = [f"### gesture ({report['model']}, data: {report['data']}; {report['dataset']})", "",
             "| protocol | participants | float | int8 | baseline (LDA, TD features) | int8 − float |",
             "|---|---|---|---|---|---|"]
    for name in (CALIBRATED, NO_CALIBRATION):
        v = p[name]
        lines.append(f"| {name} | {v['participants']} | {v['float']['accuracy']:.4f} | {v['int8']['accuracy']:.4f} "
                     f"| {v['baseline']['accuracy']:.4f} | {v['int8_minus_float']:+.4f} |")
    lines += ["", ("| continuous use | replays | false activations / min of rest | gestures commanded | "
              "delay p50 / p90 (ms) | wrong commands / min |"), "|---|---|---|---|---|---|"]
    for name in (CONTINUOUS, CONTINUOUS_BASE):
        v = p[name]
        d = v.get("delay_ms", {})
        delay = f"{d['p50']:.0f} / {d['p90']:.0f}" if d.get("n") else "n/a"
        lines.append(f"| {name} | {v['replays']} | {v['false_activations_per_min']:.2f} | "
                     f"{v['detected']}/{v['gestures']} ({100 * (v['detected_fraction'] or 0):.1f} %) | {delay} | "
                     f"{v['wrong_per_min']:.2f} |")
    return "\n".join(lines) + "\n"


