"""Offline evaluation through the edge's own path (numpy only: runs on the Pi, in the bench and in
training alike): a recording replayed through :class:`edge.runtime.Pipeline`, its window accuracy,
and the commands a decision policy fires on it, scored as continuous use (:mod:`edge.scoring`).
"""

from __future__ import annotations

import numpy as np

from edge.chain import segment_windows
from edge.decision import Decider, DecisionPolicy
from edge.recordings import Recording
from edge.runtime import Pipeline
from edge.scoring import score_continuous
from edge.sources import ReplaySource


def replay_probs(bundle, rec: Recording) -> tuple[np.ndarray, np.ndarray]:
    """Every window of a recording through the live pipeline: (probabilities (n, k), last-sample index (n,))."""
    src = ReplaySource(rec, speed=0)
    pipe = Pipeline(bundle, src.channels, src.fs, drop_stale=False)
    probs, idx = [], []
    while (c := src.read()) is not None:
        for r in pipe.process(c):
            probs.append(r.probs)
            idx.append(r.index_end)
    return np.array(probs, np.float32).reshape(-1, len(bundle.labels)), np.array(idx, np.int64)


def fired_commands(policy: DecisionPolicy, probs: np.ndarray, idx: np.ndarray, fs: float) -> list[tuple[int, str]]:
    """The commands ``policy`` fires on a replay's probabilities: (window's last sample, action name)."""
    decisions = Decider(policy).process(probs, idx / fs * 1000.0)
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
    for start, stop in rec.segments:
        chain.reset()
        windows, ends = segment_windows(chain, rec.samples[start:stop], length, stride)
        if not len(ends):
            continue
        pred = np.argmax(model.predict(bundle.model_input(windows)), axis=1)
        correct += int((pred == truth[start + ends * f + f - 1]).sum())
        total += len(ends)
    return correct, total
