"""Can a live stream's time be trusted?  Its rate and the age of its data, from the first chunk.

An LSL (or BrainFlow) producer declares a nominal rate and stamps its samples.  Two lies matter:

* **behind** — the data are older than they should be: a Bluetooth or network backlog (every sample
  stamped seconds in the past), or a producer that sends 250 samples a second but stamps them 1/500 s
  apart, whose stamps fall further behind the clock every second.  A decision on such data moves
  the arm for what the person did long ago.
* **ahead** — the stamps advance faster than time passes: a producer sending 1000 samples a second
  stamped as 500 Hz.  A 500 Hz bundle would decide on the signal played at twice its speed.

What cannot lie is when the samples arrive here.  :class:`StreamClock` compares each chunk's newest
stamp with its arrival (docs/robustness.md § Stream time):

* **absolute** — where the stream's timestamps are on a clock this machine reads (LSL's
  clock-corrected ``local_clock``; a BrainFlow board's Unix time) and the stream plays in real
  time, the newest sample's *age* is simply arrival − stamp;
* **relative** — otherwise (a recording streamed ``k`` times faster, a clock this machine cannot
  read), ``offset = arrival − stamp / k`` is compared with the smallest offset seen since the
  stream started (its freshest chunk): how far it has fallen *behind* that, and how far that
  smallest offset has moved *ahead* of where it started.

There is no warm-up for "behind" and no span that a pause restarts: pauses, stalls and bursts change
neither clock's reading, so they cannot walk a lying stream around it (relative mode's few
adaptations, below, are there for honest streams and none of them forgives a slow stream).  Samples lost on the way (a jump in
the stamps that matches the time that passed) change neither either.  A backlog after a stall
arrives *behind*: it is not decided on, as it should not be, and clears by itself once the stream is
live again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from edge import config as C
from edge._checks import check_positive

#: verdicts of :meth:`StreamClock.update`
OK, BEHIND, AHEAD = "ok", "behind", "ahead"


@dataclass(frozen=True)
class ClockVerdict:
    """One chunk judged.  ``seconds``: how far behind (its age beyond the fresh one's, or its age when
    absolute) or ahead; ``ratio``: the stream clock's speed against the arrival clock since the
    comparison began (1: as declared), or None before 0.1 s have passed."""

    state: str
    seconds: float
    ratio: float | None = None


class StreamClock:
    """A live stream's timestamps against their arrival, one chunk at a time.

    Parameters
    ----------
    expected : float
        The expected ratio of the two clocks (1: a device; ``k``: a recording streamed ``k`` times
        faster than real time).
    absolute : bool
        The arrival times given to :meth:`update` are on the stream's own clock (and ``expected``
        is 1): the newest sample's age is measured directly, so a constant backlog is seen too.
    tolerance_s : float, optional
        Default :data:`edge.config.STREAM_MAX_AGE_S`: how far a chunk may be behind, or the stream
        ahead, before the verdict says so.

    Notes
    -----
    Relative mode knows no absolute age, so it adapts where an honest stream needs it to:

    * its reference (the freshest offset) rises by :data:`edge.config.STREAM_DRIFT` per second, so
      clocks that drift apart (devices differ by up to ~100 ppm) never add up to "behind", while a
      stream 10 % slow gains 100 ms of lag a second;
    * stamps that go back (a restarted producer, a new time base) start the comparison again;
    * for its first :data:`edge.config.STREAM_SETTLE_S` the start follows the freshest offset: the
      first chunks may be a backlog (liblsl's buffer, the second read to check units), and fresh
      chunks after them are no stream "ahead".  Behind is judged from the first chunk.
    """

    def __init__(self, expected: float = 1.0, absolute: bool = False, tolerance_s: float | None = None):
        self.expected = check_positive(expected, "expected")
        self.absolute = bool(absolute) and expected == 1.0
        # None: edge/config.py's, read now (not when this module was imported)
        self.tolerance_s = check_positive(C.STREAM_MAX_AGE_S if tolerance_s is None else tolerance_s,
                                          "tolerance_s")
        self._history: deque[tuple[float, float]] = deque()  # (arrival, stamp) over the last RATE_WINDOW_S
        self._restart()

    def _restart(self) -> None:
        self._t0: float | None = None  # arrival of the first chunk since the comparison (re)started
        self._anchor = self._best = 0.0  # relative: the offset where it started, the freshest since
        self._last_arrival = self._last_stamp = None
        self._history.clear()

    def update(self, t_arrival: float, t_stream: float) -> ClockVerdict:
        """A chunk whose newest sample is stamped ``t_stream`` (finite) arrived at ``t_arrival`` (seconds;
        on the stream's clock when ``absolute``, else any steady clock)."""
        if self._last_stamp is not None and t_stream < self._last_stamp and not self.absolute:
            self._restart()  # a new time base: compared afresh (the pipeline restarts the chain too)
        offset = t_arrival - t_stream / self.expected
        if self._t0 is None:
            self._t0, self._anchor, self._best = t_arrival, offset, offset
        else:  # the reference creeps up at the allowed drift, and follows any fresher chunk down
            self._best = min(self._best + C.STREAM_DRIFT * (t_arrival - self._last_arrival), offset)
        self._last_arrival, self._last_stamp = t_arrival, t_stream
        ratio = self._ratio(t_arrival, t_stream)
        tol = self.tolerance_s
        if self.absolute:
            age = t_arrival - t_stream
            if age > tol:
                return ClockVerdict(BEHIND, age, ratio)
            if -age > tol:
                return ClockVerdict(AHEAD, -age, ratio)
            return ClockVerdict(OK, age, ratio)
        if t_arrival - self._t0 < C.STREAM_SETTLE_S:
            self._anchor = self._best  # a backlog start settles to its fresh chunks
        if offset - self._best > tol:
            return ClockVerdict(BEHIND, offset - self._best, ratio)
        if self._anchor - self._best > tol:
            ahead = self._anchor - self._best
            self._anchor = self._best  # measured again from here: a stream that runs right again can clear
            return ClockVerdict(AHEAD, ahead, ratio)
        return ClockVerdict(OK, offset - self._best, ratio)

    def _ratio(self, t_arrival: float, t_stream: float) -> float | None:
        """The stream clock's speed over the last :data:`edge.config.RATE_WINDOW_S` of arrivals (a
        mid-run change shows, not one averaged since the start), once 0.2 s of arrivals are in it."""
        h = self._history
        if h and t_stream < h[-1][1]:
            h.clear()  # a new time base: the rate is measured from here
        h.append((t_arrival, t_stream))
        while len(h) > 2 and t_arrival - h[1][0] >= C.RATE_WINDOW_S:
            h.popleft()
        a0, s0 = h[0]
        if t_arrival - a0 < 0.2:
            return None
        return (t_stream - s0) / (t_arrival - a0) / self.expected
