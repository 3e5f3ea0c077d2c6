"""The arm's state in the decision: only a command that is valid next gets through.

A grasp-and-lift is a sequence (open → grasp → lift → lower → release); a gripper that holds
nothing cannot release, and a hand that already holds cannot grasp again.  :class:`SequenceRules`
say, per arm state, which actions are valid and where each one leads; they are data, stored in a
bundle's manifest under ``decision.sequence`` (defaults per task in :mod:`edge.tasks`), e.g.::

    {"initial": "ready",
     "transitions": {"ready": {"OPEN": "open"},
                     "open": {"GRASP": "holding"},
                     "holding": {"LIFT": "lifted", "RELEASE": "ready", "OPEN": "open"}, ...}}

:class:`ArmState` is the stateful stage that applies them.  ``check(action)`` says why a command
is not valid now (or None); the state advances only by ``confirm(action)``, which the runtime calls
when the arm **acknowledged** the command (offline, without an arm, every passed command counts as
done), and goes back to ``initial`` by ``reset()`` when the arm is at its safe pose (every safe-state
entry of the runtime, and a command refused because the firmware's watchdog or e-stop rested it):
the state is what the arm did, never an assumption.  With an arm, the runtime checks each command
again right before sending it, against the state its earlier acknowledgements left.
A held command is counted per reason; REST and HOLD are always valid (safety first).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

from edge._checks import check_type
from edge.errors import DecisionError
from firmware_bridge.protocol import Action

ALWAYS_VALID = frozenset({Action.REST, Action.HOLD})
MAX_STATES = 32


def _key(k: str) -> str:
    return f"decision['sequence'][{k!r}]"


@dataclass(frozen=True)
class SequenceRules:
    """Per arm state: the valid actions and the state each one leads to.

    Parameters
    ----------
    initial : str
        The state after start-up and after every safe-state entry (the arm at its safe pose).
    transitions : mapping state → mapping action name → next state
        Every state that appears as a target must itself be a key.
    """

    initial: str
    transitions: Mapping[str, Mapping[str, str]]

    def __post_init__(self):
        check_type(self.initial, str, _key("initial"), exc=DecisionError)
        check_type(self.transitions, Mapping, _key("transitions"), exc=DecisionError,
                   fix="an object: state -> {action name: next state}")
        if not self.transitions or len(self.transitions) > MAX_STATES:
            raise DecisionError(f"{_key('transitions')} must name 1..{MAX_STATES} states, got {len(self.transitions)}")
        table: dict[str, dict[Action, str]] = {}
        for state, moves in self.transitions.items():
            check_type(state, str, _key("transitions") + " state", exc=DecisionError)
            check_type(moves, Mapping, _key(f"transitions.{state}"), exc=DecisionError,
                       fix="an object: action name -> next state")
            row = {}
            for name, nxt in moves.items():
                check_type(nxt, str, _key(f"transitions.{state}.{name}"), exc=DecisionError, fix="a state name")
                if not (isinstance(name, str) and name.upper() in Action.__members__):
                    raise DecisionError(f"{_key(f'transitions.{state}')} names {name!r}, not an arm action "
                                        f"({', '.join(Action.__members__)})")
                if nxt not in self.transitions:
                    raise DecisionError(f"{_key(f'transitions.{state}.{name}')} leads to unknown state {nxt!r}; "
                                        f"states are {', '.join(self.transitions)}")
                row[Action[name.upper()]] = nxt
            table[state] = row
        if self.initial not in table:
            raise DecisionError(f"{_key('initial')} {self.initial!r} is not one of the states "
                                f"({', '.join(table)})")
        object.__setattr__(self, "transitions", table)

    def valid(self, state: str) -> tuple[Action, ...]:
        """The actions valid in ``state`` (besides REST and HOLD, which always are)."""
        return tuple(self.transitions[state])

    def to_manifest(self) -> dict:
        return {"initial": self.initial,
                "transitions": {s: {a.name: n for a, n in row.items()} for s, row in self.transitions.items()}}

    @classmethod
    def from_manifest(cls, d) -> SequenceRules:
        check_type(d, Mapping, "decision['sequence']", exc=DecisionError, fix="an object with initial and transitions")
        unknown = sorted(set(d) - {"initial", "transitions"})
        if unknown:
            raise DecisionError(f"decision['sequence'] has unknown key(s) {unknown}; known: initial, transitions")
        if "initial" not in d or "transitions" not in d:
            raise DecisionError("decision['sequence'] needs 'initial' and 'transitions'")
        return cls(d["initial"], d["transitions"])


class ArmState:
    """Stateful stage: the arm's state from acknowledged commands, and which command is valid next.

    Parameters
    ----------
    rules : SequenceRules or None
        None: every command is valid (a bundle without ``decision.sequence``).
    """

    def __init__(self, rules: SequenceRules | None):
        if rules is not None:
            check_type(rules, SequenceRules, "rules")
        self.rules = rules
        self.held: Counter = Counter()
        self.state = None if rules is None else rules.initial

    def check(self, action: Action) -> str | None:
        """Why ``action`` is not valid in the current state; None when it is."""
        if self.rules is None or action in ALWAYS_VALID or action in self.rules.transitions[self.state]:
            return None
        valid = ", ".join(a.name for a in self.rules.valid(self.state)) or "none"
        return f"{action.name} is not valid while the arm is '{self.state}' (valid next: {valid})"

    def hold(self, action: Action, reason: str | None = None) -> None:
        """Count a command held back because :meth:`check` refused it (per action and state)."""
        self.held[f"{action.name} in {self.state}"] += 1

    def gate(self, d, confirm: bool):
        """``d`` (a :class:`~edge.decision.policy.Decision`) if its command is valid now — advancing the
        state when ``confirm`` (no arm to acknowledge it) —, else the same window as a held decision
        (no action, reason ``"held"``, ``detail`` why), counted in :attr:`held`."""
        if d.action is None:
            return d
        why = self.check(d.action)
        if why is None:
            if confirm:
                self.confirm(d.action)
            return d
        self.hold(d.action)
        return replace(d, action=None, target_ddeg=None, speed_ddeg_s=None, reason="held", detail=why)

    def confirm(self, action: Action) -> None:
        """The arm acknowledged ``action``: advance the state (REST: back to the start)."""
        if self.rules is None:
            return
        if action is Action.REST:
            self.reset()
        elif action in self.rules.transitions[self.state]:
            self.state = self.rules.transitions[self.state][action]

    def reset(self) -> None:
        """The arm is at its safe pose (REST sent, watchdog, microcontroller reset): back to ``initial``."""
        if self.rules is not None:
            self.state = self.rules.initial
