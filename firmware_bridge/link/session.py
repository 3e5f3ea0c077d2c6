"""The firmware session: opening it, keeping the requests it allows, re-establishing it after a reset.

Where the transport (:mod:`~firmware_bridge.link.transport`) and the firmware-state mirror
(:mod:`~firmware_bridge.link.arm_state`) meet: :class:`Session` sends through the one and acts on
what the other saw.  It runs the handshake on each freshly opened port (STATUS_REQ, HELLO, what a
reset while away made the firmware forget, STATUS_REQ), lets one state-changing request run at a
time (the firmware remembers only the last one, which is what makes a retransmission safe), holds
ARM_CMDs after an MCU reset until the owner clears the WATCHDOG latch, and re-establishes a lost
session (HELLO, then the settings the link had set), by itself after a reset (``auto_resync``,
retried with back-off while it fails) or when the owner asks (:meth:`ArmLink.resync`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from firmware_bridge import protocol as P
from firmware_bridge.errors import HeldAfterReset, LinkError, Nacked, ProtocolError
from firmware_bridge.link.arm_state import ArmState
from firmware_bridge.link.exchange import READ_TYPES, Request
from firmware_bridge.link.faults import FaultKind, FaultReporter, LinkFault
from firmware_bridge.link.settings import LinkSettings
from firmware_bridge.link.transport import Transport


class Session:
    """The session of one link with its firmware (see the module docstring)."""

    def __init__(self, settings: LinkSettings, transport: Transport, state: ArmState, reporter: FaultReporter):
        self._settings = settings
        self._transport = transport
        self._state = state
        self._reporter = reporter
        self.stats = transport.stats
        # resync() runs under _resync_lock; after a failed automatic one, the next waits out a back-off
        # unless the MCU reset again since (a new reset is worth a try at once).
        self._resync_lock = threading.Lock()
        self._retry_at = 0.0
        self._failed_gen: int | None = None  # state.loss_gen when the last automatic resync failed
        self._backoff = settings.backoff_initial

    def call(self, msg_type: int, payload: bytes = b"", deadline: float | None = None,
             retries: int | None = None) -> Request:
        """Send one request through the transport, as the session allows (see :meth:`ArmLink.request`)."""
        self._transport.raise_if_failed()
        try:
            if msg_type in READ_TYPES:
                return self._transport.request(msg_type, payload, deadline, retries)
            # One state-changing request at a time: the firmware remembers only the last one, which is
            # what makes a retransmission safe.
            with self._transport.command_lock:
                if msg_type == P.MsgType.ARM_CMD and self._state.hold is not None:
                    self.stats.held_commands += 1
                    raise HeldAfterReset(self._state.hold)
                return self._transport.request(msg_type, payload, deadline, retries)
        except Nacked as e:
            if e.reason == P.Reason.NO_HELLO and msg_type != P.MsgType.HELLO:
                self.maybe_resync()  # the firmware lost the session: restore it now for the next call
            raise

    def handshake(self, send: Callable[[int, bytes], object]) -> list[LinkFault]:
        """Exchange STATUS_REQ, HELLO, what a reset made the firmware forget (or the e-stop latch) and
        STATUS_REQ on a freshly opened port; return the faults seen.

        The first STATUS, before our HELLO, tells a reconnect whether the MCU rebooted meanwhile: a
        firmware never loses a session otherwise, so NO_HELLO there after an earlier session is a reset.
        Then the settings are restored here, before the link is usable again (see :meth:`resync`).
        """
        state = self._state
        # A firmware of another protocol version may answer it with anything: HELLO names that
        # problem below (VersionMismatch), so what went wrong here is raised only after HELLO.
        try:
            first, first_error = send(P.MsgType.STATUS_REQ, b""), None
        except (ProtocolError, Nacked) as e:
            first, first_error = None, e
        state.hello = send(P.MsgType.HELLO, P.pack_hello())
        if first_error is not None:
            raise first_error
        t0 = time.monotonic()
        events = state.note_status(first, None)
        state.note_hello()
        if state.restore_needed:  # the MCU rebooted while we were away: before anything else runs
            events.append(self._restored(state.loss_gen, "by the reconnect", t0, self._restore(send)))
        elif state.estop_held:  # a stop holds whatever happened while we were away
            send(P.MsgType.ESTOP, b"")
        events += state.note_status(send(P.MsgType.STATUS_REQ, b""), None)
        return events

    def resync(self, reason: str) -> P.Status:
        """Re-establish the firmware session and return its status (see :meth:`ArmLink.resync`)."""
        self._transport.raise_if_failed()
        with self._resync_lock:
            return self._resync(reason)

    def maybe_resync(self) -> None:
        """Re-establish a lost session now, if allowed (``auto_resync``) and not already under way."""
        state = self._state
        if not (self._settings.auto_resync and state.resync_needed and self._transport.connected):
            return
        if self._transport.heartbeat_paused or (self._failed_gen == state.loss_gen
                                                and time.monotonic() < self._retry_at):
            return
        if not self._resync_lock.acquire(blocking=False):
            return  # another thread is at it (or this one, further up the stack)
        try:
            if state.resync_needed:
                self._resync(f"automatic, after {state.resync_reason}")
            self._backoff = self._settings.backoff_initial
        except LinkError:
            self._failed_gen, self._retry_at = state.loss_gen, time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self._settings.backoff_max)
        finally:
            self._resync_lock.release()

    def _resync(self, reason: str) -> P.Status:
        gen = self._state.loss_gen
        t0 = time.monotonic()
        restored = None
        try:
            with self._transport.command_lock:
                self.call(P.MsgType.HELLO, P.pack_hello())
                if self._state.restore_needed:
                    restored = self._restore(lambda t, pl: self.call(
                        t, pl, None, max(self._settings.retries, 5) if t == P.MsgType.ESTOP else None))
            status = self.call(P.MsgType.STATUS_REQ).parsed
        except LinkError as e:
            self.stats.resync_failures += 1
            self._reporter.emit([LinkFault(FaultKind.RESYNC_FAILED, f"re-establishing the session ({reason}) "
                                           f"failed: {type(e).__name__}: {e}", e)])
            raise
        self._reporter.emit([self._restored(gen, reason, t0, restored)])
        return status

    def _restore(self, send: Callable[[int, bytes], object]) -> list[str]:
        """After an MCU reset: re-apply what this link had set, the e-stop latch last (it refuses SET_*).

        While the arm's e-stop switch is pressed the firmware refuses SET_* too: the resync then fails
        (RESYNC_FAILED) and is retried with back-off until the switch is released."""
        restored = []
        for msg_type, payload, what in self._state.restore_steps():
            send(msg_type, payload)
            restored.append(what)
        return restored

    def _restored(self, gen: int, how: str, t0: float, restored: list[str] | None) -> LinkFault:
        self._state.session_restored(gen, restored is not None)
        self.stats.resyncs += 1
        hold = self._state.hold
        detail = (f"session re-established ({how}) in {(time.monotonic() - t0) * 1000:.0f} ms"
                  + (f"; restored {', '.join(restored)}" if restored else "")
                  + (f"; ARM_CMDs held until clear(Fault.WATCHDOG): {hold}" if hold else ""))
        return LinkFault(FaultKind.RESYNC, detail)
