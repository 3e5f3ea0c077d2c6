"""The multi-class ``"accumulate"`` decision filter (edge/decision/evidence.py): evidence summed over
windows instead of a fixed vote and dwell; the default ``"vote"`` filter is unchanged."""

import math

import numpy as np
import pytest

from edge.decision import Decider, DecisionPolicy
from edge.errors import DecisionError
from edge.tasks import GESTURES, get_task
from firmware_bridge.protocol import Action

CMDS = dict(get_task("gesture").commands)
CLOSE, OPEN, NEUTRAL = GESTURES.index("hand_close"), GESTURES.index("hand_open"), GESTURES.index("neutral")
FLEX = GESTURES.index("wrist_flexion")
N = len(GESTURES)


def onehot(k, p=0.99):
    v = np.full(N, (1 - p) / (N - 1))
    v[k] = p
    return v


def policy(**kw):
    kw = {"commit_nats": 10.0, "evidence_floor": 0.01, "leak_ms": 0.0, "refractory_ms": 0.0, **kw}
    return DecisionPolicy(GESTURES, mode="multiclass", moves_arm=True, commands=CMDS, filter="accumulate",
                          vote=1, min_dwell_ms=0, **kw)


def run(pol, rows, step_ms=25.0):
    probs = np.array([r if isinstance(r, np.ndarray) else onehot(r) for r in rows])
    return Decider(pol).process(probs, np.arange(len(rows)) * step_ms)


def fired(out):
    return [(d.t_ms, d.action) for d in out if d.action is not None]


def test_it_commits_once_the_evidence_is_enough_and_sooner_on_clearer_windows():
    # ln(0.99 / 0.01) = 4.6 nats a window: 10 nats take three windows; the state then holds (latched)
    out = run(policy(), [NEUTRAL] * 3 + [CLOSE] * 6)
    assert [d.reason for d in out[:3]] == ["dwell", "dwell", "changed"] and out[2].label == "neutral"
    assert fired(out) == [(125.0, Action.GRASP)]  # the third hand_close window
    assert [d.reason for d in out[6:]] == ["steady"] * 3 and out[-1].label == "hand_close"
    # less sure windows (0.8 against 0.1 for the runner-up: 2.1 nats each) take longer
    unsure = np.full(N, 0.1 / (N - 1))
    unsure[CLOSE], unsure[NEUTRAL] = 0.8, 0.1
    slow = run(policy(), [NEUTRAL] * 3 + [unsure] * 8)
    assert fired(slow) == [(25.0 * (3 + 4), Action.GRASP)]  # ceil(10 / ln 8) = 5 windows


def test_a_single_window_never_commits_however_sharp():
    sharp = np.zeros(N)
    sharp[CLOSE] = 1.0
    out = run(policy(), [NEUTRAL] * 4 + [sharp] + [NEUTRAL] * 4)
    assert not fired(out) and out[-1].label == "neutral"
    # an ambiguous window adds little: two classes near-equal give each almost nothing
    amb = np.full(N, 0.02 / (N - 2))
    amb[CLOSE], amb[OPEN] = 0.49, 0.49
    out = run(policy(reject_below=0.3), [NEUTRAL] * 3 + [amb] * 20)
    assert not fired(out) and {d.reason for d in out[3:]} == {"steady"}
    # and the policy refuses a threshold one window could reach
    with pytest.raises(DecisionError, match="one window"):
        policy(commit_nats=4.0)  # ln(1 / 0.01) = 4.6


def test_it_releases_to_neutral_and_fires_again_after_it():
    out = run(policy(), [NEUTRAL] * 3 + [CLOSE] * 4 + [NEUTRAL] * 4 + [OPEN] * 4 + [NEUTRAL] * 3 + [CLOSE] * 4)
    assert [a for _, a in fired(out)] == [Action.GRASP, Action.OPEN, Action.GRASP]
    released = [d for d in out if d.reason == "changed" and d.label == "neutral"]
    assert len(released) == 3  # the first state, then after each gesture: neutral holds the arm
    assert all(d.action is None for d in released)


def test_a_brief_flicker_between_held_classes_is_forgotten():
    out = run(policy(), [NEUTRAL] * 3 + ([CLOSE] + [NEUTRAL] * 2) * 10)
    assert not fired(out)


def test_the_leak_forgets_evidence_that_came_too_slowly():
    # sharp windows 100 ms, then 50 ms apart: 13.8 nats without a leak; with a 50 ms leak, 6.5
    rejected = np.full(N, 1 / N)  # below reject_below: no evidence, only the decay
    rows = [NEUTRAL] * 3 + [CLOSE, rejected, rejected, rejected, CLOSE, rejected, CLOSE]
    assert fired(run(policy(reject_below=0.5), rows))
    assert not fired(run(policy(reject_below=0.5, leak_ms=50.0), rows))
    out = run(policy(reject_below=0.5), rows)
    assert out[4].reason == "rejected"


def test_refractory_and_the_arm_state_apply_as_with_the_vote_filter():
    out = run(policy(refractory_ms=500.0), [CLOSE] * 3 + [NEUTRAL] * 3 + [CLOSE] * 3)
    assert [d.reason for d in out if d.reason in ("fired", "refractory")] == ["fired", "refractory"]
    assert out[-1].label == "hand_close" and out[-1].action is None


def test_an_invalid_window_or_an_interruption_clears_the_evidence():
    pol = policy()
    dec = Decider(pol)
    dec.process(np.array([onehot(NEUTRAL)] * 3), np.arange(3) * 25.0)
    d = dec.process(np.array([onehot(CLOSE)] * 3), np.arange(3, 6) * 25.0, valid=np.array([True, True, False]))
    assert [x.reason for x in d] == ["dwell", "dwell", "invalid"]
    assert dec.step(onehot(CLOSE), 150.0).reason == "dwell"  # started again from 0
    dec.interrupt()
    assert dec.step(onehot(CLOSE), 175.0).reason == "dwell"
    assert dec.step(onehot(CLOSE), 200.0).reason == "dwell"
    assert dec.step(onehot(CLOSE), 225.0).action is Action.GRASP
    nan = onehot(CLOSE)
    nan[0] = math.nan
    assert dec.step(nan, 250.0).reason == "invalid" and dec.state == "hand_close"


@pytest.mark.parametrize("leak_ms", [0.0, 120.0])
def test_decisions_do_not_depend_on_the_chunking(leak_ms):
    rng = np.random.default_rng(7)
    classes = np.repeat(rng.integers(0, N, 60), rng.integers(1, 12, 60))
    probs = rng.dirichlet(np.full(N, 0.3), len(classes)) * 0.2
    probs[np.arange(len(classes)), classes] += 0.8
    t = np.cumsum(rng.uniform(20.0, 30.0, len(classes)))
    valid = rng.random(len(classes)) > 0.02
    pol = policy(leak_ms=leak_ms, refractory_ms=200.0, reject_below=0.6)
    whole = Decider(pol).process(probs, t, valid)
    one = Decider(pol)
    steps = [one.step(probs[i], t[i], bool(valid[i])) for i in range(len(t))]
    chunked, dec, i = [], Decider(pol), 0
    while i < len(t):
        k = int(rng.integers(1, 9))
        chunked += dec.process(probs[i:i + k], t[i:i + k], valid[i:i + k])
        i += k
    key = [(d.t_ms, d.label, d.action, d.reason) for d in whole]
    assert key == [(d.t_ms, d.label, d.action, d.reason) for d in steps]
    assert key == [(d.t_ms, d.label, d.action, d.reason) for d in chunked]
    assert sum(d.action is not None for d in whole) > 3


def test_the_policy_round_trips_and_the_vote_filter_writes_no_new_key():
    pol = policy(leak_ms=80.0)
    m = pol.to_manifest()
    assert {k: m[k] for k in ("filter", "commit_nats", "evidence_floor", "leak_ms")} == {
        "filter": "accumulate", "commit_nats": 10.0, "evidence_floor": 0.01, "leak_ms": 80.0}
    assert DecisionPolicy.from_manifest(m, GESTURES) == pol
    vote = DecisionPolicy(GESTURES, mode="multiclass", moves_arm=True, commands=CMDS)
    assert not {"filter", "commit_nats", "evidence_floor", "leak_ms"} & set(vote.to_manifest())
    assert DecisionPolicy.from_manifest({**vote.to_manifest(), "filter": "vote"}, GESTURES) == vote
    # defaults from edge.config
    from edge import config
    dflt = DecisionPolicy.from_manifest({"mode": "multiclass", "filter": "accumulate", "vote": 1,
                                         "min_dwell_ms": 0}, GESTURES)
    assert {k: getattr(dflt, k) for k in config.DECISION_ACCUMULATE} == config.DECISION_ACCUMULATE


@pytest.mark.parametrize("manifest, match", [
    ({"filter": "sum"}, r"decision\['filter'\] must be one of 'vote', 'accumulate'"),
    ({"filter": 3}, r"decision\['filter'\] must be one of"),
    ({"commit_nats": 10.0}, r"decision\['commit_nats'\] applies to filter 'accumulate' only"),
    ({"filter": "accumulate", "vote": 2, "min_dwell_ms": 0}, r"replaces the vote and the dwell: set"),
    ({"filter": "accumulate", "vote": 1, "min_dwell_ms": 50}, r"min_dwell_ms'\] to 0"),
    ({"filter": "accumulate", "vote": 1, "min_dwell_ms": 0, "evidence_floor": 0.0}, r"evidence_floor'\] must be"),
    ({"filter": "accumulate", "vote": 1, "min_dwell_ms": 0, "evidence_floor": 0.6}, r"evidence_floor'\] must be"),
    ({"filter": "accumulate", "vote": 1, "min_dwell_ms": 0, "commit_nats": "10"}, r"commit_nats'\] must be a finite"),
    ({"filter": "accumulate", "vote": 1, "min_dwell_ms": 0, "commit_nats": 3.0, "evidence_floor": 0.01},
     r"can be reached by one window .* raise commit_nats above 4.6"),
    ({"filter": "accumulate", "vote": 1, "min_dwell_ms": 0, "leak_ms": -1.0}, r"leak_ms'\] must be .*0 = no leak"),
    ({"filter": "accumulate", "vote": 1, "min_dwell_ms": 0, "leak_ms": math.inf}, r"leak_ms'\] must be a finite"),
])
def test_policy_validation_names_the_key_and_the_fix(manifest, match):
    with pytest.raises(DecisionError, match=match):
        DecisionPolicy.from_manifest({"mode": "multiclass", "moves_arm": True, **manifest}, GESTURES)


def test_the_accumulate_filter_is_for_multiclass_only():
    with pytest.raises(DecisionError, match="is for mode 'multiclass'"):
        DecisionPolicy(("a", "b"), filter="accumulate", vote=1, min_dwell_ms=0)


def test_the_vote_filter_stated_or_not_decides_the_same():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.full(N, 0.2), 400)
    t = np.arange(400) * 25.0
    kw = {"mode": "multiclass", "moves_arm": True, "commands": CMDS, "reject_below": 0.6, "vote": 3, "min_dwell_ms": 50}
    a = Decider(DecisionPolicy(GESTURES, **kw)).process(probs, t)
    b = Decider(DecisionPolicy(GESTURES, filter="vote", **kw)).process(probs, t)
    assert [(d.label, d.action, d.reason) for d in a] == [(d.label, d.action, d.reason) for d in b]


def test_a_stamp_stepping_back_never_grows_the_evidence():
    from edge.decision.evidence import Evidence

    ev = Evidence(3, 50.0, 0.01, 100.0)
    ev.add([0.1, 0.8, 0.1], 1000.0, None)
    before = list(ev.s)
    ev.hold(900.0)  # 100 ms back in time: no decay, and above all no factor > 1
    assert ev.s == before
