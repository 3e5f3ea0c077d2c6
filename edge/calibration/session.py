"""A calibration session: one person's labelled recording(s), cut into the bundle's windows and
split in time into the part calibration may use and the held-out block it is judged on.

The held-out block is the *last* ``fraction`` of each file of the session, in time
(docs/design.md §7): of a ``neurogrip record`` file or a Myo ``training0`` folder that is its last
cue cycle(s) (exactly the fourth cycle of ``training0``); of a session given as one file per state
(Muse) the end of each state's file; of grasp-lift series files the last trials of each series.
Nothing follows a held-out block within its file, and the signal chain restarts at every file, so
no calibration window is filtered through a held-out sample (a causal IIR filter carries every
earlier sample into its output, a little).

A window belongs to the calibration part only if none of its samples is held out, and to the
held-out block only if all of them are: a window across the boundary is used by neither.  A
calibration window must also keep ``CALIBRATION_GUARD_S`` clear of the block before its first
sample (the filters' memory), so no held-out sample ever reaches the fit.

Memory (issue 24: the edge's footprint, 120 MB, holds for calibration too).
:func:`calibration_session` is what ``neurogrip calibrate`` reads a session with: one file at a
time, each filtered in blocks and cut into windows before the next is read, so the session's
samples are never held whole; the windows are kept as the filtered signal they are cut from
(:class:`WindowArray`, a quarter to a fifth of the windows themselves) and made on demand.  Two
caps, checked before the memory is taken, refuse a session larger than calibration can hold on a
Pi with one line: the values its files hold (``CALIBRATION_MAX_VALUES``, counted from each file's
size or lines before it is read) and the bytes of its windows (``CALIBRATION_MAX_WINDOW_BYTES``,
counted from the segments before they are filtered).  :func:`read_session` and
:func:`session_windows` give the same values with everything in memory (tests, the bench).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge import config
from edge.chain import window_ends
from edge.errors import CalibrationError
from edge.recordings import Recording, read_recording, recording_values
from edge.recordings.base import task_labels

log = logging.getLogger(__name__)

# Rows filtered per call of the chain: its float64/int64 temporaries are ~40 bytes per value, so a
# whole file at once cost more than the file (the chain is bit-exact whatever the chunking).
_CHAIN_ROWS = 4096
# Windows made at once from the filtered signal (a fancy-indexed copy before the transpose).
_TAKE_WINDOWS = 256


def _task_labels(rec: Recording, labels: list[str], where, multilabel: bool = False) -> np.ndarray:
    """Per-sample 0/1 labels (n, len(labels)) in the bundle's label order (:func:`task_labels`)."""
    out = task_labels(rec, labels, multilabel)
    if out is None:
        raise CalibrationError(f"{where}: no labels this bundle knows ({', '.join(labels)}) in the session "
                               f"(its labels: {', '.join(rec.label_names) or 'none'}; state: {rec.state}; "
                               f"{len(rec.markers)} markers); record it with 'neurogrip record' and the task's paradigm")
    return out


def _without_invalid_rows(rec: Recording, x: np.ndarray, where) -> Recording:
    """Rows with a NaN or an infinity (a dropped Bluetooth packet, a disconnected lead that ``record``
    stored as it came) leave the session's segments: each segment is cut around them, so the chain
    restarts after them as the runtime's does and no window contains one.  Refused when fewer than
    :data:`edge.config.CALIBRATION_MIN_VALID` of the rows are valid."""
    bad = ~np.isfinite(x).all(axis=1)
    n_bad = int(bad.sum())
    if not n_bad:
        return rec
    if n_bad > (1.0 - config.CALIBRATION_MIN_VALID) * len(x):
        raise CalibrationError(f"{where}: {n_bad} of {len(x)} rows hold NaN or infinite values (at most "
                               f"{1 - config.CALIBRATION_MIN_VALID:.0%} may); check the electrodes and record again")
    segs = []
    for a, b in rec.segments.tolist():
        good = np.flatnonzero(~bad[a:b]) + a
        if not len(good):
            continue
        breaks = np.flatnonzero(np.diff(good) > 1)  # runs of consecutive valid rows
        starts = np.r_[good[0], good[breaks + 1]]
        stops = np.r_[good[breaks] + 1, good[-1] + 1]
        segs += [[s0, s1] for s0, s1 in zip(starts.tolist(), stops.tolist())]
    log.warning("%s: %d row(s) with NaN or infinite values left out of the calibration (the chain restarts "
                "after each run of them)", where, n_bad)
    return dataclasses.replace(rec, segments=np.array(segs, np.int64).reshape(-1, 2))


def _as_items(paths) -> list:
    items = [p if isinstance(p, Recording) else Path(p) for p in (paths if isinstance(paths, (list, tuple))
                                                                  else [paths])]
    if not items:
        raise CalibrationError("no session given; pass --data FILE (a 'neurogrip record' file or a dataset session)")
    return items


def _read_item(p, bundle, digest) -> tuple[Recording, np.ndarray, np.ndarray]:
    """One item of a session (a file, a folder, or a :class:`Recording` already read), hashed into
    ``digest``: ``(its recording without samples, the bundle's columns (n, C), its labels (n, L))``.

    Raises
    ------
    CalibrationError
        Channels or rate that do not fit the bundle, or no labels the bundle knows.
    """
    rec = p if isinstance(p, Recording) else read_recording(p)
    missing = [c for c in bundle.channels if c not in rec.channels]
    if missing:
        raise CalibrationError(f"{p}: lacks the bundle's channels {missing[:5]}{'...' if len(missing) > 5 else ''}; "
                               f"record with the same montage the bundle was trained on")
    if abs(rec.fs - bundle.fs) > 1e-6 * bundle.fs:
        raise CalibrationError(f"{p}: recorded at {rec.fs:g} Hz, the bundle expects {bundle.fs:g} Hz")
    cols = [list(rec.channels).index(c) for c in bundle.channels]
    # the file's own array when it holds exactly the bundle's columns in order (a copy would double it)
    x = rec.samples if cols == list(range(rec.samples.shape[1])) else rec.samples[:, cols]
    rec = _without_invalid_rows(rec, x, p)
    y = _task_labels(rec, bundle.labels, p, bundle.task_spec.mode == "multilabel")
    if isinstance(p, Recording):  # an in-memory session (tests, the bench): hash what calibration reads
        digest.update(_bytes_of(rec.samples))
        digest.update(_bytes_of(y))
    else:
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for f in files:
            with f.open("rb") as fh:  # in blocks: a session file may be far larger than the edge's memory budget
                while block := fh.read(1 << 20):
                    digest.update(block)
    # only the bundle's columns are kept: the file's other channels are let go now, not at the end
    # (new empty arrays: a [:0] view would keep the whole file's array alive through its .base)
    rec = dataclasses.replace(rec, samples=np.empty((0, rec.samples.shape[1]), rec.samples.dtype), labels=None,
                              sample_index=np.empty(0, np.int64))
    return rec, x, y


def _bytes_of(a: np.ndarray) -> memoryview:
    """An array's bytes in C order for a hash, without the copy ``tobytes`` makes of a contiguous one."""
    return memoryview(np.ascontiguousarray(a)).cast("B")


def read_session(paths, bundle) -> tuple[Recording, str, np.ndarray]:
    """Read the session file(s) as one labelled :class:`Recording` (each file its own segment(s),
    nothing bridging two files) and the session's hash (sha256 over the files' bytes, in order).

    An item of ``paths`` may be a :class:`Recording` already read (hashed by its samples and labels).
    The third value is each file's ``[start, stop)`` rows in the session (its *parts*).  Everything
    is held in memory, with no cap: ``neurogrip calibrate`` reads with :func:`calibration_session`.

    Raises
    ------
    CalibrationError
        Channels or rate that do not fit the bundle, or no labels the bundle knows.
    """
    paths = _as_items(paths)
    digest = hashlib.sha256()
    recs = [_read_item(p, bundle, digest) for p in paths]
    offsets = np.cumsum([0] + [len(x) for _, x, _ in recs[:-1]])
    # one file: its arrays as they are (a concatenation would hold the session twice at its peak)
    xs, ys = [x for _, x, _ in recs], [y for _, _, y in recs]
    session = Recording(
        samples=xs[0] if len(xs) == 1 else np.concatenate(xs), channels=tuple(bundle.channels), fs=bundle.fs,
        segments=np.concatenate([r.segments + o for (r, _, _), o in zip(recs, offsets)]),
        sample_index=np.arange(sum(len(x) for x in xs), dtype=np.int64),
        labels=ys[0] if len(ys) == 1 else np.concatenate(ys), label_names=tuple(bundle.labels),
        subject=recs[0][0].subject, session="+".join(str(getattr(p, "source", p)) for p in paths),
        source=getattr(paths[0], "source", paths[0]))
    parts = np.array([[o, o + len(x)] for x, o in zip(xs, offsets)], np.int64)
    return session, "sha256:" + digest.hexdigest(), parts


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
        c = np.concatenate([[0], np.cumsum(rows)])
        return (c[self.last + 1] - c[self.first]) == (self.last + 1 - self.first)

    def outside(self, rows: np.ndarray, guard: int = 0) -> np.ndarray:
        """Windows none of whose rows, nor the ``guard`` rows before them, are in ``rows``.

        The guard covers the filter's memory: a causal IIR filter's output still carries a little
        of the samples before the window, and none of those may be held out either."""
        c = np.concatenate([[0], np.cumsum(rows)])
        return (c[self.last + 1] - c[np.maximum(self.first - guard, 0)]) == 0


@dataclass
class SessionRows:
    """What calibration keeps of a session's rows once they are windowed (:func:`calibration_session`)."""

    n_samples: int
    fs: float
    segments: np.ndarray  # (n_segments, 2) [start, stop) session rows, as in a Recording
    source: Path


class _Windower:
    """Cuts the bundle's windows out of one segment after another (the chain restarts at each, as the
    runtime's does), keeping only the filtered signal of the segments that make a window."""

    def __init__(self, bundle, stride: int | None = None):
        self.chain = bundle.signal_chain()
        self.length = int(bundle.window["length"])
        self.stride = int(bundle.window["stride"]) if stride is None else int(stride)
        self.factor = self.chain.factor
        self.signal, self.starts, self.first, self.last, self.y = [], [], [], [], []
        self.rows = 0  # filtered rows kept so far

    def count(self, segments: np.ndarray) -> int:
        """How many windows the segments make (from their lengths alone, before any is filtered)."""
        return sum(len(window_ends((b - a) // self.factor, self.length, self.stride)) for a, b in segments.tolist())

    def add(self, x: np.ndarray, y: np.ndarray, segments: np.ndarray, offset: int) -> None:
        """The windows of ``x``'s segments (rows of one file; ``offset``: its first session row)."""
        f, length = self.factor, self.length
        for a, b in segments.tolist():
            ends = window_ends((b - a) // f, length, self.stride)
            if not len(ends):
                continue
            out = self._filtered(x[a:b])
            stop = a + ends * f + f - 1  # the row of each window's last sample, in the file
            self.signal.append(out)
            self.starts.append(self.rows + ends - length + 1)
            self.first.append(offset + stop - length * f + 1)
            self.last.append(offset + stop)
            self.y.append(y[stop])
            self.rows += len(out)

    def _filtered(self, x: np.ndarray) -> np.ndarray:
        """``chain.process(x).astype(float32)`` after a reset, in blocks of ``_CHAIN_ROWS`` rows."""
        chain = self.chain
        chain.reset()
        out = np.empty((x.shape[0] // self.factor, x.shape[1]), np.float32)
        k = 0
        for a in range(0, x.shape[0], _CHAIN_ROWS):
            y = chain.process(x[a:a + _CHAIN_ROWS])
            out[k:k + len(y)] = y  # float64 -> float32 as astype rounds it
            k += len(y)
        if k != len(out):  # the decimation's count, not the data: a bug, not bad input
            raise RuntimeError(f"the chain gave {k} rows for {x.shape[0]} at factor {self.factor}, not {len(out)}")
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
    w = _Windower(bundle)
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
    how many rows of one continuous recording make that many (what a user can record for it)."""
    length, stride = int(bundle.window["length"]), calibration_stride(bundle)
    n = config.CALIBRATION_MAX_WINDOW_BYTES // (length * len(bundle.channels) * 4)
    return n, ((n - 1) * stride + length) * bundle.signal_chain().factor


def _too_large(what: str, bundle) -> CalibrationError:
    windows, rows = window_budget(bundle)
    return CalibrationError(
        f"the session is too large to calibrate within the edge's memory: {what}; calibration takes at most "
        f"{config.CALIBRATION_MAX_VALUES} values of recordings (CALIBRATION_MAX_VALUES) and {windows} windows of this "
        f"bundle (CALIBRATION_MAX_WINDOW_BYTES), about {rows / bundle.fs / 60:.1f} min of continuous recording: "
        "calibrate on a shorter session")


def calibration_session(paths, bundle) -> tuple[SessionWindows, SessionRows, str, np.ndarray]:
    """:func:`read_session` and :func:`session_windows` in bounded memory: what ``neurogrip
    calibrate`` reads its session with.

    One item at a time: read (after its values are counted from its size or lines, and refused
    beyond what is left of ``CALIBRATION_MAX_VALUES``), its segments' windows counted (refused
    beyond ``CALIBRATION_MAX_WINDOW_BYTES`` for the session), filtered in blocks, cut into windows
    and let go.  The windows are a :class:`WindowArray`, cut every :func:`calibration_stride`;
    where that is the bundle's own stride (every base bundle), their values, rows, truths and the
    session hash are those of ``session_windows(bundle, read_session(paths, bundle)[0])``.

    Returns
    -------
    (SessionWindows, SessionRows, str, ndarray)
        The windows, the session's rows (count, rate, segments), its hash, and each item's
        ``[start, stop)`` rows (its *part*).

    Raises
    ------
    CalibrationError
        A session over the caps (before the memory is taken), channels or rate that do not fit the
        bundle, no labels the bundle knows, or no window at all.
    """
    paths = _as_items(paths)
    digest = hashlib.sha256()
    windower = _Windower(bundle, calibration_stride(bundle))
    per_window = windower.length * len(bundle.channels) * 4
    values, windows, n_rows, parts, segments = 0, 0, 0, [], []
    for p in paths:
        if isinstance(p, Recording):  # already in memory: counted, nothing more to bound
            values += p.samples.size
        else:
            left = config.CALIBRATION_MAX_VALUES - values
            values += recording_values(p, stop_after=left)  # stops counting past the cap
        if values > config.CALIBRATION_MAX_VALUES:
            raise _too_large(f"{p} takes it past {config.CALIBRATION_MAX_VALUES} values (rows x columns)", bundle)
        rec, x, y = _read_item(p, bundle, digest)
        windows += windower.count(rec.segments)
        if windows * per_window > config.CALIBRATION_MAX_WINDOW_BYTES:
            raise _too_large(f"with {p} it makes {windows} windows", bundle)
        windower.add(x, y, rec.segments, n_rows)
        parts.append([n_rows, n_rows + len(x)])
        segments.append(rec.segments + n_rows)
        n_rows += len(x)
        del rec, x, y  # the item's samples go before the next is read
    source = getattr(paths[0], "source", paths[0])
    sw = windower.result(source)
    rows = SessionRows(n_rows, float(bundle.fs), np.concatenate(segments), source)
    return sw, rows, "sha256:" + digest.hexdigest(), np.array(parts, np.int64)
