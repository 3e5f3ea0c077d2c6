"""Continuous-use scores: what a prosthesis user feels, from a replayed stream and its commands.

Window accuracy says little about use: a controller that is right 98 % of the windows can still
fire a wrong command every few seconds.  These scores read the commands a run fired against the
per-sample truth of the recording, as a user would judge them (numpy only, so the Pi can score
a calibration session):

* **segments** — maximal runs of one true class (a held gesture, or rest);
* **false activations** — commands fired while the truth is the rest class;
* **detected** — a gesture whose command fired while it was held, and the **delay** from the
  gesture's start to that command;
* **wrong commands** — every command that is not the command of the class being held.

A window ends at its last sample, but its first samples may still belong to the previous
segment: a command in the first ``grace_s`` seconds after a change (the window length) that is
the previous segment's command is counted for that segment, not as a false or wrong one.
Causal by construction: each command is judged by the truth at or before its window's end.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edge._checks import check_int, check_number
from edge.stats import percentiles


@dataclass(frozen=True)
class Segment:
    """Rows ``[start, stop)`` where the truth is class ``label``."""

    start: int
    stop: int
    label: int


def segments_of(truth: np.ndarray) -> list[Segment]:
    """The maximal runs of one class in a per-sample class index array."""
    y = np.asarray(truth)
    if y.ndim != 1:
        raise ValueError(f"truth must be one class index per sample (1-D), got shape {y.shape}")
    if not len(y):
        return []
    cuts = np.flatnonzero(np.diff(y) != 0) + 1
    bounds = [0, *cuts.tolist(), len(y)]
    return [Segment(a, b, int(y[a])) for a, b in itertools.pairwise(bounds)]



def score_continuous(truth, fs: float, commands: Sequence[tuple[int, str]], command_of: Mapping[int, str | None],
                     *, rest: int = 0, grace_s: float = 0.0) -> dict:
    """Score the commands of one continuous replay.

    Parameters
    ----------
    truth : array of int, shape (n_samples,)
        The true class of every sample (e.g. ``recording.labels.argmax(axis=1)``).
    fs : float
        Sampling rate of ``truth``.
    commands : sequence of (sample index, action name)
        Every command fired, at the source index of its window's last sample.
    command_of : mapping class index → action name or None
        The command each class should give (the bundle's label → command map); classes that
        map to None (rest, unmapped gestures) should give none.
    rest : int
        The rest (neutral) class.
    grace_s : float
        See the module docstring; usually the window length.

    Returns
    -------
    dict
        ``minutes``, ``rest_minutes``, ``commands``, ``false_activations`` and
        ``false_activations_per_min`` (during rest), ``gestures`` (segments of a class with a
        command), ``detected``, ``detected_fraction``, ``delay_ms`` (p50/p90/max from gesture
        start to its command; ``delays_ms`` every value), ``wrong_commands`` and ``wrong_per_min``
        (all minutes), and ``per_command``: each command with its verdict.
    """
    y = np.asarray(truth)
    fs = check_number(fs, "fs", lo=0.0, lo_open=True)
    rest = check_int(rest, "rest", lo=0)
    grace = round(check_number(grace_s, "grace_s", lo=0.0) * fs)
    segs = segments_of(y)
    starts = np.array([s.start for s in segs], np.int64)
    detected_at: dict[int, int] = {}
    verdicts = []
    false_act = wrong = 0
    for index, action in commands:
        index = check_int(index, "command index", lo=0)
        if index >= len(y):
            raise ValueError(f"a command at sample {index} is past the end of the truth ({len(y)} samples)")
        k = int(np.searchsorted(starts, index, side="right")) - 1
        seg = segs[k]
        own = command_of.get(seg.label)
        late = k > 0 and index - seg.start < grace and command_of.get(segs[k - 1].label) == action
        if action == own and own is not None:
            verdict = "correct"
            detected_at.setdefault(k, index)
        elif late:
            verdict = "late"  # the previous gesture's command, its window still mostly in that gesture
            detected_at.setdefault(k - 1, index)
        elif seg.label == rest:
            verdict = "false activation"
            false_act += 1
            wrong += 1
        else:
            verdict = "wrong"
            wrong += 1
        verdicts.append({"index": index, "action": action, "truth": seg.label, "verdict": verdict})
    gestures = [k for k, s in enumerate(segs) if command_of.get(s.label) is not None]
    delays = [(detected_at[k] - segs[k].start) / fs * 1e3 for k in gestures if k in detected_at]
    minutes = len(y) / fs / 60.0
    rest_minutes = sum(s.stop - s.start for s in segs if s.label == rest) / fs / 60.0
    return {
        "minutes": minutes, "rest_minutes": rest_minutes, "commands": len(verdicts),
        "false_activations": false_act,
        "false_activations_per_min": false_act / rest_minutes if rest_minutes else None,
        "gestures": len(gestures), "detected": len(delays),
        "detected_fraction": len(delays) / len(gestures) if gestures else None,
        "delay_ms": percentiles(delays), "delays_ms": delays, "wrong_commands": wrong,
        "wrong_per_min": wrong / minutes if minutes else None, "per_command": verdicts,
    }


def decoder_delays(truth, fs: float, probs: np.ndarray, idx: np.ndarray, command_of: Mapping[int, str | None]
                   ) -> list[float]:
    """The decoder's share of the delay: for each commanded gesture, ms from its start to the end of
    the first window whose most probable class is that gesture (window fill and stride; no
    confidence, vote or dwell).  Gestures the decoder never names while held are left out.

    Parameters
    ----------
    truth : array of int, shape (n_samples,)
    fs : float
    probs : ndarray (n_windows, n_classes)
        The model's outputs of one continuous replay.
    idx : ndarray (n_windows,)
        Each window's last sample index (as :func:`edge.evaluation.replay.replay_probs` gives them).
    command_of : mapping class index → action name or None
    """
    y = np.asarray(truth)
    fs = check_number(fs, "fs", lo=0.0, lo_open=True)
    idx = np.asarray(idx, np.int64)
    named = np.asarray(probs).argmax(axis=1)
    out = []
    for seg in segments_of(y):
        if command_of.get(seg.label) is None:
            continue
        inside = (idx >= seg.start) & (idx < seg.stop) & (named == seg.label)
        if inside.any():
            out.append((int(idx[np.flatnonzero(inside)[0]]) - seg.start) / fs * 1e3)
    return out


def brief(score: dict) -> dict:
    """A score without its per-command and per-delay lists: what a report or a manifest keeps."""
    return {k: v for k, v in score.items() if k not in ("per_command", "delays_ms")}


def score_line(score: dict) -> str:
    """One line a person reads: gestures commanded, false activations, wrong commands, delay."""
    d = score.get("delay_ms", {})
    return (f"{score['detected']}/{score['gestures']} gestures commanded, {score['false_activations']} false "
            f"activations in {score['rest_minutes']:.2f} min of rest, {score['wrong_commands']} wrong, delay p50 "
            + (f"{d['p50']:.0f} ms" if d.get("n") else "n/a"))


def combine(scores: Sequence[dict]) -> dict:
    """Pool several replays' scores (sums and rates over the pooled time; delays pooled)."""
    scores = list(scores)
    if not scores:
        return {}
    minutes = sum(s["minutes"] for s in scores)
    rest_minutes = sum(s["rest_minutes"] for s in scores)
    fa = sum(s["false_activations"] for s in scores)
    wrong = sum(s["wrong_commands"] for s in scores)
    gestures = sum(s["gestures"] for s in scores)
    detected = sum(s["detected"] for s in scores)
    delays = [d for s in scores for d in s["delays_ms"]]
    out = {"replays": len(scores), "minutes": minutes, "rest_minutes": rest_minutes,
           "commands": sum(s["commands"] for s in scores), "false_activations": fa,
           "false_activations_per_min": fa / rest_minutes if rest_minutes else None,
           "gestures": gestures, "detected": detected, "detected_fraction": detected / gestures if gestures else None,
           "wrong_commands": wrong, "wrong_per_min": wrong / minutes if minutes else None}
    out["delay_ms"] = percentiles(delays)
    return out



def score_sequence(labels, label_names: Sequence[str], fs: float, commands: Sequence[tuple[int, str, str]],
                   sequence: Sequence[str], *, rest_margin_s: float = 0.5) -> dict:
    """Score a multi-label replay (grasp-and-lift) as a user feels it.

    Parameters
    ----------
    labels : array (n, k) of bool
        Per-row truth of each event label (rows: samples, or windows); column 0 starts a trial.
    label_names : sequence of str
        The names of the label columns.
    fs : float
        Rate of the rows of ``labels``.
    commands : sequence of (row, label, action name)
        Every command sent, at the row of its window's last sample, with the label that fired it.
    sequence : sequence of action names
        The actions a complete trial commands in this order (OPEN, GRASP, LIFT, LOWER, RELEASE).
    rest_margin_s : float
        Rows farther than this from any true label are rest.

    Returns
    -------
    dict
        ``commands``; ``wrong_phase`` (and per minute): commands whose own label is not true at
        their row, ``right_phase`` the others; ``trials`` (onsets of label column 0), ``trials_complete`` (the whole
        ``sequence`` commanded in order from the trial's onset to the next trial's onset) and the
        fraction; ``rest_minutes``, ``rest_commands`` and per minute of rest (None without rest).
    """
    y = np.asarray(labels, bool)
    if y.ndim != 2 or y.shape[1] != len(label_names):
        raise ValueError(f"labels must be (n, {len(label_names)}), got shape {y.shape}")
    fs = check_number(fs, "fs", lo=0.0, lo_open=True)
    n = len(y)
    col = {lab: k for k, lab in enumerate(label_names)}
    for row, label, _ in commands:
        check_int(row, "command row", lo=0, hi=n - 1)
        if label not in col:
            raise ValueError(f"a command names label {label!r}, not one of {list(label_names)}")
    wrong = sum(1 for row, label, _ in commands if not y[row, col[label]])
    starts = np.flatnonzero(np.diff(np.r_[0, y[:, 0].astype(np.int8)]) == 1)
    bounds = [*starts.tolist(), n]
    complete = 0
    for a, b in itertools.pairwise(bounds):
        acts = [act for row, _, act in sorted(commands) if a <= row < b]
        it = iter(acts)
        if all(step in it for step in sequence):  # a subsequence, in order
            complete += 1
    margin = round(check_number(rest_margin_s, "rest_margin_s", lo=0.0) * fs)
    active = y.any(axis=1).astype(np.int32)
    near = np.convolve(active, np.ones(2 * margin + 1, np.int32), "same") > 0 if margin else active.astype(bool)
    rest = ~near
    rest_minutes = float(rest.sum()) / fs / 60.0
    rest_cmds = sum(1 for row, _, _ in commands if rest[row])
    minutes = n / fs / 60.0
    trials = len(starts)
    return {"minutes": minutes, "commands": len(commands), "wrong_phase": wrong, "right_phase": len(commands) - wrong,
            "wrong_phase_per_min": wrong / minutes if minutes else None,
            "trials": trials, "trials_complete": complete,
            "trials_complete_fraction": complete / trials if trials else None,
            "rest_minutes": rest_minutes, "rest_commands": rest_cmds,
            "rest_commands_per_min": rest_cmds / rest_minutes if rest_minutes > 0 else None}


def combine_sequences(scores: Sequence[dict]) -> dict:
    """Pool several :func:`score_sequence` results (sums, rates over the pooled time)."""
    scores = list(scores)
    if not scores:
        return {}
    tot = {k: sum(s[k] for s in scores) for k in ("minutes", "commands", "wrong_phase", "right_phase", "trials",
                                                 "trials_complete", "rest_minutes", "rest_commands")}
    return {**tot, "replays": len(scores),
            "wrong_phase_per_min": tot["wrong_phase"] / tot["minutes"] if tot["minutes"] else None,
            "trials_complete_fraction": tot["trials_complete"] / tot["trials"] if tot["trials"] else None,
            "rest_commands_per_min": tot["rest_commands"] / tot["rest_minutes"] if tot["rest_minutes"] > 0
            else None}
