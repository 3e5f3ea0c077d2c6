"""The time-domain expert of EMG calibration (docs/design.md § 7): log Hudgins features of the
int8 window, a Ledoit-Wolf shrinkage LDA in numpy, fused with the re-fitted layer into one softmax
layer that the runtime applies — deterministic, refitted on the whole session once judged, and
refused by the bundle checks when it does not fit the model."""

import json
from dataclasses import replace

import numpy as np
import pytest

from edge import config
from edge.bundle import load_bundle, write_bundle
from edge.calibration import calibrate
from edge.calibration.head import fit_lda, fuse, ledoit_wolf
from edge.calibration.session_files import read_session
from edge.calibration.windows import session_windows
from edge.errors import BundleError, CalibrationError
from edge.evaluation.replay import replay_probs
from edge.model.head import Head
from edge.model.inputs import log_td_features, quantise, td_features
from edge.recordings.myo import as_continuous, read_myo_session
from tests.conftest import FIXTURE_BUNDLES

BASE = FIXTURE_BUNDLES / "gesture"


@pytest.fixture(scope="module")
def male3(shared_data):
    return shared_data / "myo_armband" / "EvaluationDataset" / "Male3"


@pytest.fixture(scope="module")
def calibrated(male3, tmp_path_factory):
    out = tmp_path_factory.mktemp("td") / "mine"
    return calibrate(BASE, male3 / "training0", out), out


def test_log_td_features_are_hudgins_features_of_the_int8_window_tail():
    rng = np.random.default_rng(0)
    xq = rng.integers(-128, 128, size=(5, 52, 8)).astype(np.int8)
    f = log_td_features(xq, 3, (52, 20), 1.0)
    assert f.shape == (5, 2 * 32) and f.dtype == np.float64
    whole = td_features(xq.astype(np.float32) - 3, 1.0).astype(np.float64)
    assert np.allclose(f[:, :16], np.log1p(whole[:, :16])) and np.array_equal(f[:, 16:32], whole[:, 16:])
    tail = td_features(xq[:, -20:].astype(np.float32) - 3, 1.0)
    assert np.allclose(f[:, 32:48], np.log1p(tail[:, :16]))
    # the tail's features never see the samples before it
    other = xq.copy()
    other[:, :32] = 0
    assert np.array_equal(log_td_features(other, 3, (20,), 1.0), f[:, 32:])
    with pytest.raises(ValueError):
        log_td_features(xq[0], 0, (52,), 1.0)


def test_ledoit_wolf_shrinks_more_when_samples_are_few():
    rng = np.random.default_rng(1)
    d = 20
    mix = rng.normal(size=(d, d))  # correlated features, far from the shrinkage target
    few, a_few = ledoit_wolf(rng.normal(size=(15, d)) @ mix)
    many, a_many = ledoit_wolf(rng.normal(size=(20000, d)) @ mix)
    assert 0 <= a_many < 0.01 < a_few <= 1
    assert np.allclose(many, mix.T @ mix, rtol=0.1, atol=0.5)  # enough data: the sample covariance
    assert np.linalg.eigvalsh(few).min() > 0  # fewer samples than features: still invertible


def test_fit_lda_classifies_and_never_chooses_an_absent_class():
    rng = np.random.default_rng(2)
    means = rng.normal(0, 3, size=(4, 6))
    y = np.repeat(np.arange(3), 200)  # class 3 absent from the session
    X = means[y] + rng.normal(size=(600, 6)) * np.array([1, 2, 0.5, 1, 3, 1])
    w, b = fit_lda(X, y, 4)
    z = X @ w + b
    assert np.mean(z.argmax(1) == y) > 0.95 and (z.argmax(1) != 3).all()
    w2, b2 = fit_lda(X, y, 4)
    assert np.array_equal(w, w2) and np.array_equal(b, b2)
    with pytest.raises(CalibrationError):
        fit_lda(X[:1], y[:1], 4)


def test_fuse_is_the_product_of_the_two_experts():
    rng = np.random.default_rng(3)
    head = Head(7, "feat", rng.normal(size=(5, 3)), rng.normal(size=3), "softmax")
    w, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    fused = fuse(head, w, b, (10,), 1.0)
    a, t = rng.normal(size=(9, 5)), rng.normal(size=(9, 4))
    assert np.allclose(fused.logits(np.hstack([a, t])), head.logits(a) + t @ w + b)
    back = Head.from_manifest(json.loads(json.dumps(fused.to_manifest())))
    assert back.td_lengths == (10,) and back.td_threshold == 1.0 and np.array_equal(back.weights, fused.weights)
    with pytest.raises(CalibrationError, match="softmax"):
        fuse(replace(head, activation="sigmoid"), w, b, (10,), 1.0)


def test_emg_calibration_writes_a_fused_head_the_runtime_applies(calibrated, male3):
    result, out = calibrated
    mine = load_bundle(out)
    assert mine.head.td_lengths == (mine.window["length"],) and result.choice["refit"] == "all windows"
    assert result.choice["time_domain"]["classifier"] == "shrinkage LDA"
    # its own stride and decision parameters (chosen on the development participants)
    assert mine.window["stride_ms"] == config.CALIBRATION_EMG_STRIDE_MS
    assert {k: mine.manifest["decision"][k] for k in config.CALIBRATION_EMG_DECISION} == config.CALIBRATION_EMG_DECISION
    assert mine.decision_policy().vote == config.CALIBRATION_EMG_DECISION["vote"]
    # the runtime's (Pipeline) outputs are the fused head's on the same int8 windows
    test = read_myo_session(male3 / "Test0")
    probs, _ = replay_probs(mine, as_continuous(test))
    rec = read_session(male3 / "Test0", mine)[0]
    rec = as_continuous(rec)
    sw = session_windows(mine, rec)
    want = mine.model().predict(mine.model_input(sw.windows))
    assert probs.shape == want.shape and np.abs(probs - want).max() < 1e-6


def test_calibration_is_deterministic(male3, calibrated, tmp_path):
    _, out = calibrated
    calibrate(BASE, male3 / "training0", tmp_path / "again")
    a, b = load_bundle(out).manifest, load_bundle(tmp_path / "again").manifest
    assert a["head"] == b["head"] and a["window"] == b["window"] and a["decision"] == b["decision"]


def test_refit_uses_the_held_out_block_only_after_judging(male3, tmp_path, monkeypatch):
    judged = calibrate(BASE, male3 / "training0", tmp_path / "refit")
    monkeypatch.setattr(config, "CALIBRATION_REFIT_ALL", False)
    kept = calibrate(BASE, male3 / "training0", tmp_path / "kept")
    # the same judgement (the model fitted without the held-out block), a different written head
    assert (judged.base, judged.calibrated) == (kept.base, kept.calibrated)
    assert load_bundle(tmp_path / "refit").manifest["head"] != load_bundle(tmp_path / "kept").manifest["head"]


def test_without_the_expert_calibration_is_the_layer_alone(male3, tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CALIBRATION_TD_TAILS_MS", ())
    calibrate(BASE, male3 / "training0", tmp_path / "layer", force=True)
    mine = load_bundle(tmp_path / "layer")
    assert mine.head.td_lengths == () and len(mine.head.weights) == len(mine.model().base_head.weights)


def test_a_fused_head_that_does_not_fit_is_refused(calibrated, tmp_path):
    _, out = calibrated
    mine = load_bundle(out)
    m = json.loads(json.dumps(mine.manifest))
    m["head"]["td"]["lengths"] = [mine.window["length"] + 1]  # longer than the window
    with pytest.raises(BundleError, match="calibrate again"):
        load_bundle(write_bundle(tmp_path / "long", m, mine.model_bytes))
    m = json.loads(json.dumps(mine.manifest))
    m["head"]["td"]["lengths"] = [mine.window["length"], 20]  # weights for one tail, two declared
    with pytest.raises(BundleError, match="calibrate again"):
        load_bundle(write_bundle(tmp_path / "two", m, mine.model_bytes))
    m = json.loads(json.dumps(mine.manifest))
    m["head"]["td"]["threshold"] = -1
    with pytest.raises(BundleError, match="threshold"):
        write_bundle(tmp_path / "neg", m, mine.model_bytes)
    m = json.loads(json.dumps(mine.manifest))
    del m["head"]["td"]  # the TD rows without their declaration
    with pytest.raises(BundleError, match="calibrate again"):
        load_bundle(write_bundle(tmp_path / "none", m, mine.model_bytes))


def test_the_int8_inputs_of_the_expert_are_the_runtimes(calibrated, male3):
    """The TD features are computed from the very int8 input the model gets (the C kernel's), so the
    Pi and the workstation evaluation feed the head the same numbers."""
    _, out = calibrated
    mine = load_bundle(out)
    rec = read_session(male3 / "Test0", mine)[0]
    sw = session_windows(mine, rec)
    w = sw.windows[:200]
    assert np.array_equal(mine.model_input_stage().process(w), quantise(mine.model_input(w), *mine.input_quant))
    model = mine.model()
    xq = quantise(mine.model_input(w), *mine.input_quant)
    one = np.stack([model.run_int8(x) for x in xq])  # the runtime's per-window call
    assert np.array_equal(one, model.run_batch_int8(xq))


def test_calibrating_a_fused_bundle_again_is_judged_against_it(calibrated, male3, tmp_path):
    """The reference of the held-out check is the bundle the person runs (its fused head), not the
    graph's own layer the new fit starts from."""
    _, out = calibrated
    mine = load_bundle(out)
    again = calibrate(out, male3 / "training0", tmp_path / "again", force=True)
    rec = read_session(male3 / "training0", mine)[0]
    from edge.calibration.windows import held_out_rows

    sw = session_windows(mine, rec)
    _, _, parts = read_session(male3 / "training0", mine)
    # the fused bundle's own accuracy on the held-out block is what "base" reports
    held = held_out_rows(parts, rec.n_samples, config.CALIBRATION_HOLDOUT)
    inside = sw.inside(held) & (sw.y.sum(axis=1) == 1)
    from edge.calibration.windows import calibration_stride

    assert calibration_stride(mine) == 2 * mine.window["stride"]  # calibration cuts at the training stride
    probs = mine.model().predict(mine.model_input(sw.windows[inside]))
    fused = float(np.mean(probs.argmax(1) == sw.y[inside].argmax(1)))
    assert again.base > 0.9 and abs(again.base - fused) < 0.02


def test_a_flat_session_is_refused_in_one_line(male3, tmp_path):
    rec = read_session(male3 / "training0", load_bundle(BASE))[0]
    flat = replace(rec, samples=np.zeros_like(rec.samples))
    with pytest.raises(CalibrationError, match="do not vary"):
        calibrate(BASE, [flat], tmp_path / "flat", force=True)
    assert not (tmp_path / "flat").exists()
