"""The gesture (EMG) task through the edge runtime: causal windows, a Myo session as a replay source,
commands from a multi-class bundle (the fixture: a 2-epoch smoke model, so only the plumbing and
causality are asserted, not accuracy)."""

from dataclasses import replace

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.evaluation.replay import continuous_score, replay_probs, window_accuracy
from edge.recordings import read_recording
from edge.recordings.myo import read_myo_session
from edge.runtime import RuntimeConfig, serve
from tests.conftest import FIXTURE_BUNDLES

BUNDLE = FIXTURE_BUNDLES / "gesture"


@pytest.fixture(scope="module")
def session(shared_data):
    return shared_data / "myo_armband" / "EvaluationDataset" / "Male1" / "Test0"


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(BUNDLE)


def test_the_gesture_bundle_is_what_the_task_says(bundle):
    assert bundle.task == "gesture" and bundle.fs == 200.0 and len(bundle.channels) == 8
    assert bundle.window["length"] == 52 and bundle.window["stride"] <= 10  # 260 ms, a decision every <= 50 ms
    assert bundle.decision_policy().moves_arm


def test_gesture_windows_are_causal(bundle, session):
    rec = read_myo_session(session)
    probs, idx = replay_probs(bundle, rec)
    cut = int(idx[len(idx) // 2])
    future = rec.samples.copy()
    future[cut + 1:] = np.random.default_rng(0).normal(0, 50, future[cut + 1:].shape)  # another future
    probs2, idx2 = replay_probs(bundle, replace(rec, samples=future))
    assert np.array_equal(idx, idx2)
    past = idx <= cut
    assert past.sum() > 100 and np.array_equal(probs[past], probs2[past])
    assert not np.array_equal(probs[~past], probs2[~past])  # the test can fail: the future did change


def test_a_session_folder_is_a_replay_source_and_drives_commands(bundle, session, tmp_path):
    rec = read_recording(session)  # a directory: the Myo session, continuous
    assert rec.fs == 200.0 and len(rec.segments) == 1 and rec.labels.shape[1] == 7
    summary = serve(BUNDLE, f"replay:{session}?speed=0", "none", config=RuntimeConfig(), install_signals=False,
                    log_path=tmp_path / "run.jsonl")
    assert summary.windows > 2000 and summary.faults == {}
    assert summary.stream_seconds == pytest.approx(rec.n_samples / rec.fs)
    assert summary.decisions_fired >= 1  # the class changes of a real session drive commands


def test_offline_evaluation_scores_through_the_same_path(bundle, session):
    correct, total = window_accuracy(bundle, read_myo_session(session, continuous=False))
    assert total > 2000 and correct / total > 0.3  # the 2-epoch smoke model is above chance (1/7)
    s = continuous_score(bundle, read_myo_session(session))
    assert s["gestures"] == 16 and s["rest_minutes"] == pytest.approx(4 * 5 / 60, rel=0.15)
