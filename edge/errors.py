"""Exception hierarchy of the ``edge`` package.

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
