"""Progress of long work (training epochs, participants, benchmark sections, evaluated sessions): a
tqdm bar when a person watches (stderr is a terminal), one plain line per step otherwise — logs,
pipes, CI and ``make demo``'s filtered output keep the lines they had.

``neurogrip`` points file descriptor 2 at a filter of native log lines for the commands that load
TensorFlow or TFLite (:func:`edge.cli.native_log_filter`), so ``sys.stderr`` is no terminal there
even when a person watches: the CLI hands the terminal it filters for to :func:`draw_bars_on`, and
bars are drawn on it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

_terminal = None  # where bars go instead of sys.stderr (draw_bars_on)


def draw_bars_on(stream) -> None:
    """Draw bars on ``stream`` (a terminal the console's stderr stands for), None: on ``sys.stderr``."""
    global _terminal
    _terminal = stream


class Progress:
    """Steps of one long job.

    Parameters
    ----------
    total : int
        Steps expected (a job may end early: early stopping).
    desc : str
        What the bar counts ("epochs", "participants", "sections").
    lines : callable or None
        Where a line goes when there is no bar (``print``-like); None: report nothing at all.
    bar : bool or None
        Force the bar on or off; None: on when stderr is a terminal and tqdm is installed.
    leave : bool
        Keep the finished bar on the screen (False for an inner job whose result gets its own line).
    """

    def __init__(self, total: int, desc: str, lines: Callable[[str], None] | None, *, bar: bool | None = None,
                 leave: bool = True):
        self.lines, self._bar = lines, None
        if lines is None:
            return
        self._file = _terminal or sys.stderr
        if bar is None:
            bar = bool(getattr(self._file, "isatty", lambda: False)())
        if bar:
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm is in the edge extra; without it, lines
                return
            self._bar = tqdm(total=int(total), desc=desc, file=self._file, leave=leave, dynamic_ncols=True)

    def start(self, message: str) -> None:
        """A step begins: its line, or the bar's description."""
        if self._bar is not None:
            self._bar.set_description_str(message.strip())
        elif self.lines is not None:
            self.lines(message)

    def step(self, message: str) -> None:
        """One step done; ``message`` is its line (or the bar's postfix)."""
        if self._bar is not None:
            self._bar.set_postfix_str(message.strip(), refresh=False)
            self._bar.update(1)
        elif self.lines is not None:
            self.lines(message)

    def note(self, message: str) -> None:
        """A line that must be seen (an error), above the bar when there is one."""
        if self._bar is not None:
            self._bar.write(message, file=self._file)
        elif self.lines is not None:
            self.lines(message)

    def done(self, message: str) -> None:
        """One step done whose ``message`` stays on the screen (a result): a line above the bar, which
        advances, or the step's line."""
        if self._bar is not None:
            self._bar.write(message, file=self._file)
            self._bar.update(1)
        elif self.lines is not None:
            self.lines(message)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
