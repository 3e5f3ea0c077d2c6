"""What a person at the terminal sees while ``neurogrip run`` runs: one line per command, printed off
the loop's thread.

The loop hands each window that carries a command over *after* the command was sent and its time
measured (:meth:`CommandConsole.window`: one tuple appended to a deque and an event set — no
formatting, no I/O on the loop's thread; a window without a command costs one attribute test), and
a thread of the console's own, asleep until then, lets the loop go back to its source for
:data:`PRINT_EVERY_S`, then formats and prints what is there in one write.  The loop never waits for
the terminal (a paused one included)::

        3.52 s  hand_close -> GRASP  sent, ACK 2.1 ms
        5.10 s  hand_open -> OPEN    held: OPEN is not valid while the arm is 'open' (valid next: GRASP)
        7.94 s  hand_close -> GRASP  not sent: safe state (stream stalled)

The time is the stream's, from its first sample (a replay's: the recording's own time from where it
started).  A task that never moves the arm (emotion) gets a line per published state instead.

:class:`LinkLinesOnce` keeps the link's own fault lines off the console while the runtime owns the
link: the runtime reports each of them itself (:meth:`edge.runtime.safety.Safety._watch_link`), so
every fault is printed once.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque

#: How long the console's thread lets a command's window finish before it prints (a burst in one write):
#: a line is on the screen this late.
PRINT_EVERY_S = 0.05
#: Lines kept while the terminal does not take them (a paused terminal): the oldest are dropped.
BACKLOG = 10_000


class CommandConsole:
    """Per-command lines of a run, printed by a thread of their own.

    Parameters
    ----------
    commands : mapping label → action name (or None)
        The bundle's label → command map (a held decision carries only its label).
    moves_arm : bool
        False (emotion): a line per published state instead of per command.
    arm : bool
        Whether commands go to an arm (False: ``--arm none``, they are only decided).
    out : text stream
        Default ``sys.stdout``.
    """

    def __init__(self, commands, *, moves_arm: bool = True, arm: bool = True, out=None):
        self.commands = {k: (None if v is None else getattr(v, "name", str(v))) for k, v in dict(commands).items()}
        self.moves_arm, self.arm = bool(moves_arm), bool(arm)
        self._width = max((len(f"{k} -> {v}") for k, v in self.commands.items() if v), default=0)
        self.out = out
        self.t0: float | None = None  # the stream's first timestamp (set by the loop)
        self.lines = 0
        # decisions without a command that make a line: held by the arm's state; a published state (emotion)
        self._reasons = frozenset({"held"} if moves_arm else {"held", "changed"})
        self._pending: deque = deque(maxlen=BACKLOG)  # append and popleft are atomic: no lock with the loop
        self._wake, self._closing = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._print_lines, name="neurogrip-console", daemon=True)
        self._thread.start()

    @classmethod
    def for_runtime(cls, runtime, out=None) -> CommandConsole:
        """The console of a :class:`~edge.runtime.loop.Runtime`; attach it as ``runtime.console`` before it runs."""
        policy = runtime.pipeline.decider.policy
        return cls(policy.commands, moves_arm=policy.moves_arm, arm=runtime.arm is not None, out=out)

    # -- the loop's side: no formatting, no I/O ----------------------------------------------
    def window(self, t_end: float, d, sent: bool, ack_ms: float, why: str | None) -> None:
        """One window after its send (``d``: the decision after the arm-state gate; ``why``: why a command
        that fired was not sent)."""
        if d.action is not None or d.reason in self._reasons:
            self._pending.append((t_end, d.label, d.action, d.reason, d.detail, sent, ack_ms, why))
            self._wake.set()

    def close(self, timeout: float = 2.0) -> None:
        """Print what is pending, then stop the thread."""
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout)

    # -- the console's thread -----------------------------------------------------------------
    def _print_lines(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            closing = self._closing.wait(PRINT_EVERY_S)  # (returns at once when closing)
            lines = []
            while self._pending:
                line = self.format(*self._pending.popleft())
                if line is not None:
                    lines.append(line)
            if lines:
                try:
                    out = self.out or sys.stdout
                    out.write("\n".join(lines) + "\n")
                    out.flush()
                    self.lines += len(lines)
                except (OSError, ValueError):  # a closed terminal: control goes on without its lines
                    return
            if closing and not self._pending:
                return

    def format(self, t_end, label, action, reason, detail, sent, ack_ms, why) -> str | None:
        t = "" if self.t0 is None else f"{t_end - self.t0:9.2f} s  "
        if action is None and reason == "changed":
            return None if label is None else f"{t}state -> {label}"
        name = action.name if action is not None else self.commands.get(label) or "?"
        head = f"{label} -> {name}"
        if action is None:  # held back by the arm's state
            what = f"held: {detail}"
        elif why is not None:
            what = why
        elif not self.arm:
            what = "decided (no arm: nothing sent)"
        else:
            what = f"sent, ACK {ack_ms:.1f} ms" if sent else "not acknowledged"
        return f"{t}{head:<{self._width}}  {what}"


class LinkLinesOnce(logging.Filter):
    """On the link's logger while the runtime owns the link: its WARNING lines (fault reports) stay off the
    console, because the runtime reports each fault it takes from the link; ERROR lines (a thread that
    died) and INFO lines (``--verbose``) pass."""

    LOGGER = "firmware_bridge.link"

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno != logging.WARNING

    def install(self) -> LinkLinesOnce:
        logging.getLogger(self.LOGGER).addFilter(self)
        return self

    def remove(self) -> None:
        logging.getLogger(self.LOGGER).removeFilter(self)
