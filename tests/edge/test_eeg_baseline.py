"""The grasp-lift FB+LR peer of the calibration bench (benchmarks/eeg_baseline.py): causal features
(nothing after a window's end is read; the filters run as a stream would), the logistic regression at
its optimum, determinism, the bench's own windows and labels, and a sanity AUC on a real subject.

Runs in the bench's environment (.venv-edge: scipy, no scikit-learn); the equality with scikit-learn's
LogisticRegression is checked in tests/training/test_eeg_baseline_vs_sklearn.py."""

import numpy as np
import pytest
from scipy import signal

from benchmarks import calibration
from benchmarks import eeg_baseline as eb
from benchmarks.common import Context
from edge.bundle import load_bundle
from edge.recordings import Recording, read_grasp_lift
from edge.tasks import get_task
from tests.conftest import FIXTURE_BUNDLES

FS = 500.0
SEGMENTS = np.array([[0, 700], [700, 760], [760, 1600]])
ENDS = np.array([99, 250, 480, 699, 759, 900, 1234, 1599])


def _signal(seed=0, n=1600, c=3):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    x = rng.normal(0, 5, (n, c)) + 20 * np.sin(2 * np.pi * 10 * t)[:, None] + rng.normal(0, 300, c)  # offsets
    return x


def _features(x, params=eb.DEFAULT):
    return eb.features(x, SEGMENTS, ENDS, FS, eb.filter_bank(FS, params.bands, params.order), params)


@pytest.mark.parametrize("params", list(eb.CV_OPTIONS.values()), ids=list(eb.CV_OPTIONS))
def test_features_at_an_end_ignore_every_later_sample(params):
    x = _signal()
    ref = _features(x, params)
    rng = np.random.default_rng(1)
    for i, e in enumerate(ENDS):
        y = x.copy()
        y[e + 1:] = rng.normal(0, 1e4, y[e + 1:].shape)  # the future, wildly different
        np.testing.assert_array_equal(_features(y, params)[:i + 1], ref[:i + 1])
    # and the test can fail: a sample before an end does change its features
    y = x.copy()
    y[ENDS[-1] - 5] += 100.0
    assert not np.array_equal(_features(y, params)[-1], ref[-1])


def test_filter_state_runs_through_a_segment_as_a_stream_and_restarts_at_a_gap():
    """Reference: each band fed chunk by chunk through sosfilt with its state (zi) carried, restarted
    at each segment, and the variance of a trailing buffer at each end."""
    x = _signal(2)
    bank = eb.filter_bank(FS)
    got = eb.log_variance(x, SEGMENTS, ENDS, FS, bank, 0.3)
    width = int(0.3 * FS)
    rng = np.random.default_rng(3)
    for j, sos in enumerate(bank):
        y = np.empty_like(x)
        for a, b in SEGMENTS:
            zi = np.zeros((sos.shape[0], 2, x.shape[1]))
            i = a
            while i < b:  # chunks of random sizes, as a live stream delivers them
                k = min(b, i + int(rng.integers(1, 40)))
                y[i:k], zi = signal.sosfilt(sos, x[i:k] - x[a], axis=0, zi=zi)
                i = k
        for r, e in enumerate(ENDS):
            a = SEGMENTS[SEGMENTS[:, 0] <= e][-1, 0]
            want = np.log(np.maximum(y[max(a, e - width + 1):e + 1].var(axis=0), eb.VAR_FLOOR))
            np.testing.assert_allclose(got[r, j * x.shape[1]:(j + 1) * x.shape[1]], want, rtol=1e-9, atol=1e-9)


def test_slow_trend_is_the_training_baselines_trend_of_the_window():
    x = _signal(4)
    got = eb.slow_trend(x, SEGMENTS, ENDS, FS, 0.2)
    for r, e in enumerate(ENDS):
        a = SEGMENTS[SEGMENTS[:, 0] <= e][-1, 0]
        w = x[max(a, e - 99):e + 1]
        q = len(w) // 4
        np.testing.assert_allclose(got[r], w[-q:].mean(0) - w[:q].mean(0), rtol=1e-9, atol=1e-9)


def test_an_end_outside_every_segment_is_refused():
    with pytest.raises(ValueError, match="ends"):
        eb.log_variance(_signal(), np.array([[0, 100], [200, 300]]), np.array([150]), FS, eb.filter_bank(FS))


def test_logistic_regression_reaches_the_penalised_optimum_deterministically():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 12))
    y = (X @ rng.standard_normal(12) + rng.normal(0, 1, 400) > 0.5).astype(np.uint8)
    w, b = eb.fit_logistic(X, y, C=1.0)
    p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    # gradient of C·Σ logloss + ½‖w‖² (intercept unpenalised) vanishes at the optimum
    np.testing.assert_allclose(X.T @ (p - y) + w, 0.0, atol=1e-6)
    assert abs(np.sum(p - y)) < 1e-6
    w2, b2 = eb.fit_logistic(X, y, C=1.0)
    np.testing.assert_array_equal(w, w2)
    assert b == b2


def test_fixture_bundle_has_the_task_default_window_geometry():
    """Without the calibration bases the peer uses the fixture's windows: those of any bundle trained
    with the grasp-lift task's defaults (the bases are)."""
    b, task = load_bundle(FIXTURE_BUNDLES / "grasp-lift", check_model=False), get_task("grasp-lift")
    factor = b.signal_chain().factor
    assert factor == task.factor
    assert int(b.window["length"]) == round(task.window_ms * 1e-3 * b.fs / factor)
    assert int(b.window["stride"]) == round(task.stride_ms * 1e-3 * b.fs / factor)


@pytest.fixture(scope="module")
def gl(shared_data):
    return shared_data / "grasp_lift_segments"


def test_windows_and_labels_are_the_benchs_own(gl):
    bundle = load_bundle(FIXTURE_BUNDLES / "grasp-lift")
    rec = read_grasp_lift(gl / "subj2_series7_data.csv.gz")
    _, truth = calibration._scores(bundle, [rec])
    F, Y = eb.session_features(bundle, [rec])
    np.testing.assert_array_equal(Y, truth)
    assert F.shape == (len(truth), 32 * (len(eb.BANDS_HZ) + 1)) and np.isfinite(F).all()


def test_a_short_real_slice_is_learnt_deterministically(gl):
    bundle = load_bundle(FIXTURE_BUNDLES / "grasp-lift", check_model=False)
    train = [read_grasp_lift(gl / f"subj1_series{k}_data.csv.gz") for k in (1, 2, 3)]
    test = [read_grasp_lift(gl / "subj1_series7_data.csv.gz")]
    a = eb.subject_baseline(bundle, train, test)
    b = eb.subject_baseline(bundle, train, test)
    np.testing.assert_array_equal(a["probs"], b["probs"])
    assert a["auc"] > 0.6, a["auc"]


def test_the_bench_reports_the_peer_when_the_bases_are_missing(gl, tmp_path, monkeypatch):
    monkeypatch.setattr(calibration, "BASES", tmp_path / "no-bases")
    g = calibration._grasp_lift(Context(quick=True, shared_data=gl.parent, tmp=tmp_path), quick=True)
    assert "not_measured" in g and "skipped" not in g
    assert set(g["baseline_subjects"]) == {1} and 0.5 < g["baseline"] <= 1
    ts = calibration.targets({"emg": {"skipped": "-"}, "grasp_lift": g, "muse": {"skipped": "-"}})
    assert [t["goal"] for t in ts] == [calibration.GL_GOAL, 0.0] and calibration.GL_GOAL == 0.80
    assert all(t["measured"] is None for t in ts)  # "not measured", never a MET or MISSED
    md = calibration.markdown({"emg": {"skipped": "-"}, "grasp_lift": g, "muse": {"skipped": "-"}})
    assert f"FB+LR baseline {g['baseline']:.4f}" in md and "not measured" in md


def test_a_recording_is_accepted_as_well_as_a_path(gl):
    rec = read_grasp_lift(gl / "subj1_series7_data.csv.gz")
    assert isinstance(eb._read([rec])[0], Recording)
    assert eb._read([gl / "subj1_series7_data.csv.gz"])[0].n_samples == rec.n_samples
