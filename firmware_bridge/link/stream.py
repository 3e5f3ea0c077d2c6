"""The arm's analog inputs as the link's owner reads them: :class:`SampleStream` (PROTOCOL.md § 5).

A stream is opened by :meth:`ArmLink.open_stream`, which sends STREAM_START; the firmware then sends
SAMPLES frames, which the link's I/O thread hands to :meth:`SampleStream.on_frame` in wire order.
Each valid frame of the stream's current *run* becomes one :class:`SampleBlock` in a bounded queue
that :meth:`SampleStream.read` empties.  A run is what one acknowledged STREAM_START began: its
frames carry that request's seq (``stream``), its scan indices start at 0 and its frame seqs at 0.
An MCU reset, a HELLO or a reconnect ends a run; the link starts a new one by itself
(:mod:`~firmware_bridge.link.stream_control`) and the first block of it says ``restarted``.

Accounting (every scan the firmware took is delivered once, or counted as lost):

- ``first_sample`` is a host-side index: the firmware's, unwrapped across its u32 wrap, continued
  across runs, so that ``block.first_sample == previous.next_sample + block.lost_before`` always;
- a scan the firmware skipped, or a frame lost or corrupted on the wire, shows as a jump of the
  firmware's index: ``lost_before`` (frame seqs that skip count ``stats.frames_lost``);
- a frame that repeats or goes back (a duplicate, a reordering) is refused, never delivered twice;
  so is one whose index is beyond what the run could have sampled since its START was sent (a
  corrupted header that passed the CRC, p ≈ 2⁻¹⁶ a corrupted frame);
- when the reader falls behind, the oldest blocks are dropped and their scans added to the next
  block's ``lost_before`` (``stats.overrun_samples``; ``FaultKind.STREAM_OVERRUN`` once a time).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge import protocol as P
from firmware_bridge.errors import LinkError, ProtocolError
from firmware_bridge.link.faults import FaultKind, LinkFault

DEFAULT_BUFFER_S = 2.0  # the reader's queue holds this much time of scans before the oldest are dropped
_CLOCK_MARGIN = 1.01    # the MCU's clock may run this much fast against the host's (an Uno's: ±0.5 %)
_INDEX_SLACK = 64       # scans: a run's first tick, the firmware's 8-scan buffer, a frame in flight
_REANCHOR_AFTER = 8     # consecutive frames from "the past": the index accepted last was the wrong one
_U32 = 1 << 32


@dataclass(frozen=True)
class SampleBlock:
    """Consecutive scans of the stream's inputs, as one SAMPLES frame brought them.

    Attributes
    ----------
    first_sample : int
        Host-side index of ``scans[0]``: the firmware's scan index, unwrapped and continued across
        restarts (never decreases; ``next_sample`` of one block + ``lost_before`` of the next).
    scans : tuple of tuple of int
        ``scans[i][j]``: ADC counts (0..1023) of scan ``first_sample + i``, input ``stream.channels[j]``.
    t_arrival : float
        ``time.monotonic()`` when the link parsed the frame (after its last scan was taken).
    lost_before : int
        Scans missing between the previous block and this one (skipped by the firmware, lost or
        corrupted on the wire, dropped because the reader was behind).
    restarted : bool
        The stream was started again before this block (an MCU reset, a HELLO, a reconnect): the
        time between the previous block and this one is unknown; indices stay monotonic, time does not
        follow from them across it.
    """

    first_sample: int
    scans: tuple[tuple[int, ...], ...]
    t_arrival: float
    lost_before: int = 0
    restarted: bool = False

    @property
    def n_scans(self) -> int:
        return len(self.scans)

    @property
    def next_sample(self) -> int:
        return self.first_sample + len(self.scans)


@dataclass
class StreamStats:
    """Counters of one :class:`SampleStream`.  Corrupted frames (bad CRC or COBS) of every type are
    the link's parser's; here they show as lost scans."""

    frames: int = 0           # SAMPLES frames accepted
    samples: int = 0          # scans accepted from the wire
    delivered: int = 0        # scans handed to the reader by read()
    lost_samples: int = 0     # scans known lost: index jumps (firmware, wire) and overrun drops
    gaps: int = 0             # accepted blocks with lost_before > 0 or restarted, at acceptance
    frames_lost: int = 0      # frames missing by the frame seq (mod 256)
    restarts: int = 0         # runs begun after the first (the stream started again)
    restart_failures: int = 0  # STREAM_START re-sends that failed and will be retried
    overruns: int = 0         # times the reader fell behind (each reported once)
    overrun_samples: int = 0  # scans dropped from the queue for it (also in lost_samples)
    rejected_frames: int = 0  # frames of the run refused: duplicated, reordered, implausible, malformed
    stray_frames: int = 0     # frames of no current run (an older stream, before the START's ACK)


class SampleStream:
    """The firmware's stream of the ADC inputs ``channels`` at ``rate_hz``: see the module docstring.

    Made by :meth:`ArmLink.open_stream`.  ``read()`` and ``close()`` are the reader's (one thread);
    the rest is called by the link, on its I/O thread in wire order.
    """

    def __init__(self, channel_mask: int, rate_hz: int, budget: P.StreamBudget, buffer_s: float,
                 stop: Callable[[SampleStream], None]):
        self.channel_mask = channel_mask
        self.channels = P.mask_channels(channel_mask)
        self.rate_hz = rate_hz
        self.budget = budget
        self.scans_per_frame = budget.scans_per_frame
        self.max_buffered = max(self.scans_per_frame, math.ceil(rate_hz * buffer_s))
        self.start_payload = P.pack_stream_start(channel_mask, rate_hz)
        self.stats = StreamStats()
        self.error: LinkError | None = None  # why the stream ended by itself (a refused restart)
        self.needs_start = False  # a run ended and the link should start a new one
        self._stop = stop  # sends STREAM_STOP (the link's)
        self._cond = threading.Condition()
        self._queue: collections.deque[SampleBlock] = collections.deque()
        self._queued = 0  # scans in the queue
        self._overrun = False  # an overrun was reported and the reader has not caught up since
        self._closing = self._closed = False
        self._runs = 0
        self._run: int | None = None  # the seq of the STREAM_START that began the current run
        self._run_t0 = 0.0  # when that START was first sent
        self._next_fw = 0  # the run's next scan index, unwrapped
        self._next_seq = 0  # the run's next frame seq
        self._base = 0  # host index of the run's scan 0
        self._host_next = 0  # host index after the last scan accounted for
        self._rejects = 0  # consecutive refused frames of the run
        self._pending_restart = False  # the next accepted block follows a restart
        self._ended_by = ""  # why the last run ended, in words

    # ------------------------------------------------------------------ the reader's
    @property
    def closed(self) -> bool:
        return self._closed

    def read(self, timeout: float | None = 0.0) -> SampleBlock | None:
        """Return the oldest block, waiting up to ``timeout`` seconds (None: until one comes or the
        stream closes); None when nothing came.  After :meth:`close` the blocks still queued are
        returned, then None.

        Raises
        ------
        LinkError
            The stream ended by itself (:attr:`error`: the firmware refused to start it again), once
            the blocks queued before are read.
        """
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
        with self._cond:
            if not self._queue and timeout != 0:
                self._cond.wait_for(lambda: self._queue or self._closed, timeout)
            if not self._queue:
                if self.error is not None:
                    raise self.error
                return None
            block = self._queue.popleft()
            self._queued -= block.n_scans
            self.stats.delivered += block.n_scans
            if self._overrun and self._queued <= self.max_buffered // 2:
                self._overrun = False  # caught up: the next overrun is reported again
            return block

    def close(self) -> None:
        """Stop the stream (STREAM_STOP; the scans the firmware held still arrive and are queued).
        Idempotent; the link's ``close()`` does it too.

        Raises
        ------
        LinkError
            STREAM_STOP went unanswered (the firmware may go on sending: the link counts those frames
            in ``stats.unexpected_frames``, and the next HELLO ends them).  The stream is closed anyway.
        """
        with self._cond:
            if self._closing:
                return
            self._closing, self.needs_start = True, False
        try:
            self._stop(self)
        finally:
            with self._cond:
                self._closed, self._run = True, None
                self._cond.notify_all()

    def __enter__(self):  # returns self
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the link's (I/O thread, wire order)
    def run_began(self, stream_id: int, t_sent: float) -> list[LinkFault]:
        """The ACK of our STREAM_START with seq ``stream_id``, first sent at ``t_sent``."""
        with self._cond:
            if self._closing:
                return []
            restart = self._runs > 0
            self._runs += 1
            self._run, self._run_t0, self._next_fw, self._next_seq = stream_id, t_sent, 0, 0
            self._base, self._rejects, self.needs_start = self._host_next, 0, False
            if not restart:
                return []
            self.stats.restarts += 1
            self._pending_restart = True
        return [LinkFault(FaultKind.STREAM_RESTART, f"the ADC stream ({len(self.channels)} inputs at {self.rate_hz} "
                          f"Hz) was started again after {self._ended_by or 'an interruption'}; the next block "
                          "says restarted=True (a gap of unknown length)")]

    def run_ended(self, why: str | None, *, restart: bool) -> None:
        """The firmware's run ended (``why``: None for our own STOP); ``restart``: start a new one."""
        with self._cond:
            if self._run is not None or restart:
                self._ended_by = why or "STREAM_STOP"
            self._run = None
            self.needs_start = restart and not self._closing and self.error is None

    def fail(self, error: LinkError) -> list[LinkFault]:
        """The firmware refused to start the stream again: it ends here."""
        with self._cond:
            self.error, self.needs_start, self._run, self._closed = error, False, None, True
            self._cond.notify_all()
        return [LinkFault(FaultKind.STREAM_FAILED, f"the ADC stream could not be started again after "
                          f"{self._ended_by}: {error}; it is closed (read() raises this error)", error)]

    def on_frame(self, f: P.Frame) -> list[LinkFault]:
        """One valid SAMPLES frame; returns the faults it reveals (an overrun)."""
        t = time.monotonic()
        try:
            s = P.Samples.from_payload(f.payload)
        except ProtocolError:
            s = None
        with self._cond:
            if self._run is None or (s is not None and s.stream != self._run):
                self.stats.stray_frames += 1
                return []
            block = self._account(f.seq, s, t)
            if block is None:
                return []
            events = self._enqueue(block)
            self._cond.notify_all()
        return events

    def _account(self, frame_seq: int, s: P.Samples | None, t: float) -> SampleBlock | None:
        """Place a frame of the current run in the host's index, or refuse it (None)."""
        if s is None or s.channel_mask != self.channel_mask or s.n_scans > self.scans_per_frame:
            self.stats.rejected_frames += 1  # malformed, or not what this run's START asked for
            return None
        n, delta = s.n_scans, (s.first_sample - self._next_fw) % _U32
        back = delta >= _U32 // 2  # a duplicate or a reordered frame: from the past
        fw_first = self._next_fw - (_U32 - delta) if back else self._next_fw + delta
        if back or fw_first + n > self.rate_hz * (t - self._run_t0) * _CLOCK_MARGIN + _INDEX_SLACK:
            self._rejects += 1
            if not (back and fw_first >= 0 and self._rejects >= _REANCHOR_AFTER):
                self.stats.rejected_frames += 1
                return None
            # Frames keep coming from "the past": the index accepted last was corrupted (yet passed the
            # CRC).  Follow the frames, without going back: a gap of unknown length, like a restart.
            self._base, self._next_fw, self._pending_restart = self._host_next - fw_first, fw_first, True
        lost = fw_first - self._next_fw
        self.stats.frames_lost += (frame_seq - self._next_seq) % 256
        self._rejects, self._next_seq, self._next_fw = 0, (frame_seq + 1) % 256, fw_first + n
        block = SampleBlock(self._base + fw_first, s.values, t, lost, self._pending_restart)
        self._pending_restart = False
        self._host_next = block.next_sample
        self.stats.frames += 1
        self.stats.samples += n
        self.stats.lost_samples += lost
        self.stats.gaps += bool(lost or block.restarted)
        return block

    def _enqueue(self, block: SampleBlock) -> list[LinkFault]:
        """Queue a block, dropping the oldest while the queue would hold more than ``max_buffered``."""
        dropped = lost = 0
        restarted = False
        while self._queue and self._queued + block.n_scans > self.max_buffered:
            old = self._queue.popleft()
            self._queued -= old.n_scans
            dropped += old.n_scans
            lost += old.lost_before + old.n_scans
            restarted |= old.restarted
        if dropped:  # the next block the reader gets says what it missed
            if self._queue:
                head = self._queue[0]
                self._queue[0] = dataclasses.replace(head, lost_before=head.lost_before + lost,
                                                     restarted=head.restarted or restarted)
            else:
                block = dataclasses.replace(block, lost_before=block.lost_before + lost,
                                            restarted=block.restarted or restarted)
            self.stats.overrun_samples += dropped
            self.stats.lost_samples += dropped
        self._queue.append(block)
        self._queued += block.n_scans
        if not dropped or self._overrun:
            return []
        self._overrun = True
        self.stats.overruns += 1
        return [LinkFault(FaultKind.STREAM_OVERRUN, f"the ADC stream's reader fell behind: its buffer of "
                          f"{self.max_buffered} scans ({self.max_buffered / self.rate_hz:g} s) filled, and the "
                          "oldest blocks are dropped (counted in lost_before and stats.overrun_samples) until "
                          "read() catches up")]
