"""The edge runtime: source → fixed-point chain → windows → int8 model → decisions → arm, on budget.

Two layers, as the style guide asks:

* :class:`Pipeline` — the processing of one chunk, no I/O and no threads: channel mapping by
  name, sample validation, :class:`edge.chain.SignalChain`, :class:`edge.chain.WindowBuffer`,
  int8 quantisation, :class:`edge.inference.Int8Model`, :class:`edge.decision.Decider`.  Each
  window's stage times are recorded.  Tests feed it chunks and assert on what comes out.
* :class:`Runtime` — the loop at the edges: reads a :mod:`edge.sources` source, sends commands
  over a :class:`firmware_bridge.link.ArmLink`, publishes an LSL marker stream, writes a
  JSON-lines log, and enforces the safety rules:

  - stream stalled or lost for ``safe_after_ms`` (default 250 ms) → arm to its safe pose
    (REST), resume when data returns;
  - a window with NaN/inf or out-of-range samples never produces a command (the chain and
    window buffer restart after such samples, as after a gap, and the fault is counted);
  - processing later than ``budget_ms`` is a deadline miss; a chunk that yields several
    windows because processing fell behind runs only the newest (stale ones are dropped and
    counted, never queued); ``overload_limit`` consecutive misses → safe state;
  - the serial link lost → the link reconnects with backoff by itself; commands that could not
    be sent are dropped (their deadline passes), never replayed late;
  - stop (Ctrl-C, SIGTERM, end of a replay) → REST, then close.
"""

from __future__ import annotations

import itertools
import json
import logging
import resource
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.bundle import Bundle
from edge.config import RuntimeConfig
from edge.decision import Decider
from edge.errors import RunError
from edge.inference import dequantise

log = logging.getLogger(__name__)

STAGES = ("acquire", "filter", "infer", "decide", "send")




@dataclass
class WindowResult:
    """One window through the pipeline."""

    t_end: float                 # stream timestamp (s) of the window's last sample
    index_end: int               # source sample index of the window's last sample
    t_received: float            # time.monotonic() when its last chunk arrived
    outputs: np.ndarray          # raw int8 model outputs
    probs: np.ndarray            # dequantised
    decision: object             # edge.decision.Decision
    # filter: the chunk through the chain and the window buffer; infer: model input, invoke and
    # dequantisation; decide: the decision policy (infer and decide per window of the chunk).
    stages_ms: dict = field(default_factory=dict)
    labels: np.ndarray | None = None  # truth at the last sample when replaying a labelled recording


class Pipeline:
    """Bundle-driven processing of chunks (no I/O).

    Parameters
    ----------
    bundle : Bundle
    source_channels : sequence of str
        The stream's channel names; the bundle's channels are picked by name.
    fs : float
        The stream's nominal rate; must equal the bundle's.
    drop_stale : bool
        When a chunk yields several windows, run only the newest (the live rule).  Offline
        evaluation turns this off to get every window.
    """

    def __init__(self, bundle: Bundle, source_channels, fs: float, *, drop_stale: bool = True,
                 num_threads: int = 1, reference_kernels: bool = False):
        from edge.sources import channel_map

        if abs(float(fs) - bundle.fs) > 1e-6 * bundle.fs:
            raise RunError(f"the stream runs at {fs:g} Hz but the bundle expects {bundle.fs:g} Hz; "
                                "use a bundle trained for this headset or resample upstream")
        self.bundle = bundle
        self.idx = channel_map(list(source_channels), bundle.channels)
        self._identity = bool(np.array_equal(self.idx, np.arange(len(source_channels))))
        self.chain = bundle.signal_chain()
        self.buf = bundle.window_buffer()
        self.model_input = bundle.model_input_stage()
        self.model = bundle.model(num_threads=num_threads, reference_kernels=reference_kernels)
        self.decider = Decider(bundle.decision_policy())
        # int8 → probability as a 256-entry table (indexed by the byte): the same numbers as
        # dequantise(), without its per-call overhead.
        self._dequantise = dequantise(np.arange(256, dtype=np.uint8).view(np.int8), *bundle.output_quant)
        self.factor = self.chain.factor
        self.drop_stale = drop_stale
        self.faults: Counter = Counter()
        self.dropped_windows = 0
        self.windows = 0
        self._reset_index = 0  # source sample index where the chain was last reset
        self._next_index = None
        self._max_step = 1.5 / bundle.fs  # a larger timestamp step inside a chunk is a gap
        self.valid_samples = 0  # finite, in-range samples seen (the runtime's "EEG is flowing" clock)

    def reset(self, at_index: int) -> None:
        """Restart chain and windows after a gap or bad samples.

        The decision stage only loses its hysteresis, votes and dwell (:meth:`Decider.interrupt`):
        latches and refractory times survive, so a glitchy electrode cannot re-arm a command.
        """
        self.chain.reset()
        self.buf.reset()
        self.decider.interrupt()
        self._reset_index = at_index

    def process(self, chunk) -> list[WindowResult]:
        """Run one source chunk; returns the windows it completed (with decisions)."""
        t0 = time.perf_counter()
        x = chunk.samples if self._identity else chunk.samples[:, self.idx]
        n = chunk.n
        if chunk.discontinuity or (self._next_index is not None and chunk.first_index != self._next_index):
            self._next_index = chunk.first_index + n
            return self._after_gap(chunk, x, t0)
        self._next_index = chunk.first_index + n
        # The usual case, one C call: validate, quantise, filter, decimate (None: a bad sample).
        y = self.chain.process_valid(x)
        if y is None:
            return self._clean(chunk, x, 0, n, t0)
        self.valid_samples += n
        return self._windows(chunk, y, t0)

    def _after_gap(self, chunk, x, t0: float) -> list[WindowResult]:
        self.faults["discontinuity"] += 1
        self.reset(chunk.first_index)
        # Samples may be missing inside the chunk too (an LSL read that spans a drop): restart
        # at every timestamp step as well, so no window or filter state bridges a gap.
        cuts = np.flatnonzero(np.diff(chunk.timestamps) > self._max_step) + 1
        bounds = [0, *cuts.tolist(), chunk.n]
        results: list[WindowResult] = []
        for k, (a, b) in enumerate(itertools.pairwise(bounds)):
            if k:
                self.reset(chunk.first_index + a)
            results += self._clean(chunk, x, a, b, t0 if k == 0 else time.perf_counter())
        return results

    def _clean(self, chunk, x, a: int, b: int, t0: float) -> list[WindowResult]:
        """Rows a..b of a chunk: valid samples run, NaN/inf/out-of-range ones restart the chain."""
        xs = x[a:b]
        y = self.chain.process_valid(xs)
        if y is not None:
            self.valid_samples += b - a
            return self._windows(chunk, y, t0)
        bad = ~np.isfinite(xs).all(axis=1)
        finite = np.where(bad[:, None], 0.0, xs)
        bad |= (np.abs(finite) >= self.chain.input_limit).any(axis=1)  # the int32 input would saturate
        first, last = int(np.argmax(bad)), int(len(bad) - 1 - np.argmax(bad[::-1]))
        n_nan = int((~np.isfinite(xs[bad])).any(axis=1).sum())
        if n_nan:
            self.faults["nan"] += n_nan
        if int(bad.sum()) - n_nan:
            self.faults["saturated"] += int(bad.sum()) - n_nan
        self.valid_samples += first + (len(bad) - 1 - last)
        results = self._run(chunk, xs[:first], t0)
        self.reset(chunk.first_index + a + last + 1)
        results += self._run(chunk, xs[last + 1:], time.perf_counter())
        return results

    def _run(self, chunk, x, t0: float) -> list[WindowResult]:
        """Filter, window, infer and decide on contiguous valid rows ``x`` of ``chunk``."""
        if x.shape[0] == 0:
            return []
        y = self.chain.process_valid(x)
        if y is None:  # _clean() checked these rows; reaching here is a bug, not bad input
            raise RunError("internal: rows checked as valid were refused by the signal chain")
        return self._windows(chunk, y, t0)

    def _windows(self, chunk, y, t0: float) -> list[WindowResult]:
        """Window the chain's output ``y`` (float32, decimated), infer and decide.

        Window positions come from ``_reset_index``, the source index of the last restart."""
        windows, ends = self.buf.process(y)
        if not len(ends):
            return []
        t1 = time.perf_counter()
        if self.drop_stale and len(ends) > 1:
            self.dropped_windows += len(ends) - 1
            windows, ends = windows[-1:], ends[-1:]
        xq = self.model_input.process(windows)
        outs = self.model.run_batch_int8(xq)
        probs = self._dequantise[outs.view(np.uint8)]
        t2 = time.perf_counter()
        k = len(ends)
        index_end = [self._reset_index + e * self.factor + self.factor - 1 for e in ends.tolist()]
        rel = [i - chunk.first_index for i in index_end]
        t_end = [float(chunk.timestamps[r]) for r in rel]
        if k == 1:  # the live case: one window per chunk
            decisions = [self.decider.step(probs[0], t_end[0] * 1000.0)]
        else:  # all timestamps checked before any decision changes state
            decisions = self.decider.process(probs, np.array(t_end) * 1000.0)
        t3 = time.perf_counter()
        self.windows += k
        stages = {"filter": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3 / k, "decide": (t3 - t2) * 1e3 / k}
        return [WindowResult(t_end[i], index_end[i], chunk.t_received, outs[i], probs[i], decisions[i], stages,
                             None if chunk.labels is None else chunk.labels[rel[i]].copy()) for i in range(k)]


def replay_outputs(bundle: Bundle, recording, chunk: int | None = None,
                   reference_kernels: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every window of a recording through the live pipeline: (int8 outputs (n, k), sample index (n,)).

    The chain is integer arithmetic and identical everywhere; with ``reference_kernels`` the model
    is too, so the emulated Pi check compares these arrays between x86-64 and aarch64.
    """
    from edge.sources import ReplaySource

    src = ReplaySource(recording, speed=0, chunk=chunk)
    pipe = Pipeline(bundle, src.channels, src.fs, drop_stale=False, reference_kernels=reference_kernels)
    outs, idx = [], []
    while (c := src.read()) is not None:
        for r in pipe.process(c):
            outs.append(r.outputs)
            idx.append(r.index_end)
    n_out = len(bundle.labels)
    return (np.array(outs, np.int8).reshape(-1, n_out), np.array(idx, np.int64))


# --------------------------------------------------------------------------- the loop with I/O


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
        import pylsl

        self._pylsl = pylsl
        info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, source_id)
        self._outlet = pylsl.StreamOutlet(info)

    def push(self, payload: dict, timestamp: float | None = None) -> None:
        self._outlet.push_sample([json.dumps(payload)], timestamp or self._pylsl.local_clock())


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
    faults: dict = field(default_factory=dict)
    stages_ms: dict = field(default_factory=dict)     # stage → {p50, p99, max}
    latency_ms: dict = field(default_factory=dict)    # sample in → command sent
    processing_ms: dict = field(default_factory=dict)  # chunk received → decided (every window)
    stream_seconds: float = 0.0
    wall_seconds: float = 0.0
    startup_seconds: float | None = None
    peak_rss_mb: float = 0.0
    interpreter: str = ""
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


def _pct(values) -> dict:
    if not len(values):
        return {"n": 0}
    a = np.asarray(values, float)
    return {"n": int(a.size), "p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "max": float(a.max())}


class _Timings:
    """Bounded per-stage timing record (a ring of the latest values; no unbounded growth)."""

    def __init__(self, cap: int = 200_000):
        self.cap = cap
        self.data = {k: np.zeros(cap) for k in (*STAGES, "latency", "processing")}
        self.n = Counter()

    def add(self, key: str, value: float) -> None:
        i = self.n[key] % self.cap
        self.data[key][i] = value
        self.n[key] += 1

    def values(self, key: str) -> np.ndarray:
        return self.data[key][:min(self.n[key], self.cap)]


class Runtime:
    """The live loop.  ``arm`` is an open :class:`firmware_bridge.link.ArmLink` or None.

    The safe pose is the firmware's REST (every joint to its configured safe angle).
    """

    def __init__(self, bundle: Bundle, source, arm=None, config: RuntimeConfig | None = None,
                 json_log: JsonLog | None = None, markers: MarkerOutlet | None = None):
        self.t_created = time.monotonic()
        self.bundle, self.source, self.arm = bundle, source, arm
        self.config = config or RuntimeConfig()
        # Stale windows exist only against a clock: a live stream or a paced replay.  A replay
        # "as fast as possible" has no deadline, so every window runs.
        live = getattr(source, "kind", "") == "lsl" or getattr(source, "speed", 1.0) > 0
        self.pipeline = Pipeline(bundle, source.channels, source.fs, drop_stale=live)
        self.json_log, self.markers = json_log, markers
        self.summary = RunSummary(interpreter=f"{self.pipeline.model.backend} {self.pipeline.model.backend_version}")
        self._timings = _Timings()
        self._safe = False
        self._safe_reason = ""
        self._rest_pending = False
        self._in_watchdog_retry = False
        self._last_rest_try = 0.0
        self._last_good = time.monotonic()
        self._fault_logged: dict[str, float] = {}
        self._consecutive_misses = 0
        self._stop = False
        self._lsl_clock = None
        if getattr(source, "kind", "") == "lsl":
            import pylsl

            self._lsl_clock = pylsl.local_clock
        self._log("start", bundle=str(bundle.path), content_hash=bundle.content_hash, task=bundle.task,
                  source=repr(source), interpreter=self.summary.interpreter,
                  arm=None if arm is None else getattr(arm, "url", "arm"))

    # -- helpers -------------------------------------------------------------------------

    def _log(self, event: str, **fields) -> None:
        if self.json_log is not None:
            self.json_log.write(event, **fields)

    def fault(self, kind: str, detail: str) -> None:
        """Count a fault; log it at most once a second per kind (a NaN flood must not flood the log)."""
        self.summary.faults[kind] = self.summary.faults.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._fault_logged.get(kind, -1e9) >= 1.0:
            self._fault_logged[kind] = now
            log.warning("fault %s: %s", kind, detail)
            self._log("fault", kind=kind, detail=detail, count=self.summary.faults[kind])

    def stop(self) -> None:
        """Ask the loop to finish (safe to call from a signal handler)."""
        self._stop = True

    def go_safe(self, reason: str, *, force: bool = False) -> None:
        """Send the arm to its safe pose (REST); decisions are held until the cause clears.

        Once per episode, unless ``force`` (the final stop always sends REST).
        """
        if self._safe and not force:
            return
        if not self._safe:
            self._safe, self._safe_reason = True, reason
            self.summary.safe_state_entries += 1
            self.pipeline.decider.reset()
            self._log("safe_state", reason=reason)
            log.warning("safe state: %s", reason)
        self._send_rest()

    def _send_rest(self) -> bool:
        """REST until acknowledged.  While it is not, heartbeats are paused so the firmware's own
        watchdog rests the arm (the link's heartbeat thread would otherwise keep feeding it), and
        the loop retries every 100 ms."""
        if self.arm is None:
            self._log("rest", result="no arm")
            return True
        from firmware_bridge.errors import LinkError, Nacked
        from firmware_bridge.protocol import Action, Fault, Reason

        self._last_rest_try = time.monotonic()
        try:
            self.arm.command(Action.REST, 0, 900, deadline=time.monotonic() + 0.2)
        except Nacked as exc:
            # Refused because the arm is already safe: the watchdog rested it (clear the latch so
            # the firmware takes commands again, then REST explicitly), or the e-stop froze it.
            if exc.reason == Reason.ESTOPPED:
                self._log("rest", result="e-stop latched: the arm is frozen until cleared")
                return True
            if exc.reason == Reason.WATCHDOG and not self._in_watchdog_retry:
                self.arm.resume_heartbeat()
                self._rest_pending = False
                self._in_watchdog_retry = True
                try:
                    self.arm.clear(Fault.WATCHDOG)
                    return self._send_rest()
                except LinkError:
                    pass
                finally:
                    self._in_watchdog_retry = False
            return self._rest_failed(exc)
        except LinkError as exc:
            return self._rest_failed(exc)
        if self._rest_pending:  # back in control: feed the watchdog again and clear its latch
            self._rest_pending = False
            self.arm.resume_heartbeat()
            try:
                self.arm.clear(Fault.WATCHDOG)
            except LinkError as exc:
                self.fault("link", f"could not clear the watchdog fault ({exc})")
        self._log("rest", result="acknowledged")
        return True

    def _rest_failed(self, exc) -> bool:
        if not self._rest_pending:
            self.fault("link", f"REST not acknowledged ({type(exc).__name__}: {exc}); heartbeats paused "
                               "so the firmware watchdog rests the arm; retrying")
        self._rest_pending = True
        self.arm.pause_heartbeat()
        self._log("rest", result="failed", detail=str(exc))
        return False

    def _clear_safe(self, why: str) -> None:
        if self._safe:
            self._safe = False
            self._log("resume", after=self._safe_reason, why=why)
            log.info("resumed after %s: %s", self._safe_reason, why)

    # -- the loop -----------------------------------------------------------------------

    def run(self, max_seconds: float | None = None) -> RunSummary:
        """Run until the source ends, :meth:`stop` is called, or ``max_seconds`` pass.

        The arm goes to REST when no valid EEG sample (finite, in range) has arrived for
        ``safe_after_ms`` — a silent stream and a stream of NaNs alike — and control resumes when
        valid samples flow again.
        """
        cfg = self.config
        t_start = time.monotonic()
        self._last_good = t_start
        first_ts = last_ts = None
        try:
            while not self._stop:
                if max_seconds is not None and time.monotonic() - t_start > max_seconds:
                    break
                t_read = time.perf_counter()
                chunk = self.source.read(timeout=cfg.read_timeout_s)
                read_ms = (time.perf_counter() - t_read) * 1e3
                if chunk is None and getattr(self.source, "exhausted", False):
                    break
                if chunk is not None:
                    first_ts = chunk.timestamps[0] if first_ts is None else first_ts
                    last_ts = chunk.timestamps[-1]
                    good = self.pipeline.valid_samples
                    self._handle(chunk, read_ms)
                    if self.pipeline.valid_samples > good:
                        self._last_good = time.monotonic()
                        if self._safe and self._safe_reason in ("stream stalled", "no valid EEG"):
                            self._clear_safe("valid EEG again")
                silent_ms = (time.monotonic() - self._last_good) * 1e3
                if silent_ms > cfg.safe_after_ms and not self._safe:
                    stalled = self.source.seconds_since_last_sample() * 1e3 > cfg.safe_after_ms
                    self.fault("stream" if stalled else "invalid",
                               f"no {'EEG' if stalled else 'valid (finite, in-range) EEG'} for {silent_ms:.0f} ms")
                    self.go_safe("stream stalled" if stalled else "no valid EEG")
                if self._rest_pending and time.monotonic() - self._last_rest_try > 0.1:
                    self._send_rest()
        finally:
            self.go_safe("stopped", force=True)
            self._finish(t_start, first_ts, last_ts)
        return self.summary

    def _handle(self, chunk, read_ms: float) -> None:
        cfg, pipe = self.config, self.pipeline
        before = dict(pipe.faults)
        results = pipe.process(chunk)
        for kind, n in pipe.faults.items():
            if n > before.get(kind, 0) and kind != "discontinuity":
                self.fault(kind, f"{n - before.get(kind, 0)} bad samples near index {chunk.first_index}; "
                                 "windows containing them are not used")
        if not results:
            return
        if self.summary.startup_seconds is None:
            self.summary.startup_seconds = time.monotonic() - self.t_created
        # acquire: for LSL, the transport delay of the chunk's newest sample (pushed → received);
        # for a replay, the time read() took.  Samples that waited inside the sender's chunk before
        # it was pushed are, like the filter's group delay, a property of the headset, not ours.
        acquire = read_ms
        if self._lsl_clock is not None:
            received_lsl = self._lsl_clock() - (time.monotonic() - chunk.t_received)
            acquire = max(0.0, (received_lsl - float(chunk.timestamps[-1])) * 1e3)
        for r in results:
            d = r.decision
            send_ms = 0.0
            if d.action is not None and not self._safe:
                self.summary.decisions_fired += 1
                t_send = time.perf_counter()
                self._send(d, r.t_received + cfg.command_max_age_ms / 1e3)
                send_ms = (time.perf_counter() - t_send) * 1e3
                self.summary.fired.append((r.t_end, d.label, d.action.name, r.labels))
                if self.markers is not None:
                    self.markers.push({"label": d.label, "action": d.action.name, "probs": r.probs.round(3).tolist()})
                self._log("decision", t_end=r.t_end, label=d.label, action=d.action.name,
                          probs=r.probs.round(3), stages_ms=r.stages_ms)
            elif d.reason == "changed":  # multi-class state published
                if self.markers is not None:
                    self.markers.push({"state": d.label, "probs": r.probs.round(3).tolist()})
                self._log("state", t_end=r.t_end, state=d.label, probs=r.probs.round(3))
            stages = dict(r.stages_ms, acquire=acquire, send=send_ms)
            processing = (time.monotonic() - r.t_received) * 1e3
            for k in STAGES:
                self._timings.add(k, stages[k])
            self._timings.add("processing", processing)
            if d.action is not None:
                self._timings.add("latency", acquire + processing)
            if processing > cfg.budget_ms:
                self.summary.deadline_misses += 1
                self._consecutive_misses += 1
                if self._consecutive_misses >= cfg.overload_limit and not self._safe:
                    self.fault("overload", f"{self._consecutive_misses} consecutive windows over the "
                                           f"{cfg.budget_ms:g} ms budget")
                    self.go_safe("overload")
            else:
                self._consecutive_misses = 0
                if self._safe and self._safe_reason == "overload":
                    self._clear_safe("back within budget")

    def _send(self, d, deadline: float) -> None:
        if self.arm is None:
            return
        from firmware_bridge.errors import LinkError

        try:
            self.arm.command(d.action, d.target_ddeg, d.speed_ddeg_s, deadline=deadline)
            self.summary.commands_sent += 1
        except LinkError as exc:
            self.summary.commands_failed += 1
            self.fault("link", f"{d.action.name} not delivered ({type(exc).__name__}: {exc}); dropped, "
                               "not replayed")

    def _finish(self, t_start, first_ts, last_ts) -> None:
        s, pipe = self.summary, self.pipeline
        s.windows = pipe.windows
        s.dropped_windows = pipe.dropped_windows
        s.wall_seconds = time.monotonic() - t_start
        if first_ts is not None:
            # EEG actually processed, not timestamp span: a gapped recording's gaps are no work
            s.stream_seconds = self.source.counters.samples / self.source.fs
        s.stages_ms = {k: _pct(self._timings.values(k)) for k in STAGES}
        s.latency_ms = _pct(self._timings.values("latency"))
        s.processing_ms = _pct(self._timings.values("processing"))
        s.peak_rss_mb = peak_rss_mb()
        self._log("summary", **s.to_dict())


def format_report(s: RunSummary) -> str:
    """The latency report printed at the end of a run."""
    lines = [f"interpreter: {s.interpreter}",
             (f"windows: {s.windows}  fired: {s.decisions_fired}  sent: {s.commands_sent}  "
             f"failed: {s.commands_failed}  dropped stale: {s.dropped_windows}"),
             (f"deadline misses: {s.deadline_misses}  safe-state entries: {s.safe_state_entries}  "
             f"faults: {s.faults or 'none'}"),
             f"stream {s.stream_seconds:.1f} s in {s.wall_seconds:.1f} s wall "
             f"({s.realtime_factor:.1f}x real time); start-up to first decision "
             + (f"{s.startup_seconds:.2f} s" if s.startup_seconds is not None else "n/a")
             + f"; peak RSS {s.peak_rss_mb:.0f} MB",
             "stage (ms)        p50      p99      max"]
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


# --------------------------------------------------------------------------- wiring for the CLI


def open_arm(spec: str | None):
    """``none`` → (None, None); ``sim`` → start the simulated arm (simavr Uno, else the host build)
    and open a link to its pty; anything else is a pyserial URL (``/dev/ttyACM0``, ``loop://``...).

    Returns ``(link, simulator_process_or_None)``.
    """
    if spec in (None, "", "none"):
        return None, None
    from firmware_bridge.errors import LinkError
    from firmware_bridge.link import ArmLink

    sim = None
    url = spec
    if spec == "sim":
        from firmware_bridge.sim import start

        sim = start()
        url = sim.pty
    link = ArmLink(url)
    try:
        link.open()
    except LinkError as exc:
        if sim is not None:
            sim.stop()
        raise RunError(f"cannot talk to the arm at {url}: {exc}; check the cable and the port, "
                       "'neurogrip doctor --port PORT' checks permissions") from None
    return link, sim


def serve(bundle_path, source_spec: str, arm_spec: str | None = "none", *, config: RuntimeConfig | None = None,
          log_path=None, markers: bool = False, duration: float | None = None, install_signals: bool = True,
          on_ready=None) -> RunSummary:
    """Load, validate, connect and run until the end, ``duration``, Ctrl-C or SIGTERM.

    The arm is sent to REST before the function returns, whatever stopped the run.
    ``on_ready(runtime)`` is called once everything is connected (tests and the demo use it).
    """
    import signal
    import threading

    from edge.bundle import load_bundle
    from edge.sources import open_source

    t0 = time.monotonic()
    bundle = load_bundle(bundle_path)
    source = open_source(source_spec)
    arm = sim = None
    json_log = JsonLog(log_path) if log_path else None
    try:
        arm, sim = open_arm(arm_spec)
        outlet = MarkerOutlet(f"neurogrip-{bundle.task}", f"neurogrip-{bundle.content_hash[7:19]}") if markers \
            else None
        rt = Runtime(bundle, source, arm, config, json_log, outlet)
        rt.t_created = t0  # start-up is measured from the command, not from the loop
        previous = None
        if install_signals and threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: rt.stop())
        if on_ready is not None:
            on_ready(rt)
        try:
            summary = rt.run(max_seconds=duration)
        except KeyboardInterrupt:
            summary = rt.summary  # run()'s finally already rested the arm
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return summary
    finally:
        source.close()
        if arm is not None:
            arm.close()
        if sim is not None:
            sim.stop()
        if json_log is not None:
            json_log.close()
