"""neurogrip train / evaluate end to end on small synthetic data (the quick path)."""

import json

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.evaluation.evaluate import evaluate
from edge.evaluation.held_out import BLOCKS
from edge.recordings import EMOTION_LABELS
from tests.conftest import write_edf_plus
from training.pipeline import train_feature_table
from training.protocols import LSO, WITHIN
from training.train import train


@pytest.fixture(scope="module")
def gl_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gl") / "bundle"
    return train("grasp-lift", "synthetic", out, quick=True, seed=0, progress=None)


def test_quick_grasp_lift_bundle_is_valid_for_the_edge(gl_run):
    b = load_bundle(gl_run.bundle)  # the edge's loader, model tensors checked with the interpreter
    m = b.manifest
    assert m["task"] == "grasp-lift" and m["model"]["architecture"] == "cnn"
    assert all(not op.startswith("Flex") for op in m["model"]["ops"])
    assert m["signal"]["chain"]["filter"]["format"] == "ng-sos-df1-q30x64-fb"
    assert m["window"]["stride"] * 1000 / m["signal"]["chain"]["fs_out"] <= 50  # a decision every <= 50 ms
    assert len(m["decision"]["thresholds"]) == 6
    assert m["provenance"]["seed"] == 0 and m["provenance"]["tensorflow"]
    assert sum(p.stat().st_size for p in gl_run.bundle.iterdir()) <= 256 * 1024


def test_report_has_float_int8_and_baseline_with_protocol(gl_run):
    proto = gl_run.report["protocols"][WITHIN]
    # the synthetic labels are learnable (tests/training/test_synthetic_learnability.py): the
    # baseline, fitted in the same run, must see it
    assert proto["baseline"]["auc"] > 0.5
    # int8 through the edge path stays near the float model (the goal is 0.005 on real data;
    # a 2-epoch model on tiny synthetic data gets a looser bound)
    assert abs(proto["int8_minus_float"]) < 0.02
    files = {p.name for p in gl_run.report_dir.iterdir()}
    assert {"report.json", "report.md", "roc.png", "training_curves.png"} <= files
    assert WITHIN in (gl_run.report_dir / "report.md").read_text()
    assert json.loads((gl_run.report_dir / "report.json").read_text())["bundle"]["content_hash"]


def test_evaluate_reproduces_the_int8_metric_through_the_edge_path(gl_run, tmp_path):
    result = evaluate(gl_run.bundle, "synthetic", quick=True, progress=None)
    reported = gl_run.report["protocols"][WITHIN]["int8"]["auc"]
    # same windows, same fixed-point chain, same int8 interpreter → the same number
    assert result["int8"]["auc"] == pytest.approx(reported, abs=1e-12)
    assert result["interpreter"].split()[0] in ("ai_edge_litert", "tflite_runtime")


def test_quick_emotion_bundle_classifies_states(tmp_path):
    run = train("emotion", "synthetic", tmp_path / "emo", quick=True, seed=0, progress=None)
    b = load_bundle(run.bundle)
    assert b.task == "emotion" and b.manifest["model"]["activation"] == "softmax"
    assert b.manifest["decision"]["mode"] == "multiclass" and b.manifest["decision"]["commands"] == {}
    r = run.report["protocols"][BLOCKS]
    assert set(r) >= {"float", "int8", "baseline", "logreg_int8"}
    assert r["int8"]["accuracy"] > 1 / 3 and r["baseline"]["accuracy"] > 1 / 3  # better than chance
    # the bundle carries the GRU or the int8 logistic regression, whichever won the tune block
    run_main = run.report["runs"][0]
    winner = "logreg" if run_main["tune"]["logreg"] >= run_main["tune"]["gru"] else "gru"
    assert run.report["exported"] == winner == b.manifest["model"]["architecture"]
    assert (run.report_dir / "confusion.png").exists()


def _emotions_csv(path, n=420, n_feat=24, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    rng.shuffle(y)
    X = rng.normal(0, 1, (n, n_feat)) + y[:, None] * np.linspace(0.2, 1.0, n_feat)[None, :]
    names = [f"mean_{i}_a" for i in range(n_feat)]
    lines = [",".join(names + ["label"])]
    lines += [",".join(f"{v:.5f}" for v in row) + f",{EMOTION_LABELS[c]}" for row, c in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_emotions_csv_feature_table_path(tmp_path):
    csv = _emotions_csv(tmp_path / "emotions.csv")
    report = train_feature_table(csv, tmp_path / "feat", quick=False, epochs=15, progress=None)
    assert report["protocol"].startswith("emotions.csv contiguous row blocks")
    assert report["float"]["accuracy"] > 0.6 and report["baseline"]["accuracy"] > 0.6
    assert abs(report["int8"]["accuracy"] - report["float"]["accuracy"]) <= 0.03
    assert (tmp_path / "feat" / "model.tflite").stat().st_size > 0


@pytest.mark.slow
def test_leave_subjects_out_protocol_runs(tmp_path):
    run = train("grasp-lift", "synthetic", tmp_path / "lso", quick=False, epochs=2, lso_folds=3, progress=None)
    assert run.report["protocols"][LSO]["folds"] == 3


def test_gameemo_rate_is_not_decimated_into_aliasing(shared_data):
    from edge.evaluation.datasets import load_emotion
    from training.data import EMOTION, build_windows

    recs, labels = load_emotion(shared_data / "gameemo", quick=True)
    recs = recs[:2]
    for r in recs:  # a few seconds are enough to check the chain and windows
        r.samples, r.segments = r.samples[:128 * 10], np.array([[0, 128 * 10]])
        r.sample_index = r.sample_index[:128 * 10]
    ws, chain = build_windows(recs, EMOTION, labels)
    assert chain.fs == 128.0 and chain.factor == 1 and ws.X.shape[1:] == (256, 14)
    assert labels == ("boring", "calm", "horror", "funny")


# --------------------------------------------------------------------------- recorded files (XDF / EDF / BDF)


def _myo_session_as_edf(session, path):
    """One Myo session written by pyedflib (another library) as EDF+, a cue annotation at each gesture."""
    from edge.recordings import read_myo_session

    rec = read_myo_session(session)
    cls = rec.labels.argmax(1)
    cues = [(a / 200, rec.label_names[cls[a]]) for a in np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])]
    write_edf_plus(path, rec.samples, rec.channels, 200, cues, unit="myo", physical=(-128, 127), digital=(-128, 127))
    return rec


def test_train_and_evaluate_read_an_edf_written_by_pyedflib(shared_data, tmp_path):
    from edge.evaluation.held_out import FILES

    edf = tmp_path / "male3.edf"
    _myo_session_as_edf(shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "training0", edf)
    run = train("gesture", edf, tmp_path / "g", quick=True, seed=0, progress=None)
    bundle = load_bundle(run.bundle)
    assert bundle.task == "gesture" and bundle.fs == 200.0 and len(bundle.channels) == 8
    assert bundle.manifest["decision"]["moves_arm"] is True
    r = run.report["runs"][0]
    assert r["protocol"] == FILES and r["n_windows"]["test"] > 400
    assert r["baseline"]["accuracy"] > 0.8  # the cues fit the signal: a plain LDA-like baseline finds the gestures
    result = evaluate(run.bundle, edf, progress=None)
    assert result["protocol"] == FILES + ", test blocks" and result["n_windows"] == r["n_windows"]["test"]
    # the same test block, chain and int8 interpreter as training's report → the same number
    assert result["int8"]["accuracy"] == pytest.approx(r["int8"]["accuracy"], abs=1e-12)


def test_train_reads_a_recorded_xdf_of_a_multilabel_task(tmp_path):
    """``neurogrip record`` (synthetic grasp-lift source, a short paradigm) → XDF → ``train``: event
    labels ±150 ms around each cue, as the Kaggle files mark them."""
    from edge.evaluation.datasets import load_recorded
    from edge.evaluation.held_out import FILES
    from tests.conftest import record_synthetic_grasp_lift

    record_synthetic_grasp_lift(tmp_path / "gl.xdf", repeat=10)
    # the labels train reads: each cued event is 1 for ±150 ms around its cue, once per 8 s trial
    recs, labels = load_recorded([tmp_path / "gl.xdf"], "grasp-lift")
    assert labels == ("HandStart", "LiftOff", "Replace", "BothReleased")
    np.testing.assert_allclose(recs[0].labels.mean(axis=0), 0.3 / 8, atol=0.002)
    run = train("grasp-lift", tmp_path, tmp_path / "gl_bundle", quick=True, seed=0, progress=None)  # a folder of files
    r = run.report["runs"][0]
    assert r["protocol"] == FILES and r["n_windows"]["test"] >= 0.18 * sum(r["n_windows"].values())
    # the paradigm cues 4 of the 6 events: the bundle detects those, each still commanding its step
    bundle = load_bundle(run.bundle)
    assert bundle.labels == ["HandStart", "LiftOff", "Replace", "BothReleased"]
    assert bundle.manifest["decision"]["commands"]["LiftOff"] == "LIFT"


def test_train_refuses_a_recorded_file_without_the_tasks_cues(tmp_path):
    from edge.errors import RecordingError

    edf = tmp_path / "other.edf"
    write_edf_plus(edf, np.zeros((2000, 1)), ["emg1"], 200, [(1.0, "something else")], unit="myo",
                   physical=(-128, 127), digital=(-128, 127))
    with pytest.raises(RecordingError, match="no cue markers or annotations naming the gesture labels"):
        train("gesture", edf, tmp_path / "x", quick=True, progress=None)
