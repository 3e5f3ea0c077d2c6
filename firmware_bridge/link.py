"""The host end of the arm link: a serial port opened by URL, acknowledged requests, heartbeats,
reconnection.

Opening without resetting an Arduino
------------------------------------
An Uno/Nano resets whenever DTR is asserted on its USB serial port (DTR drives RESET through a
100 nF capacitor): the board then sits ~0.5-2 s in its bootloader and the arm stops being driven.
:class:`ArmLink` guards against this as far as software can:

1. The port is created with ``do_not_open=True`` and ``dtr``/``rts`` are set to ``False`` *before*
   it is opened; pyserial applies them as part of ``open()``. On Windows and macOS this prevents
   the reset.
2. On Linux the kernel asserts DTR during the ``open()`` system call itself, before pyserial can
   clear it, so the *first* open after plugging in still resets the board. Right after opening, the
   link clears ``HUPCL`` on the port, so closing it no longer drops DTR, and later opens (including
   reconnects) do not produce the edge that resets the board. ``open()`` waits up to
   ``boot_timeout`` (default 2 s) for the firmware's first reply, which covers that first reset.
   ``stty -F /dev/ttyACM0 -hupcl`` does the same from a shell.
3. Where even one reset is unacceptable, put a 10 µF capacitor between RESET and GND on the board
   (remove it to flash), as the Arduino documentation suggests.

Ptys, ``loop://`` and ``spy://`` ignore DTR; the same code path is used for all of them.

Threads
-------
One I/O thread owns reading: it feeds the parser, checks every reply's length before reading a
field, matches replies to waiting requests, keeps the link's picture of the firmware in wire order
(its boot, its session, its watchdog latch), and reconnects with exponential back-off after an
unplug.  One heartbeat thread sends HEARTBEAT every ``heartbeat_period`` seconds.  Callers of
:meth:`ArmLink.request` block on their own reply.

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

:meth:`ArmLink.resync` re-establishes the session on demand.  The counters are in ``link.stats``.
"""

from __future__ import annotations

import collections
import enum
import itertools
import logging
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import serial

try:
    import termios
except ImportError:  # Windows
    termios = None

from firmware_bridge import config as C
from firmware_bridge import protocol as P
from firmware_bridge.errors import (
    AckTimeout,
    DeadlineExpired,
    Disconnected,
    HeldAfterReset,
    LinkError,
    LinkFailed,
    Nacked,
    ProtocolError,
    VersionMismatch,
)

log = logging.getLogger(__name__)

REPLY_TYPES = frozenset({P.MsgType.ACK, P.MsgType.NACK, P.MsgType.HELLO_REPLY, P.MsgType.STATUS})
#: The reply each request type expects (besides NACK).
EXPECTED_REPLY = {
    P.MsgType.HELLO: P.MsgType.HELLO_REPLY, P.MsgType.HEARTBEAT: P.MsgType.STATUS,
    P.MsgType.STATUS_REQ: P.MsgType.STATUS,
}

#: Idempotent reads: they may be outstanding alongside a command (see PROTOCOL.md, sequence numbers).
READ_TYPES = frozenset({P.MsgType.HEARTBEAT, P.MsgType.STATUS_REQ})

_UPTIME_WRAP_MARGIN_MS = 600_000  # uptime is a u32 of ms: it wraps after 49.7 days, which is no reset
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
class _Pending:
    msg_type: int
    payload: bytes = b""
    event: threading.Event = field(default_factory=threading.Event)
    reply: object = None  # a Frame, or a LinkError to raise in the waiting thread
    parsed: object = None  # the reply decoded by P.parse_reply
    retry_now: bool = False  # a loss was detected on the wire: retransmit without waiting
    t_sent: float | None = None  # first transmission (time.monotonic())
    pause_gen: int = 0  # ArmLink._pause_gen when the request was registered


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


class ArmLink:
    """A framed, acknowledged serial link to the arm firmware.

    Parameters
    ----------
    url : str
        Anything ``serial.serial_for_url`` accepts: ``/dev/ttyACM0``, a pty path, ``loop://``,
        ``spy:///dev/ttyACM0?file=trace.txt``.
    baudrate : int
        Must match the firmware (115200).
    ack_timeout : float
        Seconds to wait for the reply to one transmission.
    retries : int
        Retransmissions after the first attempt before :class:`AckTimeout` is raised.
    heartbeat_period : float or None
        Seconds between heartbeats; ``None`` disables the heartbeat thread (then the firmware's
        watchdog trips unless the caller sends heartbeats itself).
    command_max_age : float
        Default deadline of :meth:`command`: a command not (re)sent within this many seconds of the
        call is dropped, never sent late.
    boot_timeout : float
        How long :meth:`open` keeps repeating HELLO (covers a board that resets on open).
    reconnect : bool
        Reopen the port with exponential back-off (``backoff_initial`` doubling up to
        ``backoff_max`` seconds) after it disappears.
    auto_resync : bool
        After an MCU reset, re-send HELLO without waiting for :meth:`resync` (HELLO moves nothing).
    hold_after_reset : bool
        After an MCU reset, refuse ARM_CMDs (:class:`HeldAfterReset`) until ``clear(Fault.WATCHDOG)``.
    on_fault : callable, optional
        Called with each :class:`LinkFault`, from whichever thread saw it (often the link's I/O
        thread): it must return quickly and must not call the link's blocking methods.  What it
        raises is logged and ignored.  :meth:`take_faults` is the polling alternative.
    """

    def __init__(self, url: str, *, baudrate: int = C.BAUDRATE, ack_timeout: float = C.ACK_TIMEOUT_S,
                 retries: int = C.RETRIES, heartbeat_period: float | None = C.HEARTBEAT_PERIOD_S,
                 command_max_age: float = C.DEFAULT_COMMAND_MAX_AGE_S, boot_timeout: float = C.BOOT_TIMEOUT_S,
                 reconnect: bool = True, backoff_initial: float = C.BACKOFF_INITIAL_S,
                 backoff_max: float = C.BACKOFF_MAX_S, auto_resync: bool = True, hold_after_reset: bool = True,
                 on_fault: Callable[[LinkFault], None] | None = None):
        if not isinstance(url, str) or not url:
            raise TypeError(f"url must be a non-empty str such as '/dev/ttyACM0' or 'loop://', got {url!r}")
        for name, v in (("ack_timeout", ack_timeout), ("command_max_age", command_max_age),
                        ("boot_timeout", boot_timeout), ("backoff_initial", backoff_initial),
                        ("backoff_max", backoff_max)):
            if not v > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {v!r}")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        if heartbeat_period is not None and not heartbeat_period > 0:
            raise ValueError(f"heartbeat_period must be > 0 seconds or None, got {heartbeat_period!r}")
        if on_fault is not None and not callable(on_fault):
            raise TypeError(f"on_fault must be callable (it receives a LinkFault), got {on_fault!r}")
        self.url = url
        self.baudrate = baudrate
        self.ack_timeout = ack_timeout
        self.retries = retries
        self.heartbeat_period = heartbeat_period
        self.command_max_age = command_max_age
        self.boot_timeout = boot_timeout
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.auto_resync = auto_resync
        self.hold_after_reset = hold_after_reset
        self.on_fault = on_fault
        self.stats = LinkStats()
        self.hello: P.HelloReply | None = None
        self.last_status: P.Status | None = None
        self._last_status_at: float | None = None  # monotonic time of the last valid STATUS
        self._parser = P.FrameParser()
        self._port: serial.SerialBase | None = None
        self._write_lock = threading.Lock()
        # Re-entrant: resync() holds it across HELLO and the settings it restores, so no other
        # state-changing request (an ARM_CMD) can run in between.
        self._cmd_lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._seq = itertools.count(0)
        self._connected = threading.Event()
        self._closing = threading.Event()
        self._hb_paused = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failed: BaseException | None = None
        self._faults: collections.deque[LinkFault] = collections.deque(maxlen=256)
        self._log_state: dict[FaultKind, tuple[float, int]] = {}
        # Recovery: resync() runs under _resync_lock; the I/O thread asks for one with _resync_needed.
        self._resync_lock = threading.Lock()
        self._resync_needed = threading.Event()
        self._resync_reason = ""
        self._resync_retry_at = 0.0
        self._resync_backoff = backoff_initial
        self._loss_gen = 0  # bumped at each detected reset
        # The link's picture of the firmware, kept by the I/O thread in wire order (and by _connect,
        # which never runs alongside it).
        self._session_ok = False  # a HELLO was answered and no sign of a reboot since
        self._baseline: P.Status | None = None  # last STATUS of the firmware's current boot
        self._wd_seen = False  # the current WATCHDOG latch was reported
        self._hold: str | None = None  # why ARM_CMDs are held (after an MCU reset), or None
        self._restore_needed = False  # the firmware forgot the settings below (a reset)
        self._estop_wanted = False  # the owner latched the e-stop and has not cleared it
        self._estop_seen = False    # the arm's own e-stop (switch, or a latch not ours) was reported
        self._estop_pressed = False  # its switch was pressed at the last STATUS
        self._estop_started = False  # our CLEAR(ESTOP) of the arm's own stop was acknowledged
        self._estop_release_said = False  # ESTOP_SWITCH_RELEASED sent for the current stop
        self._limits: dict[int, bytes] = {}  # joint -> acknowledged SET_LIMITS payload
        self._config: bytes | None = None  # acknowledged SET_CONFIG payload
        self._last_hb_ok: float | None = None  # when the last acknowledged heartbeat was sent
        self._pause_gen = 0  # bumped by pause_heartbeat()
        self._pause_gen_at_hb_ok = 0

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> P.HelloReply:
        """Open the port (without resetting an Arduino where possible) and exchange HELLO.

        Also clears the failed state of an earlier run (:attr:`failed`).

        Raises
        ------
        Disconnected
            The port cannot be opened.
        ProtocolError
            The other end echoed our frames, or sent a reply the protocol does not allow;
            :class:`VersionMismatch` (a ProtocolError) when it speaks another protocol version.
        AckTimeout
            Nothing answered within ``boot_timeout``.
        """
        if self._threads:
            raise LinkError("link already open: call close() first")
        self._closing.clear()
        self._failed = None
        self._last_hb_ok = None
        self._connect()
        self._threads = [threading.Thread(target=self._thread_main, args=(self._io_loop,), name="armlink-io",
                                          daemon=True)]
        if self.heartbeat_period is not None:
            self._threads.append(threading.Thread(target=self._thread_main, args=(self._hb_loop,),
                                                  name="armlink-hb", daemon=True))
        for t in self._threads:
            t.start()
        return self.hello

    def close(self) -> None:
        """Stop the threads and close the port (the firmware's watchdog then takes the arm safe)."""
        self._closing.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2.0)
        self._threads = []
        self._drop_port(Disconnected("link closed"))

    def __enter__(self):  # returns self
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until the link is (re)connected; return whether it is."""
        return self._connected.wait(timeout)

    # ------------------------------------------------------------------ health and faults
    @property
    def failed(self) -> BaseException | None:
        """The exception that ended one of the link's threads, or None.  Sticky until :meth:`open`."""
        return self._failed

    def status_age(self) -> float | None:
        """Seconds since the last valid STATUS (a heartbeat's reply or :meth:`status`); None before the first.

        A peer whose STATUS replies are all malformed, or that stopped answering heartbeats, leaves the
        firmware's state (e-stop, watchdog, joints) unknown: the runtime holds the arm while this is old.
        """
        t = self._last_status_at
        return None if t is None else time.monotonic() - t

    def healthy(self) -> bool:
        """Whether the link is open and all its threads run (it may be reconnecting: see :attr:`connected`).

        False after :meth:`close`, or once a thread died (:attr:`failed`): a supervisor then closes and
        reopens the link, or exits.
        """
        return bool(self._threads) and self._failed is None and all(t.is_alive() for t in self._threads)

    def take_faults(self) -> list[LinkFault]:
        """Return the :class:`LinkFault` events since the last call (at most the latest 256), oldest first."""
        out = []
        while True:
            try:
                out.append(self._faults.popleft())
            except IndexError:
                return out

    @property
    def hold_reason(self) -> str | None:
        """Why ARM_CMDs are held after an MCU reset (``clear(Fault.WATCHDOG)`` releases them), or None."""
        return self._hold

    def seconds_since_heartbeat(self) -> float:
        """Seconds since the last acknowledged heartbeat was sent (``inf`` before the first one)."""
        t = self._last_hb_ok
        return float("inf") if t is None else time.monotonic() - t

    # ------------------------------------------------------------------ requests
    def request(self, msg_type: int, payload: bytes = b"", *, deadline: float | None = None,
                retries: int | None = None) -> P.Frame:
        """Send one request and return its reply frame (ACK, HELLO_REPLY or STATUS).

        The same bytes (same seq) are retransmitted on timeout, so the firmware executes a request
        at most once.  ``deadline`` (a ``time.monotonic()`` value) is checked before every
        transmission: a request is never sent after it.

        Raises
        ------
        Nacked, AckTimeout, DeadlineExpired, Disconnected, ProtocolError
            ProtocolError also when the reply's payload does not fit its type.
        HeldAfterReset
            An ARM_CMD after an MCU reset, before ``clear(Fault.WATCHDOG)`` (not sent).
        LinkFailed
            A thread of the link died (:attr:`failed`): close and reopen it.
        """
        return self._call(msg_type, payload, deadline, retries).reply

    def _call(self, msg_type, payload=b"", deadline=None, retries=None) -> _Pending:
        if self._failed is not None:
            raise self._failed_error()
        try:
            if msg_type in READ_TYPES:
                return self._request(msg_type, payload, deadline, retries)
            # One state-changing request at a time: the firmware remembers only the last one, which is
            # what makes a retransmission safe.
            with self._cmd_lock:
                if msg_type == P.MsgType.ARM_CMD and self._hold is not None:
                    self.stats.held_commands += 1
                    raise HeldAfterReset(self._hold)
                return self._request(msg_type, payload, deadline, retries)
        except Nacked as e:
            if e.reason == P.Reason.NO_HELLO and msg_type != P.MsgType.HELLO:
                self._maybe_resync()  # the firmware lost the session: restore it now for the next call
            raise

    def _request(self, msg_type, payload, deadline, retries) -> _Pending:
        retries = self.retries if retries is None else retries
        seq, pending = self._register(msg_type, payload)
        # The leading delimiter resynchronises the firmware if noise ate the last frame's delimiter.
        frame = b"\x00" + P.encode_frame(msg_type, seq, payload)
        transmitted = False
        self.stats.requests += 1
        try:
            for attempt in range(retries + 1):
                if deadline is not None and time.monotonic() >= deadline:
                    self.stats.deadline_drops += 1
                    raise DeadlineExpired(
                        f"{_name(msg_type)} seq {seq} not sent: its deadline passed"
                        + (" after an unacknowledged transmission (ask status() whether it ran)"
                           if transmitted else " before it could be sent; send a fresh command"),
                        transmitted)
                if attempt:
                    self.stats.retransmissions += 1
                else:
                    pending.t_sent = time.monotonic()
                self._write(frame)
                transmitted = True
                if pending.event.wait(self.ack_timeout) and pending.reply is not None:
                    break
                with self._state_lock:
                    if pending.reply is not None:  # arrived just after the wait timed out
                        break
                    pending.retry_now = False
                    pending.event.clear()
            else:
                self.stats.ack_timeouts += 1
                raise AckTimeout(f"no reply to {_name(msg_type)} seq {seq} after {retries + 1} "
                                 f"transmissions of {self.ack_timeout * 1000:.0f} ms: check the cable, "
                                 "the baud rate and that the arm firmware is running")
        finally:
            with self._state_lock:
                self._pending.pop(seq, None)
        # The I/O thread sets the reply, then its bookkeeping (the faults it reports), then the event.
        while not pending.event.wait(0.05):
            if self._failed is not None:  # it died in between
                raise self._failed_error()
        if isinstance(pending.reply, LinkError):
            raise pending.reply
        if isinstance(pending.parsed, P.Nack):
            self.stats.nacks += 1
            if msg_type == P.MsgType.HELLO and pending.parsed.reason == P.Reason.VERSION:
                raise VersionMismatch(P.PROTOCOL_VERSION, None)
            raise Nacked(msg_type, pending.parsed.reason)
        return pending

    def command(self, action: P.Action | int, target_ddeg: int, speed_ddeg_s: int, *,
                deadline: float | None = None) -> None:
        """Send an arm command and wait for its ACK.

        Parameters
        ----------
        action : Action
            GRASP/RELEASE/OPEN move the gripper (joint 0), LIFT/LOWER the lift (joint 1); HOLD stops
            every joint; REST sends every joint to its safe pose.
        target_ddeg : int
            Target angle in tenths of a degree (0-1800); the firmware clamps it to the joint limits.
        speed_ddeg_s : int
            Speed in tenths of a degree per second (>= 1); the firmware clamps it.
        deadline : float, optional
            ``time.monotonic()`` after which the command must not be sent; default
            ``now + command_max_age``.

        Raises
        ------
        Nacked
            ``reason`` WATCHDOG (the watchdog latched, or :class:`HeldAfterReset` after an MCU reset:
            both wait for ``clear(Fault.WATCHDOG)``), ESTOPPED, NO_HELLO (the MCU just reset; the
            link is restoring the session), BAD_ARG.
        """
        payload = P.pack_arm_cmd(action, target_ddeg, speed_ddeg_s)
        if deadline is None:
            deadline = time.monotonic() + self.command_max_age
        self.request(P.MsgType.ARM_CMD, payload, deadline=deadline)

    def heartbeat(self) -> P.Status:
        """Send one HEARTBEAT (feeds the watchdog) and return the status it answers with."""
        return self._call(P.MsgType.HEARTBEAT, retries=0).parsed

    def status(self) -> P.Status:
        """Ask for telemetry without feeding the watchdog."""
        return self._call(P.MsgType.STATUS_REQ).parsed

    def estop(self) -> None:
        """Latch the firmware's e-stop: every joint freezes until :meth:`clear` with ``Fault.ESTOP``.

        The link remembers the latch: if the MCU resets before it is cleared, :meth:`resync`
        latches it again.
        """
        self._estop_wanted = True
        self.request(P.MsgType.ESTOP, retries=max(self.retries, 5))

    def start(self) -> None:
        """The deliberate start after the arm's own e-stop: clear its ESTOP latch (the switch released).

        The arm then stays where it stopped until a new command.  Call it only on a person's explicit
        action (ISO 13850 4.1.4, IEC 60204-1 9.2.5.4.2): releasing the switch never restarts anything.

        Raises
        ------
        Nacked, LinkError
            The switch is still pressed (refused here, before anything is sent), or the clear failed.
        """
        s = self.last_status
        if s is not None and P.Fault.ESTOP_INPUT in s.faults:
            raise Nacked(0, P.Reason.ESTOPPED)  # the switch is held: nothing to start yet
        self.clear(P.Fault.ESTOP)
        self.status()  # its STATUS reports the release (ESTOP_RELEASED) now, not at the next heartbeat

    def clear(self, mask: P.Fault | int) -> None:
        """Clear latched faults (``Fault.ESTOP``, ``Fault.WATCHDOG``, ``Fault.RX_OVERFLOW``).

        ``Fault.WATCHDOG`` also releases the hold on ARM_CMDs after an MCU reset
        (:attr:`hold_reason`).  Clearing is the owner's decision: the link never does it by itself.
        """
        self.request(P.MsgType.CLEAR, P.pack_clear(mask))
        log.info("%s: cleared %r", self.url, P.Fault(int(mask)))

    def set_limits(self, joint: int, min_ddeg: int, max_ddeg: int, safe_ddeg: int, max_speed_ddeg_s: int) -> None:
        """Narrow one joint's limits (the firmware refuses anything outside its compile-time range).

        Re-applied by :meth:`resync` after an MCU reset.
        """
        self.request(P.MsgType.SET_LIMITS, P.pack_set_limits(joint, min_ddeg, max_ddeg, safe_ddeg, max_speed_ddeg_s))

    def set_watchdog(self, watchdog_ms: int) -> None:
        """Set the firmware watchdog period (20-250 ms); re-applied by :meth:`resync` after an MCU reset."""
        self.request(P.MsgType.SET_CONFIG, P.pack_set_config(watchdog_ms))

    def pause_heartbeat(self) -> None:
        """Stop sending heartbeats (the firmware's watchdog will take the arm to its safe pose).

        A watchdog trip that follows is reported with ``intended=True``.  While paused, the link
        does not re-send HELLO by itself either (HELLO re-arms the watchdog).
        """
        self._pause_gen += 1
        self._hb_paused.set()

    def resume_heartbeat(self) -> None:
        self._hb_paused.clear()

    def resync(self, reason: str = "requested by the owner") -> P.Status:
        """Re-establish the firmware session and return its status.

        Sends HELLO; if the MCU reset since the link last restored it, re-applies what this link had
        set (SET_CONFIG, SET_LIMITS, then a latched e-stop), holding every other state-changing
        request back meanwhile.  Never clears a fault and never releases the hold after a reset:
        ``clear(Fault.WATCHDOG)`` does.  The link calls it by itself after a reset (``auto_resync``).

        Raises
        ------
        LinkError
            HELLO or a restoring request failed (``VersionMismatch`` if another firmware answers);
            counted in ``stats.resync_failures`` and reported as ``RESYNC_FAILED``.
        """
        if self._failed is not None:
            raise self._failed_error()
        with self._resync_lock:
            return self._resync(reason)

    def _resync(self, reason: str) -> P.Status:
        gen = self._loss_gen
        t0 = time.monotonic()
        restored = None
        try:
            with self._cmd_lock:
                self._call(P.MsgType.HELLO, P.pack_hello())
                if self._restore_needed:
                    restored = self._restore(lambda t, pl: self._call(
                        t, pl, None, max(self.retries, 5) if t == P.MsgType.ESTOP else None))
            status = self.status()
        except LinkError as e:
            self.stats.resync_failures += 1
            self._emit([LinkFault(FaultKind.RESYNC_FAILED, f"re-establishing the session ({reason}) failed: "
                                  f"{type(e).__name__}: {e}", e)])
            raise
        self._emit([self._session_restored(gen, reason, t0, restored)])
        return status

    def _restore(self, send: Callable[[int, bytes], object]) -> list[str]:
        """After an MCU reset: re-apply what this link had set, the e-stop latch last (it refuses SET_*).

        While the arm's e-stop switch is pressed the firmware refuses SET_* too: the resync then fails
        (RESYNC_FAILED) and is retried with back-off until the switch is released."""
        restored = []
        if self._config is not None:
            send(P.MsgType.SET_CONFIG, self._config)
            restored.append("watchdog period")
        for j in sorted(self._limits):
            send(P.MsgType.SET_LIMITS, self._limits[j])
            restored.append(f"joint {j} limits")
        if self._estop_wanted or self._estop_seen:
            # the owner's latch, or the arm's own stop not yet started again: a reset must not start it
            send(P.MsgType.ESTOP, b"")
            restored.append("e-stop latch")
        return restored

    def _session_restored(self, gen: int, how: str, t0: float, restored: list[str] | None) -> LinkFault:
        if self._loss_gen == gen:  # no new reset meanwhile
            if restored is not None:
                self._restore_needed = False
            self._resync_needed.clear()
        self.stats.resyncs += 1
        detail = (f"session re-established ({how}) in {(time.monotonic() - t0) * 1000:.0f} ms"
                  + (f"; restored {', '.join(restored)}" if restored else "")
                  + (f"; ARM_CMDs held until clear(Fault.WATCHDOG): {self._hold}" if self._hold else ""))
        return LinkFault(FaultKind.RESYNC, detail)

    def _maybe_resync(self) -> None:
        """Re-establish a lost session now, if allowed (``auto_resync``) and not already under way."""
        if not (self.auto_resync and self._resync_needed.is_set() and self._connected.is_set()):
            return
        if self._hb_paused.is_set() or time.monotonic() < self._resync_retry_at:
            return
        if not self._resync_lock.acquire(blocking=False):
            return  # another thread is at it (or this one, further up the stack)
        try:
            if self._resync_needed.is_set():
                self._resync(f"automatic, after {self._resync_reason}")
            self._resync_backoff = self.backoff_initial
        except LinkError:
            self._resync_retry_at = time.monotonic() + self._resync_backoff
            self._resync_backoff = min(self._resync_backoff * 2, self.backoff_max)
        finally:
            self._resync_lock.release()

    # ------------------------------------------------------------------ internals: I/O
    def _failed_error(self) -> LinkFailed:
        e = self._failed
        return LinkFailed(f"{self.url}: the link failed ({type(e).__name__}: {e}); close() and open() it "
                          "again, or exit", e)

    def _register(self, msg_type: int, payload: bytes) -> tuple[int, _Pending]:
        with self._state_lock:
            for _ in range(256):
                seq = next(self._seq) & 0xFF
                if seq not in self._pending:
                    pending = self._pending[seq] = _Pending(msg_type, bytes(payload), pause_gen=self._pause_gen)
                    return seq, pending
        raise LinkError("256 requests outstanding: the caller is flooding the link")

    def _write(self, data: bytes) -> None:
        if self._failed is not None:
            raise self._failed_error()
        port = self._port
        if port is None or not self._connected.is_set():
            raise Disconnected(f"{self.url} is not connected (reconnecting with back-off); retry later")
        try:
            with self._write_lock:
                port.write(data)
        except (serial.SerialException, OSError) as e:
            self._drop_port(Disconnected(f"{self.url} disappeared while writing: {e}"))
            raise Disconnected(f"{self.url} disappeared while writing ({e}); the link is reconnecting") from e

    def _open_port(self) -> serial.SerialBase:
        try:
            port = serial.serial_for_url(self.url, do_not_open=True, baudrate=self.baudrate, timeout=0.01,
                                         write_timeout=0.5)
            port.dtr = False  # applied by open(): see the module docstring
            port.rts = False
            port.open()
        except (serial.SerialException, OSError, ValueError) as e:
            raise Disconnected(f"cannot open {self.url}: {e}. Check the device path (ls /dev/ttyACM* "
                               "/dev/ttyUSB*) and that your user is in the 'dialout' group") from e
        _clear_hupcl(port)
        return port

    def _connect(self, reconnect: bool = False) -> None:
        """Open the port and exchange STATUS_REQ, HELLO, ESTOP (if the owner's e-stop is latched) and
        STATUS_REQ, reading directly: the I/O thread is not running (or is the caller).

        The first STATUS, before our HELLO, tells a reconnect whether the MCU rebooted meanwhile: a
        firmware never loses a session otherwise, so NO_HELLO there after an earlier session is a reset.
        Then the settings are restored here, before the link is usable again (see :meth:`resync`).
        """
        port = self._open_port()
        self._parser = P.FrameParser()
        try:
            port.reset_input_buffer()
            # All of it within boot_timeout: covers a board that resets on open (see the module
            # docstring); each exchange after the first gets at least its retries' worth of time.
            t_end = time.monotonic() + self.boot_timeout
            budget = lambda: max(t_end - time.monotonic(), (self.retries + 1) * self.ack_timeout)
            # A firmware of another protocol version may answer it with anything: HELLO names that
            # problem below (VersionMismatch), so what went wrong here is raised only after HELLO.
            try:
                first, first_error = self._exchange(port, P.MsgType.STATUS_REQ, b"", budget()), None
            except (ProtocolError, Nacked) as e:
                first, first_error = None, e
            self.hello = self._exchange(port, P.MsgType.HELLO, P.pack_hello(), budget())
            if first_error is not None:
                raise first_error
            t0 = time.monotonic()
            events = self._note_status(first, None)
            self._note_hello()
            send = lambda t, pl: self._exchange(port, t, pl, budget())
            if self._restore_needed:  # the MCU rebooted while we were away: before anything else runs
                events.append(self._session_restored(self._loss_gen, "by the reconnect", t0, self._restore(send)))
            elif self._estop_wanted or self._estop_seen:  # a stop holds whatever happened while we were away
                send(P.MsgType.ESTOP, b"")
            events += self._note_status(send(P.MsgType.STATUS_REQ, b""), None)
        except LinkError:  # first: AckTimeout is also an OSError (a TimeoutError)
            port.close()
            raise
        except (serial.SerialException, OSError) as e:
            port.close()
            raise Disconnected(f"{self.url} failed during the handshake: {e}") from e
        if reconnect:
            self.stats.reconnects += 1
        self._emit(events)
        self._port = port
        self._connected.set()

    def _exchange(self, port, msg_type: int, payload: bytes, seconds: float):
        """One request/reply on a port no thread reads, repeated every ``ack_timeout`` for ``seconds``."""
        seq = next(self._seq) & 0xFF
        frame = b"\x00" + P.encode_frame(msg_type, seq, payload)  # leading delimiter: see _request
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            port.write(frame)
            t_try = time.monotonic() + self.ack_timeout
            while time.monotonic() < t_try:
                for f in self._parser.feed(port.read(max(1, port.in_waiting))):
                    if f.type in P.HOST_TYPES:
                        raise ProtocolError(
                            f"received our own {_name(f.type)} frame back from {self.url}: "
                            "it is a loopback (loop://) or TX is wired to RX; connect the arm firmware")
                    if f.seq != seq or f.type not in REPLY_TYPES:
                        continue
                    reply = P.parse_reply(f)  # ProtocolError / VersionMismatch on a payload that does not fit
                    if isinstance(reply, P.Nack):
                        if reply.nacked_type != msg_type:
                            continue  # a corrupted frame's NACK (type 0, seq 0): send again
                        if msg_type == P.MsgType.HELLO and reply.reason == P.Reason.VERSION:
                            raise VersionMismatch(P.PROTOCOL_VERSION, None)
                        raise Nacked(msg_type, reply.reason)
                    if isinstance(reply, P.Ack) and reply.acked_type != msg_type:
                        continue
                    if not isinstance(reply, (P.Ack, P.Nack)) and EXPECTED_REPLY.get(msg_type) != f.type:
                        continue
                    return reply
        raise AckTimeout(f"no reply to {_name(msg_type)} from {self.url} within {seconds:g} s: is the "
                         f"arm firmware flashed and running at {self.baudrate} baud?")

    def _drop_port(self, error: LinkError) -> None:
        self._connected.clear()
        with self._state_lock:
            port, self._port = self._port, None
            for p in self._pending.values():
                if p.reply is None:
                    p.reply = error
                    p.event.set()
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    def _nudge(self) -> None:
        """A frame was lost on the wire (ours or a reply): retransmit outstanding requests now."""
        with self._state_lock:
            for p in self._pending.values():
                if p.reply is None:
                    p.retry_now = True
                    p.event.set()

    @staticmethod
    def _answers(p: _Pending, f: P.Frame, reply) -> bool:
        if isinstance(reply, P.Ack):
            return reply.acked_type == p.msg_type
        if isinstance(reply, P.Nack):
            return reply.nacked_type == p.msg_type
        return EXPECTED_REPLY.get(p.msg_type) == f.type

    def _dispatch(self, f: P.Frame) -> None:
        if f.type not in REPLY_TYPES:
            self.stats.unexpected_frames += 1
            return
        try:
            reply = P.parse_reply(f)  # lengths are checked before any field is read
        except ProtocolError as e:
            self._malformed(f, e)
            return
        if isinstance(reply, P.Nack) and reply.nacked_type == 0:
            self.stats.frame_error_nacks += 1  # the firmware got a corrupted frame from us
            self._nudge()
            return
        with self._state_lock:
            p = self._pending.get(f.seq)
            if p is None or p.reply is not None or not self._answers(p, f, reply):
                self.stats.stale_replies += 1
                p = None
            else:
                p.reply, p.parsed = f, reply
        # The link's picture of the firmware, updated in wire order before the caller wakes up.
        events = []
        if isinstance(reply, P.Status):
            events += self._note_status(reply, p if p is not None and p.msg_type == P.MsgType.HEARTBEAT else None)
        if p is not None:
            if isinstance(reply, P.Nack):
                events += self._note_nack(p, reply.reason)
            elif isinstance(reply, P.Ack):
                self._note_ack(p)
            elif isinstance(reply, P.HelloReply):
                self.hello = reply
                self._note_hello()
            if p.msg_type == P.MsgType.HEARTBEAT and isinstance(reply, P.Status):
                self._last_hb_ok, self._pause_gen_at_hb_ok = p.t_sent, p.pause_gen
        self._emit(events)  # reported before the request it answers returns
        if p is not None:
            p.event.set()

    def _malformed(self, f: P.Frame, e: ProtocolError) -> None:
        """A reply with a valid CRC whose payload its type cannot have: count, report, answer the request."""
        self.stats.malformed_replies += 1
        with self._state_lock:
            p = self._pending.get(f.seq)
            if p is not None and p.reply is None and (f.type in (P.MsgType.ACK, P.MsgType.NACK)
                                                     or EXPECTED_REPLY.get(p.msg_type) == f.type):
                req = f"{_name(p.msg_type)} seq {f.seq}"
                if isinstance(e, VersionMismatch):
                    p.reply = e
                else:
                    p.reply = ProtocolError(f"the reply to {req} is malformed: {e}"
                                            + (" (the command may have run: ask status())"
                                               if p.msg_type == P.MsgType.ARM_CMD else ""))
                    p.reply.__cause__ = e
            else:
                p, req = None, "no waiting request"
        self._emit([LinkFault(FaultKind.MALFORMED_REPLY, f"dropped a {_name(f.type)} (seq {f.seq}, "
                              f"{len(f.payload)} payload bytes, valid CRC) answering {req}: {e}", e)])
        if p is not None:
            p.event.set()

    # ------------------------------------------------------------------ internals: the firmware's state
    def _note_hello(self) -> None:
        self._session_ok = True

    def _note_status(self, s: P.Status, heartbeat: _Pending | None) -> list[LinkFault]:
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
            # (an MCU reset forgets it) is set again on the new session (_restore), never taken as a start
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

    def _note_nack(self, p: _Pending, reason: int) -> list[LinkFault]:
        name = _name(p.msg_type)
        if reason == P.Reason.NO_HELLO and self._session_ok:
            self._baseline = None  # the next STATUS is the new boot's first
            return self._on_reset(f"it refused {name} with NACK NO_HELLO after a successful HELLO",
                                  session_lost=True)
        if reason == P.Reason.WATCHDOG and not self._wd_seen:
            return self._on_watchdog(f"it refused {name} with NACK WATCHDOG", None)
        if reason == P.Reason.ESTOPPED and not self._estop_seen and not self._estop_wanted:
            return self._on_estop(f"it refused {name} with NACK ESTOPPED")
        return []

    def _note_ack(self, p: _Pending) -> None:
        if len(p.payload) != P.PAYLOAD_SIZE.get(p.msg_type, -1):
            return  # a raw request() the firmware should have refused: nothing to remember
        if p.msg_type == P.MsgType.CLEAR:
            (mask,) = struct.unpack_from("<H", p.payload)
            if mask & P.Fault.WATCHDOG:
                self._wd_seen = False
                self._hold = None
            if mask & P.Fault.ESTOP:
                self._estop_wanted = False
                self._estop_started = self._estop_seen  # the deliberate start of the arm's own stop
        elif p.msg_type == P.MsgType.SET_LIMITS:
            self._limits[p.payload[0]] = p.payload
        elif p.msg_type == P.MsgType.SET_CONFIG:
            self._config = p.payload

    def _on_reset(self, why: str, *, session_lost: bool) -> list[LinkFault]:
        self.stats.mcu_resets += 1
        self._loss_gen += 1
        if session_lost:
            self._session_ok = False
        self._wd_seen = False
        self._restore_needed = True
        if self.hold_after_reset:
            self._hold = f"the arm's microcontroller reset ({why}) and went to its safe pose"
        self._resync_reason = f"an MCU reset ({why})"
        self._resync_retry_at = 0.0
        self._resync_needed.set()
        then = ("the link re-sends HELLO" if self.auto_resync else "call resync()")
        if self.hold_after_reset:
            then += " and holds ARM_CMDs until clear(Fault.WATCHDOG)"
        return [LinkFault(FaultKind.MCU_RESET, f"the arm's microcontroller reset: {why}; it forgot its session, "
                          f"latches and settings and drove the joints to their safe pose; {then}")]

    def _on_watchdog(self, how: str, heartbeat: _Pending | None) -> list[LinkFault]:
        self._wd_seen = True
        intended = (self.heartbeat_period is None or self._hb_paused.is_set()
                    or self._pause_gen != self._pause_gen_at_hb_ok)
        self.stats.watchdog_trips += 1
        if intended:
            why = ("heartbeats were left to the owner (heartbeat_period=None)" if self.heartbeat_period is None
                   else "heartbeats had been paused by the owner (pause_heartbeat)")
        else:
            self.stats.watchdog_trips_unintended += 1
            t_ref = heartbeat.t_sent if heartbeat is not None and heartbeat.t_sent is not None else time.monotonic()
            if not self._connected.is_set():  # seen by _connect
                gap = "it was already latched when the link connected (heartbeats had stopped before)"
            elif self._last_hb_ok is None:
                gap = (f"no heartbeat was acknowledged since the link connected ({self.stats.heartbeats_lost} "
                       "lost so far): this process or the link stalled")
            else:
                gap = (f"{(t_ref - self._last_hb_ok) * 1000:.0f} ms passed between acknowledged heartbeats "
                       f"(period {self.heartbeat_period * 1000:.0f} ms, {self.stats.heartbeats_lost} lost so far): "
                       "this process or the link stalled")
            why = f"heartbeats were not paused; {gap}"
        return [LinkFault(FaultKind.WATCHDOG_TRIP, f"the firmware's watchdog tripped ({how}): {why}; the arm went "
                          "to its safe pose and ARM_CMDs are refused until clear(Fault.WATCHDOG)",
                          intended=intended)]

    def _emit(self, events: list[LinkFault]) -> None:
        """Queue, log (each kind at most once a second) and hand each event to ``on_fault``."""
        for ev in events:
            self._faults.append(ev)
            last, suppressed = self._log_state.get(ev.kind, (-1e9, 0))
            if ev.time - last >= _LOG_INTERVAL_S or ev.kind == FaultKind.THREAD_DIED:
                more = f" (+{suppressed} more {ev.kind.value} since the last report)" if suppressed else ""
                level = (logging.ERROR if ev.kind == FaultKind.THREAD_DIED
                         else logging.INFO if ev.kind == FaultKind.RESYNC or ev.intended else logging.WARNING)
                log.log(level, "%s: %s: %s%s", self.url, ev.kind.value, ev.detail, more,
                        exc_info=ev.cause if ev.kind == FaultKind.THREAD_DIED else None)
                self._log_state[ev.kind] = (ev.time, 0)
            else:
                self._log_state[ev.kind] = (last, suppressed + 1)
            if self.on_fault is not None:
                try:
                    self.on_fault(ev)
                except Exception:  # the callback's bug must not end the thread that reports
                    log.exception("%s: the on_fault callback raised on %s; ignored", self.url, ev.kind.value)

    # ------------------------------------------------------------------ internals: threads
    def _thread_main(self, body: Callable[[], None]) -> None:
        """Run a thread's loop; whatever escapes it fails the link loudly instead of ending silently."""
        try:
            body()
        except BaseException as e:  # noqa: BLE001 - reported below, never swallowed
            self._fail(e)

    def _fail(self, e: BaseException) -> None:
        name = threading.current_thread().name
        with self._state_lock:
            if self._failed is not None:
                return
            self._failed = e
        self._drop_port(self._failed_error())  # wakes every waiting request with LinkFailed
        self._emit([LinkFault(FaultKind.THREAD_DIED, f"thread {name} died ({type(e).__name__}: {e}); the link "
                              "refuses requests and sends no heartbeats (the firmware's watchdog takes the arm "
                              "to its safe pose) until close() and open()", e)])

    def _io_loop(self) -> None:
        backoff = self.backoff_initial
        while not self._closing.is_set() and self._failed is None:
            port = self._port
            if port is None:
                if not self.reconnect:
                    return
                try:
                    self._connect(reconnect=True)
                    backoff = self.backoff_initial
                except LinkError as e:
                    log.debug("%s: reconnect failed: %s", self.url, e)
                    self._closing.wait(backoff)
                    backoff = min(backoff * 2, self.backoff_max)
                continue
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError) as e:
                # TypeError/AttributeError: pyserial raises these when the fd vanished under it.
                self._drop_port(Disconnected(f"{self.url} disappeared: {e}; reconnecting"))
                continue
            errors = self._parser.crc_errors + self._parser.framing_errors
            for f in self._parser.feed(data):
                self._dispatch(f)
            if self._parser.crc_errors + self._parser.framing_errors != errors:
                self._nudge()  # a corrupted reply: the request it answered would otherwise time out

    def _hb_loop(self) -> None:
        next_t = time.monotonic()
        while not self._closing.is_set() and self._failed is None:
            next_t += self.heartbeat_period
            if self._connected.is_set() and not self._hb_paused.is_set():
                self._maybe_resync()
                try:
                    self.heartbeat()
                    self.stats.heartbeats_ok += 1
                except LinkError:
                    self.stats.heartbeats_lost += 1
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind (a lost heartbeat waited a whole ack_timeout): don't burst
                next_t, delay = time.monotonic(), 0
            self._closing.wait(delay)


def _name(msg_type: int) -> str:
    """A message type's name, or its number when the protocol has no such type (never raises)."""
    try:
        return P.MsgType(msg_type).name
    except ValueError:
        return f"type 0x{msg_type:02x}"


def _clear_hupcl(port) -> None:
    """Keep DTR asserted when the port is closed, so the next open does not reset an Arduino."""
    if termios is None:
        return  # Windows: pyserial's dtr=False before open() is enough there
    try:
        fd = port.fileno()
        attrs = termios.tcgetattr(fd)
        attrs[2] &= ~termios.HUPCL
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (AttributeError, OSError, ValueError, serial.SerialException, termios.error):
        pass  # not a tty (loop://, a socket): there is no DTR to keep
