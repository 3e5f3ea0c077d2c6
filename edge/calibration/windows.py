"""A calibration session's windows: the bundle's own windows cut from the causally filtered signal,
kept as that signal (:class:`WindowArray`), split in time into calibration part and held-out block,
and thinned when a long session holds more than ``CALIBRATION_MAX_WINDOW_BYTES``.

The thinned windows are the runtime's own windows, fewer of them: every sample still goes through
the causal chain (after a reset at each segment's start, as the runtime's), only fewer windows are
cut from its output.  Which ones is decided offline from the windows' truths, never from the
signal: every truth (a class, a combination of events) keeps the same share of its windows,
evenly spread over the session in time.  So the class proportions are the session's, every cue
long enough keeps windows, the calibration part and the held-out block (the same rows: the end of
each file) each keep their share, and a refit on every window weights no part of the session more
than another.  Not a plain larger stride: where segments are cut at the same place in each trial
(the grasp-lift segments) or cues recur at a multiple of it, a regular grid anchored at each
segment's start sees every event at the same phase, and a label's share moved by a quarter.  Kept
windows no longer share most of their rows, so fewer are kept than at calibration's own stride
(:func:`thinned_budget`: windows and signal within what they take at the cap), only their rows are
filtered into memory, and they are on average at most ``CALIBRATION_MAX_STRIDE_WINDOWS`` window
lengths apart (two: every cue lasting two windows keeps one); a longer session is refused, naming
how long one may be.
:func:`read_session` and :func:`session_windows` give the same values with everything in memory
(tests, the bench).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge import config
from edge.chain.signal_chain import window_ends
from edge.errors import CalibrationError
from edge.recordings import Recording

# Rows filtered per call of the chain: its float64/int64 temporaries are ~40 bytes per value, so a
# whole file at once cost more than the file (the chain is bit-exact whatever the chunking).
_CHAIN_ROWS = 4096


# Windows made at once from the filtered signal (a fancy-indexed copy before the transpose).
_TAKE_WINDOWS = 256


def held_out_rows(parts: np.ndarray, n_rows: int, fraction: float, usable: np.ndarray | None = None) -> np.ndarray:
    """Rows of the held-out block: the last ``fraction`` of each part's rows (of its ``usable``
    rows, for an inner split of the calibration part)."""
    usable = np.ones(n_rows, bool) if usable is None else usable
    held = np.zeros(n_rows, bool)
    for a, b in parts:
        rows = a + np.flatnonzero(usable[a:b])
        if len(rows):
            held[rows[len(rows) - int(np.ceil(fraction * len(rows))):]] = True
    return held


class WindowArray:
    """A session's windows, ``(n, length, C)`` float32, made on demand from the filtered signal.

    Holds the chain's output of every segment (one array) and where each window starts in it: a
    window of ``length`` rows every ``stride`` overlaps the next, so this is ``stride / length`` of the
    windows' bytes (a quarter for the grasp-lift bundle, a fifth for the gesture bundle).  Indexing
    (an int, a slice, a boolean mask, an index array) returns a new C-contiguous array with the
    values :func:`session_windows` holds; ``np.asarray`` makes them all.
    """

    def __init__(self, signal: np.ndarray, starts: np.ndarray, length: int):
        self.signal, self.starts, self.length = signal, starts, int(length)
        self.shape = (len(starts), self.length, signal.shape[1])
        self.dtype = signal.dtype
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._take(np.arange(len(self))[[key]])[0]
        return self._take(np.arange(len(self))[key])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._take(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype, copy=False)

    def _take(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx),) + self.shape[1:], self.dtype)
        view = np.lib.stride_tricks.sliding_window_view(self.signal, self.length, axis=0)  # (m - length + 1, C, length)
        for a in range(0, len(idx), _TAKE_WINDOWS):  # as segment_windows cuts them, a few at a time
            out[a:a + _TAKE_WINDOWS] = view[self.starts[idx[a:a + _TAKE_WINDOWS]]].transpose(0, 2, 1)
        return out


@dataclass
class SessionWindows:
    """Every window of a session: the filtered windows, their first and last rows, their truth."""

    windows: np.ndarray | WindowArray   # (n, length, C) float32, the chain's output
    first: np.ndarray     # (n,) first session row of each window
    last: np.ndarray      # (n,) last session row (the window's truth is this row's label)
    y: np.ndarray         # (n, n_labels) uint8

    def inside(self, rows: np.ndarray) -> np.ndarray:
        """Windows all of whose rows are in ``rows`` (a boolean row mask)."""
        return _count_in(rows, self.first, self.last + 1) == (self.last + 1 - self.first)

    def outside(self, rows: np.ndarray, guard: int = 0) -> np.ndarray:
        """Windows none of whose rows, nor the ``guard`` rows before them, are in ``rows``.

        The guard covers the filter's memory: a causal IIR filter's output still carries a little
        of the samples before the window, and none of those may be held out either."""
        return _count_in(rows, np.maximum(self.first - guard, 0), self.last + 1) == 0


def _count_in(rows: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many rows of the boolean mask ``rows`` each ``[a, b)`` holds.

    A running count of 4 bytes a row: an int64 one and a copy of it with a zero in front were 16,
    and a long session (now thinned, not refused) would have its rows, not its windows, set
    calibration's peak."""
    c = np.cumsum(rows, dtype=np.int32 if len(rows) < 2**31 else np.int64)

    def before(i: np.ndarray) -> np.ndarray:  # rows of the mask before row i
        return np.where(i > 0, c[np.maximum(i - 1, 0)], 0)

    return before(b) - before(a)


@dataclass
class SessionRows:
    """What calibration keeps of a session's rows once they are windowed (:func:`calibration_session`)."""

    n_samples: int
    fs: float
    segments: np.ndarray  # (n_segments, 2) [start, stop) session rows, as in a Recording
    source: Path
    thinning: Thinning | None = None  # set when the windows were taken at a larger stride


@dataclass(frozen=True)
class Thinning:
    """A session longer than calibration's windows hold, whose windows were thinned
    (:func:`calibration_session`, :func:`thinned_windows`); ``str()`` is the line ``neurogrip
    calibrate`` prints."""

    seconds: float         # the session's duration (its rows at the bundle's rate)
    stride_ms: float       # how far apart the kept windows are, on average
    base_stride_ms: float  # how far apart all of them are (:func:`calibration_stride`)
    cap_bytes: int         # CALIBRATION_MAX_WINDOW_BYTES
    kept: int              # windows kept ...
    of: int                # ... of the session's windows

    def __str__(self) -> str:
        return (f"session of {self.seconds:.0f} s: windows taken every {self.stride_ms:.4g} ms on average instead of "
                f"{self.base_stride_ms:.4g} ms to stay within {self.cap_bytes / 2**20:.4g} MB "
                f"(CALIBRATION_MAX_WINDOW_BYTES; {self.kept} of {self.of} windows, the same share of every label)")


class Windower:
    """Cuts the bundle's windows out of one segment after another (the chain restarts at each, as the
    runtime's does), keeping only the filtered signal of the segments that make a window (of the
    kept windows' rows, when ``keep`` thins them)."""

    def __init__(self, bundle, stride: int | None = None, keep: np.ndarray | None = None):
        self.chain = bundle.signal_chain()
        self.length = int(bundle.window["length"])
        self.stride = int(bundle.window["stride"]) if stride is None else int(stride)
        self.factor = self.chain.factor
        self.keep = keep  # which of the session's windows to cut, in order (None: all; thinned_windows)
        self.seen = 0     # the session's windows so far, cut or not
        self.signal, self.starts, self.first, self.last, self.y = [], [], [], [], []
        self.rows = 0  # filtered rows kept so far

    def count(self, segments: np.ndarray) -> int:
        """How many windows the segments make (from their lengths alone, before any is filtered)."""
        return sum(len(window_ends((b - a) // self.factor, self.length, self.stride)) for a, b in segments.tolist())

    def truths(self, y: np.ndarray, segments: np.ndarray) -> np.ndarray:
        """The truth of every window the segments make (``y`` at each one's last row), for
        :func:`thinned_windows`; nothing is filtered."""
        f = self.factor
        stops = [a + window_ends((b - a) // f, self.length, self.stride) * f + f - 1 for a, b in segments.tolist()]
        return y[np.concatenate(stops)] if stops else y[:0]

    def add(self, x: np.ndarray, y: np.ndarray, segments: np.ndarray, offset: int) -> None:
        """The windows of ``x``'s segments (rows of one file; ``offset``: its first session row)."""
        f, length = self.factor, self.length
        for a, b in segments.tolist():
            ends = window_ends((b - a) // f, length, self.stride)
            if self.keep is not None:
                ends, self.seen = ends[self.keep[self.seen:self.seen + len(ends)]], self.seen + len(ends)
            if not len(ends):
                continue
            begins = ends - length + 1
            if self.keep is None:  # every window: the segment's whole output, as it always was
                out, starts = self._filtered(x[a:b], np.array([0]), np.array([(b - a) // f])), begins
            else:
                # thinned: only the rows of the kept windows, run by run (windows that overlap or touch
                # make one run), so windows further apart than their length cost no more than themselves;
                # the chain is causal, so nothing after the last kept window is filtered at all
                new = np.r_[True, begins[1:] > begins[:-1] + length]
                run = np.cumsum(new) - 1
                lo = begins[new]
                hi = begins[np.r_[np.flatnonzero(new)[1:] - 1, len(begins) - 1]] + length  # the run's last window's end
                out = self._filtered(x[a:a + (ends[-1] + 1) * f], lo, hi)
                at = np.r_[0, np.cumsum(hi - lo)[:-1]]  # where each run starts in out
                starts = at[run] + begins - lo[run]
            stop = a + ends * f + f - 1  # the row of each window's last sample, in the file
            self.signal.append(out)
            self.starts.append(self.rows + starts)
            self.first.append(offset + stop - length * f + 1)
            self.last.append(offset + stop)
            self.y.append(y[stop])
            self.rows += len(out)

    def _filtered(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The output rows ``[lo[r], hi[r])`` of every run ``r`` (sorted, disjoint) of
        ``chain.process(x).astype(float32)`` after a reset, one after another; in blocks of
        ``_CHAIN_ROWS`` rows (every row is filtered, for the chain's state; only the runs are kept)."""
        chain = self.chain
        chain.reset()
        n = x.shape[0] // self.factor
        at = np.r_[0, np.cumsum(hi - lo)]  # where each run starts in out
        out = np.empty((int(at[-1]), x.shape[1]), np.float32)
        k = 0  # output rows so far, kept or not
        for a in range(0, x.shape[0], _CHAIN_ROWS):
            y = chain.process(x[a:a + _CHAIN_ROWS])
            m = len(y)
            for r in range(np.searchsorted(hi, k, "right"), np.searchsorted(lo, k + m, "left")):  # runs met
                r0, r1 = max(lo[r], k), min(hi[r], k + m)
                out[at[r] + r0 - lo[r]:at[r] + r1 - lo[r]] = y[r0 - k:r1 - k]  # float64 -> float32 as astype rounds it
            k += m
        if k != n:  # the decimation's count, not the data: a bug, not bad input
            raise RuntimeError(f"the chain gave {k} rows for {x.shape[0]} at factor {self.factor}, not {n}")
        return out

    def result(self, source) -> SessionWindows:
        if not self.starts:
            raise CalibrationError(f"{source}: the session is shorter than one window; record longer")
        signal = self.signal[0] if len(self.signal) == 1 else np.concatenate(self.signal)
        self.signal = []
        last = np.concatenate(self.last)
        return SessionWindows(WindowArray(signal, np.concatenate(self.starts), self.length),
                              np.maximum(np.concatenate(self.first), 0), last, np.concatenate(self.y))


def session_windows(bundle, rec: Recording) -> SessionWindows:
    """The bundle's windows of every segment (the chain restarts at each, as the runtime does), as
    one array in memory (:func:`calibration_session` keeps them as a :class:`WindowArray`)."""
    w = Windower(bundle)
    w.add(rec.samples, rec.labels, rec.segments, 0)
    sw = w.result(rec.source)
    sw.windows = np.asarray(sw.windows)
    return sw


def calibration_stride(bundle) -> int:
    """The stride (output samples) of calibration's windows: the bundle's, but no finer than its task's
    training stride.  A calibrated EMG bundle decides every 25 ms (``CALIBRATION_EMG_STRIDE_MS``);
    windows that overlap by 90 % instead of 80 % add memory, not information, and calibrating such a
    bundle again must fit the same session in the same memory as its base."""
    fs_out = bundle.signal_chain().fs_out
    train = max(1, round(bundle.task_spec.train_stride_ms * fs_out / 1000.0))
    return max(int(bundle.window["stride"]), train)


def window_budget(bundle) -> tuple[int, int]:
    """``(windows, rows)``: how many of calibration's windows ``CALIBRATION_MAX_WINDOW_BYTES`` holds, and
    how many rows of one continuous recording make that many at :func:`calibration_stride` (the
    longest session whose windows are all kept; a longer one's are thinned, :func:`thinned_windows`)."""
    length, stride = int(bundle.window["length"]), calibration_stride(bundle)
    n = config.CALIBRATION_MAX_WINDOW_BYTES // (length * len(bundle.channels) * 4)
    return n, ((n - 1) * stride + length) * bundle.signal_chain().factor


def thinned_budget(bundle, rows: int) -> int:
    """How many windows a session whose windows are more than :func:`window_budget`'s keeps.

    Kept windows no longer share most of their rows, so the filtered signal they are cut from (a
    quarter to an eighth of the windows at calibration's own stride) grows towards the windows'
    own size.  Windows and signal together are held to what they take at the budget at
    calibration's own stride, whose peak the footprint test measures: ``n`` windows of ``length``
    rows and at most ``min(rows, n * length)`` rows of signal within ``budget * (length + stride)``.

    Parameters
    ----------
    bundle : Bundle
    rows : int
        The chain's output rows of the segments that make a window (the signal kept if every one
        of them were kept whole).

    Returns
    -------
    int
        At most :func:`window_budget`'s, at least half of it times ``1 + stride / length``.
    """
    budget, _ = window_budget(bundle)
    length, stride = int(bundle.window["length"]), calibration_stride(bundle)
    held = budget * (length + stride)  # output rows (x channels x 4 bytes) of windows and signal at the cap
    apart = held // (2 * length)       # any session: signal no larger than the windows
    whole = (held - rows) // length    # a session short enough for its whole signal to be kept
    return int(min(budget, max(apart, whole)))


def max_windows(bundle) -> int:
    """How many windows at :func:`calibration_stride` a continuous session may make and still be
    thinned (:func:`thinned_budget`) to windows at most ``CALIBRATION_MAX_STRIDE_WINDOWS`` window
    lengths apart on average.  A session making more is refused (:func:`calibration_session`)."""
    length, stride = int(bundle.window["length"]), calibration_stride(bundle)
    return int(thinned_budget(bundle, 1 << 62) * config.CALIBRATION_MAX_STRIDE_WINDOWS * length // stride)


def thinned_windows(y: np.ndarray, budget: int) -> np.ndarray:
    """Which of a session's windows to keep so that ``budget`` are left: the same share of every
    truth, evenly spread over the session.

    The windows are grouped by their truth (each distinct row of ``y``: a class, or a combination
    of events).  Each group gets its share of ``budget`` (largest remainders for the rounding, so
    the shares add up to ``budget`` and none is off by more than one window) and keeps that many of
    its windows evenly spread in time, the middle of each equal run of them.  A group's proportion
    is then that of the whole session, and every run of a cue at least ``len(y) / budget`` windows
    long keeps one.  Integer arithmetic only: the same windows on any machine.

    Parameters
    ----------
    y : ndarray (n, n_labels)
        Each window's truth, in session order.
    budget : int
        How many to keep.

    Returns
    -------
    ndarray (n,) of bool
        Every window when ``n <= budget``.
    """
    n = len(y)
    if n <= budget:
        return np.ones(n, bool)
    _, group = np.unique(y, axis=0, return_inverse=True)
    group = group.reshape(-1)
    sizes = np.bincount(group).astype(np.int64)
    quota, remainder = sizes * budget // n, sizes * budget % n
    extra = budget - int(quota.sum())  # fewer than the groups: to the largest remainders, ties to the first
    quota[np.lexsort((np.arange(len(sizes)), -remainder))[:extra]] += 1
    order = np.argsort(group, kind="stable")  # each group's windows together, in session order
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    g = np.repeat(np.arange(len(sizes)), quota)  # one entry per kept window: its group ...
    j = np.arange(len(g)) - np.repeat(np.cumsum(quota) - quota, quota)  # ... and its rank among them
    keep = np.zeros(n, bool)
    keep[order[start[g] + (2 * j + 1) * sizes[g] // (2 * quota[g])]] = True
    return keep


def too_long(bundle, seconds: float, count: int, kept: int) -> CalibrationError:
    length, fs_out = int(bundle.window["length"]), bundle.signal_chain().fs_out
    apart = config.CALIBRATION_MAX_STRIDE_WINDOWS * length
    longest = max_windows(bundle) * calibration_stride(bundle) / fs_out
    return CalibrationError(
        f"the session is too long to calibrate within the edge's memory: {seconds:.0f} s of recordings make "
        f"{count} windows, and the {kept} that CALIBRATION_MAX_WINDOW_BYTES holds of this bundle would be more "
        f"than {apart * 1000.0 / fs_out:.4g} ms apart (CALIBRATION_MAX_STRIDE_WINDOWS window lengths); that is "
        f"about {longest / 60:.1f} min of continuous recording: calibrate on a shorter session")
