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
   ``boot_timeout`` (default 2 s) for the firmware's HELLO_REPLY, which covers that first reset.
   ``stty -F /dev/ttyACM0 -hupcl`` does the same from a shell.
3. Where even one reset is unacceptable, put a 10 µF capacitor between RESET and GND on the board
   (remove it to flash), as the Arduino documentation suggests.

Ptys, ``loop://`` and ``spy://`` ignore DTR; the same code path is used for all of them.

Threads: one I/O thread owns reading (feeds the parser, matches replies to waiting requests,
reconnects with exponential back-off after an unplug); one heartbeat thread sends HEARTBEAT
every ``heartbeat_period`` seconds.  Callers of :meth:`ArmLink.request` block on their own reply.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import serial

try:
    import termios
except ImportError:  # Windows
    termios = None

from firmware_bridge import config as C
from firmware_bridge import protocol as P
from firmware_bridge.errors import AckTimeout, DeadlineExpired, Disconnected, LinkError, Nacked, ProtocolError

REPLY_TYPES = frozenset({P.MsgType.ACK, P.MsgType.NACK, P.MsgType.HELLO_REPLY, P.MsgType.STATUS})
#: The reply each request type expects (besides NACK).
EXPECTED_REPLY = {
    P.MsgType.HELLO: P.MsgType.HELLO_REPLY, P.MsgType.HEARTBEAT: P.MsgType.STATUS,
    P.MsgType.STATUS_REQ: P.MsgType.STATUS,
}

#: Idempotent reads: they may be outstanding alongside a command (see PROTOCOL.md, sequence numbers).
READ_TYPES = frozenset({P.MsgType.HEARTBEAT, P.MsgType.STATUS_REQ})


@dataclass
class _Pending:
    msg_type: int
    event: threading.Event = field(default_factory=threading.Event)
    reply: object = None  # a Frame, or a LinkError to raise in the waiting thread
    retry_now: bool = False  # a loss was detected on the wire: retransmit without waiting


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
    """

    def __init__(self, url: str, *, baudrate: int = C.BAUDRATE, ack_timeout: float = C.ACK_TIMEOUT_S,
                 retries: int = C.RETRIES, heartbeat_period: float | None = C.HEARTBEAT_PERIOD_S,
                 command_max_age: float = C.DEFAULT_COMMAND_MAX_AGE_S, boot_timeout: float = C.BOOT_TIMEOUT_S,
                 reconnect: bool = True, backoff_initial: float = C.BACKOFF_INITIAL_S,
                 backoff_max: float = C.BACKOFF_MAX_S):
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
        self.stats = LinkStats()
        self.hello: P.HelloReply | None = None
        self.last_status: P.Status | None = None
        self._parser = P.FrameParser()
        self._port: serial.SerialBase | None = None
        self._write_lock = threading.Lock()
        self._cmd_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._seq = itertools.count(0)
        self._connected = threading.Event()
        self._closing = threading.Event()
        self._hb_paused = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> P.HelloReply:
        """Open the port (without resetting an Arduino where possible) and exchange HELLO.

        Raises
        ------
        Disconnected
            The port cannot be opened.
        ProtocolError
            The other end echoed our frames or speaks another protocol version.
        AckTimeout
            Nothing answered HELLO within ``boot_timeout``.
        """
        if self._threads:
            raise LinkError("link already open: call close() first")
        self._closing.clear()
        self._connect()
        self._threads = [threading.Thread(target=self._io_loop, name="armlink-io", daemon=True)]
        if self.heartbeat_period is not None:
            self._threads.append(threading.Thread(target=self._hb_loop, name="armlink-hb", daemon=True))
        for t in self._threads:
            t.start()
        return self.hello

    def close(self) -> None:
        """Stop the threads and close the port (the firmware's watchdog then takes the arm safe)."""
        self._closing.set()
        for t in self._threads:
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
        """
        if msg_type in READ_TYPES:
            return self._request(msg_type, payload, deadline, retries)
        # One state-changing request at a time: the firmware remembers only the last one, which is
        # what makes a retransmission safe.
        with self._cmd_lock:
            return self._request(msg_type, payload, deadline, retries)

    def _request(self, msg_type, payload, deadline, retries) -> P.Frame:
        retries = self.retries if retries is None else retries
        seq, pending = self._register(msg_type)
        # The leading delimiter resynchronises the firmware if noise ate the last frame's delimiter.
        frame = b"\x00" + P.encode_frame(msg_type, seq, payload)
        transmitted = False
        self.stats.requests += 1
        try:
            for attempt in range(retries + 1):
                if deadline is not None and time.monotonic() >= deadline:
                    self.stats.deadline_drops += 1
                    raise DeadlineExpired(
                        f"{P.MsgType(msg_type).name} seq {seq} not sent: its deadline passed"
                        + (" after an unacknowledged transmission (ask status() whether it ran)"
                           if transmitted else " before it could be sent; send a fresh command"),
                        transmitted)
                if attempt:
                    self.stats.retransmissions += 1
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
                raise AckTimeout(f"no reply to {P.MsgType(msg_type).name} seq {seq} after {retries + 1} "
                                 f"transmissions of {self.ack_timeout * 1000:.0f} ms: check the cable, "
                                 "the baud rate and that the arm firmware is running")
        finally:
            with self._state_lock:
                self._pending.pop(seq, None)
        reply = pending.reply
        if isinstance(reply, LinkError):
            raise reply
        if reply.type == P.MsgType.NACK:
            self.stats.nacks += 1
            raise Nacked(msg_type, reply.payload[1])
        return reply

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
        """
        payload = P.pack_arm_cmd(action, target_ddeg, speed_ddeg_s)
        if deadline is None:
            deadline = time.monotonic() + self.command_max_age
        self.request(P.MsgType.ARM_CMD, payload, deadline=deadline)

    def heartbeat(self) -> P.Status:
        """Send one HEARTBEAT (feeds the watchdog) and return the status it answers with."""
        reply = self.request(P.MsgType.HEARTBEAT, retries=0)
        self.last_status = P.Status.from_payload(reply.payload)
        return self.last_status

    def status(self) -> P.Status:
        """Ask for telemetry without feeding the watchdog."""
        reply = self.request(P.MsgType.STATUS_REQ)
        self.last_status = P.Status.from_payload(reply.payload)
        return self.last_status

    def estop(self) -> None:
        """Latch the firmware's e-stop: every joint freezes until :meth:`clear` with ``Fault.ESTOP``."""
        self.request(P.MsgType.ESTOP, retries=max(self.retries, 5))

    def clear(self, mask: P.Fault | int) -> None:
        """Clear latched faults (``Fault.ESTOP``, ``Fault.WATCHDOG``, ``Fault.RX_OVERFLOW``)."""
        self.request(P.MsgType.CLEAR, P.pack_clear(mask))

    def set_limits(self, joint: int, min_ddeg: int, max_ddeg: int, safe_ddeg: int, max_speed_ddeg_s: int) -> None:
        """Narrow one joint's limits (the firmware refuses anything outside its compile-time range)."""
        self.request(P.MsgType.SET_LIMITS, P.pack_set_limits(joint, min_ddeg, max_ddeg, safe_ddeg, max_speed_ddeg_s))

    def set_watchdog(self, watchdog_ms: int) -> None:
        """Set the firmware watchdog period (20-250 ms)."""
        self.request(P.MsgType.SET_CONFIG, P.pack_set_config(watchdog_ms))

    def pause_heartbeat(self) -> None:
        """Stop sending heartbeats (the firmware's watchdog will take the arm to its safe pose)."""
        self._hb_paused.set()

    def resume_heartbeat(self) -> None:
        self._hb_paused.clear()

    # ------------------------------------------------------------------ internals
    def _register(self, msg_type: int) -> tuple[int, _Pending]:
        with self._state_lock:
            for _ in range(256):
                seq = next(self._seq) & 0xFF
                if seq not in self._pending:
                    pending = self._pending[seq] = _Pending(msg_type)
                    return seq, pending
        raise LinkError("256 requests outstanding: the caller is flooding the link")

    def _write(self, data: bytes) -> None:
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

    def _connect(self) -> None:
        """Open the port and exchange HELLO, reading directly (the I/O thread is not running)."""
        port = self._open_port()
        self._parser = P.FrameParser()
        seq = next(self._seq) & 0xFF
        hello = P.encode_frame(P.MsgType.HELLO, seq, P.pack_hello())
        t_end = time.monotonic() + self.boot_timeout
        try:
            port.reset_input_buffer()
            while time.monotonic() < t_end:
                port.write(b"\x00" + hello)  # leading delimiter flushes any half frame on the MCU
                t_try = time.monotonic() + self.ack_timeout
                while time.monotonic() < t_try:
                    for f in self._parser.feed(port.read(max(1, port.in_waiting))):
                        if f.type in P.HOST_TYPES:
                            raise ProtocolError(
                                f"received our own {P.MsgType(f.type).name} frame back from {self.url}: "
                                "it is a loopback (loop://) or TX is wired to RX; connect the arm firmware")
                        if f.seq != seq:
                            continue
                        if f.type == P.MsgType.NACK:
                            raise Nacked(P.MsgType.HELLO, f.payload[1])
                        if f.type == P.MsgType.HELLO_REPLY:
                            reply = P.HelloReply.from_payload(f.payload)
                            if reply.protocol_version != P.PROTOCOL_VERSION:
                                raise ProtocolError(
                                    f"firmware speaks protocol {reply.protocol_version}, this host "
                                    f"{P.PROTOCOL_VERSION}: flash the firmware that matches this neurogrip")
                            self.hello = reply
                            self._port = port
                            self._connected.set()
                            return
            raise AckTimeout(f"no HELLO_REPLY from {self.url} within {self.boot_timeout} s: is the arm "
                             f"firmware flashed and running at {self.baudrate} baud?")
        except (serial.SerialException, OSError) as e:
            port.close()
            raise Disconnected(f"{self.url} failed during the handshake: {e}") from e
        except LinkError:
            port.close()
            raise

    def _drop_port(self, error: LinkError) -> None:
        self._connected.clear()
        with self._state_lock:
            port, self._port = self._port, None
            for p in self._pending.values():
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

    def _dispatch(self, f: P.Frame) -> None:
        if f.type == P.MsgType.NACK and f.payload[0] == 0:
            self.stats.frame_error_nacks += 1  # the firmware got a corrupted frame from us
            self._nudge()
            return
        if f.type not in REPLY_TYPES:
            return
        with self._state_lock:
            p = self._pending.get(f.seq)
            if p is None or p.event.is_set():
                self.stats.stale_replies += 1
                return
            ok = (f.payload[:1] == bytes([p.msg_type]) if f.type in (P.MsgType.ACK, P.MsgType.NACK)
                  else EXPECTED_REPLY.get(p.msg_type) == f.type)
            if not ok:
                self.stats.stale_replies += 1
                return
            p.reply = f
            p.event.set()

    def _io_loop(self) -> None:
        backoff = self.backoff_initial
        while not self._closing.is_set():
            port = self._port
            if port is None:
                if not self.reconnect:
                    return
                try:
                    self._connect()
                    self.stats.reconnects += 1
                    backoff = self.backoff_initial
                except LinkError:
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
        while not self._closing.is_set():
            next_t += self.heartbeat_period
            if self._connected.is_set() and not self._hb_paused.is_set():
                try:
                    self.heartbeat()
                    self.stats.heartbeats_ok += 1
                except LinkError:
                    self.stats.heartbeats_lost += 1
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind (a lost heartbeat waited a whole ack_timeout): don't burst
                next_t, delay = time.monotonic(), 0
            self._closing.wait(delay)


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
