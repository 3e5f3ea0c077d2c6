"""Exception hierarchy of the ``edge`` package: every exception class of ``edge`` lives here.

Every error the edge raises on bad input derives from :class:`EdgeError`, so a
caller (the runtime, the CLI) can catch one type and move the arm to its safe
state.  Subclasses also derive from the matching built-in (``ValueError``...)
so generic code that expects those keeps working.
"""

from __future__ import annotations

from pathlib import Path


class EdgeError(Exception):
    """Base class of every error raised by :mod:`edge`."""


class RecordingError(EdgeError, ValueError):
    """A recording file is missing or not in the layout its reader expects.

    Parameters
    ----------
    path : str or Path
        The file that was being read.
    line : int or None
        1-based line number of the offending line (``None`` when the problem
        concerns the whole file, e.g. it does not exist).
    problem : str
        What was found.
    expected : str
        What the reader expected instead; together with ``problem`` this tells
        the user how to fix the file.
    """

    def __init__(self, path: str | Path, line: int | None, problem: str, expected: str):
        self.path = Path(path)
        self.line = line
        self.problem = problem
        self.expected = expected
        where = f"{self.path}" if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {problem}; expected {expected}")


class RecordingWriteError(RecordingError):
    """A recording cannot be written (disk full, no permission, I/O error).

    The file keeps every chunk written before the failure and stays readable.  ``str()`` is
    ``"PATH: PROBLEM; FIX"``.

    Parameters
    ----------
    path : str or Path
    problem : str
        What failed, e.g. "cannot write (No space left on device)".
    fix : str
        What to do about it.
    """

    def __init__(self, path: str | Path, problem: str, fix: str):
        super().__init__(path, None, problem, fix)
        self.fix = fix
        self.args = (f"{self.path}: {problem}; {fix}",)


class BundleError(EdgeError, ValueError):
    """A bundle the edge cannot trust or does not understand.

    Attributes
    ----------
    path : Path
    problem : str
        What is wrong, e.g. "content hash mismatch".
    fix : str
        What to do about it.
    """

    def __init__(self, path, problem: str, fix: str):
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}; {fix}")


class SignatureError(BundleError):
    """A bundle's signature is missing, malformed, by a key this machine does not trust, or does not
    match the bundle; or a signing key or trust store cannot be used (:mod:`edge.bundle.trust`)."""


class InferenceError(EdgeError, RuntimeError):
    """No interpreter installed, or a model the interpreter cannot load or run."""


class DecisionError(EdgeError, ValueError):
    """A decision policy or the input of a :class:`~edge.decision.Decider` is invalid; the message names the fix."""


class SourceError(EdgeError):
    """A signal source cannot be opened or used; the message says how to fix it."""


class SourceSpecError(SourceError, ValueError):
    """A source spec string (or argument) is malformed."""


class RunError(EdgeError, RuntimeError):
    """The runtime cannot start or go on (bundle/stream mismatch, arm unavailable...)."""


class NativeError(EdgeError, RuntimeError):
    """The C kernel library does not match this Python code (struct layout, missing symbol)."""


class CalibrationError(EdgeError, ValueError):
    """A calibration session or its result is unusable (too short, unlabelled, or the calibrated
    bundle is worse than its base on the held-out block); the message says what to record."""


class TaskError(EdgeError, ValueError):
    """A task name or task section that the registry (:mod:`edge.tasks`) does not know."""


class ViewError(EdgeError, ValueError):
    """The live view cannot be served (a malformed ``--view`` address, a port in use), or refuses an
    action (an e-stop with no arm to stop); the message names the fix."""


class EvaluationError(EdgeError, ValueError):
    """Data a bundle cannot be evaluated on (another task's bundle, no windows to score)."""
