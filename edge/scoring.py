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


def _percentiles(values: Sequence[float]) -> dict:
    if not len(values):
        return {"n": 0}
    a = np.asarray(values, float)
    return {"n": int(a.size), "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "max": float(a.max())}


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
        "delay_ms": _percentiles(delays), "delays_ms": delays, "wrong_commands": wrong,
        "wrong_per_min": wrong / minutes if minutes else None, "per_command": verdicts,
    }


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
    out["delay_ms"] = _percentiles(delays)
    return out
