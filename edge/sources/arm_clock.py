"""The host time of a microcontroller's scan indices: :class:`IndexClock` (for :mod:`edge.sources.arm`).

The arm's MCU numbers its scans and knows nothing of this machine's time; its clock (an Uno's 16 MHz
ceramic resonator) runs within ±0.5 % of nominal, 5 ms a second.  What this machine knows is when each
SAMPLES frame arrived, after the frame's last scan was taken::

    t_arrival = t_taken(last scan of the frame) + latency,      latency > 0, always

(the frame's bytes on the UART, the USB bridge, this machine's scheduler).  The scans' times therefore
lie on or below every arrival, and "index → host time" is the *lower envelope* of the points
``(last index, t_arrival)``: the line ``t = a + b·i`` below all points of a sliding window that hugs
them closest (minimum Σ (arrival − line): a linear programme whose optimum is the edge of the points'
lower convex hull above their mean index — a min-latency fit, which latency spikes cannot pull up, unlike
least squares).  Its slope ``b`` is the MCU's period on this machine's clock: the drift correction.

Its offset holds the smallest latency seen, the constant part of the path, which nothing on this side
can tell apart from the scan's own time: a stamp says when the scan would have arrived over an idle
link.  What the runtime's age check then sees is the excess — queueing here, a USB stall, a reader that
fell behind — which is what makes a decision late.

Bounded work: the window keeps one point per bucket (:data:`~edge.config.ARM_CLOCK_BUCKET_S` of scans,
the earliest arrival against the current slope) and the line is refitted when a bucket closes, not per
frame; between refits each frame only lowers the line if it arrived earlier than it says.

Stamps are continuous: a new fit moves the stamps of an unbroken stream at most
:data:`~edge.config.ARM_CLOCK_SLEW` of a period per sample (steps stay within 0.9–1.1 periods: never back,
never a step the pipeline or the XDF reader would take for lost samples).  After a gap the stamps follow
the line at once; after a restart of the stream (the time between unknown) the fit starts again from the
new run's frames, keeping the fitted slope (the MCU's clock did not change).  The slope is kept within
:data:`~edge.config.ARM_CLOCK_TOLERANCE` of nominal: a front end slower or faster than that is a fault the
runtime's rate check must see (edge/runtime/rate.py), not a drift to correct.
"""

from __future__ import annotations

import itertools
import math
from collections import deque

import numpy as np

from edge import config as C


def lower_hull(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The lower convex hull of ``points`` sorted by x (Andrew's monotone chain)."""
    hull: list[tuple[int, float]] = []
    for p in points:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) > 0:  # a left turn: keep
                break
            hull.pop()
        hull.append(p)
    return hull


def envelope_slope(points: list[tuple[int, float]]) -> float | None:
    """The slope of the line below every point that minimises the summed distance to them (the lower hull's
    edge above the points' mean x), or None with fewer than two distinct x."""
    hull = lower_hull(points)
    if len(hull) < 2:
        return None
    xm = sum(x for x, _ in points) / len(points)
    for (x1, y1), (x2, y2) in itertools.pairwise(hull):
        if xm <= x2:
            return (y2 - y1) / (x2 - x1)
    (x1, y1), (x2, y2) = hull[-2], hull[-1]
    return (y2 - y1) / (x2 - x1)


class IndexClock:
    """Scan indices → ``time.monotonic()`` seconds, for a stream of nominal ``rate_hz`` (module docstring).

    Feed every block's ``(next_sample - 1, t_arrival)`` to :meth:`add`, then take its scans' stamps from
    :meth:`stamps`; call :meth:`reanchor` before the first block of a restarted stream.
    """

    def __init__(self, rate_hz: float):
        self.nominal = 1.0 / float(rate_hz)
        self.period = self.nominal  # the fitted slope: seconds per scan on this machine's clock
        self._bucket = max(1, round(rate_hz * C.ARM_CLOCK_BUCKET_S))
        self._window = max(2 * self._bucket, round(rate_hz * C.ARM_CLOCK_WINDOW_S))
        self._min_span = round(rate_hz * C.ARM_CLOCK_MIN_SPAN_S)
        self._lo = self.nominal / (1.0 + C.ARM_CLOCK_TOLERANCE)
        self._hi = self.nominal / (1.0 - C.ARM_CLOCK_TOLERANCE)
        self._points: deque[tuple[int, float]] = deque()  # one per closed bucket: (x, y) from the anchor
        self._cur: list | None = None  # [bucket, x, y] of the bucket filling now
        self._x0: int | None = None  # anchor: index and arrival of the run's first point
        self._y0 = 0.0
        self._offset = math.inf  # the line: t = y0 + offset + period·(i − x0)
        self._last: float | None = None  # the last stamp handed out
        self.fitted = False  # the slope was fitted (else nominal, or kept across a restart)
        self.reanchors = 0

    @property
    def ppm(self) -> float:
        """How much faster than nominal the MCU's clock runs against this machine's, in parts per million."""
        return (self.nominal / self.period - 1.0) * 1e6

    def reanchor(self) -> None:
        """The stream was started again (the time since unknown): fit afresh from the next block, slope kept."""
        self._points.clear()
        self._cur, self._x0, self._offset = None, None, math.inf
        self.reanchors += 1

    def add(self, index: int, t_arrival: float) -> None:
        """A frame whose last scan is ``index`` arrived at ``t_arrival``."""
        if self._x0 is None:
            self._x0, self._y0 = index, t_arrival
        x, y, b = index - self._x0, t_arrival - self._y0, self.period
        cur, bucket = self._cur, x // self._bucket
        if cur is None or bucket != cur[0]:
            if cur is not None:
                self._points.append((cur[1], cur[2]))
                while self._points and self._points[0][0] < x - self._window:
                    self._points.popleft()
            self._cur = [bucket, x, y]
            self._refit()
        elif y - b * x < cur[2] - b * cur[1]:  # earlier than the bucket's best against the line's slope
            cur[1], cur[2] = x, y
        self._offset = min(self._offset, y - self.period * x)  # below every point at once

    def _refit(self) -> None:
        pts = [*self._points, (self._cur[1], self._cur[2])]
        if pts[-1][0] - pts[0][0] >= self._min_span:
            slope = envelope_slope(pts)
            if slope is not None:
                self.period = min(max(slope, self._lo), self._hi)
                self.fitted = True
        b = self.period
        self._offset = min(y - b * x for x, y in pts)

    def line(self, index) -> np.ndarray | float:
        """The fitted line's time of scan ``index`` (an int or an array)."""
        return self._y0 + self._offset + self.period * (np.asarray(index, np.float64) - self._x0)

    def stamps(self, first: int, n: int, continuous: bool) -> np.ndarray:
        """Stamps of scans ``first .. first + n - 1``: slewed from the last stamp when ``continuous`` (an
        unbroken stream), else on the line (after a gap, a restart, at the start); always after the last."""
        b, last = self.period, self._last
        if continuous and last is not None:
            k = np.arange(1, n + 1, dtype=np.float64)
            err = float(self.line(first)) - (last + b)
            room = C.ARM_CLOCK_SLEW * b * k
            ts = last + b * k + np.clip(err, -room, room)
        else:
            ts = self.line(np.arange(first, first + n))
            if last is not None and not ts[0] > last:  # (a run re-anchored on a late first frame)
                ts = ts + (last + b - ts[0])
        self._last = float(ts[-1])
        return ts
