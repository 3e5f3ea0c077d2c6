"""Requests and their replies: sent, re-sent on timeout, matched with their reply by seq.

Everything about one request/reply exchange lives here, apart from the port and the threads
(:mod:`~firmware_bridge.link.transport`) that carry it: which frames are replies and which reply
each request expects (``firmware_bridge/PROTOCOL.md``: every request gets exactly one), the
:class:`Requests` awaiting theirs (the identical frame retransmitted on timeout, so the firmware
executes a request at most once; a deadline checked before every transmission), and
:func:`exchange`, one request/reply on a port no thread reads yet (the handshake that opens a session).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware_bridge import protocol as P
from firmware_bridge.errors import (
    AckTimeout,
    DeadlineExpired,
    LinkError,
    Nacked,
    ProtocolError,
    VersionMismatch,
)
from firmware_bridge.link.faults import LinkStats
from firmware_bridge.link.settings import LinkSettings

REPLY_TYPES = frozenset({P.MsgType.ACK, P.MsgType.NACK, P.MsgType.HELLO_REPLY, P.MsgType.STATUS})
#: The reply each request type expects (besides NACK).
EXPECTED_REPLY = {
    P.MsgType.HELLO: P.MsgType.HELLO_REPLY, P.MsgType.HEARTBEAT: P.MsgType.STATUS,
    P.MsgType.STATUS_REQ: P.MsgType.STATUS,
}

#: Idempotent reads: they may be outstanding alongside a command (see PROTOCOL.md, sequence numbers).
READ_TYPES = frozenset({P.MsgType.HEARTBEAT, P.MsgType.STATUS_REQ})


def type_name(msg_type: int) -> str:
    """A message type's name, or its number when the protocol has no such type (never raises)."""
    try:
        return P.MsgType(msg_type).name
    except ValueError:
        return f"type 0x{msg_type:02x}"


@dataclass
class Request:
    """One request awaiting its reply."""

    msg_type: int
    payload: bytes = b""
    seq: int = -1  # the sequence number it goes out with (a STREAM_START's names its stream)
    event: threading.Event = field(default_factory=threading.Event)
    reply: object = None  # a Frame, or a LinkError to raise in the waiting thread
    parsed: object = None  # the reply decoded by P.parse_reply
    retry_now: bool = False  # a loss was detected on the wire: retransmit without waiting
    t_sent: float | None = None  # first transmission (time.monotonic())
    pause_gen: int = 0  # how many times heartbeats had been paused when it was registered

    def answered_by(self, f: P.Frame, reply) -> bool:
        """Whether ``reply`` (``f`` decoded, same seq) answers this request rather than another type."""
        if isinstance(reply, P.Ack):
            return reply.acked_type == self.msg_type
        if isinstance(reply, P.Nack):
            return reply.nacked_type == self.msg_type
        return EXPECTED_REPLY.get(self.msg_type) == f.type


class Requests:
    """The requests of one link awaiting their reply, by seq (at most 256 outstanding).

    ``write(frame)`` puts bytes on the port; ``check_alive()`` raises :class:`LinkFailed` once the
    link failed.  The caller of :meth:`send` blocks; the I/O thread calls :meth:`answer`.
    """

    def __init__(self, settings: LinkSettings, stats: LinkStats, write: Callable[[bytes], None],
                 check_alive: Callable[[], None]):
        self._settings = settings
        self.stats = stats
        self._write = write
        self._check_alive = check_alive
        self.lock = threading.Lock()  # guards the table (the transport also holds it to drop its port)
        self._pending: dict[int, Request] = {}
        self._seq = itertools.count(0)

    def next_seq(self) -> int:
        """The next sequence number (requests and handshake exchanges share one counter)."""
        return next(self._seq) & 0xFF

    def send(self, msg_type: int, payload: bytes, deadline: float | None, retries: int | None,
             pause_gen: int) -> Request:
        """Send one request and wait for its reply (see :meth:`ArmLink.request`); return it answered."""
        retries = self._settings.retries if retries is None else retries
        seq, pending = self._register(msg_type, payload, pause_gen)
        # The leading delimiter resynchronises the firmware if noise ate the last frame's delimiter.
        frame = b"\x00" + P.encode_frame(msg_type, seq, payload)
        transmitted = False
        self.stats.requests += 1
        try:
            for attempt in range(retries + 1):
                if deadline is not None and time.monotonic() >= deadline:
                    self.stats.deadline_drops += 1
                    raise DeadlineExpired(
                        f"{type_name(msg_type)} seq {seq} not sent: its deadline passed"
                        + (" after an unacknowledged transmission (ask status() whether it ran)"
                           if transmitted else " before it could be sent; send a fresh command"),
                        transmitted)
                if attempt:
                    self.stats.retransmissions += 1
                else:
                    pending.t_sent = time.monotonic()
                self._write(frame)
                transmitted = True
                if pending.event.wait(self._settings.ack_timeout) and pending.reply is not None:
                    break
                with self.lock:
                    if pending.reply is not None:  # arrived just after the wait timed out
                        break
                    pending.retry_now = False
                    pending.event.clear()
            else:
                self.stats.ack_timeouts += 1
                raise AckTimeout(f"no reply to {type_name(msg_type)} seq {seq} after {retries + 1} "
                                 f"transmissions of {self._settings.ack_timeout * 1000:.0f} ms: check the cable, "
                                 "the baud rate and that the arm firmware is running")
        finally:
            with self.lock:
                self._pending.pop(seq, None)
        # The I/O thread sets the reply, then its bookkeeping (the faults it reports), then the event.
        while not pending.event.wait(0.05):
            self._check_alive()  # it died in between
        if isinstance(pending.reply, LinkError):
            raise pending.reply
        if isinstance(pending.parsed, P.Nack):
            self.stats.nacks += 1
            if msg_type == P.MsgType.HELLO and pending.parsed.reason == P.Reason.VERSION:
                raise VersionMismatch(P.PROTOCOL_VERSION, None)
            raise Nacked(msg_type, pending.parsed.reason)
        return pending

    def _register(self, msg_type: int, payload: bytes, pause_gen: int) -> tuple[int, Request]:
        with self.lock:
            for _ in range(256):
                seq = next(self._seq) & 0xFF
                if seq not in self._pending:
                    pending = self._pending[seq] = Request(msg_type, bytes(payload), seq, pause_gen=pause_gen)
                    return seq, pending
        raise LinkError("256 requests outstanding: the caller is flooding the link")

    def answer(self, f: P.Frame, reply) -> Request | None:
        """Give a valid reply to the request it answers; None (counted stale) when none waits for it.

        The request's caller is not woken here: the transport sets its event after its own bookkeeping.
        """
        with self.lock:
            p = self._pending.get(f.seq)
            if p is None or p.reply is not None or not p.answered_by(f, reply):
                self.stats.stale_replies += 1
                return None
            p.reply, p.parsed = f, reply
            return p

    def answer_malformed(self, f: P.Frame, e: ProtocolError) -> tuple[Request | None, str]:
        """A reply with a valid CRC whose payload its type cannot have: the request it was meant to
        answer (if one waits) gets a :class:`ProtocolError`.  Returns it and its name for the report."""
        with self.lock:
            p = self._pending.get(f.seq)
            if p is None or p.reply is not None or not (f.type in (P.MsgType.ACK, P.MsgType.NACK)
                                                        or EXPECTED_REPLY.get(p.msg_type) == f.type):
                return None, "no waiting request"
            req = f"{type_name(p.msg_type)} seq {f.seq}"
            if isinstance(e, VersionMismatch):
                p.reply = e
            else:
                p.reply = ProtocolError(f"the reply to {req} is malformed: {e}"
                                        + (" (the command may have run: ask status())"
                                           if p.msg_type == P.MsgType.ARM_CMD else ""))
                p.reply.__cause__ = e
            return p, req

    def fail_all(self, error: LinkError) -> None:
        """Answer every waiting request with ``error`` (the port went away).  The caller holds :attr:`lock`."""
        for p in self._pending.values():
            if p.reply is None:
                p.reply = error
                p.event.set()

    def nudge(self) -> None:
        """A frame was lost on the wire (ours or a reply): retransmit outstanding requests now."""
        with self.lock:
            for p in self._pending.values():
                if p.reply is None:
                    p.retry_now = True
                    p.event.set()


def exchange(port, parser: P.FrameParser, seq: int, msg_type: int, payload: bytes, seconds: float,
             settings: LinkSettings):
    """One request/reply on a port no thread reads, repeated every ``ack_timeout`` for ``seconds``.

    Returns the parsed reply.  Raises :class:`ProtocolError` when our own frame comes back (a
    loopback) or the reply does not fit its type, :class:`VersionMismatch`, :class:`Nacked`,
    :class:`AckTimeout`.
    """
    frame = b"\x00" + P.encode_frame(msg_type, seq, payload)  # leading delimiter: see Requests.send
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        port.write(frame)
        t_try = time.monotonic() + settings.ack_timeout
        while time.monotonic() < t_try:
            for f in parser.feed(port.read(max(1, port.in_waiting))):
                if f.type in P.HOST_TYPES:
                    raise ProtocolError(
                        f"received our own {type_name(f.type)} frame back from {settings.url}: "
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
    raise AckTimeout(f"no reply to {type_name(msg_type)} from {settings.url} within {seconds:g} s: is the "
                     f"arm firmware flashed and running at {settings.baudrate} baud?")
