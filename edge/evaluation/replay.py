"""Offline evaluation through the edge's own path (numpy only: runs on the Pi, in the bench and in
training alike): a recording replayed through :class:`edge.runtime.Pipeline`, its window accuracy,
and the commands a decision policy fires on it, scored as continuous use (:mod:`edge.evaluation.scoring`).
"""

from __future__ import annotations

import itertools

import numpy as np

from edge.chain.signal_chain import segment_windows
from edge.decision import ArmState, Decider, DecisionPolicy
from edge.evaluation.scoring import score_continuous
from edge.recordings import Recording
from edge.runtime import Pipeline
from edge.sources import ReplaySource


def replay(bundle, rec: Recording, chunk: int | None = None) -> dict:
    """Every window of a recording through the live pipeline, as the runtime without an arm runs it.

    Returns ``probs`` (n, k), ``index`` (n,) the source index of each window's last sample,
    ``decisions`` (the runtime's, after the arm-state gate) and ``states`` (the arm's state after
    each window; chunks of at most one stride hold at most one window each).
    """
    src = ReplaySource(rec, speed=0, chunk=chunk)
    pipe = Pipeline(bundle, src.channels, src.fs, drop_stale=False)
    probs, idx, decisions, states = [], [], [], []
    while (c := src.read()) is not None:
        for r in pipe.process(c):
            probs.append(r.probs)
            idx.append(r.index_end)
            decisions.append(r.decision)
            states.append(pipe.arm_state.state)
    return {"probs": np.array(probs, np.float32).reshape(-1, len(bundle.labels)),
            "index": np.array(idx, np.int64), "decisions": decisions, "states": states}


def replay_probs(bundle, rec: Recording) -> tuple[np.ndarray, np.ndarray]:
    """Every window of a recording through the live pipeline: (probabilities (n, k), last-sample index (n,))."""
    r = replay(bundle, rec)
    return r["probs"], r["index"]


def timeline(bundle, rec: Recording, seconds: float | None = None) -> dict:
    """What a replay did, window by window, for a picture (:func:`benchmarks.plots.timeline_png`):
    the true labels, the probabilities, each decision and the arm's state (JSON-ready lists), on the
    recording's own time (``t_s``: its sample index over its rate), and ``gaps``: ``[end, start]`` in
    seconds at each boundary between its segments (equal ends: separately recorded parts joined back
    to back, as a Myo session's files; the chain restarts at every boundary)."""
    if seconds is not None:
        n = min(rec.n_samples, int(seconds * rec.fs))
        segs = np.array([[a, min(b, n)] for a, b in rec.segments if a < n], np.int64)
        rec = Recording(rec.samples[:n], rec.channels, rec.fs, segs, rec.sample_index[:n],
                        None if rec.labels is None else rec.labels[:n], rec.label_names, rec.state, rec.subject,
                        rec.session, None if rec.timestamps is None else rec.timestamps[:n], rec.source)
    r = replay(bundle, rec)
    policy = bundle.decision_policy()
    t = (rec.sample_index[r["index"]] / rec.fs).tolist() if len(r["index"]) else []
    truth = None
    if rec.labels is not None:
        cols = [list(rec.label_names).index(lab) for lab in bundle.labels if lab in rec.label_names]
        truth = rec.labels[r["index"]][:, cols].astype(int).tolist() if cols else None
    return {"labels": list(bundle.labels), "t_s": t, "probs": np.round(r["probs"], 4).tolist(), "truth": truth,
            "thresholds": [float(v) for v in policy.thresholds] if policy.mode == "multilabel" else None,
            "decisions": [{"t_s": t[i], "label": d.label, "action": d.action.name if d.action else None,
                           "reason": d.reason, "detail": d.detail}
                          for i, d in enumerate(r["decisions"]) if d.action is not None or d.reason == "held"],
            "states": r["states"], "state_names": list(policy.sequence.transitions) if policy.sequence else [],
            "gaps": [[float(rec.sample_index[b - 1] + 1) / rec.fs, float(rec.sample_index[a]) / rec.fs]
                     for (_, b), (a, _) in itertools.pairwise(rec.segments.tolist())],
            "source": str(rec.source), "task": bundle.task}


def fired_commands(policy: DecisionPolicy, probs: np.ndarray, idx: np.ndarray, fs: float) -> list[tuple[int, str]]:
    """The commands ``policy`` sends on a replay's probabilities (after the arm-state gate, as the
    runtime): (window's last sample, action name).  ``idx`` are the windows' last-sample indices of
    one continuous replay."""
    decisions = simulate_decisions(policy, probs, idx / fs * 1000.0)
    return [(int(i), d.action.name) for i, d in zip(idx, decisions) if d.action is not None]


def command_map(policy: DecisionPolicy) -> dict[int, str | None]:
    """Class index → the action name the policy commands for it (None: holds the arm)."""
    return {i: (None if policy.commands.get(lab) is None else policy.commands[lab].name)
            for i, lab in enumerate(policy.labels)}


def continuous_score(bundle, rec: Recording, policy: DecisionPolicy | None = None, *, probs=None) -> dict:
    """Continuous use of a multi-class recording (per-sample one-hot ``labels``) with ``policy``
    (default: the bundle's); the grace for late commands is the window length."""
    policy = policy or bundle.decision_policy()
    probs, idx = probs if probs is not None else replay_probs(bundle, rec)
    return score_continuous(rec.labels.argmax(axis=1), rec.fs, fired_commands(policy, probs, idx, rec.fs),
                            command_map(policy), grace_s=bundle.window["length"] * bundle.signal_chain().factor
                            / bundle.fs)


def window_accuracy(bundle, rec: Recording) -> tuple[int, int]:
    """(correct, total) int8 window predictions of a multi-class recording, each segment on its own
    (the chain restarts per segment; a window's truth is the label of its last sample)."""
    chain, model = bundle.signal_chain(), bundle.model()
    length, stride, f = bundle.window["length"], bundle.window["stride"], chain.factor
    truth = rec.labels.argmax(axis=1)
    correct = total = 0
    for start, stop in rec.segments:  # segment_windows restarts the chain for each
        windows, ends = segment_windows(chain, rec.samples[start:stop], length, stride)
        if not len(ends):
            continue
        pred = np.argmax(model.predict(bundle.model_input(windows)), axis=1)
        correct += int((pred == truth[start + ends * f + f - 1]).sum())
        total += len(ends)
    return correct, total


def simulate_decisions(policy: DecisionPolicy, probs: np.ndarray, t_ms: np.ndarray, restart=None) -> list:
    """What the runtime decides on a sequence of window probabilities, offline: the Decider, then the
    arm-state gate with every passed command counted as done (as the Pipeline does without an arm).

    ``restart[i]`` True: window ``i`` follows a gap (the runtime restarts its chain there and the
    Decider loses its hysteresis, votes and dwell, :meth:`Decider.interrupt`).
    """
    decider, gate = Decider(policy), ArmState(policy.sequence)
    out = []
    for i in range(len(probs)):
        if restart is not None and restart[i] and i:
            decider.interrupt()
        d = gate.gate(decider.step(probs[i], float(t_ms[i])), confirm=True)
        out.append(d)
    return out
