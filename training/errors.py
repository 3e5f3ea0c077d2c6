"""Exception hierarchy of the ``training`` package.

Every error training raises on bad data or a failed export derives from :class:`TrainingError`,
so the command line reports it in one line with its fix instead of a traceback.
"""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot go on (no data for a split, a model that does not convert...)."""


class ConversionError(TrainingError):
    """The model did not convert to a builtin-only, full-integer TFLite model."""
