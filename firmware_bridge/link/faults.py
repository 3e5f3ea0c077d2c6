"""What the link reports to its owner: fault events (:class:`LinkFault`), counters (:class:`LinkStats`),
and the one way every part of the link hands them on (:class:`FaultReporter`).

Kept apart from the parts that raise them (the transport's threads, the firmware-state mirror, the
session) so all of them report alike and the owner reads one queue, one callback, one set of counters.

Faults and recovery
-------------------
Nothing the wire delivers ends a thread: a reply with a valid CRC but a payload its type does not
have is counted (``stats.malformed_replies``), reported, and answered to the waiting request as a
:class:`ProtocolError`.  Anything else that escapes a thread (a bug) is logged once with its
traceback, stored in :attr:`ArmLink.failed`, reported, and fails the link: every request then raises
:class:`LinkFailed`, heartbeats stop (so the firmware's watchdog takes the arm to its safe pose), and
:meth:`ArmLink.healthy` is False until ``close()`` and ``open()``.

Every fault is a :class:`LinkFault` (``kind``, ``detail``, ``cause``), logged (at most once a second
per kind), queued for :meth:`ArmLink.take_faults` and passed to the ``on_fault`` callback:

- ``MCU_RESET``: the firmware rebooted (its uptime went back, or it answers NO_HELLO / reports the
  NO_HELLO fault after a successful HELLO).  The link re-sends HELLO by itself (``auto_resync``;
  HELLO moves nothing), re-applies what it had set (SET_CONFIG, SET_LIMITS, a latched e-stop) and
  holds ARM_CMDs (:class:`HeldAfterReset`, ``reason`` WATCHDOG) until the owner calls
  ``clear(Fault.WATCHDOG)`` (``hold_after_reset``): the reset took the arm to its safe pose, as a
  watchdog trip does, and resuming is the owner's decision.
- ``WATCHDOG_TRIP``: the firmware's watchdog latched; ``intended`` says whether heartbeats were
  paused by the owner (or left to it).  The link never clears it: ``clear(Fault.WATCHDOG)``.
- ``ESTOP`` / ``ESTOP_SWITCH_RELEASED`` / ``ESTOP_RELEASED``: the arm stopped itself — its e-stop
  switch was pressed (STATUS fault ``ESTOP_INPUT``, or NACK ESTOPPED), or an e-stop latch the owner
  did not set — and refuses every motion.  Releasing the switch leaves the firmware's ESTOP latch
  (ISO 13850: resetting a stop must not restart the machine): ``ESTOP_SWITCH_RELEASED``.  Only a
  deliberate start, :meth:`ArmLink.start`, clears it: ``ESTOP_RELEASED``, and the arm stays where it
  stopped until a new command.  The link starts nothing by itself; if the MCU resets before the
  start, the latch is set again on the new session.
- ``RESYNC`` / ``RESYNC_FAILED``: the session was (or could not be) re-established.
- ``MALFORMED_REPLY``, ``THREAD_DIED``: above.
- ``STREAM_RESTART``: the ADC stream (:meth:`ArmLink.open_stream`) was interrupted — an MCU reset, a
  HELLO (resync), a reconnect — and the link started it again by itself; the first block after it has
  ``restarted=True`` (a gap).  ``STREAM_OVERRUN``: the stream's reader fell behind and its buffer
  dropped the oldest blocks (counted as lost), reported once until the reader catches up.
  ``STREAM_FAILED``: the firmware refused to start the stream again (its NACK is the cause); the
  stream is closed and its ``read()`` raises that error.

:meth:`ArmLink.resync` re-establishes the session on demand.  The counters are in ``link.stats``.
"""

from __future__ import annotations

import collections
import enum
import logging
import time
from dataclasses import dataclass, field

from firmware_bridge.link.settings import LinkSettings

log = logging.getLogger(__package__)  # the link's one logger, "firmware_bridge.link"

_LOG_INTERVAL_S = 1.0  # each kind of fault is logged at most this often (all are counted and queued)


class FaultKind(str, enum.Enum):
    """What a :class:`LinkFault` reports (see the module docstring, "Faults and recovery")."""

    MALFORMED_REPLY = "malformed_reply"
    THREAD_DIED = "thread_died"
    MCU_RESET = "mcu_reset"
    WATCHDOG_TRIP = "watchdog_trip"
    RESYNC = "resync"
    RESYNC_FAILED = "resync_failed"
    ESTOP = "estop"
    ESTOP_SWITCH_RELEASED = "estop_switch_released"
    ESTOP_RELEASED = "estop_released"
    STREAM_RESTART = "stream_restart"
    STREAM_OVERRUN = "stream_overrun"
    STREAM_FAILED = "stream_failed"


_QUIET = (FaultKind.RESYNC, FaultKind.STREAM_RESTART)  # recoveries: logged at INFO


@dataclass(frozen=True)
class LinkFault:
    """One fault (or recovery) event of the link.

    Attributes
    ----------
    kind : FaultKind
    detail : str
        What happened and its cause, in words (the same text is logged).
    cause : BaseException or None
        The exception behind it, if any.
    intended : bool
        ``WATCHDOG_TRIP`` only: heartbeats had been paused by the owner (``pause_heartbeat()``) or
        were left to it (``heartbeat_period=None``), so the trip was asked for.
    time : float
        ``time.monotonic()`` when the link saw it.
    """

    kind: FaultKind
    detail: str
    cause: BaseException | None = None
    intended: bool = False
    time: float = field(default_factory=time.monotonic)


@dataclass
class LinkStats:
    """Counters of one link; every loss is counted somewhere."""

    requests: int = 0
    retransmissions: int = 0
    ack_timeouts: int = 0
    deadline_drops: int = 0
    nacks: int = 0
    frame_error_nacks: int = 0  # the firmware reported a corrupted frame from us
    heartbeats_ok: int = 0
    heartbeats_lost: int = 0
    reconnects: int = 0
    stale_replies: int = 0
    malformed_replies: int = 0  # valid CRC, but a payload length (or version) the protocol does not allow
    unexpected_frames: int = 0  # valid frames of a type that is no reply (an echo, another protocol)
    mcu_resets: int = 0  # the firmware rebooted under the link
    resyncs: int = 0  # sessions re-established by resync() (automatic or the owner's) or a reconnect
    resync_failures: int = 0
    watchdog_trips: int = 0  # firmware watchdog latches seen (each latch once)
    watchdog_trips_unintended: int = 0  # ... of which heartbeats had not been paused by the owner
    estops: int = 0  # the arm stopping itself (its e-stop switch, or a latch not set by this link)
    held_commands: int = 0  # ARM_CMDs refused by the link after an MCU reset (HeldAfterReset)


class FaultReporter:
    """Hands each :class:`LinkFault` of one link on: queued, logged, passed to ``on_fault``.

    ``settings.url`` is named in every log line; ``settings.on_fault`` is called with each event from
    whichever thread reports it, and what it raises is logged and ignored.
    """

    def __init__(self, settings: LinkSettings):
        self._settings = settings
        self._faults: collections.deque[LinkFault] = collections.deque(maxlen=256)
        self._log_state: dict[FaultKind, tuple[float, int]] = {}

    def emit(self, events: list[LinkFault]) -> None:
        """Queue, log (each kind at most once a second) and hand each event to ``on_fault``."""
        for ev in events:
            self._faults.append(ev)
            last, suppressed = self._log_state.get(ev.kind, (-1e9, 0))
            if ev.time - last >= _LOG_INTERVAL_S or ev.kind == FaultKind.THREAD_DIED:
                more = f" (+{suppressed} more {ev.kind.value} since the last report)" if suppressed else ""
                level = (logging.ERROR if ev.kind == FaultKind.THREAD_DIED
                         else logging.INFO if ev.kind in _QUIET or ev.intended else logging.WARNING)
                log.log(level, "%s: %s: %s%s", self._settings.url, ev.kind.value, ev.detail, more,
                        exc_info=ev.cause if ev.kind == FaultKind.THREAD_DIED else None)
                self._log_state[ev.kind] = (ev.time, 0)
            else:
                self._log_state[ev.kind] = (last, suppressed + 1)
            on_fault = self._settings.on_fault
            if on_fault is not None:
                try:
                    on_fault(ev)
                except Exception:  # the callback's bug must not end the thread that reports
                    log.exception("%s: the on_fault callback raised on %s; ignored", self._settings.url,
                                  ev.kind.value)

    def take(self) -> list[LinkFault]:
        """Return the events since the last call (at most the latest 256), oldest first."""
        out = []
        while True:
            try:
                out.append(self._faults.popleft())
            except IndexError:
                return out
