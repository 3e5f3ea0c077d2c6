"""Multi-class policies that drive the arm (EMG gestures) and the rule that emotion never does."""

import numpy as np
import pytest

from edge.decision import Decider, DecisionPolicy
from edge.errors import DecisionError
from edge.tasks import GESTURES, get_task
from firmware_bridge.protocol import Action

CMDS = dict(get_task("gesture").commands)
CLOSE, OPEN, NEUTRAL = GESTURES.index("hand_close"), GESTURES.index("hand_open"), GESTURES.index("neutral")


def onehot(k, p=0.9):
    v = np.full(len(GESTURES), (1 - p) / (len(GESTURES) - 1), np.float32)
    v[k] = p
    return v


def run(policy, classes, step_ms=50.0, p=0.9):
    dec = Decider(policy)
    probs = np.array([onehot(k, p) for k in classes])
    return dec.process(probs, np.arange(len(classes)) * step_ms)


def test_a_class_change_to_a_commanded_gesture_fires_its_command_once():
    pol = DecisionPolicy(GESTURES, mode="multiclass", moves_arm=True, commands=CMDS, min_dwell_ms=0,
                         refractory_ms=0)
    out = run(pol, [NEUTRAL, NEUTRAL, CLOSE, CLOSE, CLOSE, NEUTRAL, OPEN, OPEN])
    fired = [(d.t_ms, d.action) for d in out if d.action is not None]
    assert fired == [(100.0, Action.GRASP), (300.0, Action.OPEN)]
    assert out[5].reason == "changed" and out[5].action is None  # neutral holds the arm where it is
    assert out[2].target_ddeg is not None and out[2].speed_ddeg_s is not None


def test_rejection_vote_and_dwell_suppress_a_brief_flicker():
    pol = DecisionPolicy(GESTURES, mode="multiclass", moves_arm=True, commands=CMDS, min_dwell_ms=100,
                         refractory_ms=0, vote=3, reject_below=0.6)
    flicker = [NEUTRAL] * 4 + [CLOSE] + [NEUTRAL] * 4
    assert not [d for d in run(pol, flicker) if d.action is not None]
    unsure = run(pol, [CLOSE] * 6, p=0.5)  # below reject_below: never a command
    assert all(d.action is None and d.reason == "rejected" for d in unsure)
    held = run(pol, [NEUTRAL] * 2 + [CLOSE] * 8)
    fired = [d for d in held if d.action is not None]
    assert len(fired) == 1 and fired[0].action is Action.GRASP


def test_refractory_time_per_action():
    pol = DecisionPolicy(GESTURES, mode="multiclass", moves_arm=True, commands=CMDS, min_dwell_ms=0,
                         refractory_ms=500)
    out = run(pol, [CLOSE, NEUTRAL, CLOSE, NEUTRAL, OPEN])
    assert [d.reason for d in out] == ["fired", "changed", "refractory", "changed", "fired"]


def test_commands_without_moves_arm_are_refused_and_emotion_never_moves_the_arm():
    with pytest.raises(DecisionError, match="never moves the arm"):
        DecisionPolicy(GESTURES, mode="multiclass", commands=CMDS)
    with pytest.raises(DecisionError, match="moves_arm"):
        DecisionPolicy(GESTURES, mode="multiclass", moves_arm="yes", commands=CMDS)
    emo = DecisionPolicy.from_manifest({"mode": "multiclass"}, ("NEGATIVE", "NEUTRAL", "POSITIVE"))
    assert emo.moves_arm is False


def test_the_policy_round_trips_through_the_manifest_with_its_objective():
    objective = {"maximise": "detected gestures", "subject_to": "<= 1 false activation/min"}
    pol = DecisionPolicy(GESTURES, mode="multiclass", moves_arm=True, commands=CMDS, objective=objective)
    again = DecisionPolicy.from_manifest(pol.to_manifest(), GESTURES)
    assert again == pol and again.objective == objective and again.moves_arm


def test_a_bundle_whose_task_never_moves_the_arm_cannot_say_it_does(tmp_path):
    import json
    import shutil

    from edge.bundle import content_hash, load_bundle
    from edge.errors import BundleError
    from tests.conftest import FIXTURE_BUNDLES

    src = FIXTURE_BUNDLES / "emotion"
    shutil.copytree(src, tmp_path / "b")
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    m["decision"]["moves_arm"] = True
    m["content_hash"] = content_hash(m, (tmp_path / "b" / "model.tflite").read_bytes())
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="never moves the arm"):
        load_bundle(tmp_path / "b")
