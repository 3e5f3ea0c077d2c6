"""What the runtime writes besides arm commands: a JSON-lines log and an LSL marker stream."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from edge import config as C
from edge._checks import check_int
from edge.errors import RunError
from edge.sources import import_pylsl

log = logging.getLogger("edge.runtime.loop")  # the live loop's logger: its console lines


class JsonLog:
    """JSON-lines log of decisions, faults and timing summaries, rotated by size.

    A process that runs for weeks must not fill the Pi's card: when the file would pass
    ``max_bytes`` it is renamed ``FILE.1`` (``FILE.1`` → ``FILE.2`` ...), and only ``backups`` old
    files are kept, as :class:`logging.handlers.RotatingFileHandler` names them.  Lines are written
    straight to a line-buffered file (flushed when written) and their bytes counted: the log is
    written per decision, inside the measured processing time, where a logging handler took about
    three times as long per line (json included).

    A log that cannot be written (a full card, ``ulimit -f``, a vanished directory) never ends control:
    the line is counted in :attr:`lost`, the first loss is said once on the console, and the file is
    opened again every :data:`edge.config.LOG_RETRY_S` until it takes lines again (the first line
    after a gap says how many were lost).

    Parameters
    ----------
    path : str or Path
    max_bytes, backups : int
        Default :data:`edge.config.LOG_MAX_BYTES`, :data:`edge.config.LOG_BACKUPS`.

    Raises
    ------
    RunError
        The log cannot be opened at start (a directory, no permission): the one time to refuse.
    """

    def __init__(self, path, max_bytes: int | None = None, backups: int | None = None):
        self.path = Path(path)
        self.max_bytes = check_int(C.LOG_MAX_BYTES if max_bytes is None else max_bytes, "log max_bytes", lo=1 << 10)
        self.backups = check_int(C.LOG_BACKUPS if backups is None else backups, "log backups", lo=1)
        self.lost = 0  # lines that could not be written
        self._lost_reported = 0
        self._retry_at = 0.0
        self._f = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        except OSError as exc:
            raise RunError(f"cannot open the log {self.path} ({exc.strerror or exc}); choose another --log "
                           "file") from None

    def _open(self) -> None:
        self._f = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in close()
        self._size = self._f.tell()

    def write(self, event: str, **fields) -> None:
        fields = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
        line = json.dumps({"t": round(time.time(), 4), "event": event, **fields}) + "\n"  # ASCII: len = bytes
        try:
            if self._f is None and not self._reopen():
                self.lost += 1
                return
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            self._f.write(line)
            self._size += len(line)
        except (OSError, ValueError) as exc:  # ValueError: a file closed by a failed rotation
            self._failed(exc)

    def _failed(self, exc) -> None:
        """A line was not written: count it, say so once, drop the file until the retry."""
        self.lost += 1
        if self._lost_reported == 0:  # once per episode
            log.error("the log %s cannot be written (%s): its lines are counted as lost and the arm runs on; "
                      "free space on the card (or fix the file) and the log resumes by itself",
                      self.path, getattr(exc, "strerror", None) or exc)
            self._lost_reported = self.lost
        self._discard()
        self._retry_at = time.monotonic() + C.LOG_RETRY_S

    def _discard(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            with contextlib.suppress(OSError, ValueError):
                f.close()  # its buffer may hold part of a line that could not be flushed: dropped

    def _reopen(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        self._retry_at = time.monotonic() + C.LOG_RETRY_S
        try:
            self._open()
            if self._size:  # a partial line left by the failure ends here
                with open(self.path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        self._f.write("\n")
                        self._size += 1
            gap = json.dumps({"t": round(time.time(), 4), "event": "log_lost", "lines": self.lost}) + "\n"
            self._f.write(gap)
            self._size += len(gap)
        except OSError:
            self._discard()
            return False
        log.warning("the log %s is written again (%d line(s) lost in all)", self.path, self.lost)
        self._lost_reported = 0
        return True

    def _rotate(self) -> None:
        self._f.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open()

    def close(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except OSError as exc:  # the last buffered line could not be flushed
                self.lost += 1
                log.error("the log %s: its last line could not be written (%s)", self.path, exc.strerror or exc)


class MarkerOutlet:
    """An LSL marker stream (one JSON string per published decision or state change)."""

    def __init__(self, name: str, source_id: str):
        pylsl = import_pylsl()
        self._pylsl = pylsl
        info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, source_id)
        self._outlet = pylsl.StreamOutlet(info)

    def push(self, payload: dict, timestamp: float | None = None) -> None:
        self._outlet.push_sample([json.dumps(payload)], timestamp or self._pylsl.local_clock())
