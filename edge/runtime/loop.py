"""Runtime: the live loop at the edges, with the safety rules.

Reads a :mod:`edge.sources` source, runs each chunk through :class:`~edge.runtime.pipeline.Pipeline`,
sends commands over a :class:`firmware_bridge.link.ArmLink`, publishes decisions
(:mod:`edge.runtime.outputs`), and enforces the safety rules (numbers in :mod:`edge.config`):

- stream stalled or lost for ``safe_after_ms`` (default 200 ms) → arm to its safe pose (REST),
  resume when valid data returns;
- a window with NaN/inf or out-of-range samples never produces a command (counted as a fault);
- a live stream's time is checked on every chunk (its timestamps against arrival time,
  :mod:`edge.runtime.rate`): data older than ``STREAM_MAX_AGE_S`` are never decided on, and after
  ``STREAM_BEHIND_HOLD_S`` of them the arm rests (an ``age`` or ``rate`` fault); stamps running
  ahead of time (a stream faster than it declares) → a ``rate`` fault and safe state at once;
- the arm's own e-stop pressed (its firmware reports it) → nothing is sent; releasing the switch does
  not restart (ISO 13850): a deliberate start (SIGUSR1) does, and control resumes from where the arm
  stopped (nothing moves by itself);
- processing later than ``budget_ms`` is a deadline miss; a chunk that yields several windows
  because processing fell behind runs only the newest (stale ones are dropped and counted, never
  queued); ``overload_limit`` consecutive misses → safe state;
- the serial link lost → the link reconnects with backoff by itself; commands that could not be
  sent are dropped (their deadline passes), never replayed late;
- stop (Ctrl-C, SIGTERM, end of a replay) → REST, then close.
"""

from __future__ import annotations

import logging
import time

from edge import config as C
from edge.bundle import Bundle
from edge.config import STAGES, RuntimeConfig
from edge.runtime.outputs import JsonLog, MarkerOutlet
from edge.runtime.pipeline import Pipeline
from edge.runtime.rate import StreamClock
from edge.runtime.report import RunSummary, Timings, peak_rss_mb
from edge.runtime.safety import FIRMWARE_RESTED, Safety
from edge.signals.units import prepare_source
from edge.stats import percentiles
from firmware_bridge.errors import LinkError, Nacked
from firmware_bridge.protocol import Reason

log = logging.getLogger(__name__)



class Runtime(Safety):
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
        live = source.live or getattr(source, "speed", 1.0) > 0
        # Channel types, units → per-channel factor, amplitude check of undeclared units: before the
        # loop, so no command can leave before the stream passed (edge/signals/units.py).
        prepare_source(source, bundle)
        self.pipeline = Pipeline(bundle, source.channels, source.fs, drop_stale=live)
        # The arm's state advances on the arm's acknowledgement, not on the decision (edge.decision.sequence).
        self.pipeline.auto_confirm = arm is None
        self.json_log, self.markers = json_log, markers
        self.summary = RunSummary(interpreter=f"{self.pipeline.model.backend} {self.pipeline.model.backend_version}")
        self._timings = Timings()
        self._safe = False
        self._safe_reason = ""
        self._rest_pending = False
        self._in_watchdog_retry = False
        self._last_rest_try = 0.0
        self._last_good = time.monotonic()
        self._fault_logged: dict[str, float] = {}
        self._consecutive_misses = 0
        # A live producer's time must be trustworthy: its rate, the age of its data (edge/runtime/rate.py).
        # Where its stamps are on a clock this machine reads (stream_clock), the age is measured directly.
        speed = self.config.stream_speed
        self._stream_now = getattr(source, "stream_clock", None)
        self._clock = (StreamClock(speed, absolute=self._stream_now is not None)
                       if source.live and source.fs > 0 and speed > 0 else None)
        self._behind_since: float | None = None  # when the stream's data fell behind
        self._ok_since: tuple[float, float, float] | None = None  # (when, arrival, stamp) on time since
        self._arrival_of: tuple = (None, 0.0)  # (chunk, its arrival on the stream's clock): Safety._arrival
        # Causes that hold the arm at rest whatever else clears: a stream at the wrong rate, the arm's
        # own e-stop.  Each clears only by itself (_release).
        self._holds: set[str] = set()
        self._firmware_rested = False  # the firmware rested the arm and no REST was acknowledged since
        self._early_faults: list = []  # the link's reports taken before the loop (Safety._start_clean)
        self._init_estop()  # the e-stop and start asked for from other threads (edge/runtime/estop.py)
        self.view = None  # the live view's feed (edge/view/feed.py), called on this thread, never waited for
        self.console = None  # per-command lines (edge/runtime/console.py): handed over after the send
        self._send_error = ""  # why the last command was not delivered (for its console line)
        # the modality's signal, as messages name it: "no EMG for 250 ms", never "no EEG" on an EMG stream
        self.signal = bundle.task_spec.modality.upper()
        self._stop = False
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
        if now - self._fault_logged.get(kind, -1e9) >= C.FAULT_LOG_INTERVAL_S:
            self._fault_logged[kind] = now
            log.warning("fault %s: %s", kind, detail)
            self._log("fault", kind=kind, detail=detail, count=self.summary.faults[kind])

    def stop(self) -> None:
        """Ask the loop to finish (safe to call from a signal handler)."""
        self._stop = True

    def _drop_view(self, exc: Exception) -> None:
        """The live view's feed raised on this thread: said once, the view is dropped, control goes on
        (its server sees ``failed`` and tells its clients)."""
        log.error("the live view failed on the loop's thread and is dropped (control goes on): %s: %s",
                  type(exc).__name__, exc, exc_info=exc)
        self._log("view_failed", error=f"{type(exc).__name__}: {exc}")
        if hasattr(self.view, "failed"):
            self.view.failed = f"{type(exc).__name__}: {exc}"
        self.view = None

    # -- the loop -----------------------------------------------------------------------

    def run(self, max_seconds: float | None = None) -> RunSummary:
        """Run until the source ends, :meth:`stop` is called, or ``max_seconds`` pass.

        The arm goes to REST when no valid sample of the bundle's signal (EEG, EMG: finite, in range)
        has arrived for ``safe_after_ms`` — a silent stream and a stream of NaNs alike — and control
        resumes when valid samples flow again.
        """
        cfg, sig = self.config, self.signal
        t_start = time.monotonic()
        self._last_good = t_start
        first_ts = last_ts = None
        try:
            if self.arm is not None:
                self._start_clean()  # a fault latched before this run is not this run's (edge/runtime/safety.py)
            while not self._stop:
                if max_seconds is not None and time.monotonic() - t_start > max_seconds:
                    break
                t_read = time.perf_counter()
                chunk = self.source.read(timeout=cfg.read_timeout_s)
                read_ms = (time.perf_counter() - t_read) * 1e3
                for alarm in self.source.take_alarms():
                    # a stream refused in place of the pinned LSL producer (edge/sources/lsl_identity.py):
                    # none of its samples is delivered, so the stall path already holds the arm at REST
                    self.fault("source", f"{alarm.kind}: {alarm.detail}")
                if chunk is None and getattr(self.source, "exhausted", False):
                    break
                if chunk is not None:
                    untimely = self._clock is not None and self._check_clock(chunk)
                    if first_ts is None:
                        first_ts = float(chunk.timestamps[0])
                        if self.console is not None:
                            self.console.t0 = first_ts
                    last_ts = chunk.timestamps[-1]
                    good = self.pipeline.valid_samples
                    self._handle(chunk, read_ms, untimely)
                    if self.pipeline.valid_samples > good:
                        self._last_good = time.monotonic()
                        if untimely:
                            pass  # a backlog is no recovery: only data on time clear a stall
                        elif self._safe and self._safe_reason in ("stream stalled", f"no valid {sig}"):
                            self._clear_safe(f"valid {sig} again")
                        elif self._safe and self._safe_reason == FIRMWARE_RESTED and not self._firmware_rested:
                            # REST was acknowledged (its path cleared the firmware's watchdog latch) and
                            # valid data flow: the cause is gone, control resumes from the safe pose.
                            self._clear_safe("REST acknowledged and valid data flowing")
                silent_ms = (time.monotonic() - self._last_good) * 1e3
                if silent_ms > cfg.safe_after_ms and not self._safe:
                    stalled = self.source.seconds_since_last_sample() * 1e3 > cfg.safe_after_ms
                    self.fault("stream" if stalled else "invalid",
                               f"no {sig if stalled else f'valid (finite, in-range) {sig}'} for {silent_ms:.0f} ms")
                    self.go_safe("stream stalled" if stalled else f"no valid {sig}")
                if self._rest_pending and time.monotonic() - self._last_rest_try > C.REST_RETRY_S:
                    self._send_rest()
                if self.arm is not None:
                    self._watch_link()
                if self.view is not None:
                    try:
                        self.view.tick(chunk)
                    except Exception as exc:  # noqa: BLE001 - a bug in the view must never stop control
                        self._drop_view(exc)
        finally:
            self.go_safe("stopped", force=True)
            self._finish(t_start, first_ts, last_ts)
        return self.summary

    def _handle(self, chunk, read_ms: float, untimely: bool = False) -> None:
        cfg, pipe = self.config, self.pipeline
        before = dict(pipe.faults)
        pipe.untimely = untimely
        results = pipe.process(chunk)
        for kind, n in pipe.faults.items():
            if n > before.get(kind, 0) and kind != "discontinuity":
                what = {"timestamps": "chunk(s) whose timestamps go back or repeat: dropped, the chain restarts",
                        "flat": "window(s) with a flat channel (electrode off or amplifier railed): not decided on"}
                self.fault(kind, f"{n - before.get(kind, 0)} " + what.get(
                    kind, f"bad samples near index {chunk.first_index}; windows containing them are not used"))
        if not results:
            return
        if untimely:  # data too old (or ahead of time): decided as invalid windows, never sent
            self.summary.untimely_windows += len(results)
            return
        if self.summary.startup_seconds is None:
            self.summary.startup_seconds = time.monotonic() - self.t_created
        # acquire: for LSL (a stream_clock), the transport delay of the chunk's newest sample (pushed → received);
        # for a replay, the time read() took.  Samples that waited inside the sender's chunk before
        # it was pushed are, like the filter's group delay, a property of the headset, not ours.
        acquire = read_ms
        if self._stream_now is not None:
            acquire = max(0.0, (self._arrival(chunk) - float(chunk.timestamps[-1])) * 1e3)
        for r in results:
            d = r.decision
            send_ms = 0.0
            sent, why = False, None  # why: a command that fired and was not sent (the console's line)
            if d.action is not None and not self._safe and self.arm is not None:
                # The pipeline checked the whole chunk against the state before it; acknowledgements of
                # earlier windows of this chunk may have moved it since: check again right before sending.
                d = pipe.arm_state.gate(d, confirm=False)  # the arm confirms it, in _send
            if d.action is not None and not self._safe:
                self.summary.decisions_fired += 1
                t_send = time.perf_counter()
                sent = self._send(d, r.t_received + cfg.command_max_age_ms / 1e3)
                send_ms = (time.perf_counter() - t_send) * 1e3
                why = None if sent else self._send_error
                self.summary.fired.append((r.t_end, d.label, d.action.name, r.labels))
                if self.markers is not None:
                    self.markers.push({"label": d.label, "action": d.action.name, "probs": r.probs.round(3).tolist()})
                self._log("decision", t_end=r.t_end, label=d.label, action=d.action.name, sent=sent,
                          probs=r.probs.round(3), stages_ms=r.stages_ms)
            elif d.action is not None:  # fired in the safe state: not sent (the decider restarts when it clears)
                why = f"not sent: safe state ({self._safe_reason})"
            elif d.reason == "held":  # fired, but not valid in the arm's state: counted, logged, not sent
                self.summary.held[d.detail] = self.summary.held.get(d.detail, 0) + 1
                self._log("held", t_end=r.t_end, label=d.label, why=d.detail, state=self.pipeline.arm_state.state)
            elif d.reason == "changed":  # multi-class state published
                if self.markers is not None:
                    self.markers.push({"state": d.label, "probs": r.probs.round(3).tolist()})
                self._log("state", t_end=r.t_end, state=d.label, probs=r.probs.round(3))
            stages = dict(r.stages_ms, acquire=acquire, send=send_ms)
            processing = (time.monotonic() - r.t_received) * 1e3
            for k in STAGES:
                self._timings.add(k, stages[k])
            self._timings.add("processing", processing)
            if sent:  # sample in -> command acknowledged (or decided, without an arm); failures are not latency
                self._timings.add("latency", acquire + processing)
            if self.view is not None:
                try:
                    self.view.window(r, d, sent, stages, processing)
                except Exception as exc:  # noqa: BLE001 - a bug in the view must never stop control
                    self._drop_view(exc)
            if self.console is not None:  # after the send and outside the measured time: one queue put
                self.console.window(r.t_end, d, sent, send_ms, why)
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

    def _send(self, d, deadline: float) -> bool:
        """Send a command; True when the arm acknowledged it (or there is no arm)."""
        if self.arm is None:
            return True
        try:
            self.arm.command(d.action, d.target_ddeg, d.speed_ddeg_s, deadline=deadline)
        except LinkError as exc:
            self.summary.commands_failed += 1
            self._send_error = f"not delivered ({type(exc).__name__}): dropped, not replayed"
            self.fault("link", f"{d.action.name} not delivered ({type(exc).__name__}: {exc}); dropped, "
                               "not replayed")
            if isinstance(exc, Nacked) and exc.reason == Reason.WATCHDOG:
                self._firmware_rest()  # a watchdog trip or an MCU reset we did not cause
            # NACK ESTOPPED: the arm froze where it is (its state is kept); the link reports the e-stop
            return False
        self.summary.commands_sent += 1
        self.pipeline.arm_state.confirm(d.action)  # the arm did it: its state advances
        return True

    def _finish(self, t_start, first_ts, last_ts) -> None:
        s, pipe = self.summary, self.pipeline
        s.windows = pipe.windows
        s.dropped_windows = pipe.dropped_windows
        s.wall_seconds = time.monotonic() - t_start
        if first_ts is not None:
            # signal actually processed, not timestamp span: a gapped recording's gaps are no work
            s.stream_seconds = self.source.counters.samples / self.source.fs
        s.stages_ms = {k: percentiles(self._timings.values(k)) for k in STAGES}
        s.latency_ms = percentiles(self._timings.values("latency"))
        s.processing_ms = percentiles(self._timings.values("processing"))
        s.peak_rss_mb = peak_rss_mb()
        s.source = self.source.report() if hasattr(self.source, "report") else {}
        if self.json_log is not None:
            s.log_lines_lost = self.json_log.lost
        self._log("summary", **s.to_dict())
