"""The link's picture of the firmware: what the arm reported, kept in wire order.

:class:`ArmState` is fed every reply (by the transport's I/O thread, and by the handshake, which
never runs alongside it) and answers with the faults they reveal: the MCU rebooted (its uptime went
back, or it lost its session), its watchdog latched, its e-stop switch was pressed or released, the
deliberate start.  It keeps what follows from them — the session is lost, ARM_CMDs are held, the
settings this link had set must be restored — and what to restore (the acknowledged SET_CONFIG and
SET_LIMITS, the e-stop latch).  It sends nothing: :mod:`~firmware_bridge.link.session` acts on it.

The firmware has no boot counter and needs none: it never ends a session except by rebooting, so
NACK NO_HELLO or the NO_HELLO fault after a successful HELLO is a reset (``PROTOCOL.md`` § 2.5).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator

from firmware_bridge import protocol as P
from firmware_bridge.link.exchange import Request, type_name
from firmware_bridge.link.faults import FaultKind, LinkFault, LinkStats
from firmware_bridge.link.settings import LinkSettings

_UPTIME_WRAP_MARGIN_MS = 600_000  # uptime is a u32 of ms: it wraps after 49.7 days, which is no reset


class ArmState:
    """What one link knows of the firmware behind it.

    Parameters
    ----------
    settings : LinkSettings
        ``auto_resync`` and ``hold_after_reset`` say what follows a reset.
    stats : LinkStats
        Shared with the link's other parts: resets, watchdog trips and e-stops are counted here.
    watchdog_cause : callable
        ``watchdog_cause(heartbeat)`` → ``(intended, why)``: whether a watchdog trip seen now was asked
        for, and why it came (the transport's heartbeat record).
    """

    def __init__(self, settings: LinkSettings, stats: LinkStats,
                 watchdog_cause: Callable[[Request | None], tuple[bool, str]]):
        self._settings = settings
        self.stats = stats
        self._watchdog_cause = watchdog_cause
        self.hello: P.HelloReply | None = None  # the last HELLO_REPLY
        self.last_status: P.Status | None = None
        self._last_status_at: float | None = None  # monotonic time of the last valid STATUS
        self.hold: str | None = None  # why ARM_CMDs are held (after an MCU reset), or None
        self.loss_gen = 0  # bumped at each detected reset
        self.restore_needed = False  # the firmware forgot the settings this link had set (a reset)
        self.resync_reason = ""  # the reset that lost the session, in words
        self._resync_needed = threading.Event()
        self._session_ok = False  # a HELLO was answered and no sign of a reboot since
        self._baseline: P.Status | None = None  # last STATUS of the firmware's current boot
        self._wd_seen = False  # the current WATCHDOG latch was reported
        self._estop_wanted = False  # the owner latched the e-stop and has not cleared it
        self._estop_seen = False    # the arm's own e-stop (switch, or a latch not ours) was reported
        self._estop_pressed = False  # its switch was pressed at the last STATUS
        self._estop_started = False  # our CLEAR(ESTOP) of the arm's own stop was acknowledged
        self._estop_release_said = False  # ESTOP_SWITCH_RELEASED sent for the current stop
        self._limits: dict[int, bytes] = {}  # joint -> acknowledged SET_LIMITS payload
        self._config: bytes | None = None  # acknowledged SET_CONFIG payload

    # ------------------------------------------------------------------ what the owner reads
    def status_age(self) -> float | None:
        """Seconds since the last valid STATUS; None before the first."""
        t = self._last_status_at
        return None if t is None else time.monotonic() - t

    @property
    def resync_needed(self) -> bool:
        """The MCU reset and the session has not been re-established since."""
        return self._resync_needed.is_set()

    @property
    def estop_held(self) -> bool:
        """The owner's e-stop latch, or the arm's own stop not yet started again: a reset must not start it."""
        return self._estop_wanted or self._estop_seen

    def restore_steps(self) -> Iterator[tuple[int, bytes, str]]:
        """What this link had set, as ``(type, payload, what)`` to re-send after a reset, the e-stop
        latch last (it refuses SET_*).  Lazy: each step is read when the one before it was sent."""
        if self._config is not None:
            yield P.MsgType.SET_CONFIG, self._config, "watchdog period"
        for j in sorted(self._limits):
            yield P.MsgType.SET_LIMITS, self._limits[j], f"joint {j} limits"
        if self.estop_held:
            yield P.MsgType.ESTOP, b"", "e-stop latch"

    # ------------------------------------------------------------------ what the owner tells it
    def want_estop(self) -> None:
        """The owner latches the e-stop (before sending ESTOP): kept across resets until its CLEAR."""
        self._estop_wanted = True

    def session_restored(self, gen: int, settings_restored: bool) -> None:
        """A session was re-established; ``gen`` is :attr:`loss_gen` when that began (a reset since
        leaves the new loss standing)."""
        if self.loss_gen == gen:  # no new reset meanwhile
            if settings_restored:
                self.restore_needed = False
            self._resync_needed.clear()

    # ------------------------------------------------------------------ what the firmware says
    def observe(self, reply, request: Request | None) -> list[LinkFault]:
        """One valid reply, in wire order; ``request`` is the one it answers (None if none waits)."""
        events = []
        if isinstance(reply, P.Status):
            heartbeat = request if request is not None and request.msg_type == P.MsgType.HEARTBEAT else None
            events += self.note_status(reply, heartbeat)
        if request is not None:
            if isinstance(reply, P.Nack):
                events += self._note_nack(request, reply.reason)
            elif isinstance(reply, P.Ack):
                self._note_ack(request)
            elif isinstance(reply, P.HelloReply):
                self.hello = reply
                self.note_hello()
        return events

    def note_hello(self) -> None:
        self._session_ok = True

    def note_status(self, s: P.Status, heartbeat: Request | None) -> list[LinkFault]:
        events = []
        prev, self._baseline = self._baseline, s
        self.last_status, self._last_status_at = s, time.monotonic()
        went_back = (prev is not None and s.uptime_ms < prev.uptime_ms
                     and not (prev.uptime_ms > 0xFFFFFFFF - _UPTIME_WRAP_MARGIN_MS
                              and s.uptime_ms < _UPTIME_WRAP_MARGIN_MS))
        if went_back:
            events += self._on_reset(f"its uptime went back from {prev.uptime_ms} ms to {s.uptime_ms} ms",
                                     session_lost=P.Fault.NO_HELLO in s.faults)
        elif self._session_ok and P.Fault.NO_HELLO in s.faults:
            events += self._on_reset("its STATUS reports NO_HELLO (no session) after a successful HELLO",
                                     session_lost=True)
        if P.Fault.WATCHDOG not in s.faults:
            self._wd_seen = False
        elif not self._wd_seen:
            events += self._on_watchdog("its STATUS reports the WATCHDOG fault", heartbeat)
        stopped = P.Fault.ESTOP_INPUT in s.faults or (P.Fault.ESTOP in s.faults and not self._estop_wanted)
        pressed = P.Fault.ESTOP_INPUT in s.faults
        if stopped and not self._estop_seen:
            events += self._on_estop("its STATUS reports " + ("the e-stop switch pressed (ESTOP_INPUT)"
                                                              if pressed else "an e-stop latch this link did not set"))
        elif not stopped and self._estop_seen and self._estop_started:
            # released only by our own acknowledged CLEAR(ESTOP) (start()): a latch that vanished otherwise
            # (an MCU reset forgets it) is set again on the new session (restore_steps), never taken as a start
            self._estop_seen = self._estop_started = False
            events.append(LinkFault(FaultKind.ESTOP_RELEASED, "the arm was started again after its e-stop: it "
                                                              "stays where it stopped and takes commands again"))
        if stopped and not pressed and not self._estop_release_said:
            # the switch let go (also a tap between two heartbeats): say how to start, once per stop
            self._estop_release_said = True
            events.append(LinkFault(FaultKind.ESTOP_SWITCH_RELEASED,
                                    "the arm's e-stop switch was released; it stays stopped until a deliberate "
                                    "start (ArmLink.start)"))
        elif pressed:
            self._estop_release_said = False
        self._estop_pressed = pressed
        return events

    def _on_estop(self, how: str) -> list[LinkFault]:
        self._estop_seen = True
        self.stats.estops += 1
        return [LinkFault(FaultKind.ESTOP, f"the arm stopped itself ({how}): every joint froze where it was and "
                          "every motion is refused until the e-stop is released (a person pressed it: nothing "
                          "here releases it)")]

    def _note_nack(self, p: Request, reason: int) -> list[LinkFault]:
        name = type_name(p.msg_type)
        if reason == P.Reason.NO_HELLO and self._session_ok:
            self._baseline = None  # the next STATUS is the new boot's first
            return self._on_reset(f"it refused {name} with NACK NO_HELLO after a successful HELLO",
                                  session_lost=True)
        if reason == P.Reason.WATCHDOG and not self._wd_seen:
            return self._on_watchdog(f"it refused {name} with NACK WATCHDOG", None)
        if reason == P.Reason.ESTOPPED and not self._estop_seen and not self._estop_wanted:
            return self._on_estop(f"it refused {name} with NACK ESTOPPED")
        return []

    def _note_ack(self, p: Request) -> None:
        if len(p.payload) != P.PAYLOAD_SIZE.get(p.msg_type, -1):
            return  # a raw request() the firmware should have refused: nothing to remember
        if p.msg_type == P.MsgType.CLEAR:
            (mask,) = struct.unpack_from("<H", p.payload)
            if mask & P.Fault.WATCHDOG:
                self._wd_seen = False
                self.hold = None
            if mask & P.Fault.ESTOP:
                self._estop_wanted = False
                self._estop_started = self._estop_seen  # the deliberate start of the arm's own stop
        elif p.msg_type == P.MsgType.SET_LIMITS:
            self._limits[p.payload[0]] = p.payload
        elif p.msg_type == P.MsgType.SET_CONFIG:
            self._config = p.payload

    def _on_reset(self, why: str, *, session_lost: bool) -> list[LinkFault]:
        self.stats.mcu_resets += 1
        self.loss_gen += 1
        if session_lost:
            self._session_ok = False
        self._wd_seen = False
        self.restore_needed = True
        if self._settings.hold_after_reset:
            self.hold = f"the arm's microcontroller reset ({why}) and went to its safe pose"
        self.resync_reason = f"an MCU reset ({why})"
        self._resync_needed.set()
        then = ("the link re-sends HELLO" if self._settings.auto_resync else "call resync()")
        if self._settings.hold_after_reset:
            then += " and holds ARM_CMDs until clear(Fault.WATCHDOG)"
        return [LinkFault(FaultKind.MCU_RESET, f"the arm's microcontroller reset: {why}; it forgot its session, "
                          f"latches and settings and drove the joints to their safe pose; {then}")]

    def _on_watchdog(self, how: str, heartbeat: Request | None) -> list[LinkFault]:
        self._wd_seen = True
        intended, why = self._watchdog_cause(heartbeat)
        self.stats.watchdog_trips += 1
        if not intended:
            self.stats.watchdog_trips_unintended += 1
        return [LinkFault(FaultKind.WATCHDOG_TRIP, f"the firmware's watchdog tripped ({how}): {why}; the arm went "
                          "to its safe pose and ARM_CMDs are refused until clear(Fault.WATCHDOG)",
                          intended=intended)]
