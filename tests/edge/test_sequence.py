"""The arm's state in the decision (edge.decision.sequence), the sequence scorer, and the
objective-driven choice of decision parameters (training.control) on streams with known answers."""

import json
import shutil

import numpy as np
import pytest

from edge.bundle import content_hash, load_bundle
from edge.decision import ArmState, DecisionPolicy, SequenceRules
from edge.errors import DecisionError
from edge.evaluation.replay import simulate_decisions
from edge.evaluation.scoring import score_sequence
from edge.recordings.synthetic import grasp_lift_series
from edge.runtime import Pipeline
from edge.sources import ReplaySource
from edge.tasks import GRASP_LIFT_EVENTS, get_task
from firmware_bridge.errors import Nacked
from firmware_bridge.protocol import Action, Reason
from tests.conftest import FIXTURE_BUNDLES
from tests.edge.fake_arm import AckingArm

GL = get_task("grasp-lift")
RULES = SequenceRules.from_manifest(GL.sequence)
ORDER = ["OPEN", "GRASP", "LIFT", "LOWER", "RELEASE"]


def test_rules_are_validated():
    with pytest.raises(DecisionError, match="not an arm action"):
        SequenceRules("a", {"a": {"JUMP": "a"}})
    with pytest.raises(DecisionError, match="unknown state"):
        SequenceRules("a", {"a": {"OPEN": "b"}})
    with pytest.raises(DecisionError, match="initial"):
        SequenceRules("z", {"a": {"OPEN": "a"}})
    with pytest.raises(DecisionError, match="unknown key"):
        SequenceRules.from_manifest({"initial": "a", "transitions": {"a": {}}, "extra": 1})
    with pytest.raises(DecisionError, match="states"):
        SequenceRules("s0", {f"s{i}": {} for i in range(40)})
    assert SequenceRules.from_manifest(RULES.to_manifest()) == RULES


@pytest.mark.parametrize("state", list(RULES.transitions))
def test_every_invalid_transition_is_held_with_its_reason(state):
    valid = RULES.transitions[state]
    for action in Action:
        arm = ArmState(RULES)
        arm.state = state
        why = arm.check(action)
        if action in valid or action in (Action.REST, Action.HOLD):
            assert why is None
            arm.confirm(action)
            assert arm.state == (RULES.initial if action is Action.REST else valid.get(action, state))
        else:
            assert why is not None and action.name in why and f"'{state}'" in why and "valid next" in why
            arm.hold(action, why)
            assert arm.held[f"{action.name} in {state}"] == 1 and arm.state == state


def test_the_full_sequence_passes_and_rest_restarts_it():
    arm = ArmState(RULES)
    for name in ORDER:
        assert arm.check(Action[name]) is None
        arm.confirm(Action[name])
    assert arm.state == "ready"
    arm.confirm(Action.OPEN)
    arm.confirm(Action.GRASP)
    assert arm.state == "holding" and arm.check(Action.GRASP) is not None
    arm.reset()
    assert arm.state == "ready"
    assert ArmState(None).check(Action.RELEASE) is None  # a bundle without rules: everything is valid


def _with_sequence(tmp_path, threshold=0.05, **decision):
    """The grasp-lift fixture bundle with the task's arm-state rules added (hashes recomputed)."""
    shutil.copytree(FIXTURE_BUNDLES / "grasp-lift", tmp_path / "b")
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    m["decision"]["sequence"] = GL.sequence
    m["decision"]["thresholds"] = [threshold] * 6  # fire often, so that the gate has work
    m["decision"]["hysteresis"] = 0.02
    m["decision"].update(decision)
    m["content_hash"] = content_hash(m, (tmp_path / "b" / "model.tflite").read_bytes())
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(m))
    return load_bundle(tmp_path / "b")


def test_the_pipeline_holds_commands_and_advances_only_on_acknowledgement(tmp_path):
    bundle = _with_sequence(tmp_path)
    rec = grasp_lift_series(1, 7, seed=0, n_trials=6)
    src = ReplaySource(rec, speed=0)
    pipe = Pipeline(bundle, src.channels, src.fs, drop_stale=False)
    pipe.auto_confirm = False  # an arm that never acknowledges: the state never moves
    held = sent = 0
    while (c := src.read()) is not None:
        for r in pipe.process(c):
            d = r.decision
            sent += d.action is not None
            held += d.reason == "held"
            if d.action is not None:
                assert d.action in (Action.OPEN, Action.GRASP)  # the only actions valid from "ready"
    assert pipe.arm_state.state == "ready" and held > 0 and sent > 0
    assert sum(pipe.arm_state.held.values()) == held


def test_offline_simulation_equals_the_pipeline(tmp_path):
    bundle = _with_sequence(tmp_path)
    rec = grasp_lift_series(1, 7, seed=0, n_trials=6)
    src = ReplaySource(rec, speed=0)
    pipe = Pipeline(bundle, src.channels, src.fs, drop_stale=False)
    live, probs, t = [], [], []
    while (c := src.read()) is not None:
        for r in pipe.process(c):
            live.append((r.decision.label, r.decision.action, r.decision.reason))
            probs.append(r.probs)
            t.append(r.t_end * 1000.0)
    sim = simulate_decisions(bundle.decision_policy(), np.array(probs), np.array(t))
    assert [(d.label, d.action, d.reason) for d in sim] == live


def test_score_sequence_on_a_hand_made_stream():
    fs, y = 10.0, np.zeros((300, 6), bool)
    for start in (20, 140):  # two trials, each event 3 rows long, 10 rows apart
        for k in range(6):
            y[start + 10 * k:start + 10 * k + 3, k] = True
    cmds = [(21, "HandStart", "OPEN"), (31, "FirstDigitTouch", "GRASP"), (51, "LiftOff", "LIFT"),
            (61, "Replace", "LOWER"), (71, "BothReleased", "RELEASE"),  # trial 1 complete
            (141, "HandStart", "OPEN"), (155, "LiftOff", "LIFT"),  # trial 2: wrong phase, no grasp
            (260, "HandStart", "OPEN")]  # during rest
    s = score_sequence(y, GRASP_LIFT_EVENTS, fs, cmds, ORDER)
    assert s["trials"] == 2 and s["trials_complete"] == 1 and s["trials_complete_fraction"] == 0.5
    assert s["wrong_phase"] == 2 and s["wrong_phase_per_min"] == pytest.approx(2 / 0.5)
    assert s["rest_commands"] == 1 and s["rest_commands_per_min"] is not None
    with pytest.raises(ValueError, match="label"):
        score_sequence(y, GRASP_LIFT_EVENTS, fs, [(1, "Nope", "OPEN")], ORDER)


def test_the_objective_picks_the_level_that_completes_trials_within_the_wrong_phase_budget():
    from training.control import MAX_WRONG_PHASE_PER_MIN, tune_multilabel

    rng = np.random.default_rng(0)
    stride_ms, n_trials, per = 50.0, 40, 60  # 3 s per trial, events 5 windows apart
    y = np.zeros((n_trials * per, 6), np.uint8)
    for i in range(n_trials):
        for k in range(6):
            y[i * per + 5 + 7 * k:i * per + 5 + 7 * k + 4, k] = 1
    # a model that is right but noisy: true events score ~0.7, the rest ~0.25 with heavy tails
    scores = np.clip(np.where(y, 0.7, 0.25) + rng.normal(0, 0.12, y.shape), 0, 1).astype(np.float32)
    t = np.arange(len(y)) * stride_ms / 1000.0
    policy, chosen, curve = tune_multilabel("grasp-lift", GRASP_LIFT_EVENTS, y, scores, t, np.zeros(len(y), int),
                                            np.array(["r"] * len(y)), stride_ms)
    assert chosen["wrong_phase_per_min"] <= MAX_WRONG_PHASE_PER_MIN
    feasible = [c for c in curve if c["feasible"]]
    assert feasible and chosen["trials_complete_fraction"] == max(c["trials_complete_fraction"] for c in feasible)
    infeasible = [c for c in curve if not c["feasible"]]
    assert infeasible, "the grid must reach the budget, or the test proves nothing"
    assert policy.sequence == RULES and policy.objective["chosen"]["level"] in (0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
    assert DecisionPolicy.from_manifest(policy.to_manifest(), GRASP_LIFT_EVENTS) == policy


def test_safety_overrides_the_sequence_a_safe_state_restarts_it(tmp_path):
    from edge.config import RuntimeConfig
    from edge.runtime import Runtime

    bundle = _with_sequence(tmp_path)
    rt = Runtime(bundle, ReplaySource(grasp_lift_series(1, 7, seed=0, n_trials=6), speed=0), None,
                 RuntimeConfig(budget_ms=1000))
    rt.pipeline.arm_state.state = "lifted"  # mid-sequence, holding an object up
    rt.go_safe("stream stalled")            # the stall rule: REST, whatever the sequence says
    assert rt.pipeline.arm_state.state == "ready"
    s = rt.run()
    assert s.held and sum(s.held.values()) == sum(rt.pipeline.arm_state.held.values())
    assert all("not valid while the arm is" in why for why in s.held)


def test_with_an_arm_every_command_sent_is_valid_even_when_a_chunk_holds_several_windows(tmp_path):
    from edge.config import RuntimeConfig
    from edge.runtime import Runtime

    # at 0.25 the smoke model's labels toggle often: the whole sequence runs, again and again
    bundle = _with_sequence(tmp_path, 0.25, min_dwell_ms=0.0, refractory_ms=0.0)
    arm = AckingArm()
    src = ReplaySource(grasp_lift_series(1, 7, seed=0, n_trials=8), speed=0, chunk=200)  # ~8 windows a chunk
    rt = Runtime(bundle, src, arm, RuntimeConfig(budget_ms=1000))
    s = rt.run()
    moves = [a for a in arm.sent if a is not Action.REST]
    assert len(moves) >= 3 and s.held
    replayed = ArmState(RULES)  # the acknowledged commands, in order, never break the rules
    for a in moves:
        assert replayed.check(a) is None, (a, replayed.state, moves)
        replayed.confirm(a)
    assert rt.pipeline.auto_confirm is False


def test_a_command_refused_by_the_watchdog_restarts_the_sequence(tmp_path):
    from edge.config import RuntimeConfig
    from edge.runtime import Runtime

    bundle = _with_sequence(tmp_path)
    rt = Runtime(bundle, ReplaySource(grasp_lift_series(1, 7, seed=0, n_trials=4), speed=0), AckingArm("WATCHDOG"),
                 RuntimeConfig(budget_ms=1000))
    rt.pipeline.arm_state.state = "lifted"
    s = rt.run()
    assert s.commands_failed >= 1 and rt.pipeline.arm_state.state == "ready"


class _TrippedArm(AckingArm):
    """An arm whose firmware watchdog tripped behind the runtime's back: motion is NACKed (WATCHDOG)
    until the owner clears the latch, as the real link and firmware do."""

    def __init__(self):
        super().__init__(refuse="WATCHDOG")
        self.clears = 0

    def command(self, action, target=None, speed=None, deadline=None):
        if self.refuse is not None:  # REST too: the latch refuses everything until cleared
            raise Nacked(0, Reason.WATCHDOG)
        self.sent.append(action)

    def clear(self, *_):
        self.clears += 1
        self.refuse = None


def test_after_an_unintended_watchdog_trip_control_resumes_once_rest_is_acknowledged(tmp_path):
    from edge.config import RuntimeConfig
    from edge.runtime import Runtime

    bundle = _with_sequence(tmp_path, 0.25, min_dwell_ms=0.0, refractory_ms=0.0)
    arm = _TrippedArm()
    rt = Runtime(bundle, ReplaySource(grasp_lift_series(1, 7, seed=0, n_trials=8), speed=0), arm,
                 RuntimeConfig(budget_ms=1000))
    s = rt.run()
    assert s.commands_failed >= 1 and arm.clears >= 1  # the first command met the latch; REST cleared it
    events = [a for a in arm.sent if a is not Action.REST]
    assert events, "control resumed after the cause was gone"
    assert s.safe_state_entries >= 2  # the trip, then the final stop
