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
(:class:`WindowArray`, a quarter to an eighth of the windows themselves) and made on demand.
Two numbers bound it, both checked before the memory is taken:

- ``CALIBRATION_MAX_VALUES``: the values of *one* file read whole (counted from its size, chunk
  headers or lines before it is read).  A larger XDF, EDF/BDF file or Myo folder is not refused
  but read in blocks from the file (:func:`~edge.recordings.open_recording`): its samples go
  through the chain a block at a time, bit for bit as if read whole, up to its reader's own size
  cap; such a file whose rows, were they one continuous recording, would make a session too long
  (below) is refused before it is opened.  A CSV table over it is refused with one line: its
  readers hold a file whole.
- ``CALIBRATION_MAX_WINDOW_BYTES``: the bytes of the session's windows (counted from the segments
  before they are filtered).  A longer session is not refused: as many of its windows as the cap
  holds are taken, evenly spread (:func:`thinned_windows`), which :class:`Thinning` states in one
  line.  Which ones needs every window's truth before the first is kept, so such a session is
  read twice: once to count, once to window.

The files are read by :mod:`edge.calibration.session_files`; windows, the held-out split and the
thinning are :mod:`edge.calibration.windows`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from edge import config
from edge.calibration.session_files import check_values, map_large_blocks, read_item, session_items
from edge.calibration.windows import (
    SessionRows,
    SessionWindows,
    Thinning,
    Windower,
    calibration_stride,
    thinned_budget,
    thinned_windows,
    too_long,
    window_budget,
)
from edge.errors import CalibrationError

log = logging.getLogger(__name__)




@dataclass
class _Pass:
    """One read of a session (:func:`_read_pass`)."""

    windower: Windower | None  # None: its windows went over the budget, and were let go
    truths: list                # the truth of every window, while they are few enough to thin
    windows: int                # every window of the session, cut or not
    rows: int                   # the chain's output rows of the segments that make one
    digest: str
    n_rows: int
    parts: list
    segments: list


def _read_pass(paths, bundle, budget: int, keep: np.ndarray | None = None) -> _Pass:
    """Read the items one at a time, cutting their windows (those ``keep`` says, when given) while
    they are at most ``budget``; past it, only every window's truth is kept (for
    :func:`thinned_windows`), and past what any thinning takes only their count."""
    digest = hashlib.sha256()
    windower = Windower(bundle, calibration_stride(bundle), keep)
    counter = Windower(bundle, calibration_stride(bundle))  # counts, never filters
    # beyond this many (the budget's windows, the most apart they may be) the session is refused,
    # and truths would only be memory
    most = int(window_budget(bundle)[0] * config.CALIBRATION_MAX_STRIDE_WINDOWS * counter.length // counter.stride)
    windows, rows, cut, n_rows, parts, segments, truths = 0, 0, 0, 0, [], [], []
    for p in paths:
        if check_values(p, bundle):  # over CALIBRATION_MAX_VALUES: x is a Blocks, filtered as it is read
            rec, x, y = read_item(p, bundle, digest, blocks=True)
        else:
            rec, x, y = read_item(p, bundle, digest)
        made = counter.count(rec.segments)  # counted before any of it is filtered
        windows += made
        out_rows = (rec.segments[:, 1] - rec.segments[:, 0]) // counter.factor
        rows += int(out_rows[out_rows >= counter.length].sum())
        if keep is None and windows <= most:
            truths.append(counter.truths(y, rec.segments))
        if windower is not None:
            if keep is None:
                cut += made
            elif windows > len(keep):  # more windows than the first read found
                windower = None
            else:
                cut += int(keep[windows - made:windows].sum())
            if windower is not None and cut > budget:
                windower = None  # the filtered signal kept so far goes: this read now only counts
            if windower is not None:
                windower.add(x, y, rec.segments, n_rows)
        parts.append([n_rows, n_rows + len(x)])
        segments.append(rec.segments + n_rows)
        n_rows += len(x)
        del rec, x, y  # the item's samples go before the next is read
    return _Pass(windower, truths, windows, rows, "sha256:" + digest.hexdigest(), n_rows, parts, segments)


def calibration_session(paths, bundle) -> tuple[SessionWindows, SessionRows, str, np.ndarray]:
    """:func:`read_session` and :func:`session_windows` in bounded memory: what ``neurogrip
    calibrate`` reads its session with.

    One item at a time: its values counted from its size or lines (beyond ``CALIBRATION_MAX_VALUES``
    opened and read in blocks from the file, or refused if only a CSV reader takes it), read, its
    segments' windows counted, filtered in blocks, cut into windows and let go.  The windows are a :class:`WindowArray`, cut every :func:`calibration_stride`;
    where that is the bundle's own stride (every base bundle), their values, rows, truths and the
    session hash are those of ``session_windows(bundle, read_session(paths, bundle)[0])``.

    A session whose windows would be more than ``CALIBRATION_MAX_WINDOW_BYTES`` holds (its
    :func:`window_budget`) is read a second time, and only the windows :func:`thinned_windows`
    chooses from the first read's truths are cut: as many as the budget holds, the same values
    as those windows of ``session_windows``.  ``SessionRows.thinning`` then says so.

    Returns
    -------
    (SessionWindows, SessionRows, str, ndarray)
        The windows, the session's rows (count, rate, segments, thinning), its hash, and each
        item's ``[start, stop)`` rows (its *part*).

    Raises
    ------
    CalibrationError
        A CSV file over ``CALIBRATION_MAX_VALUES`` or one file too long even thinned (before it is
        read), a bundle one of whose windows leaves too few within ``CALIBRATION_MAX_WINDOW_BYTES``,
        a session of more than :func:`max_windows`, a session that changed between its two reads,
        channels or rate that do not fit the bundle, no labels the bundle knows, or no window at all.
    """
    paths = session_items(paths)
    map_large_blocks()
    length, channels = int(bundle.window["length"]), len(bundle.channels)
    budget, _ = window_budget(bundle)
    if budget < config.CALIBRATION_MIN_WINDOWS:  # no session of this bundle could ever be judged
        raise CalibrationError(
            f"this bundle cannot be calibrated within the edge's memory: one window is {length * channels * 4} "
            f"bytes ({length} samples x {channels} channels), so CALIBRATION_MAX_WINDOW_BYTES holds {budget} "
            f"windows and calibration needs at least {config.CALIBRATION_MIN_WINDOWS}: calibrate it on a "
            "workstation with CALIBRATION_MAX_WINDOW_BYTES raised in edge/config.py")
    read = _read_pass(paths, bundle, budget)
    source = getattr(paths[0], "source", paths[0])
    thinning = None
    if read.windower is None:
        seconds = read.n_rows / float(bundle.fs)
        stride = calibration_stride(bundle)
        kept = thinned_budget(bundle, read.rows)
        if read.windows * stride > kept * config.CALIBRATION_MAX_STRIDE_WINDOWS * length:
            raise too_long(bundle, seconds, read.windows, kept)
        keep = thinned_windows(np.concatenate(read.truths), kept)
        base_ms = stride * 1000.0 / bundle.signal_chain().fs_out
        thinning = Thinning(seconds, base_ms * read.windows / kept, base_ms, config.CALIBRATION_MAX_WINDOW_BYTES,
                            kept, read.windows)
        counted, windows = read.digest, read.windows
        read = _read_pass(paths, bundle, kept, keep)
        if read.windower is None or (read.digest, read.windows) != (counted, windows):
            # a file written to since the first read: its windows are not those chosen
            raise CalibrationError(f"{source}: the session changed while it was read (a session this long is read "
                                   "twice); calibrate it once it is no longer being written to")
    sw = read.windower.result(source)
    rows = SessionRows(read.n_rows, float(bundle.fs), np.concatenate(read.segments), source, thinning)
    return sw, rows, read.digest, np.array(read.parts, np.int64)
