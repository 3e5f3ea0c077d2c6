"""The decision policy: the ``"decision"`` section of a bundle manifest, validated.

This module is the one config place for the decision defaults (:data:`DEFAULTS`,
:data:`DEFAULT_COMMANDS`, :data:`DEFAULT_TARGETS`); how the :class:`~edge.decision.Decider`
applies a policy is explained in :mod:`edge.decision.decider`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge._checks import check_int, check_number, check_option, check_type, is_number
from edge.decision.evidence import ACCUMULATE_KEYS, check_filter
from edge.decision.sequence import SequenceRules
from edge.errors import DecisionError
from firmware_bridge.protocol import ANGLE_MAX_DDEG, SPEED_MAX_DDEG_S, Action

MODES = ("multilabel", "multiclass")

#: docs/design.md §2: grasp-lift events → arm actions.
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
JOINTS = {
    Action.GRASP: frozenset({0}), Action.RELEASE: frozenset({0}), Action.OPEN: frozenset({0}),
    Action.LIFT: frozenset({1}), Action.LOWER: frozenset({1}),
    Action.HOLD: frozenset({0, 1}), Action.REST: frozenset({0, 1}),
}

#: Default value of each scalar policy setting (``threshold`` applies to every label).
DEFAULTS = {
    "mode": "multilabel",
    "threshold": 0.5,
    "hysteresis": 0.1,
    "min_dwell_ms": 50.0,
    "refractory_ms": 1000.0,
    "vote": 1,
    "reject_below": 0.5,
}
_KEYS = ("mode", "thresholds", "hysteresis", "min_dwell_ms", "refractory_ms", "vote", "reject_below",
         "commands", "targets", "moves_arm", "objective", "sequence", "refractory_scope", "filter",
         *ACCUMULATE_KEYS)
REFRACTORY_SCOPES = ("action", "joint")


def _key(key: str) -> str:
    """How messages name a manifest key: ``decision['key']``."""
    return f"decision[{key!r}]"


def _action(key: str, value) -> Action:
    if isinstance(value, Action):
        return value
    if isinstance(value, str) and value.upper() in Action.__members__:
        return Action[value.upper()]
    raise DecisionError(f"{_key(key)} must be an arm action name, one of "
                        f"{', '.join(Action.__members__)}; got {value!r}")


@dataclass(frozen=True)
class DecisionPolicy:
    """How probabilities become arm commands (multi-label) or a published state (multi-class).

    A model bundle stores it in its manifest under ``"decision"`` (see :meth:`to_manifest`);
    :mod:`edge.decision.decider` explains how the Decider applies each setting.

    Parameters
    ----------
    labels : sequence of str
        The model's output labels, in output order (the bundle manifest's label names).
    mode : {"multilabel", "multiclass"}
        ``"multilabel"``: independent per-label (sigmoid) probabilities, drives the arm.
        ``"multiclass"``: one softmax distribution; publishes a state and never moves the arm
        unless ``moves_arm`` (EMG gestures: a class change to a commanded class fires its command).
    thresholds : float or sequence of float, optional
        Per-label "on" threshold in (0, 1]; one number applies to every label.  Default 0.5
        (training stores the values of :func:`training.thresholds.choose_thresholds`).  Multi-label only.
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
        Arm action per label.  Default for multi-label: docs/design.md §2 (HandStart→OPEN,
        FirstDigitTouch/BothStartLoadPhase→GRASP, LiftOff→LIFT, Replace→LOWER,
        BothReleased→RELEASE) for the labels present; multi-class: none, and any must come with
        ``moves_arm``.
    targets : mapping action name -> (target_ddeg, speed_ddeg_s), optional
        Merged over :data:`DEFAULT_TARGETS`.  The firmware clamps targets to its joint limits.
    moves_arm : bool, optional
        Whether decisions may command the arm.  Default: True for multi-label, False for
        multi-class, where it must be stated explicitly: an emotion bundle with a stray command
        map must not move the arm (the task registry, :mod:`edge.tasks`, says which tasks may).
    sequence : SequenceRules or mapping, optional
        The arm-state rules (:mod:`edge.decision.sequence`): which command is valid next.  None:
        every command is.
    refractory_scope : {"action", "joint"}
        ``"action"`` (default): after a command the same action is not issued again for
        ``refractory_ms``; ``"joint"``: no command moving the same joint is.
    filter : {"vote", "accumulate"}
        Multi-class: ``"vote"`` (default) waits for ``vote`` and ``min_dwell_ms``; ``"accumulate"``
        sums each window's evidence and commits once it reaches ``commit_nats`` (with ``vote`` 1 and
        ``min_dwell_ms`` 0; :mod:`edge.decision.evidence`).
    commit_nats, evidence_floor, leak_ms : float, optional
        The accumulate filter's threshold, probability floor and leak time constant (0: none);
        defaults :data:`edge.config.DECISION_ACCUMULATE`.  Only with ``filter="accumulate"``.
    objective : mapping, optional
        How the parameters were chosen (e.g. ``{"maximise": "detected gestures", "subject_to":
        "<= 1 false activation/min", "data": "calibration session"}``), kept for the report;
        informative, never used to decide.
    """

    labels: tuple[str, ...]
    mode: str = DEFAULTS["mode"]
    thresholds: tuple[float, ...] | float | None = None
    hysteresis: float = DEFAULTS["hysteresis"]
    min_dwell_ms: float = DEFAULTS["min_dwell_ms"]
    refractory_ms: float = DEFAULTS["refractory_ms"]
    vote: int = DEFAULTS["vote"]
    reject_below: float = DEFAULTS["reject_below"]
    commands: Mapping[str, Action | None] | None = None
    targets: Mapping[Action, tuple[int, int]] | None = None
    moves_arm: bool | None = None
    objective: Mapping | None = None
    sequence: SequenceRules | Mapping | None = None
    refractory_scope: str = "action"
    filter: str = "vote"
    commit_nats: float | None = None
    evidence_floor: float | None = None
    leak_ms: float | None = None

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

        check_option(self.mode, _key("mode"), MODES, exc=DecisionError)

        thr = DEFAULTS["threshold"] if self.thresholds is None else self.thresholds
        if is_number(thr):
            thr = [thr] * n
        if isinstance(thr, (str, bytes)) or not isinstance(thr, (Sequence, np.ndarray)):
            raise DecisionError(f"{_key('thresholds')} must be a list of {n} numbers (one per label: "
                                f"{', '.join(labels)}), got {thr!r}")
        thr = list(thr)
        if len(thr) != n:
            raise DecisionError(f"{_key('thresholds')} has {len(thr)} values but the model has {n} labels "
                                f"({', '.join(labels)}): give one threshold per label, in label order")
        put(self, "thresholds", tuple(check_number(t, _key("thresholds"), lo=0.0, hi=1.0, lo_open=True,
                                                   exc=DecisionError) for t in thr))

        h = check_number(self.hysteresis, _key("hysteresis"), lo=0.0, hi=1.0, exc=DecisionError)
        if self.mode == "multilabel" and h >= min(self.thresholds):
            i = int(np.argmin(self.thresholds))
            raise DecisionError(f"{_key('hysteresis')} {h:g} >= threshold of {labels[i]!r} "
                                f"({self.thresholds[i]:g}): that label could never switch off; "
                                f"use a hysteresis below every threshold")
        put(self, "hysteresis", h)
        put(self, "min_dwell_ms", check_number(self.min_dwell_ms, _key("min_dwell_ms"), lo=0.0, hi=60_000.0,
                                               exc=DecisionError))
        put(self, "refractory_ms", check_number(self.refractory_ms, _key("refractory_ms"), lo=0.0, hi=600_000.0,
                                                exc=DecisionError))
        put(self, "vote", check_int(self.vote, _key("vote"), lo=1, hi=99, exc=DecisionError, fix="1 = no voting"))
        put(self, "reject_below", check_number(self.reject_below, _key("reject_below"), lo=0.0, hi=1.0,
                                               exc=DecisionError))
        if self.moves_arm is None:
            put(self, "moves_arm", self.mode == "multilabel")
        check_type(self.moves_arm, bool, _key("moves_arm"), exc=DecisionError, fix="true or false")
        if self.objective is not None:
            check_type(self.objective, Mapping, _key("objective"), exc=DecisionError,
                       fix="an object describing how the parameters were chosen")
            put(self, "objective", dict(self.objective))
        if self.sequence is not None and not isinstance(self.sequence, SequenceRules):
            put(self, "sequence", SequenceRules.from_manifest(self.sequence))
        check_option(self.refractory_scope, _key("refractory_scope"), REFRACTORY_SCOPES, exc=DecisionError)
        for k, v in check_filter(self.filter, self.mode, self.vote, self.min_dwell_ms,
                                 {k: getattr(self, k) for k in ACCUMULATE_KEYS}, _key).items():
            put(self, k, v)
        put(self, "commands", self._commands(labels))
        put(self, "targets", self._targets())

    def _commands(self, labels: tuple[str, ...]) -> dict[str, Action | None]:
        cmds = self.commands
        if cmds is None:
            cmds = {lab: DEFAULT_COMMANDS[lab] for lab in labels if lab in DEFAULT_COMMANDS} \
                if self.mode == "multilabel" else {}
        if not isinstance(cmds, Mapping):
            raise DecisionError(f"{_key('commands')} must map label -> action name, got {cmds!r}")
        out = {}
        for lab, act in cmds.items():
            if lab not in labels:
                raise DecisionError(f"{_key('commands')} names label {lab!r}, which the model does not "
                                    f"have; labels are {', '.join(labels)}")
            out[lab] = None if act is None else _action(f"commands.{lab}", act)
        if not self.moves_arm and any(a is not None for a in out.values()):
            raise DecisionError(f"{_key('commands')} must be empty for mode 'multiclass' without moves_arm: "
                                "a multi-class state (emotion) is published and never moves the arm "
                                "(docs/design.md §2); a task that drives the arm by class (EMG gestures) "
                                "says moves_arm: true")
        return out

    def _targets(self) -> dict[Action, tuple[int, int]]:
        tg = {Action[k]: v for k, v in DEFAULT_TARGETS.items()}
        given = {} if self.targets is None else self.targets
        if not isinstance(given, Mapping):
            raise DecisionError(f"{_key('targets')} must map action name -> [target_ddeg, speed_ddeg_s], "
                                f"got {given!r}")
        for name, pair in given.items():
            act = _action("targets", name)
            key = _key(f"targets.{act.name}")
            if isinstance(pair, Mapping):
                pair = (pair.get("target_ddeg"), pair.get("speed_ddeg_s"))
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise DecisionError(f"{key} must be [target_ddeg, speed_ddeg_s], got {pair!r}")
            t, s = pair
            tg[act] = (check_int(t, f"{key} target_ddeg", lo=0, hi=ANGLE_MAX_DDEG, exc=DecisionError,
                                 fix="tenths of a degree"),
                       check_int(s, f"{key} speed_ddeg_s", lo=1, hi=SPEED_MAX_DDEG_S, exc=DecisionError,
                                 fix="tenths of a degree per second"))
        return tg

    def action_order(self) -> list[str]:
        """The commanded actions in label order, each once: the sequence a complete trial commands
        (grasp-lift: OPEN, GRASP, LIFT, LOWER, RELEASE)."""
        return list(dict.fromkeys(self.commands[lab].name for lab in self.labels if self.commands.get(lab)))

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
            "moves_arm": self.moves_arm,
            **({"objective": self.objective} if self.objective is not None else {}),
            **({"sequence": self.sequence.to_manifest()} if self.sequence is not None else {}),
            **({"refractory_scope": self.refractory_scope} if self.refractory_scope != "action" else {}),
            **({"filter": self.filter, **{k: getattr(self, k) for k in ACCUMULATE_KEYS}}
               if self.filter != "vote" else {}),
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
        if "mode" in d:
            check_type(d["mode"], str, _key("mode"), exc=DecisionError, fix=f"one of {', '.join(MODES)}")
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise DecisionError(f"labels must be a list of label names, got {labels!r}")
        if "thresholds" in d:
            check_type(d["thresholds"], (list, tuple), _key("thresholds"), exc=DecisionError,
                       fix=f"give a list with one number per label ({len(labels)})")
        kwargs = {k: d[k] for k in _KEYS if k in d}
        return cls(labels=tuple(labels), **kwargs)


@dataclass(eq=False)
class Decision:
    """What the Decider decided for one window.

    ``action`` is ``None`` unless a command fired; then the runtime sends
    ``link.command(action, target_ddeg, speed_ddeg_s, deadline=...)``.  For multi-class policies
    ``label`` is the published state (``None`` until the first one); ``action`` is None unless the
    policy ``moves_arm`` and the state just changed to a class with a command.

    ``reason`` is one of ``"fired"``, ``"idle"`` (nothing on), ``"dwell"`` (on, waiting for the
    dwell time), ``"latched"`` (on, already fired this episode), ``"refractory"``, ``"no-command"``,
    ``"invalid"``; multi-class: ``"changed"``, ``"steady"``, ``"dwell"``, ``"rejected"``, ``"invalid"``,
    and with ``moves_arm`` ``"fired"`` (the state changed to a commanded class) or ``"refractory"``.
    ``"held"``: a command that fired but is not valid in the arm's state (``detail`` says why;
    :class:`edge.decision.sequence.ArmState`); it is not sent.
    """

    t_ms: float
    label: str | None
    action: Action | None
    target_ddeg: int | None
    speed_ddeg_s: int | None
    probs: np.ndarray = field(repr=False)
    reason: str
    detail: str | None = None  # why a command was held back ("held": not valid in the arm's state)

    @property
    def speed(self) -> int | None:
        """Alias of :attr:`speed_ddeg_s`."""
        return self.speed_ddeg_s
