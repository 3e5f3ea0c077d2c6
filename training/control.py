"""Decision parameters chosen by an explicit objective on the tune block (never the test block).

For a multi-label task (grasp-lift) the controller is the Decider plus the arm-state gate
(:mod:`edge.decision.sequence`).  On the tune windows, replayed in time order per recording as the
runtime would decide them (:func:`edge.evaluation.replay.simulate_decisions`), a grid over the
thresholds' level (a multiple of the per-label Youden thresholds), the dwell time and the vote is
scored as a user feels it (:func:`edge.evaluation.scoring.score_sequence`) and the point chosen by
:data:`OBJECTIVE`: the most trials whose whole sequence is commanded in order, subject to at most
10 wrong-phase commands a minute (and 1 command a minute of rest where the data have rest),
then the most right-phase commands, then the fewest wrong-phase ones.  The objective and the chosen point travel in the manifest;
the curve (every grid point) goes to the training report.
"""

from __future__ import annotations

import itertools

import numpy as np

from edge.decision.policy import DEFAULTS as DECISION_DEFAULTS
from edge.decision.policy import DecisionPolicy
from edge.evaluation.replay import simulate_decisions
from edge.evaluation.scoring import combine_sequences, score_sequence
from edge.tasks import get_task
from training.thresholds import choose_thresholds

MAX_WRONG_PHASE_PER_MIN = 10.0
MAX_REST_COMMANDS_PER_MIN = 1.0
OBJECTIVE = {"maximise": "trials whose full sequence is commanded in order",
             "subject_to": [f"<= {MAX_WRONG_PHASE_PER_MIN:g} wrong-phase commands/min",
                            f"<= {MAX_REST_COMMANDS_PER_MIN:g} command/min of rest (where the data have rest)"],
             "then": ["most right-phase commands", "fewest wrong-phase commands"],
             "data": "tune block (series 6), replayed per recording"}
GRID = {"level": (0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0), "min_dwell_ms": (0.0, 50.0, 100.0), "vote": (1, 3)}
REFRACTORY_MS = 1000.0


def thresholds_at(base, level: float) -> tuple[tuple[float, ...], float]:
    """Thresholds at ``level`` times the per-label ``base`` (clipped to [0.02, 0.98]) and the hysteresis
    that goes with them (at most the policy default: a label tuned to fire at 0.03 must switch off)."""
    thr = np.clip(np.asarray(base, float) * level, 0.02, 0.98)
    return tuple(float(t) for t in thr), min(DECISION_DEFAULTS["hysteresis"], 0.5 * float(thr.min()))


def _replays(y, scores, t_end, segment, recording):
    """Per recording, the tune windows in time order with a restart flag at each new segment."""
    out = []
    for rec in dict.fromkeys(recording):
        m = np.flatnonzero(recording == rec)
        m = m[np.argsort(t_end[m], kind="stable")]
        seg = segment[m]
        restart = np.r_[True, seg[1:] != seg[:-1]]
        out.append((y[m].astype(bool), scores[m], t_end[m] * 1000.0, restart))
    return out


def tune_multilabel(task_name: str, labels, y, scores, t_end, segment, recording, stride_ms: float):
    """Choose the decision policy of a multi-label bundle on the tune windows.

    Returns ``(policy, chosen score, curve)``; ``curve`` lists every grid point with its score.
    """
    spec = get_task(task_name)
    base = np.asarray(choose_thresholds(np.asarray(y, bool), scores), float)
    commands = spec.commands_for(labels)
    order = DecisionPolicy(labels=tuple(labels), mode=spec.mode, commands=commands).action_order()
    replays = _replays(np.asarray(y), np.asarray(scores), np.asarray(t_end), np.asarray(segment),
                       np.asarray(recording))
    fs = 1000.0 / stride_ms  # rows are windows
    best, curve = None, []
    for level, dwell, vote in itertools.product(*GRID.values()):
        thr, hysteresis = thresholds_at(base, level)
        pol = DecisionPolicy(labels=tuple(labels), mode=spec.mode, thresholds=thr, hysteresis=hysteresis, min_dwell_ms=dwell, vote=vote, refractory_ms=REFRACTORY_MS,
                             refractory_scope="joint", commands=commands, sequence=spec.sequence,
                             objective={**OBJECTIVE, "chosen": {"level": level, "min_dwell_ms": dwell, "vote": vote},
                                        "base_thresholds": [float(t) for t in base]})
        scores_ = []
        for yy, ss, tt, rr in replays:
            decisions = simulate_decisions(pol, ss, tt, rr)
            cmds = [(i, d.label, d.action.name) for i, d in enumerate(decisions) if d.action is not None]
            scores_.append(score_sequence(yy, labels, fs, cmds, order))
        sc = combine_sequences(scores_)
        ok = (sc["wrong_phase_per_min"] or 0.0) <= MAX_WRONG_PHASE_PER_MIN and (
            sc["rest_commands_per_min"] is None or sc["rest_commands_per_min"] <= MAX_REST_COMMANDS_PER_MIN)
        curve.append({"level": level, "min_dwell_ms": dwell, "vote": vote, "feasible": ok,
                      **{k: sc[k] for k in ("wrong_phase_per_min", "trials_complete_fraction", "rest_commands_per_min",
                                            "commands", "right_phase")}})
        key = (ok, (sc["trials_complete_fraction"] or 0.0) if ok else -(sc["wrong_phase_per_min"] or 0.0),
               sc["right_phase"] if ok else 0, -(sc["wrong_phase_per_min"] or 0.0))
        if best is None or key > best[0]:
            best = (key, pol, sc)
    return best[1], best[2], curve
