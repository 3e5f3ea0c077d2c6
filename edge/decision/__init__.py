"""From model probabilities to debounced arm commands (docs/design.md §2, the ``edge.decision`` stage).

:mod:`edge.decision.policy` holds the :class:`DecisionPolicy` a bundle stores under ``"decision"``
(and the decision defaults); :mod:`edge.decision.decider` the stateful :class:`Decider` that
applies it window by window; :mod:`edge.decision.sequence` the arm-state rules that let through
only a command valid next (:class:`ArmState`).  Choosing thresholds on validation data is training's job
(:func:`training.thresholds.choose_thresholds`).
"""

from edge.decision.decider import Decider
from edge.decision.policy import DEFAULT_TARGETS, Decision, DecisionPolicy
from edge.decision.sequence import ArmState, SequenceRules
from edge.errors import DecisionError

__all__ = ["DEFAULT_TARGETS", "ArmState", "Decider", "Decision", "DecisionError", "DecisionPolicy", "SequenceRules"]
