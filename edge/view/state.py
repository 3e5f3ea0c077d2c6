"""The view's picture of the run: frames in (:mod:`edge.view.feed`), one JSON snapshot out.

:class:`ViewState` keeps the histories the page draws — the signal decimated for display, the model's
outputs, the decisions, the stage times of the latest minute — and the per-channel quality marks
(:mod:`edge.view.quality`).  It runs on the view's own thread (:mod:`edge.view.server`), never on the
loop's; it has no threads and no I/O itself: tests feed it frames and read the snapshot.

The snapshot (``GET /state.json``, and every event of ``GET /events``) is one JSON object; bulky series
travel as base64 of little-endian integers so that encoding them holds the interpreter for microseconds
(the loop shares it).  The layout is in docs/live-view.md.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections import deque

import numpy as np

from edge import config as C
from edge.view.quality import QualityCounts, channel_marks

SCHEMA = 1
LATENCY_KEYS = (*C.STAGES, "processing")


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _ms(x) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 3)


class Ring:
    """A fixed-capacity ring of rows (no allocation per push); :meth:`ordered` copies oldest → newest."""

    def __init__(self, capacity: int, width: int, dtype=np.float32):
        self.data = np.zeros((capacity, width), dtype)
        self.at = self.n = 0

    def push(self, rows: np.ndarray) -> None:
        cap = len(self.data)
        rows = rows[-cap:]
        n, at = len(rows), self.at
        first = min(n, cap - at)
        self.data[at:at + first] = rows[:first]
        self.data[:n - first] = rows[first:]
        self.at, self.n = (at + n) % cap, min(cap, self.n + n)

    def ordered(self) -> np.ndarray:
        if self.n < len(self.data):
            return self.data[:self.n].copy()
        return np.concatenate([self.data[self.at:], self.data[:self.at]])


class ViewState:
    """Aggregates frames from one feed (:class:`~edge.view.feed.RuntimeFeed` or ``RecordFeed``)."""

    def __init__(self, feed):
        self.mode, self.task = feed.mode, feed.task
        self.channels, self.labels, self.thresholds = list(feed.channels), list(feed.labels), feed.thresholds
        self.fs, self.raw_fs, self.rail, self.budget_ms = feed.fs, feed.raw_fs, feed.rail, feed.budget_ms
        k = len(self.channels)
        self.step = max(1, round(self.fs / C.VIEW_SIGNAL_HZ))  # display decimation
        self.display_fs = self.fs / self.step
        self.n_display = max(2, int(C.VIEW_SIGNAL_S * self.display_fs))
        self.signal = Ring(self.n_display, k)
        self._phase = 0  # samples to skip before the next displayed one
        self.recent = Ring(max(2, int(self.fs * C.VIEW_QUALITY_S)), k)  # full-rate rows, for "flat"
        self.raw: np.ndarray | None = None  # the latest raw capture (run) / raw second (record)
        self.quality = QualityCounts(k)
        self._quality_at = -math.inf
        self._quality_json: list | None = None
        self.outputs = Ring(C.VIEW_OUTPUT_POINTS, 1 + len(self.labels), np.float64)  # t_end, probs
        self.decisions: deque = deque(maxlen=C.VIEW_DECISIONS)  # dicts, newest last
        self.latency = Ring(C.VIEW_LATENCY_MAX, 1 + len(LATENCY_KEYS), np.float64)  # wall time, stages, processing
        self._latency_json: dict | None = None
        self._latency_at = -math.inf
        self._raw_at = -math.inf
        self.status: dict = {}
        self.arm: dict | None = None
        self.cue: dict | None = None
        self.seq = 0
        self.t_wall = time.time()
        self.frames = 0

    # -- frames in ----------------------------------------------------------------------------
    def add(self, f) -> None:
        self.seq, self.t_wall, self.frames = f.seq, f.t_wall, self.frames + 1
        if f.restarted:
            self._phase = 0
        sig = f.signal
        if len(sig):
            self.recent.push(sig)
            self.signal.push(sig[self._phase::self.step])
            self._phase = (self._phase - len(sig)) % self.step
        if f.raw is not None:
            self.raw = f.raw if self.mode == "run" else self._raw_tail(f.raw)
        if f.windows:
            w = f.windows
            self.outputs.push(np.array([(t, *p) for t, p, _, _ in w], np.float64))
            self.latency.push(np.array([(f.t_wall, *(st.get(k, 0.0) for k in C.STAGES), proc) for _, _, st, proc in w],
                                       np.float64))
        for t_end, label, action, reason, detail, sent, why in f.events:
            last = self.decisions[-1] if self.decisions else None
            if last and (last["label"], last["action"], last["reason"], last["detail"], last["sent"]) == (
                    label, action, reason, detail, sent):
                last["n"] += 1
                last["t"] = round(float(t_end), 3)
                continue
            self.decisions.append({"t": round(float(t_end), 3), "label": label, "action": action, "reason": reason,
                                   "detail": detail, "sent": sent, "why_not_sent": why, "n": 1})
        self.status, self.arm, self.cue = f.status, f.arm, f.cue

    def _raw_tail(self, new: np.ndarray) -> np.ndarray:
        """record: the latest VIEW_MAINS_CAPTURE_S of raw samples (the frames carry every one)."""
        keep = max(8, math.ceil(self.raw_fs * C.VIEW_MAINS_CAPTURE_S))
        old = self.raw if self.raw is not None else new[:0]
        return np.concatenate([old, new])[-keep:]

    def raw_wanted(self) -> int:
        """Raw samples to ask the loop for now (run: a VIEW_MAINS_CAPTURE_S capture at most once per
        VIEW_QUALITY_S), else 0."""
        now = time.monotonic()
        if self.mode != "run" or now - self._raw_at < C.VIEW_QUALITY_S:
            return 0
        self._raw_at = now
        return max(8, math.ceil(self.raw_fs * C.VIEW_MAINS_CAPTURE_S))

    # -- one snapshot out -----------------------------------------------------------------------
    def _signal_json(self) -> dict:
        rows = np.nan_to_num(self.signal.ordered(), nan=0.0, posinf=0.0, neginf=0.0)  # a lost sample: drawn at 0
        k = len(self.channels)
        # per channel: centred (record: raw has offsets) and scaled to int16; value = q * scale + offset
        centre = rows.mean(axis=0) if self.mode == "record" and len(rows) else np.zeros(k, np.float32)
        x = rows - centre
        scale = np.maximum(np.abs(x).max(axis=0, initial=0.0), 1e-6) / 32000.0
        q = np.round(x / scale).astype("<i2")
        return {"fs": self.display_fs, "n": len(rows), "layout": "int16 samples x channels, base64",
                "scale": [float(v) for v in scale], "offset": [round(float(v), 3) for v in centre], "data": _b64(q)}

    def _outputs_json(self) -> dict | None:
        if self.mode != "run":
            return None
        a = self.outputs.ordered()
        q = np.round(np.clip(a[:, 1:], 0.0, 1.0) * 255).astype(np.uint8)
        span = [round(float(a[0, 0]), 3), round(float(a[-1, 0]), 3)] if len(a) else None
        return {"labels": self.labels, "thresholds": self.thresholds, "n": len(a), "t_span": span,
                "layout": "uint8 windows x labels, base64; p = q/255", "data": _b64(q)}

    def _latency(self) -> dict | None:
        """Per-stage p50/p99 over the latest VIEW_LATENCY_S (computed at most once a second)."""
        if self.mode != "run":
            return None
        now = time.time()
        if self._latency_json is not None and now - self._latency_at < C.VIEW_LATENCY_EVERY_S:
            return self._latency_json
        self._latency_at = now
        a = self.latency.ordered()
        a = a[now - a[:, 0] <= C.VIEW_LATENCY_S]
        out = {"window_s": C.VIEW_LATENCY_S, "n": len(a), "budget_ms": self.budget_ms, "stages": {}}
        if len(a):
            p50, p99 = np.percentile(a[:, 1:], 50, axis=0), np.percentile(a[:, 1:], 99, axis=0)
            out["stages"] = {k: {"p50": _ms(p50[i]), "p99": _ms(p99[i])} for i, k in enumerate(LATENCY_KEYS)}
            out["misses"] = int((a[:, -1] > self.budget_ms).sum())
        self._latency_json = out
        return out

    def _quality(self) -> list[dict]:
        """The marks, judged at most once per VIEW_QUALITY_S (the raw capture's period)."""
        now = time.monotonic()
        if self._quality_json is None or now - self._quality_at >= C.VIEW_QUALITY_S:
            self._quality_at = now
            filtered = self.recent.ordered() if self.mode == "run" and self.recent.n > 1 else None
            self.quality.update(channel_marks(len(self.channels), raw=self.raw, fs=self.raw_fs, filtered=filtered,
                                              rail=self.rail))
            self._quality_json = self.quality.to_json()
        return self._quality_json

    def snapshot(self) -> dict:
        status = dict(self.status)
        return {"schema": SCHEMA, "mode": self.mode, "task": self.task, "seq": self.seq,
                "time": round(self.t_wall, 3), "channels": self.channels, "signal": self._signal_json(),
                "quality": self._quality(), "outputs": self._outputs_json(), "decisions": list(self.decisions),
                "latency": self._latency(), "runtime": status if self.mode == "run" else None,
                "record": status if self.mode == "record" else None, "arm": self.arm, "cue": self.cue}

    def encode(self) -> bytes:
        """The snapshot as compact JSON (one line: it is also a server-sent event's data)."""
        return json.dumps(self.snapshot(), separators=(",", ":"), allow_nan=False, default=_plain).encode()


def _plain(o):  # numpy scalars in a snapshot
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON: {type(o).__name__}")
