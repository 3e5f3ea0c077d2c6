"""The loop's side of the live view: what the runtime (or ``record``) hands over, on its own thread,
without ever waiting.

Per window the runtime appends one tuple to a bounded deque (:meth:`RuntimeFeed.window`); per loop
turn it calls :meth:`RuntimeFeed.tick`, which at most :data:`edge.config.VIEW_UPDATE_HZ` times a
second packs a :class:`Frame` — the filtered samples written since the last one (read from the
window buffer, so nothing is copied per chunk), those window tuples, the decisions, the runtime's
counters and the arm's latest telemetry — and appends it to :attr:`frames` (a deque bounded to
:data:`edge.config.VIEW_FRAME_BACKLOG`: a view that falls behind loses the oldest frames, the loop
never blocks).  A deque's ``append`` and ``popleft`` are atomic: no lock is shared with the view's
threads.  Raw samples (for the rail and mains marks) are copied only while the view asks for them,
one :data:`edge.config.VIEW_MAINS_CAPTURE_S` capture at most every :data:`edge.config.VIEW_QUALITY_S`.

:class:`RecordFeed` is the same for ``neurogrip record``: a cue display that also hands over the
cue, its countdown, the session's progress and the raw signal.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from edge import config as C

#: Decision reasons worth a line in the view (``idle``, ``dwell``, ``steady``, ``latched`` happen every window).
EVENT_REASONS = frozenset({"fired", "held", "rejected", "refractory", "changed", "no-command", "invalid"})


@dataclass(frozen=True)
class Frame:
    """What the loop handed over at one moment (immutable; its arrays are copies)."""

    seq: int
    t_wall: float                     # time.time()
    signal: np.ndarray                # (n, channels) float32 written since the previous frame (full rate)
    restarted: bool = False           # the chain restarted (a gap, bad samples) since the previous frame
    raw: np.ndarray | None = None     # a capture of raw samples (the bundle's channel order), when asked for
    windows: tuple = ()               # (t_end, probs, stages_ms, processing_ms) per window
    events: tuple = ()                # (t_end, label, action, reason, detail, sent, why_not_sent)
    status: dict = field(default_factory=dict)
    arm: dict | None = None
    cue: dict | None = None


def _arm_json(arm) -> dict | None:
    """The arm's latest telemetry (firmware STATUS) as plain values."""
    if arm is None:
        return None
    s = getattr(arm, "last_status", None)
    age = arm.status_age() if hasattr(arm, "status_age") else None
    out = {"url": getattr(arm, "url", "arm"), "connected": bool(getattr(arm, "connected", True)),
           "status_age_ms": None if age is None else round(age * 1e3, 1)}
    if s is not None:
        from firmware_bridge.protocol import Action, Fault

        out.update(position_deg=[p / 10 for p in s.position], target_deg=[t / 10 for t in s.target],
                   faults=[f.name for f in Fault if f in s.faults],
                   last_action=next((a.name for a in Action if a == s.last_action), None),
                   uptime_s=s.uptime_ms / 1e3, commands_executed=s.commands_executed,
                   watchdog_trips=s.watchdog_trips, crc_errors=s.crc_errors)
    return out


class RuntimeFeed:
    """Attached to a :class:`~edge.runtime.loop.Runtime` (``runtime.view``); called on the loop's thread."""

    mode = "run"

    def __init__(self, runtime, rate_hz: float = C.VIEW_UPDATE_HZ):
        self.rt = runtime
        pipe = runtime.pipeline
        self.channels = list(runtime.bundle.channels)
        self.fs = float(runtime.bundle.fs) / pipe.factor       # the chain's output rate
        self.raw_fs = float(runtime.bundle.fs)
        self.rail = float(pipe.chain.input_limit)
        self.labels = list(runtime.bundle.labels)
        policy = pipe.decider.policy
        th = getattr(policy, "thresholds", None)
        self.thresholds = ([float(th)] * len(self.labels) if isinstance(th, (int, float))
                           else None if th is None else [float(t) for t in th])
        self.task = runtime.bundle.task
        self.budget_ms = runtime.config.budget_ms
        self.frames: deque[Frame] = deque(maxlen=C.VIEW_FRAME_BACKLOG)
        self.capture = 0          # raw samples the view asks for (written by the view's thread)
        self.url = None           # set by the server once it listens
        self.failed = None        # set by the loop when this feed raised and was dropped (edge/runtime/loop.py)
        self._period = 1.0 / rate_hz
        self._next = 0.0
        self._seq = 0
        self._count = 0           # the window buffer's sample count at the previous frame
        self._windows: deque = deque(maxlen=C.VIEW_WINDOWS_PER_FRAME)
        self._events: deque = deque(maxlen=C.VIEW_DECISIONS)
        self._raw: np.ndarray | None = None
        self._raw_n = 0
        self._raw_done: np.ndarray | None = None

    # -- called by the loop -------------------------------------------------------------------
    def window(self, r, d, sent: bool, stages: dict, processing_ms: float) -> None:
        """One window through the loop (its decision ``d`` after the arm-state gate)."""
        self._windows.append((r.t_end, r.probs, stages, processing_ms))
        if d.reason in EVENT_REASONS:
            why = None
            if d.action is not None and not sent:
                why = self.rt.safety_state()[1] or "not acknowledged by the arm"
            self._events.append((r.t_end, d.label, None if d.action is None else d.action.name, d.reason,
                                 d.detail, bool(sent), why))

    def tick(self, chunk) -> None:
        """Once per loop turn (``chunk`` may be None): a raw capture if asked for, a frame when due."""
        if self.capture and chunk is not None:
            self._take_raw(chunk)
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._period
            self._publish()

    # -- inside -------------------------------------------------------------------------------
    def _take_raw(self, chunk) -> None:
        x = chunk.samples[:, self.rt.pipeline.idx]  # the bundle's channels, in its order
        if self._raw is None or chunk.discontinuity:  # a capture is contiguous
            self._raw = np.empty((self.capture, len(self.channels)), np.float32)
            self._raw_n = 0
        m = min(len(x), len(self._raw) - self._raw_n)
        self._raw[self._raw_n:self._raw_n + m] = x[:m]
        self._raw_n += m
        if self._raw_n == len(self._raw):
            self._raw_done, self._raw, self.capture = self._raw, None, 0

    def _publish(self) -> None:
        rt = self.rt
        pipe, s = rt.pipeline, rt.summary
        signal, count = pipe.filtered_tail(self._count)
        restarted, self._count = count < self._count, count
        safe, why, holds = rt.safety_state()
        status = {"safe": safe, "safe_reason": why, "holds": holds, "windows": pipe.windows,
                  "fired": s.decisions_fired, "sent": s.commands_sent, "failed": s.commands_failed,
                  "deadline_misses": s.deadline_misses, "dropped_windows": pipe.dropped_windows,
                  "untimely_windows": s.untimely_windows, "safe_state_entries": s.safe_state_entries,
                  "faults": dict(s.faults), "signal_faults": dict(pipe.faults), "held": dict(s.held),
                  "arm_state": pipe.arm_state.state, "interpreter": s.interpreter}
        windows, self._windows = tuple(self._windows), deque(maxlen=C.VIEW_WINDOWS_PER_FRAME)
        events = tuple(self._events)
        self._events.clear()
        raw, self._raw_done = self._raw_done, None
        self._seq += 1
        self.frames.append(Frame(self._seq, time.time(), signal, restarted, raw, windows, events, status,
                                 _arm_json(rt.arm)))


class RecordFeed:
    """A cue display for :class:`edge.record.Recorder` that also feeds the live view (``record --view``).

    ``inner`` is the terminal's :class:`~edge.record.display.CueDisplay`: it keeps working as before.
    """

    mode = "record"

    def __init__(self, inner, source, paradigm, rate_hz: float = C.VIEW_UPDATE_HZ):
        self.inner = inner
        self.paradigm = paradigm
        self.channels = list(source.channels)
        self.fs = self.raw_fs = float(source.fs)
        self.rail = None
        self.labels, self.thresholds, self.task = [], None, paradigm.task
        self.budget_ms = None
        self.frames: deque[Frame] = deque(maxlen=C.VIEW_FRAME_BACKLOG)
        self.capture = 0  # (record hands over every raw sample: nothing to ask for)
        self.url = None
        self._starts = paradigm.starts()
        self._period = 1.0 / rate_hz
        self._next = 0.0
        self._seq = 0
        self._pending: deque = deque(maxlen=max(1, int(C.VIEW_SIGNAL_S * self.fs / 10)))
        self._cue = (0, 0.0, False)
        self._samples = self._gaps = 0
        self._done: str | None = None

    # -- the Recorder's display interface ----------------------------------------------------
    def chunk(self, chunk) -> None:
        """A chunk the recorder read (the view shows the raw signal)."""
        self._pending.append(np.array(chunk.samples, np.float32))
        self._samples += chunk.n
        self._gaps += bool(chunk.discontinuity)

    def show(self, paradigm, cue: int, t: float, stalled: bool = False) -> None:
        self.inner.show(paradigm, cue, t, stalled)
        self._cue = (cue, t, stalled)
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._period
            self._publish()

    def done(self, result) -> None:
        self.inner.done(result)
        self._done = result.summary()
        self._publish()

    # -- inside -------------------------------------------------------------------------------
    def _cue_json(self) -> dict:
        par, (i, t, stalled) = self.paradigm, self._cue
        c = par.cues[i]
        nxt = par.cues[i + 1].text if i + 1 < len(par.cues) else None
        return {"index": i, "count": len(par.cues), "text": c.text, "label": c.label, "seconds": c.seconds,
                "left_s": max(0.0, self._starts[i] + c.seconds - t), "next": nxt, "elapsed_s": t,
                "total_s": par.seconds, "progress": min(1.0, t / par.seconds) if par.seconds else 1.0,
                "stalled": stalled, "paradigm": par.name, "done": self._done}

    def _publish(self) -> None:
        parts = [self._pending.popleft() for _ in range(len(self._pending))]
        signal = np.concatenate(parts) if parts else np.zeros((0, len(self.channels)), np.float32)
        self._seq += 1
        status = {"samples": self._samples, "gaps": self._gaps, "seconds": self._cue[1]}
        self.frames.append(Frame(self._seq, time.time(), signal, raw=signal, status=status, cue=self._cue_json()))
