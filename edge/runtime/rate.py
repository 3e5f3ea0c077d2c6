"""Does a live stream's clock run at the rate it declares?

An LSL (or BrainFlow) producer declares a nominal rate and stamps its samples.  A producer that
sends 250 samples a second but stamps them 1/500 s apart (a device clock that believes its
declared rate) shows no gap anywhere, and a 500 Hz bundle would run on a signal played at half
its speed.  What cannot lie is when the samples arrive here: :class:`RateMonitor` compares how far
the stream's timestamps advance with how far the arrival clock advances, over spans of
``RATE_CHECK_S`` (edge/config.py; docs/design.md §3).

Samples lost on the way (a gap in the timestamps) change neither clock, so a stream with
drop-outs is not a rate fault (its gaps restart the chain and are counted where they happen).  A
producer whose samples liblsl stamps on arrival, 1/fs apart back from the chunk's arrival, keeps
the two clocks together: a slow one leaves a gap before every chunk, so no window ever completes
and nothing is decided on it.
"""

from __future__ import annotations

from edge import config as C
from edge._checks import check_positive


class RateMonitor:
    """The stream clock's speed against the arrival clock, one span at a time.

    Parameters
    ----------
    expected : float
        The expected ratio (1: a device; ``k``: a recording streamed ``k`` times faster).
    span_s, warmup_s, max_gap_s : float, optional
        Default :data:`edge.config.RATE_CHECK_S`, ``RATE_WARMUP_S``, ``RATE_MAX_GAP_S``.  Arrival time per measurement; time ignored at the start (liblsl hands over its backlog
        at once); a pause between two chunks longer than ``max_gap_s`` starts a new warm-up (the
        backlog after a stall comes in bursts of old samples).
    """

    def __init__(self, expected: float = 1.0, span_s: float | None = None, warmup_s: float | None = None,
                 max_gap_s: float | None = None):
        self.expected = check_positive(expected, "expected")
        # None: edge/config.py's, read now (not when this module was imported)
        self.span_s = C.RATE_CHECK_S if span_s is None else span_s
        self.warmup_s = C.RATE_WARMUP_S if warmup_s is None else warmup_s
        self.max_gap_s = C.RATE_MAX_GAP_S if max_gap_s is None else max_gap_s
        self._first = self._last = self._start = None
        self._ts0 = 0.0

    def update(self, t_arrival: float, t_stream: float) -> float | None:
        """A chunk arrived at ``t_arrival`` (monotonic s) whose last sample is stamped ``t_stream``.

        Returns the measured/expected ratio of the two clocks when a span completes (1.0: as
        declared; 0.5: the stream's clock runs at half the speed its timestamps claim), else None.
        """
        if self._first is None:
            self._first = self._last = t_arrival
            return None
        gap, self._last = t_arrival - self._last, t_arrival
        if gap > self.max_gap_s:
            # After a pause the backlog arrives in bursts of old samples: warm up again, as at the start.
            self._first, self._start = t_arrival, None
            return None
        if t_arrival - self._first < self.warmup_s or self._start is None:
            self._start, self._ts0 = t_arrival, t_stream  # (re)start the span here
            return None
        elapsed = t_arrival - self._start
        if elapsed < self.span_s:
            return None
        ratio = (t_stream - self._ts0) / elapsed / self.expected
        self._start, self._ts0 = t_arrival, t_stream
        return ratio
