"""What the runtime writes besides arm commands: a JSON-lines log and an LSL marker stream."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from edge import config as C
from edge._checks import check_int
from edge.sources import import_pylsl


class JsonLog:
    """JSON-lines log of decisions, faults and timing summaries, rotated by size.

    A process that runs for weeks must not fill the Pi's card: when the file would pass
    ``max_bytes`` it is renamed ``FILE.1`` (``FILE.1`` → ``FILE.2`` ...), and only ``backups`` old
    files are kept, as :class:`logging.handlers.RotatingFileHandler` names them.  Lines are written
    straight to a line-buffered file (flushed when written) and their bytes counted: the log is
    written per decision, inside the measured processing time, where a logging handler took about
    three times as long per line (json included).

    Parameters
    ----------
    path : str or Path
    max_bytes, backups : int
        Default :data:`edge.config.LOG_MAX_BYTES`, :data:`edge.config.LOG_BACKUPS`.
    """

    def __init__(self, path, max_bytes: int | None = None, backups: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = check_int(C.LOG_MAX_BYTES if max_bytes is None else max_bytes, "log max_bytes", lo=1 << 10)
        self.backups = check_int(C.LOG_BACKUPS if backups is None else backups, "log backups", lo=1)
        self._open()

    def _open(self) -> None:
        self._f = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in close()
        self._size = self._f.tell()

    def write(self, event: str, **fields) -> None:
        fields = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
        line = json.dumps({"t": round(time.time(), 4), "event": event, **fields}) + "\n"  # ASCII: len = bytes
        if self._size and self._size + len(line) > self.max_bytes:
            self._rotate()
        self._f.write(line)
        self._size += len(line)

    def _rotate(self) -> None:
        self._f.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open()

    def close(self) -> None:
        self._f.close()


class MarkerOutlet:
    """An LSL marker stream (one JSON string per published decision or state change)."""

    def __init__(self, name: str, source_id: str):
        pylsl = import_pylsl()
        self._pylsl = pylsl
        info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, source_id)
        self._outlet = pylsl.StreamOutlet(info)

    def push(self, payload: dict, timestamp: float | None = None) -> None:
        self._outlet.push_sample([json.dumps(payload)], timestamp or self._pylsl.local_clock())
