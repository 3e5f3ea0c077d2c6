"""What the runtime writes besides arm commands: a JSON-lines log and an LSL marker stream."""

from __future__ import annotations

import json
import logging
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

import numpy as np

from edge import config as C
from edge._checks import check_int
from edge.sources import import_pylsl


class JsonLog:
    """JSON-lines log of decisions, faults and timing summaries, rotated by size.

    A process that runs for weeks must not fill the Pi's card: when the file would pass
    ``max_bytes`` it is renamed ``FILE.1`` (``FILE.1`` → ``FILE.2`` ...), and only ``backups`` old
    files are kept (the standard library's :class:`logging.handlers.RotatingFileHandler`).  Every
    line is flushed when written.

    Parameters
    ----------
    path : str or Path
    max_bytes, backups : int
        Default :data:`edge.config.LOG_MAX_BYTES`, :data:`edge.config.LOG_BACKUPS`.
    """

    def __init__(self, path, max_bytes: int | None = None, backups: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        max_bytes = check_int(C.LOG_MAX_BYTES if max_bytes is None else max_bytes, "log max_bytes", lo=1 << 10)
        backups = check_int(C.LOG_BACKUPS if backups is None else backups, "log backups", lo=1)
        self._handler = RotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        # A logger of its own whose lines go to this file only (not to the console's handlers).
        self._logger = logging.getLogger(f"neurogrip.jsonlog.{self.path.resolve()}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self._handler)

    def write(self, event: str, **fields) -> None:
        fields = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
        self._logger.info(json.dumps({"t": round(time.time(), 4), "event": event, **fields}))

    def close(self) -> None:
        self._logger.removeHandler(self._handler)
        self._handler.close()


class MarkerOutlet:
    """An LSL marker stream (one JSON string per published decision or state change)."""

    def __init__(self, name: str, source_id: str):
        pylsl = import_pylsl()
        self._pylsl = pylsl
        info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, source_id)
        self._outlet = pylsl.StreamOutlet(info)

    def push(self, payload: dict, timestamp: float | None = None) -> None:
        self._outlet.push_sample([json.dumps(payload)], timestamp or self._pylsl.local_clock())
