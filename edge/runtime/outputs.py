"""What the runtime writes besides arm commands: a JSON-lines log and an LSL marker stream."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from edge.sources import import_pylsl


class JsonLog:
    """Append-only JSON-lines log of decisions, faults and timing summaries (line-buffered)."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", buffering=1)  # noqa: SIM115 - closed in close()

    def write(self, event: str, **fields) -> None:
        fields = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
        self._f.write(json.dumps({"t": round(time.time(), 4), "event": event, **fields}) + "\n")

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
