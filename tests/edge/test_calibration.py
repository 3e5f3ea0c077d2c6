"""On-device calibration (edge.calibration): the last layer read back from the int8 graph, the
penalised re-fit, the time-block split that keeps the held-out block out of the fit, the refusal
rule, and a calibrated bundle loading and running in the live pipeline — on a real Myo session."""

from dataclasses import replace

import numpy as np
import pytest

from edge import config
from edge.bundle import load_bundle
from edge.calibration import calibrate
from edge.calibration.head import fit_head
from edge.calibration.session_files import read_session
from edge.calibration.windows import held_out_rows, session_windows
from edge.errors import BundleError, CalibrationError
from edge.evaluation.replay import replay_probs
from edge.model.head import Head, activate
from edge.model.inference import Int8Model, dequantise
from edge.model.inputs import quantise
from edge.recordings.myo import read_myo_session
from tests.conftest import FIXTURE_BUNDLES

BASE = FIXTURE_BUNDLES / "gesture"


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(BASE)


@pytest.fixture(scope="module")
def training0(shared_data):
    return shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "training0"


@pytest.fixture(scope="module")
def calibrated(training0, tmp_path_factory):
    out = tmp_path_factory.mktemp("cal") / "mine"
    return calibrate(BASE, training0, out), out


def test_the_base_head_is_the_graphs_last_layer(bundle, training0):
    rec, _, _parts = read_session(training0, bundle)
    sw = session_windows(bundle, rec)
    model = Int8Model(bundle.model_bytes, keep_features=True)
    xq = quantise(bundle.model_input(sw.windows[::20]), *bundle.input_quant)
    feats, out = model.run_features(xq)
    graph = dequantise(out, *bundle.output_quant)
    # the float head on the int8 features vs the int8 FULLY_CONNECTED + SOFTMAX: a few output steps
    assert np.abs(model.base_head.apply(feats.astype(float)) - graph).max() < 0.05
    assert np.array_equal(out, Int8Model(bundle.model_bytes).run_batch_int8(xq))  # keep_features changes nothing


def test_fit_head_is_pulled_towards_the_prior_and_learns_with_a_weak_pull():
    rng = np.random.default_rng(0)
    d, k, n = 6, 3, 600
    prior = Head(0, "f", rng.normal(size=(d, k)), np.zeros(k), "softmax")
    X = rng.normal(size=(n, d))
    true_w = rng.normal(size=(d, k)) * 3
    y = (X @ true_w).argmax(axis=1)
    strong = fit_head(X, y, prior, 1e4)
    assert np.abs(strong.weights - prior.weights).max() < 0.01
    weak = fit_head(X, y, prior, 1e-4)
    assert np.mean(weak.apply(X).argmax(axis=1) == y) > 0.95 > np.mean(prior.apply(X).argmax(axis=1) == y)
    # sigmoid heads: each label its own problem
    Y = (X @ true_w > 0).astype(np.uint8)
    sig = fit_head(X, Y, replace(prior, activation="sigmoid"), 1e-3)
    assert np.mean((sig.apply(X) > 0.5) == Y) > 0.95
    with pytest.raises(CalibrationError):
        fit_head(X, y, prior, 0.0)


def test_activation_is_stable_for_huge_logits():
    z = np.array([[1e4, -1e4, 0.0]])
    assert np.allclose(activate(z, "softmax"), [[1, 0, 0]]) and np.isfinite(activate(z, "sigmoid")).all()


def test_the_held_out_block_is_the_last_part_of_each_class(bundle, training0):
    rec, _, parts = read_session(training0, bundle)
    held = held_out_rows(parts, rec.n_samples, 0.25)
    n = rec.n_samples
    assert np.flatnonzero(held).tolist() == list(range(n - int(np.ceil(0.25 * n)), n))  # one block, at the end
    # in training0 that is the fourth cycle: every gesture is in it
    assert rec.labels[held].sum(axis=0).min() > 0.2 * rec.labels.sum(axis=0).max()
    # several files: the end of each
    two = held_out_rows(np.array([[0, 100], [100, 140]]), 140, 0.25)
    assert np.flatnonzero(two).tolist() == list(range(75, 100)) + list(range(130, 140))


def test_calibration_windows_never_touch_the_held_out_block(bundle, training0):
    rec, _, parts = read_session(training0, bundle)
    sw = session_windows(bundle, rec)
    held = held_out_rows(parts, rec.n_samples, 0.25)
    guard = int(config.CALIBRATION_GUARD_S * rec.fs)
    cal, test = sw.outside(held, guard), sw.inside(held)
    for a, b in zip(sw.first[cal], sw.last[cal]):
        assert not held[max(a - guard, 0):b + 1].any()
    for a, b in zip(sw.first[test], sw.last[test]):
        assert held[a:b + 1].all()
    assert cal.sum() > 1000 and test.sum() > 400


def test_the_held_out_block_does_not_change_the_judged_bundle(bundle, training0, tmp_path, monkeypatch):
    """Replace everything in the held-out block by noise: the bundle that the held-out figures judge
    (normalisation and head) is the same, only the figures differ — no held-out sample reaches the
    fit that is judged.  (The written bundle is then refitted on every window: see below.)"""
    monkeypatch.setattr(config, "CALIBRATION_REFIT_ALL", False)
    rec, _, parts = read_session(training0, bundle)
    held = held_out_rows(parts, rec.n_samples, config.CALIBRATION_HOLDOUT)
    noisy = rec.samples.copy()
    noisy[held] = np.random.default_rng(1).normal(0, 30, size=(int(held.sum()), rec.samples.shape[1]))
    a = calibrate(BASE, [rec], tmp_path / "a", force=True)
    b = calibrate(BASE, [replace(rec, samples=noisy)], tmp_path / "b", force=True)
    ma, mb = load_bundle(tmp_path / "a").manifest, load_bundle(tmp_path / "b").manifest
    assert ma["head"] == mb["head"] and ma["window"] == mb["window"]
    assert a.calibrated != b.calibrated


def test_the_bundle_calibrate_writes_is_hashed_and_validated_once(training0, tmp_path, monkeypatch):
    """Written, signed and checked as the loader checks it, from the bytes built once (issue 26: it was
    validated and hashed three times, write → sign → load → load)."""
    import json

    from edge.bundle import files, loader, schema, signature

    hashed, validated = [], []
    real_hash, real_validate = files.content_hash, schema.validate

    def spy_hash(m, model):
        hashed.append(real_hash(m, model))
        return hashed[-1]

    def spy_validate(m, *a, **kw):
        validated.append(m.get("content_hash") if isinstance(m, dict) else None)
        return real_validate(m, *a, **kw)

    for module in (files, loader, signature):
        monkeypatch.setattr(module, "content_hash", spy_hash)
    for module in (schema, files, loader):
        monkeypatch.setattr(module, "validate", spy_validate)
    calibrate(BASE, training0, tmp_path / "mine")
    written = json.loads((tmp_path / "mine" / files.MANIFEST_FILE).read_text())["content_hash"]
    assert hashed.count(written) == 1 and validated.count(written) == 1, (written, hashed, validated)


def test_a_calibrated_bundle_records_its_parent_and_session_and_runs(calibrated, bundle, training0, shared_data):
    result, out = calibrated
    mine = load_bundle(out)
    cal = mine.manifest["provenance"]["calibration"]
    assert mine.manifest["provenance"]["parent"] == bundle.content_hash == cal["parent"]
    assert cal["session"] == result.session_hash and result.session_hash.startswith("sha256:")
    assert cal["held_out"]["calibrated"] >= cal["held_out"]["base"]
    assert result.calibrated >= result.base
    # the live pipeline applies the head: its outputs are the head's probabilities, quantised
    test = read_myo_session(shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "Test0")
    probs, _ = replay_probs(mine, test)
    rec, _, _parts = read_session(shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "Test0", mine)
    sw = session_windows(mine, rec)
    model = Int8Model(mine.model_bytes, keep_features=True)
    xq = quantise(mine.model_input(sw.windows), *mine.input_quant)
    feats, _ = model.run_features(xq)
    assert mine.head.td_lengths  # EMG: the layer fused with the time-domain LDA
    inputs = mine.head.inputs(feats.astype(float), xq, mine.input_quant[1])
    want = dequantise(quantise(mine.head.apply(inputs), *mine.output_quant), *mine.output_quant)
    assert probs.shape == want.shape and np.abs(probs - want).max() < 1e-6
    # and it is better than its base on that person's other session
    base_probs, base_idx = replay_probs(bundle, test)  # the base's own stride: its own windows
    truth = test.labels[sw.last].argmax(axis=1)
    assert np.mean(probs.argmax(1) == truth) > np.mean(base_probs.argmax(1) == test.labels[base_idx].argmax(axis=1))


def test_a_bundle_worse_than_its_base_is_refused_and_not_written(bundle, training0, tmp_path):
    """The calibration part labelled with the wrong classes (each cue one class further): the
    fit learns the wrong mapping, the held-out block (labelled right) shows it, nothing is written."""
    rec, _, parts = read_session(training0, bundle)
    held = held_out_rows(parts, rec.n_samples, config.CALIBRATION_HOLDOUT)
    wrong = rec.labels.copy()
    wrong[~held] = np.roll(rec.labels[~held], 1, axis=1)
    with pytest.raises(CalibrationError, match="worse than the base"):
        calibrate(BASE, [replace(rec, labels=wrong)], tmp_path / "mine")
    assert not (tmp_path / "mine").exists()


def test_unusable_sessions_are_refused_with_the_fix(bundle, training0, tmp_path):
    rec, _, _parts = read_session(training0, bundle)
    short = replace(rec, samples=rec.samples[:600], labels=rec.labels[:600], sample_index=rec.sample_index[:600],
                    segments=np.array([[0, 600]]))
    with pytest.raises(CalibrationError, match="record"):
        calibrate(BASE, [short], tmp_path / "x")
    unlabelled = replace(rec, labels=None, label_names=())
    with pytest.raises(CalibrationError, match="no labels"):
        calibrate(BASE, [unlabelled], tmp_path / "x")
    with pytest.raises(CalibrationError, match="channels"):
        calibrate(BASE, [replace(rec, channels=tuple(f"x{i}" for i in range(8)))], tmp_path / "x")


def test_a_head_that_does_not_fit_the_model_is_a_bundle_error(calibrated, tmp_path):
    import json

    from edge.bundle import write_bundle

    _, out = calibrated
    mine = load_bundle(out)
    m = json.loads(json.dumps(mine.manifest))
    m["head"]["weights"] = m["head"]["weights"][:-1]  # one feature short
    with pytest.raises(BundleError, match="calibrate again"):
        load_bundle(write_bundle(tmp_path / "bad", m, mine.model_bytes))
    m = json.loads(json.dumps(mine.manifest))
    m["head"]["activation"] = "sigmoid"
    with pytest.raises(BundleError, match="head.activation"):
        write_bundle(tmp_path / "bad2", m, mine.model_bytes)


def test_a_calibrated_bundle_can_be_signed_on_the_device(training0, tmp_path):
    from edge.bundle.keys import generate_keypair
    from edge.bundle.signing import verify

    private, _, kid = generate_keypair(tmp_path / "keys")
    calibrate(BASE, training0, tmp_path / "mine", sign_key=private)
    assert verify(tmp_path / "mine", tmp_path / "keys")[0] == kid
    with pytest.raises(CalibrationError, match="base bundle itself"):
        calibrate(BASE, training0, BASE)
    with pytest.raises(CalibrationError, match="holdout"):
        calibrate(BASE, training0, tmp_path / "x", holdout=0.0)


def test_nan_rows_are_left_out_and_a_session_mostly_of_them_is_refused(bundle, training0, tmp_path, caplog):
    """`record` stores what the stream sent, NaN included (a dropped packet, a lead off): calibration
    cuts the segments around those rows instead of fitting on NaN features, and refuses a session that
    is mostly invalid with a one-line reason."""
    rec, _, _parts = read_session(training0, bundle)
    x = rec.samples.copy()
    rng = np.random.default_rng(0)
    rows = rng.choice(len(x), 40, replace=False)
    x[rows, rng.integers(0, x.shape[1], 40)] = np.nan
    x[rows[:5], 0] = np.inf
    result = calibrate(BASE, [replace(rec, samples=x)], tmp_path / "nan")
    assert np.isfinite(result.calibrated) and result.calibrated >= result.base
    assert "40 row(s) with NaN or infinite values left out" in caplog.text
    sw = session_windows(bundle, read_session([replace(rec, samples=x)], bundle)[0])
    assert np.isfinite(sw.windows).all()  # no window was filtered through a NaN
    x[: len(x) // 5] = np.nan
    with pytest.raises(CalibrationError, match="NaN or infinite"):
        calibrate(BASE, [replace(rec, samples=x)], tmp_path / "mostly-nan")
    assert not (tmp_path / "mostly-nan").exists()
