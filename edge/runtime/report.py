"""What a run did: the summary, the bounded stage timings and the latency report."""

from __future__ import annotations

import resource
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from edge.config import STAGES


@dataclass
class RunSummary:
    """What a run did, with the latency report (milliseconds)."""

    windows: int = 0
    decisions_fired: int = 0
    commands_sent: int = 0
    commands_failed: int = 0
    deadline_misses: int = 0
    dropped_windows: int = 0
    safe_state_entries: int = 0
    log_lines_lost: int = 0  # JSON-log lines that could not be written (a full card): control went on
    untimely_windows: int = 0  # windows on data too old (or ahead of time): never decided on
    faults: dict = field(default_factory=dict)
    held: dict = field(default_factory=dict)  # commands held back by the arm's state, per reason
    stages_ms: dict = field(default_factory=dict)     # stage → {p50, p99, max}
    latency_ms: dict = field(default_factory=dict)    # sample in → command sent
    processing_ms: dict = field(default_factory=dict)  # chunk received → decided (every window)
    stream_seconds: float = 0.0
    wall_seconds: float = 0.0
    startup_seconds: float | None = None
    peak_rss_mb: float = 0.0
    interpreter: str = ""
    source: dict = field(default_factory=dict)  # the source's counters (Source.report: an arm stream's losses too)
    # (t_end, label, action, truth-at-window or None) of the latest commands; bounded like everything
    # else in a process that runs for days
    fired: deque = field(default_factory=lambda: deque(maxlen=100_000))

    @property
    def realtime_factor(self) -> float:
        return self.stream_seconds / self.wall_seconds if self.wall_seconds else 0.0

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "fired"}
        d["realtime_factor"] = self.realtime_factor
        return d


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    ``VmHWM`` from /proc: ``ru_maxrss`` would report the parent's peak for a process started
    from a large one (Linux carries it over the fork).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0



class Timings:
    """Bounded per-stage timing record (a ring of the latest ``cap`` values per stage).

    The rings are written through once here, so their memory is resident from the start: a
    ``np.zeros`` ring would be mapped lazily and the process's RSS would creep up for hours as it
    filled (8 rings × 20 values a second), which looks like a leak in a soak.  20 000 values per
    stage is about 17 minutes of decisions, plenty for p50/p99 and 1.3 MB in all.
    """

    def __init__(self, cap: int = 20_000):
        self.cap = cap
        self.data = {k: np.full(cap, 0.0) for k in (*STAGES, "latency", "processing")}  # every page touched
        self.n = Counter()

    def add(self, key: str, value: float) -> None:
        i = self.n[key] % self.cap
        self.data[key][i] = value
        self.n[key] += 1

    def values(self, key: str) -> np.ndarray:
        return self.data[key][:min(self.n[key], self.cap)]


def format_report(s: RunSummary) -> str:
    """The latency report printed at the end of a run."""
    lines = [f"interpreter: {s.interpreter}",
             (f"windows: {s.windows}  fired: {s.decisions_fired}  sent: {s.commands_sent}  "
             f"failed: {s.commands_failed}  dropped stale: {s.dropped_windows}"),
             (f"deadline misses: {s.deadline_misses}  safe-state entries: {s.safe_state_entries}  "
             f"faults: {', '.join(f'{kind} {n}' for kind, n in sorted(s.faults.items())) or 'none'}"),
             f"held (not valid in the arm's state): {sum(s.held.values())}" + (
                 f"  ({'; '.join(f'{n}x {why}' for why, n in sorted(s.held.items(), key=lambda kv: -kv[1])[:3])})"
                 if s.held else ""),
             f"stream {s.stream_seconds:.1f} s in {s.wall_seconds:.1f} s wall "
             f"({s.realtime_factor:.1f}x real time); start-up to first decision "
             + (f"{s.startup_seconds:.2f} s" if s.startup_seconds is not None else "n/a")
             + f"; peak RSS {s.peak_rss_mb:.0f} MB",
             "stage (ms)        p50      p99      max"]
    if s.untimely_windows:
        lines.append(f"windows on data too old or ahead of time (not decided on): {s.untimely_windows}")
    if s.log_lines_lost:
        lines.append(f"log lines lost (the log could not be written; control went on): {s.log_lines_lost}")
    trouble = {k: v for k, v in s.source.items() if k not in ("kind", "samples", "chunks") and v}
    if trouble:  # gaps, stalls, losses (and an arm stream's restarts, its clock against this machine's)
        lines.append(f"source {s.source.get('kind', '')}: " + ", ".join(f"{k} {v}" for k, v in trouble.items()))
    for k in (*STAGES, "processing"):
        v = s.processing_ms if k == "processing" else s.stages_ms.get(k, {})
        if v.get("n"):
            lines.append(f"  {k:<12} {v['p50']:8.3f} {v['p99']:8.3f} {v['max']:8.3f}")
    if s.latency_ms.get("n"):
        v = s.latency_ms
        what = "command acknowledged by the arm" if s.commands_sent else "command decided (no arm)"
        lines.append(f"  {'in->command':<12} {v['p50']:8.3f} {v['p99']:8.3f} {v['max']:8.3f}  "
                     f"(sample received -> {what}, {v['n']} commands)")
    return "\n".join(lines)
