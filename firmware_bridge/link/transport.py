"""The link's transport: the port, the threads that read it and send heartbeats, and reconnection.

Owns the port (:func:`~firmware_bridge.link.port.open_port`, reopened with exponential back-off
after an unplug), the parser that cuts its bytes into frames, the requests awaiting their reply
(:class:`~firmware_bridge.link.exchange.Requests`), when heartbeats go out, and whether the link
failed.  It knows nothing of what a reply means to the arm: its owner
(:class:`~firmware_bridge.link.arm_link.ArmLink`) hands it three callables,

- ``observe(reply, request)``: every valid reply, on the I/O thread and in wire order, before the
  request it answers returns (``request`` is None for a reply nobody waits for); returns the faults
  it saw;
- ``handshake(send)``: the exchanges that open a session on a freshly opened port; returns faults;
- ``heartbeat()``: one heartbeat, called every ``heartbeat_period`` by the heartbeat thread.

Frames of a type that is no reply go to the consumer that :meth:`Transport.route` registered for
their type, on the I/O thread and in wire order (the arm's ADC samples are to come up this way,
issue 27); without one they are counted (``stats.unexpected_frames``) and dropped.

Threads
-------
One I/O thread owns reading: it feeds the parser, checks every reply's length before reading a
field, matches replies to waiting requests, hands them to ``observe``, and reconnects with
exponential back-off after an unplug.  One heartbeat thread calls ``heartbeat()`` every
``heartbeat_period`` seconds.  Callers of :meth:`Transport.request` block on their own reply.
Whatever escapes a thread (a bug) fails the link (:attr:`Transport.failed`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import serial

from firmware_bridge import protocol as P
from firmware_bridge.errors import Disconnected, LinkError, LinkFailed, ProtocolError
from firmware_bridge.link.exchange import REPLY_TYPES, Request, Requests, exchange, type_name
from firmware_bridge.link.faults import FaultKind, FaultReporter, LinkFault, LinkStats
from firmware_bridge.link.port import open_port
from firmware_bridge.link.settings import LinkSettings

log = logging.getLogger(__package__)  # the link's one logger, "firmware_bridge.link"


class Transport:
    """Port, threads, heartbeats and reconnection of one link (see the module docstring).

    ``stats`` and ``reporter`` are shared with the link's other parts; ``observe``, ``handshake``
    and ``heartbeat`` are the owner's.
    """

    def __init__(self, settings: LinkSettings, stats: LinkStats, reporter: FaultReporter, *,
                 observe: Callable[[object, Request | None], list[LinkFault]],
                 handshake: Callable[[Callable[[int, bytes], object]], list[LinkFault]],
                 heartbeat: Callable[[], object]):
        self._settings = settings
        self.stats = stats
        self._reporter = reporter
        self._observe, self._handshake, self._heartbeat = observe, handshake, heartbeat
        self._routes: dict[int, Callable[[P.Frame], None]] = {}
        self._requests = Requests(settings, stats, self._write, self.raise_if_failed)
        self.parser = P.FrameParser()  # a fresh one for each port: its counters are the host's CRC/framing errors
        self._port: serial.SerialBase | None = None  # swapped under self._requests.lock
        self.write_lock = threading.Lock()  # held while a frame is written
        # Re-entrant: a resync holds it across HELLO and the settings it restores, so no other
        # state-changing request (an ARM_CMD) can run in between.
        self.command_lock = threading.RLock()
        self._connected = threading.Event()
        self._closing = threading.Event()
        self._hb_paused = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failed: BaseException | None = None
        self._last_hb_ok: float | None = None  # when the last acknowledged heartbeat was sent
        self._pause_gen = 0  # bumped by pause_heartbeat()
        self._pause_gen_at_hb_ok = 0

    # ------------------------------------------------------------------ lifecycle and health
    def open(self) -> None:
        """Open the port, run the handshake, start the threads (see :meth:`ArmLink.open`)."""
        if self._threads:
            raise LinkError("link already open: call close() first")
        self._closing.clear()
        self._failed = None
        self._last_hb_ok = None
        self._connect()
        self._threads = [threading.Thread(target=self._thread_main, args=(self._io_loop,), name="armlink-io",
                                          daemon=True)]
        if self._settings.heartbeat_period is not None:
            self._threads.append(threading.Thread(target=self._thread_main, args=(self._hb_loop,),
                                                  name="armlink-hb", daemon=True))
        for t in self._threads:
            t.start()

    def close(self) -> None:
        self._closing.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2.0)
        self._threads = []
        self._drop_port(Disconnected("link closed"))

    @property
    def port(self) -> serial.SerialBase | None:
        """The open port, or None while disconnected."""
        return self._port

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def failed(self) -> BaseException | None:
        return self._failed

    def raise_if_failed(self) -> None:
        """Raise :class:`LinkFailed` once a thread died (:attr:`failed`)."""
        if self._failed is not None:
            raise self._failed_error()

    def _failed_error(self) -> LinkFailed:
        e = self._failed
        return LinkFailed(f"{self._settings.url}: the link failed ({type(e).__name__}: {e}); close() and open() it "
                          "again, or exit", e)

    def healthy(self) -> bool:
        return bool(self._threads) and self._failed is None and all(t.is_alive() for t in self._threads)

    def route(self, msg_type: int, consumer: Callable[[P.Frame], None]) -> None:
        """Hand every valid frame of ``msg_type`` (a type that is no reply) to ``consumer``.

        Called on the I/O thread, in wire order: it must return quickly; what it raises fails the link.
        """
        if msg_type in REPLY_TYPES:
            raise ValueError(f"{type_name(msg_type)} is a reply: replies go to the request they answer")
        self._routes[msg_type] = consumer

    # ------------------------------------------------------------------ requests and heartbeats
    def request(self, msg_type: int, payload: bytes, deadline: float | None, retries: int | None) -> Request:
        """Send one request and wait for its reply (:meth:`Requests.send`); return it answered."""
        return self._requests.send(msg_type, payload, deadline, retries, self._pause_gen)

    @property
    def heartbeat_paused(self) -> bool:
        return self._hb_paused.is_set()

    def pause_heartbeat(self) -> None:
        self._pause_gen += 1
        self._hb_paused.set()

    def resume_heartbeat(self) -> None:
        self._hb_paused.clear()

    def seconds_since_heartbeat(self) -> float:
        t = self._last_hb_ok
        return float("inf") if t is None else time.monotonic() - t

    def watchdog_cause(self, heartbeat: Request | None) -> tuple[bool, str]:
        """Whether a firmware watchdog trip seen now was asked for, and why it came, in words.

        ``heartbeat``: the heartbeat whose reply reported the trip, if one did.
        """
        period = self._settings.heartbeat_period
        if period is None or self._hb_paused.is_set() or self._pause_gen != self._pause_gen_at_hb_ok:
            return True, ("heartbeats were left to the owner (heartbeat_period=None)" if period is None
                          else "heartbeats had been paused by the owner (pause_heartbeat)")
        t_ref = heartbeat.t_sent if heartbeat is not None and heartbeat.t_sent is not None else time.monotonic()
        if not self._connected.is_set():  # seen by the handshake
            gap = "it was already latched when the link connected (heartbeats had stopped before)"
        elif self._last_hb_ok is None:
            gap = (f"no heartbeat was acknowledged since the link connected ({self.stats.heartbeats_lost} "
                   "lost so far): this process or the link stalled")
        else:
            gap = (f"{(t_ref - self._last_hb_ok) * 1000:.0f} ms passed between acknowledged heartbeats "
                   f"(period {period * 1000:.0f} ms, {self.stats.heartbeats_lost} lost so far): "
                   "this process or the link stalled")
        return False, f"heartbeats were not paused; {gap}"

    # ------------------------------------------------------------------ the port
    def _write(self, data: bytes) -> None:
        self.raise_if_failed()
        url, port = self._settings.url, self._port
        if port is None or not self._connected.is_set():
            raise Disconnected(f"{url} is not connected (reconnecting with back-off); retry later")
        try:
            with self.write_lock:
                port.write(data)
        except (serial.SerialException, OSError) as e:
            self._drop_port(Disconnected(f"{url} disappeared while writing: {e}"))
            raise Disconnected(f"{url} disappeared while writing ({e}); the link is reconnecting") from e

    def _connect(self, reconnect: bool = False) -> None:
        """Open the port and run the owner's handshake on it, reading directly: the I/O thread is not
        running (or is the caller)."""
        s = self._settings
        port = open_port(s.url, s.baudrate)
        self.parser = P.FrameParser()
        try:
            port.reset_input_buffer()
            # All of it within boot_timeout: covers a board that resets on open (see port.py); each
            # exchange after the first gets at least its retries' worth of time.
            t_end = time.monotonic() + s.boot_timeout
            budget = lambda: max(t_end - time.monotonic(), (s.retries + 1) * s.ack_timeout)
            events = self._handshake(lambda msg_type, payload: exchange(
                port, self.parser, self._requests.next_seq(), msg_type, payload, budget(), s))
        except LinkError:  # first: AckTimeout is also an OSError (a TimeoutError)
            port.close()
            raise
        except (serial.SerialException, OSError) as e:
            port.close()
            raise Disconnected(f"{s.url} failed during the handshake: {e}") from e
        if reconnect:
            self.stats.reconnects += 1
        self._reporter.emit(events)
        self._port = port
        self._connected.set()

    def _drop_port(self, error: LinkError) -> None:
        self._connected.clear()
        with self._requests.lock:
            port, self._port = self._port, None
            self._requests.fail_all(error)
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass

    # ------------------------------------------------------------------ what arrives
    def _dispatch(self, f: P.Frame) -> None:
        if f.type not in REPLY_TYPES:
            consumer = self._routes.get(f.type)
            if consumer is None:
                self.stats.unexpected_frames += 1
            else:
                consumer(f)
            return
        try:
            reply = P.parse_reply(f)  # lengths are checked before any field is read
        except ProtocolError as e:
            self.stats.malformed_replies += 1
            p, req = self._requests.answer_malformed(f, e)
            self._reporter.emit([LinkFault(FaultKind.MALFORMED_REPLY, f"dropped a {type_name(f.type)} (seq "
                                           f"{f.seq}, {len(f.payload)} payload bytes, valid CRC) answering {req}: "
                                           f"{e}", e)])
            if p is not None:
                p.event.set()
            return
        if isinstance(reply, P.Nack) and reply.nacked_type == 0:
            self.stats.frame_error_nacks += 1  # the firmware got a corrupted frame from us
            self._requests.nudge()
            return
        p = self._requests.answer(f, reply)
        events = self._observe(reply, p)  # the owner's picture of the firmware, before the caller wakes up
        if p is not None and p.msg_type == P.MsgType.HEARTBEAT and isinstance(reply, P.Status):
            self._last_hb_ok, self._pause_gen_at_hb_ok = p.t_sent, p.pause_gen
        self._reporter.emit(events)  # reported before the request it answers returns
        if p is not None:
            p.event.set()

    # ------------------------------------------------------------------ threads
    def _thread_main(self, body: Callable[[], None]) -> None:
        """Run a thread's loop; whatever escapes it fails the link loudly instead of ending silently."""
        try:
            body()
        except BaseException as e:  # noqa: BLE001 - reported below, never swallowed
            self._fail(e)

    def _fail(self, e: BaseException) -> None:
        name = threading.current_thread().name
        with self._requests.lock:
            if self._failed is not None:
                return
            self._failed = e
        self._drop_port(self._failed_error())  # wakes every waiting request with LinkFailed
        self._reporter.emit([LinkFault(FaultKind.THREAD_DIED, f"thread {name} died ({type(e).__name__}: {e}); the "
                                       "link refuses requests and sends no heartbeats (the firmware's watchdog "
                                       "takes the arm to its safe pose) until close() and open()", e)])

    def _io_loop(self) -> None:
        s = self._settings
        backoff = s.backoff_initial
        while not self._closing.is_set() and self._failed is None:
            port = self._port
            if port is None:
                if not s.reconnect:
                    return
                try:
                    self._connect(reconnect=True)
                    backoff = s.backoff_initial
                except LinkError as e:
                    log.debug("%s: reconnect failed: %s", s.url, e)
                    self._closing.wait(backoff)
                    backoff = min(backoff * 2, s.backoff_max)
                continue
            try:
                data = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError) as e:
                # TypeError/AttributeError: pyserial raises these when the fd vanished under it.
                self._drop_port(Disconnected(f"{s.url} disappeared: {e}; reconnecting"))
                continue
            errors = self.parser.crc_errors + self.parser.framing_errors
            for f in self.parser.feed(data):
                self._dispatch(f)
            if self.parser.crc_errors + self.parser.framing_errors != errors:
                self._requests.nudge()  # a corrupted reply: the request it answered would otherwise time out

    def _hb_loop(self) -> None:
        next_t = time.monotonic()
        while not self._closing.is_set() and self._failed is None:
            next_t += self._settings.heartbeat_period
            if self._connected.is_set() and not self._hb_paused.is_set():
                try:
                    self._heartbeat()
                    self.stats.heartbeats_ok += 1
                except LinkError:
                    self.stats.heartbeats_lost += 1
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind (a lost heartbeat waited a whole ack_timeout): don't burst
                next_t, delay = time.monotonic(), 0
            self._closing.wait(delay)
