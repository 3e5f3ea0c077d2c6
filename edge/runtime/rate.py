"""Does a live stream deliver the rate it declares?

LSL (and BrainFlow) producers declare a nominal rate, and liblsl stamps the samples of a pushed
chunk 1/fs apart from its last one: a producer that sends 250 samples a second while declaring
500 Hz shows no gap inside a chunk, and a 500 Hz bundle would run on a signal played at half its
speed.  What cannot lie is how many samples arrive per second here.  :class:`RateMonitor` counts
them against arrival time over spans of ``RATE_CHECK_S`` (docs/design.md §3: edge/config.py).
"""

from __future__ import annotations

from edge import config as C
from edge._checks import check_positive


class RateMonitor:
    """The delivered/declared rate ratio of a live stream, one span at a time.

    Parameters
    ----------
    fs : float
        The declared rate (Hz).
    span_s, warmup_s, max_gap_s : float
        Span of arrival time per measurement; time ignored at the start; a pause between two
        chunks longer than this restarts the span.
    """

    def __init__(self, fs: float, span_s: float = C.RATE_CHECK_S, warmup_s: float = C.RATE_WARMUP_S,
                 max_gap_s: float = C.RATE_MAX_GAP_S):
        self.fs = check_positive(fs, "fs")
        self.span_s, self.warmup_s, self.max_gap_s = span_s, warmup_s, max_gap_s
        self._first = self._start = self._last = None
        self._n = 0

    def update(self, n_samples: int, t_arrival: float) -> float | None:
        """A chunk of ``n_samples`` arrived at ``t_arrival`` (monotonic seconds).

        Returns the delivered/declared ratio when a span completes, else None.  A span begins at
        a chunk's arrival and counts the samples of the chunks after it, so a chunk's samples are
        counted over the time it took them to come.
        """
        if self._first is None:
            self._first = self._last = t_arrival
            return None
        gap, self._last = t_arrival - self._last, t_arrival
        if t_arrival - self._first < self.warmup_s or gap > self.max_gap_s or self._start is None:
            self._start, self._n = t_arrival, 0  # (re)start the span here
            return None
        self._n += int(n_samples)
        elapsed = t_arrival - self._start
        if elapsed < self.span_s:
            return None
        ratio = self._n / (elapsed * self.fs)
        self._start, self._n = t_arrival, 0
        return ratio
