"""The :class:`Decider`: per-window probabilities → debounced arm commands (docs/design.md §2).

The :class:`Decider` is a stateful stage in the timeflux style: feed it the probabilities of a
chunk of windows with their timestamps, get one :class:`~edge.decision.policy.Decision` per window
back.  Its behaviour is set by a :class:`~edge.decision.policy.DecisionPolicy`, which a model bundle
stores in its manifest under ``"decision"``; this is how it applies each setting of the policy.

Multi-label tasks (``grasp-lift``), per label and per window
------------------------------------------------------------
1. **Hysteresis**: the label turns *on* when ``p >= threshold`` and stays on while
   ``p >= threshold - hysteresis``.
2. **Vote** (optional): the label counts as on when it was on in a strict majority of the last
   ``vote`` windows (``vote=1``: no voting).
3. **Dwell**: it must have counted as on for at least ``min_dwell_ms`` (from the first window it
   did; less :data:`~edge.config.DECISION_TIME_SLACK_MS`, as ``refractory_ms``: a live stream's stamps
   jitter, a replay's do not) before it may fire.  With the 50 ms decision cadence the default 50 ms means two
   consecutive windows.
4. **Rising edge**: a label fires at most once per episode; it re-arms only after a valid window in
   which it counts as off.
5. **Arbitration**: of the labels ready to fire in one window, the one with the highest
   probability wins (ties: the earlier label); at most one command per window.  The others:

   * a label whose command moves the same joint as the winner's (the same command, or a
     conflicting one such as OPEN against GRASP) is consumed without firing: opening the hand
     50 ms after a grasp would drop the object;
   * a label whose command moves the other joint (e.g. LIFT while GRASP wins) stays pending and
     competes again in the next window, so overlapping events of the grasp-lift sequence
     (each label is ±150 ms around its event) are not lost;
   * a label without a command, or whose command was issued less than ``refractory_ms`` ago, is
     consumed without firing (reason ``"no-command"`` / ``"refractory"``).

Multi-class tasks (``emotion``, ``gesture``)
--------------------------------------------
The Decider publishes a *state* (a label).  Per window the candidate is the most probable class
if its probability is at least ``reject_below`` (otherwise the window is ``"rejected"`` and the
published state is held: confidence rejection), optionally majority-voted over ``vote`` windows;
the published state changes after the candidate has persisted ``min_dwell_ms``.  ``thresholds``
and ``hysteresis`` do not apply.  Without ``moves_arm`` (emotion) ``Decision.action`` is always
``None`` (docs/design.md §2: emotion never moves the arm).  With ``moves_arm`` (EMG gestures) a
change of state to a class that has a command fires that command (reason ``"fired"``), unless
the same action was issued less than ``refractory_ms`` ago (``"refractory"``); a change to a
class without a command (neutral) holds the arm where it is.  With ``filter="accumulate"`` the
vote and dwell give way to evidence summed over windows (:mod:`edge.decision.evidence`): the state
changes when a class's evidence reaches ``commit_nats``; the rest is as above.

Invalid windows
---------------
``process(..., valid=mask)``: a window with ``mask`` False (NaN or saturated samples upstream),
or with a non-finite probability, produces no command and resets every hysteresis, vote and dwell
state (reason ``"invalid"``); a label that already fired keeps its latch, so it does not fire
again when the artifact ends unless it first drops below its off threshold.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from edge._checks import check_type
from edge.config import DECISION_TIME_SLACK_MS
from edge.decision.evidence import Evidence
from edge.decision.policy import JOINTS, Decision, DecisionPolicy
from edge.errors import DecisionError
from firmware_bridge.protocol import Action


class Decider:
    """Stateful stage: per-window probabilities → one :class:`Decision` per window.

    Parameters
    ----------
    policy : DecisionPolicy
    """

    def __init__(self, policy: DecisionPolicy):
        self.policy = check_type(policy, DecisionPolicy, "policy")
        self._n = len(policy.labels)
        # Plain Python lists and floats: with a handful of labels per window, numpy's per-call
        # overhead would cost more than the decisions themselves (this runs every 48 ms).
        self._on = [float(v) for v in policy.thresholds]
        self._off = [float(v) for v in policy.off_thresholds]
        self._actions = [policy.commands.get(lab) for lab in policy.labels]
        self._need = policy.vote // 2 + 1
        self._step = self._step_multilabel if policy.mode == "multilabel" else self._step_multiclass
        self._evidence = None
        if policy.filter == "accumulate":
            self._evidence = Evidence(self._n, policy.commit_nats, policy.evidence_floor, policy.leak_ms)
            self._step = self._step_accumulate
        self._scope_action = policy.refractory_scope == "action"
        # the policy's times, met when they lack less than the slack (live stamps jitter: edge/config.py)
        self._dwell = policy.min_dwell_ms - DECISION_TIME_SLACK_MS
        self._refractory = policy.refractory_ms - DECISION_TIME_SLACK_MS
        self.reset()

    def reset(self) -> None:
        """Forget everything (hysteresis, votes, dwell, latches, refractory, published state)."""
        n, v = self._n, self.policy.vote
        self._active = [False] * n
        self._votes = [deque(maxlen=v) for _ in range(n)]
        self._since: list[float | None] = [None] * n
        self._latched = [False] * n
        self._last_fired: dict = {}  # action (or joint, scope "joint") → time of its last command
        self._last_t: float | None = None
        # multi-class
        self._mc_votes: deque = deque(maxlen=v)
        self._candidate: int | None = None
        self._cand_since: float | None = None
        self._state: int | None = None
        if self._evidence is not None:
            self._evidence.reset()

    @property
    def state(self) -> str | None:
        """Multi-class: the published state (label), ``None`` before the first one."""
        return None if self._state is None else self.policy.labels[self._state]

    def process(self, probs: np.ndarray, t_ms: np.ndarray, valid: np.ndarray | None = None) -> list[Decision]:
        """Decide on a chunk of windows.

        Parameters
        ----------
        probs : array, shape (n_windows, n_labels)
            Per-window probabilities in the policy's label order.
        t_ms : array, shape (n_windows,)
            Window timestamps in milliseconds, non-decreasing within and across calls.
        valid : bool array, shape (n_windows,), optional
            False marks a window computed from NaN or saturated samples.

        Returns
        -------
        list of Decision, one per window.
        """
        p = np.array(probs, dtype=np.float64)  # a copy: each Decision keeps a row of it
        if p.ndim == 1 and self._n > 0 and p.size == self._n:
            p = p[None, :]
        if p.ndim != 2 or p.shape[1] != self._n:
            raise DecisionError(f"probs must have shape (n_windows, {self._n}) for labels "
                                f"{', '.join(self.policy.labels)}; got {np.shape(probs)}")
        k = p.shape[0]
        t = np.asarray(t_ms, dtype=np.float64).reshape(-1)
        if t.shape != (k,):
            raise DecisionError(f"t_ms must have one timestamp per window ({k}), got shape {np.shape(t_ms)}")
        ts = t.tolist()
        if valid is None:
            ok = [True] * k
        else:
            v = np.asarray(valid)
            if v.dtype != bool or v.shape != (k,):
                raise DecisionError(f"valid must be a bool array of shape ({k},), got {v.dtype} {v.shape}")
            ok = v.tolist()
        prev = self._last_t
        for tt in ts:
            if not math.isfinite(tt):
                raise DecisionError("t_ms contains NaN or inf: pass the windows' sample timestamps in ms")
            if prev is not None and tt < prev:
                raise DecisionError("t_ms must be non-decreasing within and across calls; call reset() after a "
                                    "stream restart")
            prev = tt
        rows = p.tolist()
        out = []
        for i in range(k):
            r = rows[i]
            out.append(self._step(r, p[i], ts[i], ok[i] and all(map(math.isfinite, r))))
        if k:
            self._last_t = ts[-1]
        return out

    def step(self, probs, t_ms: float, valid: bool = True) -> Decision:
        """Decide on one window: ``process(probs[None], [t_ms], [valid])[0]`` with less overhead
        (the runtime calls this every decision interval).

        Parameters
        ----------
        probs : array, shape (n_labels,)
        t_ms : float
            Non-decreasing across calls.
        valid : bool
        """
        p = np.array(probs, dtype=np.float64)  # a copy: the Decision keeps it
        if p.shape != (self._n,):
            raise DecisionError(f"probs must have shape ({self._n},) for labels {', '.join(self.policy.labels)}; "
                                f"got {np.shape(probs)}")
        t = float(t_ms)
        if not math.isfinite(t):
            raise DecisionError("t_ms is NaN or inf: pass the window's sample timestamp in ms")
        if self._last_t is not None and t < self._last_t:
            raise DecisionError("t_ms must be non-decreasing across calls; call reset() after a stream restart")
        r = p.tolist()
        d = self._step(r, p, t, bool(valid) and all(map(math.isfinite, r)))
        self._last_t = t
        return d

    # ------------------------------------------------------------------ multi-label
    def interrupt(self) -> None:
        """The signal was interrupted (a gap, bad samples): forget hysteresis, votes and dwell,
        exactly as an invalid window does, but keep latches, refractory times and the clock."""
        self._clear_dwell()
        self._mc_votes.clear()
        self._candidate = self._cand_since = None
        if self._evidence is not None:
            self._evidence.reset()

    def _recent(self, act: Action, t: float) -> bool:
        """Whether ``act`` falls in a refractory time: its own, or (scope "joint") its joints'."""
        keys = (act,) if self._scope_action else JOINTS[act]
        return any(k in self._last_fired and t - self._last_fired[k] < self._refractory for k in keys)

    def _fired(self, act: Action, t: float) -> None:
        for k in ((act,) if self._scope_action else JOINTS[act]):
            self._last_fired[k] = t

    def _clear_dwell(self) -> None:
        self._active = [False] * self._n
        for q in self._votes:
            q.clear()
        self._since = [None] * self._n

    def _decision(self, t, label_i, reason, p, action=None) -> Decision:
        label = None if label_i is None else self.policy.labels[label_i]
        tgt, spd = self.policy.targets[action] if action is not None else (None, None)
        return Decision(t, label, action, tgt, spd, p, reason)

    def _step_multilabel(self, r: list, p: np.ndarray, t: float, ok: bool) -> Decision:
        """One window: ``r`` its probabilities as floats, ``p`` the same as the array the Decision keeps."""
        if not ok:
            self._clear_dwell()
            return self._decision(t, None, "invalid", p)
        n, need, active, since, latched = self._n, self._need, self._active, self._since, self._latched
        voted = [False] * n
        for i in range(n):
            on = r[i] >= (self._off[i] if active[i] else self._on[i])
            active[i] = on
            q = self._votes[i]
            q.append(on)
            voted[i] = on if need == 1 else sum(q) >= need
            if not voted[i]:
                since[i] = None
                latched[i] = False
            elif since[i] is None:
                since[i] = t
        ready = [i for i in range(n) if voted[i] and not latched[i] and t - since[i] >= self._dwell]
        if not ready:
            on = [i for i in range(n) if voted[i]]
            if not on:
                return self._decision(t, None, "idle", p)
            lead = max(on, key=lambda i: (r[i], -i))
            return self._decision(t, lead, "latched" if latched[lead] else "dwell", p)
        order = sorted(ready, key=lambda i: (-r[i], i))
        consumed: list[tuple[int, str]] = []
        eligible = []
        for i in order:
            act = self._actions[i]
            if act is None:
                consumed.append((i, "no-command"))
            elif self._recent(act, t):
                consumed.append((i, "refractory"))
            else:
                eligible.append(i)
        for i, _ in consumed:
            latched[i] = True
        if eligible:
            win = eligible[0]
            act = self._actions[win]
            latched[win] = True
            self._fired(act, t)
            for i in eligible[1:]:
                if JOINTS[self._actions[i]] & JOINTS[act]:
                    latched[i] = True  # same joint: duplicate or conflicting command
            return self._decision(t, win, "fired", p, act)
        i, why = consumed[0]
        return self._decision(t, i, why, p)

    # ------------------------------------------------------------------ multi-class
    def _step_multiclass(self, r: list, p: np.ndarray, t: float, ok: bool) -> Decision:
        pol = self.policy
        if not ok:
            self._mc_votes.clear()
            self._candidate = self._cand_since = None
            return Decision(t, self.state, None, None, None, p, "invalid")
        top = max(range(self._n), key=r.__getitem__)  # the first of equal maxima, as np.argmax
        raw = top if r[top] >= pol.reject_below else None
        self._mc_votes.append(raw)
        counts: dict[int | None, int] = {}
        for vote in self._mc_votes:
            counts[vote] = counts.get(vote, 0) + 1
        best = max(counts, key=lambda k: counts[k])
        voted = best if counts[best] >= pol.vote // 2 + 1 else None
        if voted is None:
            self._candidate = self._cand_since = None
            reason = "rejected"
        elif voted == self._state:
            self._candidate = self._cand_since = None
            reason = "steady"
        else:
            if self._candidate != voted:
                self._candidate, self._cand_since = voted, t
            if t - self._cand_since >= self._dwell:
                self._state = voted
                self._candidate = self._cand_since = None
                act = self._actions[voted]
                if act is not None:  # only with moves_arm (the policy refuses commands otherwise)
                    if self._recent(act, t):
                        return self._decision(t, voted, "refractory", p)
                    self._fired(act, t)
                    return self._decision(t, voted, "fired", p, act)
                reason = "changed"
            else:
                reason = "dwell"
        return Decision(t, self.state, None, None, None, p, reason)

    def _step_accumulate(self, r: list, p: np.ndarray, t: float, ok: bool) -> Decision:
        """Multi-class with the accumulate filter: evidence instead of vote and dwell."""
        ev = self._evidence
        if not ok:
            ev.reset()
            return Decision(t, self.state, None, None, None, p, "invalid")
        if max(r) < self.policy.reject_below:
            ev.hold(t)
            return Decision(t, self.state, None, None, None, p, "rejected")
        won = ev.add(r, t, self._state)
        if won is None:
            return Decision(t, self.state, None, None, None, p, "dwell" if ev.pending else "steady")
        self._state = won
        ev.reset()
        ev.hold(t)  # the clock of the next window's decay
        act = self._actions[won]
        if act is None:
            return Decision(t, self.state, None, None, None, p, "changed")
        if self._recent(act, t):
            return self._decision(t, won, "refractory", p)
        self._fired(act, t)
        return self._decision(t, won, "fired", p, act)
