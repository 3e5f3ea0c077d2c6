"""From model probabilities to debounced arm commands (design.md §2, the ``edge.decision`` stage).

The :class:`Decider` is a stateful stage in the timeflux style: feed it the probabilities of a
chunk of windows with their timestamps, get one :class:`Decision` per window back.  Its behaviour
is set by a :class:`DecisionPolicy`, which a model bundle stores in its manifest under
``"decision"`` (see :meth:`DecisionPolicy.to_manifest`).

Multi-label tasks (``grasp-lift``), per label and per window
------------------------------------------------------------
1. **Hysteresis**: the label turns *on* when ``p >= threshold`` and stays on while
   ``p >= threshold - hysteresis``.
2. **Vote** (optional): the label counts as on when it was on in a strict majority of the last
   ``vote`` windows (``vote=1``: no voting).
3. **Dwell**: it must have counted as on for at least ``min_dwell_ms`` (from the first window it
   did) before it may fire.  With the 50 ms decision cadence the default 50 ms means two
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

Multi-class tasks (``muse-emotion``)
------------------------------------
The Decider publishes a *state* (a label), never an arm command: ``Decision.action`` is always
``None`` (design §2: emotion never moves the arm).  Per window the candidate is the most probable
class if its probability is at least ``reject_below`` (otherwise the window is ``"rejected"`` and
the published state is held), optionally majority-voted over ``vote`` windows; the published
state changes after the candidate has persisted ``min_dwell_ms``.  ``thresholds``, ``hysteresis``,
``refractory_ms`` and ``commands`` do not apply (``commands`` must be empty).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge.errors import DecisionError
from firmware_bridge.protocol import ANGLE_MAX_DDEG, SPEED_MAX_DDEG_S, Action

MODES = ("multilabel", "multiclass")

#: design.md §2: grasp-lift events → arm actions.
DEFAULT_COMMANDS: dict[str, str] = {
    "HandStart": "OPEN",
    "FirstDigitTouch": "GRASP",
    "BothStartLoadPhase": "GRASP",
    "LiftOff": "LIFT",
    "Replace": "LOWER",
    "BothReleased": "RELEASE",
}

#: Default target (tenths of a degree) and speed (tenths of a degree per second) per action.
#: Inside the firmware's default joint limits (firmware/core/ng_config.h): gripper (joint 0)
#: 200-1600, max speed 1200; lift (joint 1) 300-1500, max speed 900.  HOLD and REST ignore the
#: target (the firmware stops / goes to each joint's safe pose); 400 is the safe pose.
DEFAULT_TARGETS: dict[str, tuple[int, int]] = {
    "OPEN": (1500, 900),
    "GRASP": (300, 900),
    "RELEASE": (1500, 900),
    "LIFT": (1200, 900),
    "LOWER": (300, 900),
    "HOLD": (400, 900),
    "REST": (400, 900),
}

#: Which joints an action moves (PROTOCOL.md, "Actions"): 0 gripper, 1 lift.
_JOINTS = {
    Action.GRASP: frozenset({0}), Action.RELEASE: frozenset({0}), Action.OPEN: frozenset({0}),
    Action.LIFT: frozenset({1}), Action.LOWER: frozenset({1}),
    Action.HOLD: frozenset({0, 1}), Action.REST: frozenset({0, 1}),
}

_DEFAULTS = {
    "mode": "multilabel",
    "threshold": 0.5,
    "hysteresis": 0.1,
    "min_dwell_ms": 50.0,
    "refractory_ms": 1000.0,
    "vote": 1,
    "reject_below": 0.5,
}
_KEYS = ("mode", "thresholds", "hysteresis", "min_dwell_ms", "refractory_ms", "vote", "reject_below",
         "commands", "targets")


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _number(key: str, value, lo: float, hi: float, *, lo_open: bool = False, fix: str = "") -> float:
    if not _is_number(value) or not math.isfinite(float(value)):
        raise DecisionError(f"decision[{key!r}] must be a finite number, got {value!r}")
    v = float(value)
    if v < lo or v > hi or (lo_open and v == lo):
        lo_txt = f"> {lo:g}" if lo_open else f">= {lo:g}"
        raise DecisionError(f"decision[{key!r}] must be {lo_txt} and <= {hi:g}, got {v:g}" + (
            f"; {fix}" if fix else ""))
    return v


def _action(key: str, value) -> Action:
    if isinstance(value, Action):
        return value
    if isinstance(value, str) and value.upper() in Action.__members__:
        return Action[value.upper()]
    raise DecisionError(f"decision[{key!r}] must be an arm action name, one of "
                        f"{', '.join(Action.__members__)}; got {value!r}")


@dataclass(frozen=True)
class DecisionPolicy:
    """How probabilities become arm commands (multi-label) or a published state (multi-class).

    Parameters
    ----------
    labels : sequence of str
        The model's output labels, in output order (the bundle manifest's label names).
    mode : {"multilabel", "multiclass"}
        ``"multilabel"``: independent per-label (sigmoid) probabilities, drives the arm.
        ``"multiclass"``: one softmax distribution, publishes a state, never moves the arm.
    thresholds : float or sequence of float, optional
        Per-label "on" threshold in (0, 1]; one number applies to every label.  Default 0.5
        (training stores the values of :func:`choose_thresholds`).  Multi-label only.
    hysteresis : float
        Off threshold = threshold - hysteresis (default 0.1); must leave every off threshold > 0.
    min_dwell_ms : float
        How long a label (or a multi-class candidate) must persist before it fires (default 50).
    refractory_ms : float
        After a command, the same action is not issued again for this long (default 1000).
    vote : int
        Majority vote over the last ``vote`` windows; 1 (default) turns voting off.
    reject_below : float
        Multi-class: a window whose top probability is below this is rejected (default 0.5).
    commands : mapping label -> action name or None, optional
        Arm action per label.  Default for multi-label: design.md §2 (HandStart→OPEN,
        FirstDigitTouch/BothStartLoadPhase→GRASP, LiftOff→LIFT, Replace→LOWER,
        BothReleased→RELEASE) for the labels present; must be empty for multi-class.
    targets : mapping action name -> (target_ddeg, speed_ddeg_s), optional
        Merged over :data:`DEFAULT_TARGETS`.  The firmware clamps targets to its joint limits.
    """

    labels: tuple[str, ...]
    mode: str = _DEFAULTS["mode"]
    thresholds: tuple[float, ...] | float | None = None
    hysteresis: float = _DEFAULTS["hysteresis"]
    min_dwell_ms: float = _DEFAULTS["min_dwell_ms"]
    refractory_ms: float = _DEFAULTS["refractory_ms"]
    vote: int = _DEFAULTS["vote"]
    reject_below: float = _DEFAULTS["reject_below"]
    commands: Mapping[str, Action | None] | None = None
    targets: Mapping[Action, tuple[int, int]] | None = None

    def __post_init__(self):
        put = object.__setattr__
        labels = self.labels
        if isinstance(labels, str) or not isinstance(labels, Sequence) or not labels or not all(
                isinstance(lab, str) and lab for lab in labels):
            raise DecisionError(f"labels must be a non-empty list of label names, got {labels!r}")
        if len(set(labels)) != len(labels):
            raise DecisionError(f"labels must be unique, got {list(labels)}")
        labels = tuple(labels)
        put(self, "labels", labels)
        n = len(labels)

        if self.mode not in MODES:
            raise DecisionError(f"decision['mode'] must be one of {', '.join(MODES)}, got {self.mode!r}")

        thr = _DEFAULTS["threshold"] if self.thresholds is None else self.thresholds
        if _is_number(thr):
            thr = [thr] * n
        if isinstance(thr, (str, bytes)) or not isinstance(thr, (Sequence, np.ndarray)):
            raise DecisionError(f"decision['thresholds'] must be a list of {n} numbers (one per label: "
                                f"{', '.join(labels)}), got {thr!r}")
        thr = list(thr)
        if len(thr) != n:
            raise DecisionError(f"decision['thresholds'] has {len(thr)} values but the model has {n} labels "
                                f"({', '.join(labels)}): give one threshold per label, in label order")
        put(self, "thresholds", tuple(_number("thresholds", t, 0.0, 1.0, lo_open=True) for t in thr))

        h = _number("hysteresis", self.hysteresis, 0.0, 1.0)
        if self.mode == "multilabel" and h >= min(self.thresholds):
            i = int(np.argmin(self.thresholds))
            raise DecisionError(f"decision['hysteresis'] {h:g} >= threshold of {labels[i]!r} "
                                f"({self.thresholds[i]:g}): that label could never switch off; "
                                f"use a hysteresis below every threshold")
        put(self, "hysteresis", h)
        put(self, "min_dwell_ms", _number("min_dwell_ms", self.min_dwell_ms, 0.0, 60_000.0))
        put(self, "refractory_ms", _number("refractory_ms", self.refractory_ms, 0.0, 600_000.0))
        if not isinstance(self.vote, (int, np.integer)) or isinstance(self.vote, bool) or not 1 <= self.vote <= 99:
            raise DecisionError(f"decision['vote'] must be an int in 1..99 (1 = no voting), got {self.vote!r}")
        put(self, "vote", int(self.vote))
        put(self, "reject_below", _number("reject_below", self.reject_below, 0.0, 1.0))

        cmds = self.commands
        if cmds is None:
            cmds = {lab: DEFAULT_COMMANDS[lab] for lab in labels if lab in DEFAULT_COMMANDS} \
                if self.mode == "multilabel" else {}
        if not isinstance(cmds, Mapping):
            raise DecisionError(f"decision['commands'] must map label -> action name, got {cmds!r}")
        out = {}
        for lab, act in cmds.items():
            if lab not in labels:
                raise DecisionError(f"decision['commands'] names label {lab!r}, which the model does not "
                                    f"have; labels are {', '.join(labels)}")
            out[lab] = None if act is None else _action(f"commands.{lab}", act)
        if self.mode == "multiclass" and any(a is not None for a in out.values()):
            raise DecisionError("decision['commands'] must be empty for mode 'multiclass': a multi-class "
                                "(emotion) model publishes a state and never moves the arm (design §2)")
        put(self, "commands", out)

        tg = {Action[k]: v for k, v in DEFAULT_TARGETS.items()}
        given = {} if self.targets is None else self.targets
        if not isinstance(given, Mapping):
            raise DecisionError(f"decision['targets'] must map action name -> [target_ddeg, speed_ddeg_s], "
                                f"got {given!r}")
        for name, pair in given.items():
            act = _action("targets", name)
            key = f"targets.{act.name}"
            if isinstance(pair, Mapping):
                pair = (pair.get("target_ddeg"), pair.get("speed_ddeg_s"))
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise DecisionError(f"decision[{key!r}] must be [target_ddeg, speed_ddeg_s], got {pair!r}")
            t, s = pair
            for what, v, lo, hi in (("target_ddeg", t, 0, ANGLE_MAX_DDEG), ("speed_ddeg_s", s, 1, SPEED_MAX_DDEG_S)):
                if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= v <= hi:
                    raise DecisionError(f"decision[{key!r}] {what} must be an int in {lo}..{hi} "
                                        f"(tenths of a degree{' per second' if what[0] == 's' else ''}), got {v!r}")
            tg[act] = (int(t), int(s))
        put(self, "targets", tg)

    @property
    def off_thresholds(self) -> tuple[float, ...]:
        """Per-label off threshold: ``threshold - hysteresis``."""
        return tuple(t - self.hysteresis for t in self.thresholds)

    def to_manifest(self) -> dict:
        """The JSON-ready dict stored under ``"decision"`` in a bundle manifest (labels live elsewhere)."""
        return {
            "mode": self.mode,
            "thresholds": [float(t) for t in self.thresholds],
            "hysteresis": self.hysteresis,
            "min_dwell_ms": self.min_dwell_ms,
            "refractory_ms": self.refractory_ms,
            "vote": self.vote,
            "reject_below": self.reject_below,
            "commands": {lab: (None if a is None else a.name) for lab, a in self.commands.items()},
            "targets": {a.name: {"target_ddeg": t, "speed_ddeg_s": s} for a, (t, s) in self.targets.items()},
        }

    @classmethod
    def from_manifest(cls, d: Mapping, labels: Sequence[str]) -> DecisionPolicy:
        """Validate and build a policy from a manifest's ``"decision"`` dict; missing keys take defaults.

        Raises
        ------
        DecisionError
            For a non-dict, an unknown key (a typo or a newer bundle format), a wrong type, a
            value out of range or a list whose length does not match ``labels``.
        """
        if not isinstance(d, Mapping):
            raise DecisionError(f"manifest 'decision' must be an object (dict), got {type(d).__name__}")
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise DecisionError(f"manifest 'decision' has unknown key(s) {', '.join(map(repr, unknown))}; "
                                f"known keys: {', '.join(_KEYS)} (a bundle from a newer neurogrip? update "
                                f"neurogrip on this machine)")
        if "mode" in d and not isinstance(d["mode"], str):
            raise DecisionError(f"decision['mode'] must be a string, one of {', '.join(MODES)}")
        if "thresholds" in d and not isinstance(d["thresholds"], (list, tuple)):
            raise DecisionError(f"decision['thresholds'] must be a list with one number per label "
                                f"({len(labels)}), got {d['thresholds']!r}")
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise DecisionError(f"labels must be a list of label names, got {labels!r}")
        kwargs = {k: d[k] for k in _KEYS if k in d}
        return cls(labels=tuple(labels), **kwargs)


@dataclass(eq=False)
class Decision:
    """What the Decider decided for one window.

    ``action`` is ``None`` unless a command fired; then the runtime sends
    ``link.command(action, target_ddeg, speed_ddeg_s, deadline=...)``.  For multi-class policies
    ``label`` is the published state (``None`` until the first one) and ``action`` is always None.

    ``reason`` is one of ``"fired"``, ``"idle"`` (nothing on), ``"dwell"`` (on, waiting for the
    dwell time), ``"latched"`` (on, already fired this episode), ``"refractory"``, ``"no-command"``,
    ``"invalid"``; multi-class: ``"changed"``, ``"steady"``, ``"dwell"``, ``"rejected"``, ``"invalid"``.
    """

    t_ms: float
    label: str | None
    action: Action | None
    target_ddeg: int | None
    speed_ddeg_s: int | None
    probs: np.ndarray = field(repr=False)
    reason: str

    @property
    def speed(self) -> int | None:
        """Alias of :attr:`speed_ddeg_s`."""
        return self.speed_ddeg_s


class Decider:
    """Stateful stage: per-window probabilities → one :class:`Decision` per window.

    Parameters
    ----------
    policy : DecisionPolicy
    """

    def __init__(self, policy: DecisionPolicy):
        if not isinstance(policy, DecisionPolicy):
            raise TypeError(f"policy must be a DecisionPolicy, got {type(policy).__name__}")
        self.policy = policy
        self._n = len(policy.labels)
        # Plain Python lists and floats: with a handful of labels per window, numpy's per-call
        # overhead would cost more than the decisions themselves (this runs every 48 ms).
        self._on = [float(v) for v in policy.thresholds]
        self._off = [float(v) for v in policy.off_thresholds]
        self._actions = [policy.commands.get(lab) for lab in policy.labels]
        self._need = policy.vote // 2 + 1
        self._step = self._step_multilabel if policy.mode == "multilabel" else self._step_multiclass
        self.reset()

    def reset(self) -> None:
        """Forget everything (hysteresis, votes, dwell, latches, refractory, published state)."""
        n, v = self._n, self.policy.vote
        self._active = [False] * n
        self._votes = [deque(maxlen=v) for _ in range(n)]
        self._since: list[float | None] = [None] * n
        self._latched = [False] * n
        self._last_fired: dict[Action, float] = {}
        self._last_t: float | None = None
        # multi-class
        self._mc_votes: deque = deque(maxlen=v)
        self._candidate: int | None = None
        self._cand_since: float | None = None
        self._state: int | None = None

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
        pol = self.policy
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
        ready = [i for i in range(n) if voted[i] and not latched[i] and t - since[i] >= pol.min_dwell_ms]
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
            elif act in self._last_fired and t - self._last_fired[act] < pol.refractory_ms:
                consumed.append((i, "refractory"))
            else:
                eligible.append(i)
        for i, _ in consumed:
            latched[i] = True
        if eligible:
            win = eligible[0]
            act = self._actions[win]
            latched[win] = True
            self._last_fired[act] = t
            for i in eligible[1:]:
                if _JOINTS[self._actions[i]] & _JOINTS[act]:
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
            if t - self._cand_since >= pol.min_dwell_ms:
                self._state = voted
                self._candidate = self._cand_since = None
                reason = "changed"
            else:
                reason = "dwell"
        return Decision(t, self.state, None, None, None, p, reason)


# ---------------------------------------------------------------------- threshold choice
def choose_thresholds(y_true: np.ndarray, scores: np.ndarray, target: str = "youden",
                      max_fpr: float = 0.05) -> np.ndarray:
    """Pick one threshold per label on validation data (a window is "on" when ``score >= threshold``).

    Candidate thresholds are the distinct scores of each column.

    * ``target="youden"``: maximise Youden's J = TPR - FPR; among equal J the highest threshold
      (fewest false positives) wins.
    * ``target="fpr"``: the lowest threshold whose false-positive rate is <= ``max_fpr``, i.e. the
      highest TPR at that FPR budget.  If even the top score exceeds the budget, the threshold is
      just above the top score (the label never fires on this data); it is capped at 1.0 when the
      scores are probabilities.

    Parameters
    ----------
    y_true : bool array, shape (n, k)
    scores : float array, shape (n, k)
    target : {"youden", "fpr"}
    max_fpr : float in [0, 1), used by ``target="fpr"``

    Returns
    -------
    float64 array, shape (k,)

    Raises
    ------
    DecisionError
        Shapes differ, NaN scores, or a label without positives or without negatives.
    """
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if s.ndim == 1:
        s = s[:, None]
    if y.shape != s.shape or y.ndim != 2 or y.shape[0] == 0:
        raise DecisionError(f"y_true and scores must both have shape (n_windows, n_labels), got "
                            f"{np.shape(y_true)} and {np.shape(scores)}")
    if not np.all(np.isfinite(s)):
        raise DecisionError("scores contain NaN or inf: drop those windows first")
    if target not in ("youden", "fpr"):
        raise DecisionError(f"target must be 'youden' or 'fpr', got {target!r}")
    if target == "fpr":
        _number("max_fpr", max_fpr, 0.0, 1.0)
    y = y.astype(bool)
    probabilities = bool(np.all((s >= 0.0) & (s <= 1.0)))
    out = np.empty(y.shape[1])
    for j in range(y.shape[1]):
        yj, sj = y[:, j], s[:, j]
        n_pos = int(yj.sum())
        n_neg = yj.size - n_pos
        if n_pos == 0 or n_neg == 0:
            raise DecisionError(f"label column {j} has {'no positive' if n_pos == 0 else 'no negative'} windows "
                                f"in the validation data: thresholds need both; use a longer validation set")
        order = np.argsort(-sj, kind="stable")
        ss, yy = sj[order], yj[order]
        tp = np.cumsum(yy)
        fp = np.cumsum(~yy)
        last = np.r_[ss[1:] != ss[:-1], True]  # last index of each run of equal scores
        thr, tpr, fpr = ss[last], tp[last] / n_pos, fp[last] / n_neg
        if target == "youden":
            out[j] = thr[int(np.argmax(tpr - fpr))]  # argmax: first = highest threshold on ties
        else:
            okk = np.nonzero(fpr <= max_fpr)[0]
            if okk.size:
                out[j] = thr[okk[-1]]
            else:
                above = float(np.nextafter(ss[0], np.inf))
                out[j] = min(above, 1.0) if probabilities else above
    return out
