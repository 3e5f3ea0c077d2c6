"""The host end of the arm link, as its owner uses it: :class:`ArmLink`.

A small face over the link's parts, composed here and nowhere else: the transport (port, requests,
heartbeats, reconnection: :mod:`~firmware_bridge.link.transport`), the firmware-state mirror
(:mod:`~firmware_bridge.link.arm_state`), the session that joins them (:mod:`~firmware_bridge.link.session`),
the ADC stream (:mod:`~firmware_bridge.link.stream_control`) and the fault reports
(:mod:`~firmware_bridge.link.faults`, whose docstring lists every fault and recovery).  The parts
know each other only through the callables handed over in :meth:`ArmLink.__init__`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from firmware_bridge import config as C
from firmware_bridge import protocol as P
from firmware_bridge.errors import Nacked
from firmware_bridge.link.arm_state import ArmState
from firmware_bridge.link.faults import FaultReporter, LinkFault, LinkStats
from firmware_bridge.link.session import Session
from firmware_bridge.link.settings import LinkSettings, SettingAttributes
from firmware_bridge.link.stream import DEFAULT_BUFFER_S, SampleStream
from firmware_bridge.link.stream_control import StreamControl
from firmware_bridge.link.transport import Transport

log = logging.getLogger(__package__)  # the link's one logger, "firmware_bridge.link"


class ArmLink(SettingAttributes):
    """A framed, acknowledged serial link to the arm firmware (each parameter is also an attribute).

    Parameters
    ----------
    url : str
        Anything ``serial.serial_for_url`` accepts: ``/dev/ttyACM0``, a pty path, ``loop://``,
        ``spy:///dev/ttyACM0?file=trace.txt``.
    baudrate : int
        The firmware's UART rate (``config.BAUDRATE``, 500 000 since the ADC stream: PROTOCOL.md § 5.4);
        must match it.  :meth:`open_stream` computes the stream's byte budget at this rate.
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
        self._settings = settings = LinkSettings(  # checked there
            url=url, baudrate=baudrate, ack_timeout=ack_timeout, retries=retries, heartbeat_period=heartbeat_period,
            command_max_age=command_max_age, boot_timeout=boot_timeout, reconnect=reconnect,
            backoff_initial=backoff_initial, backoff_max=backoff_max, auto_resync=auto_resync,
            hold_after_reset=hold_after_reset, on_fault=on_fault)
        self._reporter = FaultReporter(settings)
        stats = LinkStats()
        # The transport hands each reply to the mirror and the ADC stream, each new port to the session's
        # handshake, and calls _beat on its heartbeat thread; the mirror asks it why a watchdog tripped.
        self._transport = Transport(settings, stats, self._reporter,
                                    observe=lambda reply, request: (self._state.observe(reply, request)
                                                                    + self._streams.observe(reply, request)),
                                    handshake=lambda send: (self._session.handshake(send)
                                                            + self._streams.session_began()), heartbeat=self._beat)
        self._state = ArmState(settings, stats, self._transport.watchdog_cause)
        self._session = Session(settings, self._transport, self._state, self._reporter)
        self._streams = StreamControl(settings, stats, self._reporter, self._session.call,
                                      ready=lambda: self._transport.connected and not self._state.resync_needed)
        self._transport.route(P.MsgType.SAMPLES, self._streams.on_frame)

    def _beat(self) -> None:
        """One turn of the heartbeat thread: a session lost to a reset is restored first (that never
        raises LinkError), then HEARTBEAT through :meth:`heartbeat`, then an interrupted ADC stream
        is started again (that never raises LinkError either)."""
        self._session.maybe_resync()
        self.heartbeat()
        self._streams.maybe_restart()

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> P.HelloReply:
        """Open the port (without resetting an Arduino where possible: ``port.py``) and exchange HELLO.

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
        self._transport.open()
        return self.hello

    def close(self) -> None:
        """Stop the ADC stream and the threads, close the port (the firmware's watchdog rests the arm)."""
        self._streams.close()
        self._transport.close()

    def __enter__(self):  # returns self
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._transport.connected

    def wait_connected(self, timeout: float) -> bool:
        """Block until the link is (re)connected; return whether it is."""
        return self._transport.wait_connected(timeout)

    # ------------------------------------------------------------------ health, faults, the firmware's state
    @property
    def stats(self) -> LinkStats:
        """The link's counters (:class:`LinkStats`)."""
        return self._transport.stats

    @property
    def hello(self) -> P.HelloReply | None:
        """The firmware's last HELLO_REPLY."""
        return self._state.hello

    @property
    def last_status(self) -> P.Status | None:
        """The firmware's last valid STATUS."""
        return self._state.last_status

    @property
    def failed(self) -> BaseException | None:
        """The exception that ended one of the link's threads, or None.  Sticky until :meth:`open`."""
        return self._transport.failed

    def status_age(self) -> float | None:
        """Seconds since the last valid STATUS (a heartbeat's reply or :meth:`status`); None before the first.

        A peer whose STATUS replies are all malformed, or that stopped answering heartbeats, leaves the
        firmware's state (e-stop, watchdog, joints) unknown: the runtime holds the arm while this is old.
        """
        return self._state.status_age()

    def healthy(self) -> bool:
        """Whether the link is open and all its threads run (it may be reconnecting: see :attr:`connected`).

        False after :meth:`close`, or once a thread died (:attr:`failed`): a supervisor then closes and
        reopens the link, or exits.
        """
        return self._transport.healthy()

    def take_faults(self) -> list[LinkFault]:
        """Return the :class:`LinkFault` events since the last call (at most the latest 256), oldest first."""
        return self._reporter.take()

    @property
    def hold_reason(self) -> str | None:
        """Why ARM_CMDs are held after an MCU reset (``clear(Fault.WATCHDOG)`` releases them), or None."""
        return self._state.hold

    def seconds_since_heartbeat(self) -> float:
        """Seconds since the last acknowledged heartbeat was sent (``inf`` before the first one)."""
        return self._transport.seconds_since_heartbeat()

    @property
    def _parser(self) -> P.FrameParser:
        # The host's frame parser of the current port: benchmarks/link.py reads its error counters.
        return self._transport.parser

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
        return self._session.call(msg_type, payload, deadline, retries).reply

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
        return self._session.call(P.MsgType.HEARTBEAT, retries=0).parsed

    def status(self) -> P.Status:
        """Ask for telemetry without feeding the watchdog."""
        return self._session.call(P.MsgType.STATUS_REQ).parsed

    def estop(self) -> None:
        """Latch the firmware's e-stop: every joint freezes until :meth:`clear` with ``Fault.ESTOP``.

        The link remembers the latch: if the MCU resets before it is cleared, :meth:`resync`
        latches it again.
        """
        self._state.want_estop()
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
        self._transport.pause_heartbeat()

    def resume_heartbeat(self) -> None:
        self._transport.resume_heartbeat()

    @property
    def heartbeat_paused(self) -> bool:
        """Whether :meth:`pause_heartbeat` is in force."""
        return self._transport.heartbeat_paused

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
        return self._session.resync(reason)

    # ------------------------------------------------------------------ the arm's analog inputs
    def open_stream(self, channels: Iterable[int], rate_hz: int, *, buffer_s: float = DEFAULT_BUFFER_S) -> SampleStream:
        """Stream the arm's analog inputs ``channels`` (``range(8)``: A0-A7) at ``rate_hz`` (a divisor
        of 1000) and return the :class:`SampleStream` to ``read()`` them from (PROTOCOL.md section 5).

        ``buffer_s``: how far the reader may fall behind before the oldest blocks are dropped (counted
        as lost).  After an MCU reset, a resync or a reconnect the link starts the stream again by itself
        (from its heartbeat thread; the next block says ``restarted``).  Commands, heartbeats and e-stops
        go on as before meanwhile.  ``close()`` the stream, or the link's ``close()`` does.

        Raises
        ------
        ValueError, TypeError
            ``channels`` or ``rate_hz`` the firmware would refuse, or a stream that does not fit the link
            at ``baudrate`` (the message says by how much and the fix: ``protocol.stream_budget``).
        Nacked
            The firmware refused it (``reason`` BUDGET: it was built for another baud rate).
        LinkError
            A stream is open already, or STREAM_START failed (AckTimeout, Disconnected, ...).
        """
        return self._streams.open(channels, rate_hz, buffer_s)
