"""The link's side of the ADC stream: opening it, following its runs in wire order, starting it again.

:class:`StreamControl` owns the link's one :class:`~firmware_bridge.link.stream.SampleStream` (the
firmware runs one stream at a time).  :class:`~firmware_bridge.link.arm_link.ArmLink` hands it

- every SAMPLES frame (``on_frame``, routed by the transport on the I/O thread, never blocking it);
- every reply with the request it answers (``observe``, on the I/O thread in wire order): the ACK of
  our STREAM_START begins a run (its frames carry that request's seq), the ACK of STREAM_STOP or a
  HELLO_REPLY ends it — the firmware sends no frame of a stream after the reply that ended it;
- the end of each handshake (``session_began``: its HELLO ended any stream; the SAMPLES frames that
  came during the handshake were skipped by ``exchange()`` and belong to no run);
- a turn of the heartbeat thread (``maybe_restart``): once the session is back after an MCU reset, a
  resync or a reconnect, STREAM_START goes out again, right after a heartbeat.

It sends through ``call(msg_type, payload, deadline, retries)`` (the session's: one state-changing
request at a time, a NACK NO_HELLO starts a resync) and asks ``ready()`` whether a request can go out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from firmware_bridge import protocol as P
from firmware_bridge.errors import Disconnected, LinkError, Nacked
from firmware_bridge.link.faults import FaultReporter, LinkFault, LinkStats
from firmware_bridge.link.settings import LinkSettings
from firmware_bridge.link.stream import SampleStream

RESTART_RETRIES = 1  # a STREAM_START re-sent from the heartbeat thread: short, the next turn tries again
_PERMANENT = frozenset({P.Reason.BAD_ARG, P.Reason.BUDGET, P.Reason.UNKNOWN_TYPE, P.Reason.BAD_LENGTH})


class StreamControl:
    """The ADC stream of one link (see the module docstring)."""

    def __init__(self, settings: LinkSettings, stats: LinkStats, reporter: FaultReporter,
                 call: Callable[[int, bytes, float | None, int | None], object], ready: Callable[[], bool]):
        self._settings = settings
        self._stats = stats
        self._reporter = reporter
        self._call = call
        self._ready = ready
        self._lock = threading.Lock()  # guards which stream is the link's
        # Held from "does the stream need a START?" to its reply, and across STREAM_STOP: a restart never
        # follows the STOP of a stream being closed.
        self._send_lock = threading.Lock()
        self._stream: SampleStream | None = None

    def open(self, channels: Iterable[int], rate_hz: int, buffer_s: float) -> SampleStream:
        """Check the budget, send STREAM_START, return the stream (see :meth:`ArmLink.open_stream`)."""
        if isinstance(channels, int):
            raise TypeError(f"channels must be an iterable of ADC inputs such as range(8) or [0, 1], got {channels!r}")
        mask = P.channel_mask(channels)
        budget = P.stream_budget(mask, rate_hz, self._settings.baudrate)
        if not budget.fits:
            raise ValueError(budget.problem)
        if isinstance(buffer_s, bool) or not isinstance(buffer_s, (int, float)) or not buffer_s > 0:
            raise ValueError(f"buffer_s must be > 0 seconds (how much the reader may fall behind), got {buffer_s!r}")
        stream = SampleStream(mask, rate_hz, budget, buffer_s, self._stop)
        with self._lock:
            if self._stream is not None and not self._stream.closed:
                raise LinkError("a stream is already open on this link (the firmware runs one): close() it first")
            self._stream = stream
        try:
            self._call(P.MsgType.STREAM_START, stream.start_payload, None, None)
        except Nacked as e:
            self._forget(stream)
            if e.reason == P.Reason.BUDGET:  # the host found it fits: the firmware runs at another rate
                raise Nacked(e.msg_type, e.reason, f"{P.reason_hint(e.reason)}; at {self._settings.baudrate} baud it "
                             "fits, so the firmware was built for another baud rate (NG_LINK_BAUD): open the link "
                             "at the firmware's rate") from e
            raise
        except BaseException:
            self._forget(stream)
            raise
        return stream

    def close(self) -> None:
        """The link closes: stop its stream (what STREAM_STOP raises is the firmware's concern now)."""
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except LinkError:
                pass  # the port goes away; the next HELLO (any host's) ends the firmware's stream

    # ------------------------------------------------------------------ from the link's threads
    def on_frame(self, f: P.Frame) -> None:
        """A SAMPLES frame (I/O thread): to the stream, or counted when none is open."""
        stream = self._stream
        if stream is None:
            self._stats.unexpected_frames += 1
            return
        self._reporter.emit(stream.on_frame(f))

    def observe(self, reply, request) -> list[LinkFault]:
        """A reply and the request it answers (None for a stale one), in wire order (I/O thread)."""
        stream = self._stream
        if stream is None:
            return []
        if isinstance(reply, P.HelloReply):  # (even a late one: the firmware ran that HELLO)
            stream.run_ended("a HELLO (an MCU reset or a resync re-established the session)", restart=True)
        elif request is None:
            return []
        elif isinstance(reply, P.Ack) and request.msg_type == P.MsgType.STREAM_START:
            if request.payload == stream.start_payload:
                return stream.run_began(request.seq, request.t_sent)
            stream.run_ended("a STREAM_START not sent by this stream", restart=False)  # another owner's
        elif isinstance(reply, P.Ack) and request.msg_type == P.MsgType.STREAM_STOP:
            stream.run_ended(None, restart=False)
        return []

    def session_began(self) -> list[LinkFault]:
        """A handshake ended (its HELLO ended any stream): the stream starts again when the link is up."""
        stream = self._stream
        if stream is not None:
            stream.run_ended("the link reconnected (its HELLO ends the firmware's stream)", restart=True)
        return []

    def maybe_restart(self) -> None:
        """Heartbeat thread: start the stream again if a run ended under it and the session is back."""
        stream = self._stream
        if stream is None or not stream.needs_start or not self._ready():
            return
        try:
            with self._send_lock:
                if stream.needs_start:
                    self._call(P.MsgType.STREAM_START, stream.start_payload, None, RESTART_RETRIES)
        except Nacked as e:
            if e.reason in _PERMANENT:  # another firmware answers now (reflashed): retrying changes nothing
                self._reporter.emit(stream.fail(e))
            else:
                stream.stats.restart_failures += 1  # NO_HELLO: the session is being restored
        except LinkError:
            stream.stats.restart_failures += 1  # lost, or the port went: the next turn tries again

    # ------------------------------------------------------------------ helpers
    def _stop(self, stream: SampleStream) -> None:
        """``stream.close()``: STREAM_STOP (unless there is no port: the next HELLO ends the stream)."""
        try:
            with self._send_lock:
                if self._ready():
                    self._call(P.MsgType.STREAM_STOP, b"", None, None)
        except Disconnected:
            pass
        finally:
            self._forget(stream)

    def _forget(self, stream: SampleStream) -> None:
        with self._lock:
            if self._stream is stream:
                self._stream = None
