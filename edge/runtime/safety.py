"""The runtime's safe state: what sends the arm to REST, what holds it there, and what lets it go
(docs/design.md §4.2).  A part of :class:`edge.runtime.loop.Runtime`, kept apart so each file owns
one thing: the loop reads, decides and sends; this module decides when nothing may be sent.

Causes and how each ends:

* a stalled or invalid stream, overload → REST; cleared by the loop when valid data flow again;
* the firmware rested the arm itself (an MCU reset, a watchdog trip the runtime did not ask for)
  → REST; cleared once a REST was acknowledged (its path clears the firmware's latch) and valid
  data flow;
* *holds* — a stream whose time cannot be trusted (stamps ahead of time, data too old:
  :mod:`edge.runtime.rate`), the arm's own e-stop switch (released only by a deliberate start after
  the switch is released: :meth:`~edge.runtime.estop.EStop.request_start`, SIGUSR1, the live view),
  an arm whose state is unknown —
  clear only by themselves (:meth:`Safety._release`), whatever else cleared meanwhile.  The e-stop
  sends nothing, not even REST, and keeps the arm-state sequence: the arm froze where it is;
* the arm's ADC stream as the source (edge/sources/arm.py): an overrun is a fault (its gap already a
  discontinuity); a stream the firmware refuses to restart holds the arm at REST and stops the run.
"""

from __future__ import annotations

import logging
import math
import time

from edge import config as C
from edge.errors import RunError
from edge.runtime.estop import ESTOPPED, START_HOW, EStop
from edge.runtime.rate import AHEAD, BEHIND, OK
from edge.sources.arm import FLASH_FIX
from firmware_bridge.errors import LinkError, Nacked
from firmware_bridge.link import FaultKind
from firmware_bridge.protocol import Action, Fault, Reason

log = logging.getLogger("edge.runtime.loop")  # one logger for the live loop, whichever file logs

#: The safe-state reason after the firmware rested the arm itself (an MCU reset, a watchdog trip).
FIRMWARE_RESTED = "arm rested by its firmware"
#: Holds of a live stream whose time cannot be trusted (edge/runtime/rate.py): stamps ahead of time,
#: data behind it.
STREAM_RATE, STREAM_TIME = "stream rate", "stream data too old"
#: Hold while the arm's firmware state is unknown (no valid STATUS for ARM_STATUS_MAX_AGE_S).
ARM_UNKNOWN = "arm state unknown"
#: Hold once the arm's ADC stream, the run's source, ended for good (its firmware refused to restart it).
SOURCE_FAILED = "source failed"


class Safety(EStop):
    """The safe-state half of :class:`~edge.runtime.loop.Runtime` (a mixin: it uses the runtime's
    ``arm``, ``pipeline``, ``summary``, ``source``, ``config``, ``fault`` and ``_log``); the e-stop and
    start requests from other threads are :class:`~edge.runtime.estop.EStop`'s."""

    def go_safe(self, reason: str, *, force: bool = False, rest: bool = True) -> None:
        """Send the arm to its safe pose (REST); decisions are held until the cause clears.

        Once per episode, unless ``force`` (the final stop always sends REST).  ``rest=False``: hold
        decisions without sending anything (the arm's own e-stop: it froze where it is, and must not
        move by itself when it is released), and keep the arm-state sequence where the arm is.
        """
        if self._safe and not force:
            return
        if not self._safe:
            self._safe, self._safe_reason = True, reason
            self.summary.safe_state_entries += 1
            self.pipeline.decider.reset()
            if rest:
                self.pipeline.arm_state.reset()  # at its safe pose the arm holds nothing: the sequence restarts
            self._log("safe_state", reason=reason)
            # the end of a run rests the arm as it should: no warning for that
            log.log(logging.INFO if reason == "stopped" else logging.WARNING, "safe state: %s", reason)
        if rest:
            self._send_rest()

    def _send_rest(self) -> bool:
        """REST until acknowledged.  While it is not, heartbeats are paused so the firmware's own
        watchdog rests the arm (the link's heartbeat thread would otherwise keep feeding it), and
        the loop retries every 100 ms."""
        if self.arm is None:
            self._log("rest", result="no arm")
            return True
        self._last_rest_try = time.monotonic()
        try:
            self.arm.command(Action.REST, C.REST_TARGET_DDEG, C.REST_SPEED_DDEG_S,
                             deadline=time.monotonic() + C.REST_DEADLINE_S)
        except Nacked as exc:
            # Refused because the arm is already safe: the watchdog rested it (clear the latch so
            # the firmware takes commands again, then REST explicitly), or the e-stop froze it.
            if exc.reason == Reason.ESTOPPED:
                if self._rest_pending:  # the e-stop holds the arm; heartbeats carry its STATUS (its release)
                    self._rest_pending = False
                    self.arm.resume_heartbeat()
                self._log("rest", result="e-stop latched: the arm is frozen until it is released")
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
        self._firmware_rested = False
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

    def _firmware_rest(self) -> None:
        """The firmware rested the arm itself (an MCU reset, a watchdog trip we did not cause): at its
        safe pose the arm holds nothing, and the firmware's latch wants a REST before anything else."""
        self.pipeline.arm_state.reset()
        self._firmware_rested = True  # until a REST is acknowledged
        self.go_safe(FIRMWARE_RESTED)

    def _hold(self, cause: str, *, rest: bool = True) -> None:
        """A cause that holds the arm until it clears by itself (:meth:`_release`); see :meth:`go_safe`."""
        self._holds.add(cause)
        self.go_safe(cause, rest=rest)

    def _release(self, cause: str, why: str) -> None:
        if cause not in self._holds:
            return
        self._holds.discard(cause)
        if self._safe and self._safe_reason == cause:
            self._clear_safe(why)
        elif self._safe and self._firmware_rested and not self._holds and not self._rest_pending:
            # The firmware rested the arm and its REST was refused while this held it (NACK ESTOPPED):
            # the firmware's latch still needs that REST, and nothing else would send it again.
            self._send_rest()

    def _clear_safe(self, why: str) -> None:
        if self._safe and self._holds and self._safe_reason not in self._holds:
            self._safe_reason = min(self._holds)  # this cause is gone, a held one is not
            return
        if self._safe and self._firmware_rested and self._safe_reason != FIRMWARE_RESTED:
            # The firmware rested the arm (an MCU reset, a watchdog trip) while another cause held it:
            # resume through REST, whose path clears the firmware's latch, as after any such event.
            self._safe_reason = FIRMWARE_RESTED
            self._send_rest()
            return
        if self._safe:
            self._safe = False
            self._log("resume", after=self._safe_reason, why=why)
            log.info("resumed after %s: %s", self._safe_reason, why)

    def _arrival(self, chunk) -> float:
        """When the chunk arrived, on the stream's own clock where this machine reads it (LSL's: the stamps'
        clock), else on the monotonic clock; computed once per chunk (the age check, the acquire stage)."""
        if chunk is not self._arrival_of[0]:
            t = chunk.t_received
            if self._stream_now is not None:
                t = self._stream_now() - (time.monotonic() - chunk.t_received)
            self._arrival_of = (chunk, t)
        return self._arrival_of[1]

    def _check_clock(self, chunk) -> bool:
        """Judge a live chunk's time (:mod:`edge.runtime.rate`); True when its data must not be decided on.

        * behind (older than :data:`~edge.config.STREAM_MAX_AGE_S`): never decided on; behind for
          :data:`~edge.config.STREAM_BEHIND_HOLD_S` → a fault (``rate`` when the lag grows: the stream
          delivers fewer samples than it declares; ``age`` for a constant backlog) and the arm to
          REST, until a chunk is fresh again;
        * ahead (stamps advancing faster than time): a ``rate`` fault and REST at once, until the
          stream has run at its declared rate for :data:`~edge.config.STREAM_CLEAR_S`.
        """
        stamp = float(chunk.timestamps[-1])
        if not math.isfinite(stamp):  # no time at all: never decided on (the pipeline drops and counts it)
            return True
        t_arrival = self._arrival(chunk)
        v = self._clock.update(t_arrival, stamp)
        now = time.monotonic()
        fs, speed = self.source.fs, self.config.stream_speed
        played = f" x {speed:g} (--stream-speed)" if speed != 1 else ""
        if v.state != OK and self._clock.absolute and v.seconds > C.STREAM_FOREIGN_CLOCK_S:
            self._behind_since = self._ok_since = None
            where = "ahead of" if v.state == AHEAD else "behind"
            self.fault("rate", f"the stream's timestamps are {v.seconds:.0f} s {where} this machine's clock: its "
                               "producer stamps on another clock (Unix time, its own uptime); an LSL producer must "
                               "stamp with LSL's local_clock() or let liblsl stamp its samples")
            self._hold(STREAM_RATE)
            return True
        if v.state == AHEAD:
            self._behind_since, self._ok_since = None, None
            delivered = "" if v.ratio is None else f"it delivers about {fs * speed * v.ratio:.0f} samples/s "
            self.fault("rate", f"the stream's timestamps run {v.seconds:.2f} s ahead of the time that passed: "
                               f"{delivered}stamped as {fs:g} Hz{played}, so the bundle would decide on a signal "
                               "at the wrong speed; fix the producer's rate (or the rate it declares); for a "
                               "recording streamed faster than real time, --stream-speed")
            self._hold(STREAM_RATE)
            return True
        if v.state == BEHIND:
            self._ok_since = None
            if self._behind_since is None:
                self._behind_since = now
            t0 = self._behind_since
            if now - t0 >= C.STREAM_BEHIND_HOLD_S and STREAM_TIME not in self._holds:
                if v.ratio is not None and 1.0 - v.ratio > C.RATE_TOLERANCE:  # its lag grows: a slow stream
                    self.fault("rate", f"the stream falls behind its own timestamps by {1 - v.ratio:.2f} s every "
                                       f"second: it delivers about {fs * speed * v.ratio:.0f} samples/s "
                                       f"stamped as {fs:g} Hz{played}; its data are {v.seconds:.2f} s old and "
                                       "are not decided on; fix the producer's rate (or the rate it declares)")
                else:
                    self.fault("age", f"the stream's newest samples are {v.seconds:.2f} s old (a backlog in "
                                      "the producer, the network or Bluetooth); data older than "
                                      f"{C.STREAM_MAX_AGE_S * 1e3:.0f} ms are not decided on; bring the "
                                      "producer closer or lighten its link")
                self._hold(STREAM_TIME)
            return True
        self._behind_since = None
        self._release(STREAM_TIME, "the stream's data are fresh again")
        if STREAM_RATE in self._holds:
            # released after STREAM_CLEAR_S of chunks on time whose stamps advanced at the declared rate
            # over that whole time (a stream merely less fast than before stays held)
            if self._ok_since is None:
                self._ok_since = (now, t_arrival, stamp)
            t0, a0, s0 = self._ok_since
            if now - t0 >= C.STREAM_CLEAR_S:
                ratio = (stamp - s0) / (t_arrival - a0) / self._clock.expected
                if abs(ratio - 1.0) <= C.RATE_TOLERANCE:
                    self._release(STREAM_RATE, f"the stream runs at its declared {fs:g} Hz again")
                    return False
                self._ok_since = (now, t_arrival, stamp)
            return True
        return False

    def safety_state(self) -> tuple[bool, str | None, tuple[str, ...]]:
        """(in the safe state, why, the causes holding it) now: for the live view, on the loop's thread."""
        return self._safe, self._safe_reason if self._safe else None, tuple(sorted(self._holds))

    def _start_clean(self) -> None:
        """A run that starts on an arm whose firmware latched its watchdog before the run (the previous owner
        of the port stopped its heartbeats when it closed the link, as every run does at its end): this run
        did not cause it, and the firmware already rested the arm at its safe pose, where a run starts.
        The latch is cleared and logged, so the run starts clean instead of with a fault and a safe-state
        episode; a clear the arm refuses leaves it to the usual path (a fault, then REST, which clears it)."""
        status = getattr(self.arm, "last_status", None)
        if status is None or Fault.WATCHDOG not in status.faults or not hasattr(self.arm, "take_faults"):
            return
        before = self.arm.take_faults()
        try:
            self.arm.clear(Fault.WATCHDOG)
        except LinkError:
            self._early_faults = before
            return
        self._early_faults = [f for f in before if f.kind is not FaultKind.WATCHDOG_TRIP]
        self._log("stale_fault_cleared", fault="WATCHDOG", why="latched before this run")
        log.warning("the arm's firmware still had its watchdog fault latched from before this run (the previous "
                    "session's heartbeats stopped when it closed the link): cleared, this run starts clean")

    def _watch_link(self) -> None:
        """The link's own reports: the firmware protected itself (an MCU reset, a watchdog trip we did not
        ask for) → safe state and a fresh sequence; a link whose threads died → stop with an error, so
        the service manager restarts the process (the firmware's watchdog rests the arm meanwhile)."""
        self._take_estops()  # the view's e-stop (edge/runtime/estop.py)
        take = getattr(self.arm, "take_faults", None)
        if take is None:
            return
        early, self._early_faults = self._early_faults, []
        for f in early + take():
            self._log("link_fault", kind=f.kind.value, detail=f.detail, intended=f.intended)
            if f.kind in (FaultKind.MCU_RESET, FaultKind.WATCHDOG_TRIP) and not f.intended:
                self.fault("arm", f"{f.kind.value}: {f.detail}")
                self._firmware_rest()
            elif f.kind == FaultKind.ESTOP:
                # A person stopped the arm: it froze where it is.  Nothing is sent while it is pressed
                # (not even REST), and after the release control resumes from where the arm stopped:
                # the arm-state sequence is kept (a lifted object stays lifted, not "ready" to open).
                self.fault("arm", f"estop: {f.detail}")
                self._hold(ESTOPPED, rest=False)
            elif f.kind == FaultKind.ESTOP_SWITCH_RELEASED:
                # Resetting the stop does not restart (ISO 13850 4.1.4, IEC 60204-1 9.2.5.4.2): the arm
                # and this hold stay until a person starts it again (request_start).
                self._log("estop_switch_released", start=START_HOW)
                log.warning("the arm's e-stop switch was released: the arm stays stopped until you start it "
                            "deliberately (%s)", START_HOW)
            elif f.kind == FaultKind.ESTOP_RELEASED:
                self._release(ESTOPPED, "the arm was started again after its e-stop")
            elif f.kind in (FaultKind.MALFORMED_REPLY, FaultKind.RESYNC_FAILED):
                self.fault("link", f"{f.kind.value}: {f.detail}")  # its one console line (LinkLinesOnce)
            elif f.kind == FaultKind.STREAM_OVERRUN:  # the arm's inputs as the source: the gap is a discontinuity
                self.fault("source", f"{f.kind.value}: {f.detail}")
            elif f.kind == FaultKind.STREAM_FAILED:
                # the arm's inputs were the source (edge/sources/arm.py) and its firmware refused to start them
                # again: no sample will come.  The arm rests, and the run stops with the fix.
                self.fault("source", f"{f.kind.value}: {f.detail}; {FLASH_FIX}")
                self._hold(SOURCE_FAILED)
                raise RunError(f"the arm's ADC stream, this run's source, failed ({f.detail}); {FLASH_FIX}, then "
                               "start again")
        self._take_start()
        # (while a REST is pending, or after an e-stop that failed, the runtime paused the heartbeats itself:
        # no STATUS is expected then)
        paused = self._rest_pending or self._estop_failed
        age = self.arm.status_age() if hasattr(self.arm, "status_age") and not paused else None
        if age is not None and age > C.ARM_STATUS_MAX_AGE_S:
            if ARM_UNKNOWN not in self._holds:
                bad = getattr(getattr(self.arm, "stats", None), "malformed_replies", 0)
                self.fault("arm", f"no valid STATUS from the arm for {age * 1e3:.0f} ms ({bad} malformed replies so "
                                  "far): its state (e-stop, watchdog, joints) is unknown, so nothing is sent until it "
                                  "reports again; check the cable and that its firmware speaks this protocol version")
                self._hold(ARM_UNKNOWN)
        elif ARM_UNKNOWN in self._holds:
            self._release(ARM_UNKNOWN, "the arm reports its state again")
        if not self.arm.healthy():
            raise RunError(f"the serial link to the arm failed ({getattr(self.arm, 'failed', None)}); stopping so "
                           "the service manager restarts neurogrip (the firmware's watchdog rests the arm)")
