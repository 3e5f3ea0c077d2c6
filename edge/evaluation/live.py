"""A live run's commands against the truth of the recording it ran on (``neurogrip run`` on a labelled
replay, ``neurogrip demo``): which commands were right, and continuous use as a user feels it
(:mod:`edge.evaluation.scoring`, with the policy's label → command map of :mod:`edge.evaluation.replay`).

``fired`` is the runtime's ``RunSummary.fired`` (``(t_end, label, action, _)`` per command) and ``rows``
the recording row of each window's last sample (:meth:`edge.sources.ReplaySource.rows_at` for a
replay, :meth:`edge.sources.player.Player.rows_at` for a recording streamed over LSL; -1: none).
"""

from __future__ import annotations

import numpy as np

from edge.evaluation.replay import command_map
from edge.evaluation.scoring import score_continuous


def truth_table(bundle, recording, fired, rows) -> dict:
    """Commands vs the recording's true events: a command is *correct* when its own event is true at the
    row of its window's last sample."""
    labels = list(bundle.labels)
    per = {lab: {"commands": 0, "correct": 0} for lab in labels}
    for (_, label, _, _), row in zip(fired, rows):
        per[label]["commands"] += 1
        if row >= 0 and recording.labels is not None and recording.labels[row, labels.index(label)]:
            per[label]["correct"] += 1
    occurrences = {}
    if recording.labels is not None:
        for k, lab in enumerate(labels):
            col = recording.labels[:, k].astype(np.int8)
            occurrences[lab] = int((np.diff(np.concatenate([[0], col])) == 1).sum())
    total = sum(v["commands"] for v in per.values())
    correct = sum(v["correct"] for v in per.values())
    return {"per_label": per, "event_occurrences": occurrences, "commands": total, "correct": correct,
            "precision": correct / total if total else None}


def format_truth(t: dict) -> str:
    lines = ["decisions vs true labels (command counted correct when its event is true at the window's last sample)",
             "  label                 commands  correct  true events in recording"]
    for lab, v in t["per_label"].items():
        lines.append(f"  {lab:<20} {v['commands']:>9} {v['correct']:>8} {t['event_occurrences'].get(lab, 0):>10}")
    prec = "n/a" if t["precision"] is None else f"{t['precision']:.2f}"
    lines.append(f"  all                  {t['commands']:>9} {t['correct']:>8}   precision {prec}")
    return "\n".join(lines)


def continuous_use(bundle, recording, fired, rows) -> dict:
    """Continuous-use scores of a live run (:func:`edge.evaluation.scoring.score_continuous`): the commands
    the arm received, at the recording row of their window's last sample, against the class held at
    each sample (a multi-class recording: one class per sample)."""
    commands = [(int(row), action) for (_, _, action, _), row in zip(fired, rows) if row >= 0]
    s = score_continuous(recording.labels.argmax(axis=1), recording.fs, commands,
                         command_map(bundle.decision_policy()),
                         grace_s=bundle.window["length"] * bundle.signal_chain().factor / bundle.fs)
    return {k: v for k, v in s.items() if k not in ("per_command", "delays_ms")}


def format_continuous(s: dict) -> str:
    d = s["delay_ms"]
    delay = f"p50 {d['p50']:.0f} ms, p90 {d['p90']:.0f} ms" if d.get("n") else "n/a"
    fa = "n/a" if s["false_activations_per_min"] is None else f"{s['false_activations_per_min']:.1f}/min"
    return ("continuous use (as a user feels it)\n"
            f"  gestures commanded     {s['detected']}/{s['gestures']}\n"
            f"  delay from gesture start to its command: {delay}\n"
            f"  false activations      {s['false_activations']} in {s['rest_minutes']:.2f} min of rest ({fa})\n"
            f"  wrong commands         {s['wrong_commands']} ({s['wrong_per_min']:.1f}/min)")


def run_scores(bundle, recording, fired, rows) -> dict:
    """What ``demo`` and ``run`` report at the end of a labelled replay: ``truth`` (:func:`truth_table`)
    and, for a multi-class task that moves the arm (one class per sample), ``continuous``
    (:func:`continuous_use`).  Empty when the recording has no labels or the task never moves the arm."""
    if recording.labels is None or not bundle.decision_policy().moves_arm:
        return {}
    out = {"truth": truth_table(bundle, recording, fired, rows)}
    if bundle.task_spec.mode == "multiclass":
        out["continuous"] = continuous_use(bundle, recording, fired, rows)
    return out


def format_scores(scores: dict) -> str:
    """The scores of :func:`run_scores` as a person reads them (empty: nothing to say)."""
    parts = ([format_truth(scores["truth"])] if "truth" in scores else []) + (
        [format_continuous(scores["continuous"])] if "continuous" in scores else [])
    return "\n\n".join(parts)
