"""edge.decision: policy validation and round-trip, debounced commands, arbitration, multi-class state,
threshold choice.  Timeflux style: feed the Decider a chunk with explicit timestamps, assert on output."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.decision import (
    DEFAULT_TARGETS,
    Decider,
    DecisionError,
    DecisionPolicy,
)
from edge.errors import EdgeError
from firmware_bridge.protocol import Action
from training.thresholds import choose_thresholds

REPO = Path(__file__).resolve().parents[2]
GAL = ("HandStart", "FirstDigitTouch", "BothStartLoadPhase", "LiftOff", "Replace", "BothReleased")
EMO = ("NEGATIVE", "NEUTRAL", "POSITIVE")
STRIDE = 50.0


def windows(rows, t0=0.0):
    """rows: list of {label: prob} dicts (missing labels 0.05) → probs (n, 6), t_ms (n,)."""
    p = np.full((len(rows), len(GAL)), 0.05)
    for i, row in enumerate(rows):
        for lab, v in row.items():
            p[i, GAL.index(lab)] = v
    return p, t0 + STRIDE * np.arange(len(rows))


def fired(decisions):
    return [(d.t_ms, d.label, d.action) for d in decisions if d.action is not None]


# ------------------------------------------------------------------ policy


def test_defaults_follow_design_mapping():
    pol = DecisionPolicy(GAL)
    assert pol.commands == {"HandStart": Action.OPEN, "FirstDigitTouch": Action.GRASP,
                            "BothStartLoadPhase": Action.GRASP, "LiftOff": Action.LIFT,
                            "Replace": Action.LOWER, "BothReleased": Action.RELEASE}
    assert pol.thresholds == (0.5,) * 6 and pol.mode == "multilabel"
    assert pol.off_thresholds == pytest.approx((0.4,) * 6)


def test_default_targets_inside_firmware_joint_limits():
    cfg = (REPO / "firmware_bridge/firmware/core/ng_config.h").read_text()
    val = {k: int(v) for k, v in re.findall(r"#define (NG_J\d_\w+) (\d+)u", cfg)}
    joint = {"GRASP": 0, "RELEASE": 0, "OPEN": 0, "LIFT": 1, "LOWER": 1}
    for name, (target, speed) in DEFAULT_TARGETS.items():
        js = [joint[name]] if name in joint else [0, 1]
        for j in js:
            assert val[f"NG_J{j}_MIN"] <= target <= val[f"NG_J{j}_MAX"], name
            assert 1 <= speed <= val[f"NG_J{j}_SPEED"], name


def test_manifest_round_trip_through_json():
    pol = DecisionPolicy(GAL, thresholds=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8], hysteresis=0.05, min_dwell_ms=100,
                         refractory_ms=500, vote=3, commands={"LiftOff": "LIFT", "Replace": None},
                         targets={"LIFT": (1100, 600)})
    d = json.loads(json.dumps(pol.to_manifest()))
    again = DecisionPolicy.from_manifest(d, list(GAL))
    assert again == pol
    assert again.to_manifest() == d
    assert d["targets"]["LIFT"] == {"target_ddeg": 1100, "speed_ddeg_s": 600}
    assert d["commands"] == {"LiftOff": "LIFT", "Replace": None}


def test_from_manifest_fills_defaults():
    assert DecisionPolicy.from_manifest({}, GAL) == DecisionPolicy(GAL)
    emo = DecisionPolicy.from_manifest({"mode": "multiclass"}, EMO)
    assert emo.commands == {} and emo.reject_below == 0.5


@pytest.mark.parametrize("d, key", [
    ({"thresholds": [0.5] * 5}, "thresholds"),
    ({"thresholds": "0.5"}, "thresholds"),
    ({"thresholds": [0.5] * 5 + [1.5]}, "thresholds"),
    ({"thresholds": [0.5] * 5 + [None]}, "thresholds"),
    ({"hysteresis": 0.6}, "hysteresis"),
    ({"hysteresis": -0.1}, "hysteresis"),
    ({"min_dwell_ms": "50"}, "min_dwell_ms"),
    ({"refractory_ms": -1}, "refractory_ms"),
    ({"vote": 0}, "vote"),
    ({"vote": 1.5}, "vote"),
    ({"vote": True}, "vote"),
    ({"reject_below": 2}, "reject_below"),
    ({"mode": "softmax"}, "mode"),
    ({"mode": 1}, "mode"),
    ({"commands": {"Grab": "GRASP"}}, "commands"),
    ({"commands": {"LiftOff": "FLY"}}, "commands.LiftOff"),
    ({"commands": ["GRASP"]}, "commands"),
    ({"targets": {"GRASP": {"target_ddeg": 2000, "speed_ddeg_s": 900}}}, "targets.GRASP"),
    ({"targets": {"GRASP": [300, 0]}}, "targets.GRASP"),
    ({"targets": {"GRASP": [300.5, 900]}}, "targets.GRASP"),
    ({"thresold": [0.5] * 6}, "thresold"),
])
def test_bad_manifest_names_the_key(d, key):
    with pytest.raises(DecisionError, match=re.escape(key)) as info:
        DecisionPolicy.from_manifest(d, GAL)
    assert isinstance(info.value, (EdgeError, ValueError))


def test_bad_manifest_types():
    with pytest.raises(DecisionError, match="object"):
        DecisionPolicy.from_manifest([1, 2], GAL)
    with pytest.raises(DecisionError, match="labels"):
        DecisionPolicy.from_manifest({}, [])
    with pytest.raises(DecisionError, match="never moves the arm"):
        DecisionPolicy.from_manifest({"mode": "multiclass", "commands": {"NEGATIVE": "REST"}}, EMO)


# ------------------------------------------------------------------ multi-label


def test_fires_once_on_rising_edge_after_dwell():
    dec = Decider(DecisionPolicy(GAL))  # dwell 50 ms: the second window above threshold fires
    p, t = windows([{}] + [{"FirstDigitTouch": 0.9}] * 8 + [{}])
    out = dec.process(p, t)
    assert len(out) == len(t)
    assert fired(out) == [(100.0, "FirstDigitTouch", Action.GRASP)]
    assert [d.reason for d in out] == ["idle", "dwell", "fired"] + ["latched"] * 6 + ["idle"]
    d = out[2]
    assert (d.target_ddeg, d.speed_ddeg_s, d.speed) == (300, 900, 900)
    np.testing.assert_array_equal(d.probs, p[2])


def test_single_window_blip_does_not_fire():
    dec = Decider(DecisionPolicy(GAL))
    p, t = windows([{"LiftOff": 0.95}, {}, {"LiftOff": 0.95}, {}, {"LiftOff": 0.95}])
    assert fired(dec.process(p, t)) == []


def test_hysteresis_prevents_chattering():
    wobble = [{"Replace": 0.55}, {"Replace": 0.47}] * 10
    pol = {"min_dwell_ms": 0, "refractory_ms": 0}
    with_h = Decider(DecisionPolicy(GAL, hysteresis=0.1, **pol)).process(*windows(wobble))
    without = Decider(DecisionPolicy(GAL, hysteresis=0.0, **pol)).process(*windows(wobble))
    assert len(fired(with_h)) == 1
    assert len(fired(without)) == 10  # what hysteresis is for


def test_rearms_after_falling_below_off_threshold_and_respects_refractory():
    dec = Decider(DecisionPolicy(GAL, min_dwell_ms=0, refractory_ms=1000))
    rows = [{"LiftOff": 0.9}, {"LiftOff": 0.2}, {"LiftOff": 0.9}] + [{}] * 20 + [{"LiftOff": 0.9}]
    out = dec.process(*windows(rows))
    assert [d.reason for d in out[:3]] == ["fired", "idle", "refractory"]
    assert fired(out) == [(0.0, "LiftOff", Action.LIFT), (1150.0, "LiftOff", Action.LIFT)]


def test_same_action_from_two_labels_is_not_reissued():
    dec = Decider(DecisionPolicy(GAL))
    rows = [{"FirstDigitTouch": 0.9}] * 3 + [{"FirstDigitTouch": 0.9, "BothStartLoadPhase": 0.8}] * 4
    out = dec.process(*windows(rows))
    assert fired(out) == [(50.0, "FirstDigitTouch", Action.GRASP)]
    assert "refractory" in [d.reason for d in out]


def test_other_joint_stays_pending_and_fires_next_window():
    dec = Decider(DecisionPolicy(GAL, min_dwell_ms=0))
    out = dec.process(*windows([{"LiftOff": 0.9, "FirstDigitTouch": 0.8}] * 3))
    assert fired(out) == [(0.0, "LiftOff", Action.LIFT), (50.0, "FirstDigitTouch", Action.GRASP)]


def test_conflicting_command_on_same_joint_is_dropped():
    dec = Decider(DecisionPolicy(GAL, min_dwell_ms=0))
    out = dec.process(*windows([{"FirstDigitTouch": 0.9, "HandStart": 0.8}] * 5))
    assert fired(out) == [(0.0, "FirstDigitTouch", Action.GRASP)]  # never OPEN right after GRASP


def test_tie_goes_to_the_earlier_label():
    dec = Decider(DecisionPolicy(GAL, min_dwell_ms=0))
    out = dec.process(*windows([{"Replace": 0.8, "LiftOff": 0.8}]))
    assert fired(out) == [(0.0, "LiftOff", Action.LIFT)]


def test_label_without_command_fires_nothing():
    dec = Decider(DecisionPolicy(GAL, min_dwell_ms=0, commands={"LiftOff": "LIFT"}))
    out = dec.process(*windows([{"Replace": 0.9}, {"Replace": 0.9, "LiftOff": 0.7}]))
    assert [d.reason for d in out] == ["no-command", "fired"]
    assert fired(out) == [(50.0, "LiftOff", Action.LIFT)]


def test_vote_majority_rejects_isolated_windows():
    dec = Decider(DecisionPolicy(GAL, min_dwell_ms=0, vote=3))
    spiky = [{"LiftOff": 0.9}, {}, {}, {"LiftOff": 0.9}, {}, {}]
    assert fired(dec.process(*windows(spiky))) == []
    dec.reset()
    out = dec.process(*windows([{"LiftOff": 0.9}, {}, {"LiftOff": 0.9}]))
    assert fired(out) == [(100.0, "LiftOff", Action.LIFT)]


def test_invalid_window_resets_dwell_and_never_commands():
    pol = DecisionPolicy(GAL, min_dwell_ms=100)
    rows = [{"LiftOff": 0.9}] * 8
    valid = np.ones(8, bool)
    valid[2] = False
    out = Decider(pol).process(*windows(rows), valid=valid)
    assert out[2].reason == "invalid" and out[2].action is None
    assert fired(out) == [(250.0, "LiftOff", Action.LIFT)]  # dwell restarted at 150 ms
    assert fired(Decider(pol).process(*windows(rows))) == [(100.0, "LiftOff", Action.LIFT)]
    p, t = windows(rows)
    p[2, 0] = np.nan
    assert fired(Decider(pol).process(p, t)) == [(250.0, "LiftOff", Action.LIFT)]


def test_chunking_does_not_change_decisions():
    rng = np.random.default_rng(0)
    n = 400
    p = np.clip(rng.normal(0.3, 0.3, (n, 6)).cumsum(0) * 0.02 + rng.random((n, 6)) * 0.4, 0, 1)
    t = np.arange(n) * 20.0
    valid = rng.random(n) > 0.03
    pol = DecisionPolicy(GAL, min_dwell_ms=40, refractory_ms=300, vote=3)
    whole = Decider(pol).process(p, t, valid=valid)
    dec = Decider(pol)
    pieces = []
    for a, b in zip([0, 1, 7, 50, 51, 200], [1, 7, 50, 51, 200, n]):
        pieces += dec.process(p[a:b], t[a:b], valid=valid[a:b])
    assert [(d.t_ms, d.label, d.action, d.reason) for d in whole] == \
        [(d.t_ms, d.label, d.action, d.reason) for d in pieces]
    assert fired(whole)  # the sequence does exercise firing


@pytest.mark.parametrize("mode", ["multilabel", "multiclass"])
def test_one_window_step_equals_process(mode):
    rng = np.random.default_rng(1)
    n = 300
    labels = GAL if mode == "multilabel" else EMO
    p = np.clip(rng.normal(0.3, 0.3, (n, len(labels))).cumsum(0) * 0.02 + rng.random((n, len(labels))) * 0.4, 0, 1)
    p[17, 1] = np.nan
    t = np.arange(n) * 20.0
    valid = rng.random(n) > 0.03
    pol = (DecisionPolicy(GAL, min_dwell_ms=40, refractory_ms=300, vote=3) if mode == "multilabel"
           else DecisionPolicy(EMO, mode="multiclass", commands={}, vote=3, min_dwell_ms=40))
    whole = Decider(pol).process(p, t, valid=valid)
    dec = Decider(pol)
    steps = [dec.step(p[i], t[i], bool(valid[i])) for i in range(n)]
    key = [(d.t_ms, d.label, d.action, d.reason) for d in whole]
    assert key == [(d.t_ms, d.label, d.action, d.reason) for d in steps]
    assert len({d.reason for d in steps}) >= 4  # the stream exercises the policy
    np.testing.assert_array_equal(np.array([d.probs for d in steps]), np.array([d.probs for d in whole]))


def test_step_checks_its_input():
    dec = Decider(DecisionPolicy(GAL))
    with pytest.raises(DecisionError, match=r"shape \(6,\)"):
        dec.step(np.zeros(5), 0.0)
    with pytest.raises(DecisionError, match="NaN or inf"):
        dec.step(np.zeros(6), float("nan"))
    dec.step(np.zeros(6), 100.0)
    with pytest.raises(DecisionError, match="reset"):
        dec.step(np.zeros(6), 50.0)
    p = np.full(6, 0.9)
    d = dec.step(p, 150.0)
    p[:] = 0.0
    assert d.probs[0] == 0.9  # the Decision keeps its own copy


def test_reset_forgets_latches_and_refractory():
    dec = Decider(DecisionPolicy(GAL, min_dwell_ms=0))
    assert fired(dec.process(*windows([{"LiftOff": 0.9}])))
    dec.reset()
    assert fired(dec.process(*windows([{"LiftOff": 0.9}])))  # time may restart after reset


@pytest.mark.parametrize("probs, t, valid, match", [
    (np.zeros((3, 5)), np.arange(3.0), None, "probs"),
    (np.zeros((3, 6)), np.arange(2.0), None, "t_ms"),
    (np.zeros((3, 6)), np.array([0.0, 2.0, 1.0]), None, "non-decreasing"),
    (np.zeros((3, 6)), np.array([0.0, np.nan, 1.0]), None, "t_ms"),
    (np.zeros((3, 6)), np.arange(3.0), np.ones(3), "valid"),
])
def test_bad_input(probs, t, valid, match):
    with pytest.raises(DecisionError, match=match):
        Decider(DecisionPolicy(GAL)).process(probs, t, valid=valid)


def test_time_must_not_go_back_across_calls():
    dec = Decider(DecisionPolicy(GAL))
    dec.process(np.zeros((2, 6)), [100.0, 150.0])
    with pytest.raises(DecisionError, match="reset"):
        dec.process(np.zeros((1, 6)), [120.0])


# ------------------------------------------------------------------ multi-class


def emo(rows, t0=0.0):
    return np.asarray(rows, float), t0 + STRIDE * np.arange(len(rows))


def test_multiclass_publishes_state_and_never_moves_the_arm():
    dec = Decider(DecisionPolicy(EMO, mode="multiclass", min_dwell_ms=50))
    neg, pos, unsure = [0.9, 0.05, 0.05], [0.02, 0.08, 0.9], [0.4, 0.3, 0.3]
    out = dec.process(*emo([neg, neg, neg, unsure, pos, pos, neg, pos]))
    assert all(d.action is None and d.target_ddeg is None for d in out)
    assert [d.reason for d in out] == ["dwell", "changed", "steady", "rejected", "dwell", "changed", "dwell",
                                       "steady"]
    assert [d.label for d in out] == [None, "NEGATIVE", "NEGATIVE", "NEGATIVE", "NEGATIVE", "POSITIVE",
                                      "POSITIVE", "POSITIVE"]
    assert dec.state == "POSITIVE"
    bad = dec.process(*emo([pos], 1000.0), valid=np.array([False]))
    assert bad[0].reason == "invalid" and bad[0].label == "POSITIVE" and bad[0].action is None


def test_multiclass_vote():
    dec = Decider(DecisionPolicy(EMO, mode="multiclass", min_dwell_ms=0, vote=3))
    a, b = [0.9, 0.05, 0.05], [0.05, 0.9, 0.05]
    out = dec.process(*emo([a, b, a, a, b, b, b]))  # the lone b at index 4 is outvoted
    assert [d.label for d in out] == [None, None, "NEGATIVE", "NEGATIVE", "NEGATIVE", "NEUTRAL", "NEUTRAL"]


# ------------------------------------------------------------------ thresholds


def test_choose_thresholds_youden_matches_brute_force():
    rng = np.random.default_rng(1)
    y = rng.random((500, 3)) < [0.1, 0.3, 0.5]
    s = np.round(np.clip(y * 0.3 + rng.random((500, 3)) * 0.7, 0, 1), 2)  # ties, like int8 outputs
    thr = choose_thresholds(y, s)
    for j in range(3):
        cands = np.unique(s[:, j])
        j_of = [((s[:, j] >= c) & y[:, j]).sum() / y[:, j].sum() - ((s[:, j] >= c) & ~y[:, j]).sum()
                / (~y[:, j]).sum() for c in cands]
        best = max(j_of)
        assert thr[j] == max(c for c, v in zip(cands, j_of) if np.isclose(v, best))


def test_choose_thresholds_fpr_budget():
    rng = np.random.default_rng(2)
    y = rng.random((1000, 2)) < 0.2
    s = np.clip(y * 0.25 + rng.random((1000, 2)) * 0.75, 0, 1)
    thr = choose_thresholds(y, s, target="fpr", max_fpr=0.05)
    for j in range(2):
        neg = s[~y[:, j], j]
        assert (neg >= thr[j]).mean() <= 0.05
        lower = s[:, j][s[:, j] < thr[j]].max()
        assert (neg >= lower).mean() > 0.05  # the lowest threshold within budget


def test_choose_thresholds_edge_cases():
    y = np.array([[1], [0], [0], [1]], bool)
    s = np.array([[0.9], [0.1], [0.2], [0.8]])
    assert choose_thresholds(y, s)[0] == 0.8  # perfect separation: the lowest positive score
    s_bad = np.array([[1.0], [1.0], [1.0], [1.0]])
    assert choose_thresholds(y, s_bad, target="fpr", max_fpr=0.0)[0] == 1.0  # capped for probabilities
    with pytest.raises(DecisionError, match="no positive"):
        choose_thresholds(np.zeros((4, 1), bool), s)
    with pytest.raises(DecisionError, match="shape"):
        choose_thresholds(y, s[:3])
    with pytest.raises(DecisionError, match="target"):
        choose_thresholds(y, s, target="f1")
    thr = choose_thresholds(np.array([[1, 0], [0, 1], [1, 1], [0, 0]], bool),
                            np.array([[0.7, 0.2], [0.3, 0.6], [0.8, 0.9], [0.1, 0.4]]))
    DecisionPolicy(("a", "b"), thresholds=thr, hysteresis=0.05)  # usable as a policy as is


def test_import_pulls_neither_serial_nor_tensorflow():
    code = "import sys, edge.decision; print(sorted(m for m in ('serial', 'tensorflow', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
