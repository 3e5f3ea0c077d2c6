"""Reading a calibration session's files: one at a time, bounded, their labels from the cues, rows
that are not finite refused or dropped with one line, and the session's digest.  The whole-session
reader :func:`read_session` keeps everything in memory (tests, the bench); ``neurogrip calibrate``
reads through :func:`edge.calibration.session.calibration_session`.

A file of at most ``CALIBRATION_MAX_VALUES`` values (rows x columns, counted before it is read) is
read whole.  A larger one is read in blocks (:func:`check_values`, :func:`edge.recordings.open_recording`):
an XDF, EDF/BDF file, a Myo folder or a CSV file of any size its reader takes (its own cap,
``RECORDING_MAX_XDF_BYTES``, ``RECORDING_MAX_EDF_BYTES``, ``RECORDING_MAX_BYTES``); what is held of
it is a few bytes a row (its labels, which rows are valid) and a block of its samples at a time,
which the chain filters and the windows are cut from as if it had been read whole (the chain is
causal and bit-exact whatever the chunking).  Such a file whose
rows, as one continuous recording, would make a session too long to calibrate
(:func:`~edge.calibration.windows.too_long`) is refused before it is opened.  A CSV file of a
signal layout (grasp-lift data with its events, Muse, GAMEEMO) is read in blocks too, up to its
reader's own cap (``RECORDING_MAX_BYTES``): checked as the whole read checks it in one pass that
notes where its blocks start, then parsed a block at a time (:mod:`edge.recordings.csv_blocks`);
held of it besides: a grasp-lift series' labels (6 bytes a row) and, while it is opened, its ids
or timestamps (8 bytes a row).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import hashlib
import logging
from pathlib import Path

import numpy as np

from edge import config
from edge.calibration.windows import calibration_stride, thinned_budget, too_long, window_budget
from edge.errors import CalibrationError
from edge.recordings import (
    Recording,
    open_recording,
    read_recording,
    recording_rows,
    recording_values,
)
from edge.recordings.base import task_labels

log = logging.getLogger(__name__)

# Rows checked for NaN and infinity at once (a file read in blocks is read a block at a time).
_CHECK_ROWS = 1 << 14


def _task_labels(rec: Recording, labels: list[str], where, multilabel: bool = False) -> np.ndarray:
    """Per-sample 0/1 labels (n, len(labels)) in the bundle's label order (:func:`task_labels`)."""
    out = task_labels(rec, labels, multilabel)
    if out is None:
        raise CalibrationError(f"{where}: no labels this bundle knows ({', '.join(labels)}) in the session "
                               f"(its labels: {', '.join(rec.label_names) or 'none'}; state: {rec.state}; "
                               f"{len(rec.markers)} markers); record it with 'neurogrip record' and the task's paradigm")
    return out


def _without_invalid_rows(rec: Recording, x, where) -> Recording:
    """Rows with a NaN or an infinity (a dropped Bluetooth packet, a disconnected lead that ``record``
    stored as it came) leave the session's segments: each segment is cut around them, so the chain
    restarts after them as the runtime's does and no window contains one.  Refused when fewer than
    :data:`edge.config.CALIBRATION_MIN_VALID` of the rows are valid.  ``x`` (an array, or
    :class:`~edge.recordings.Blocks`) is checked ``_CHECK_ROWS`` rows at a time."""
    bad = np.empty(len(x), bool)
    for a in range(0, len(x), _CHECK_ROWS):
        bad[a:a + _CHECK_ROWS] = ~np.isfinite(np.asarray(x[a:a + _CHECK_ROWS])).all(axis=1)
    n_bad = int(bad.sum())
    if not n_bad:
        return rec
    if n_bad > (1.0 - config.CALIBRATION_MIN_VALID) * len(x):
        raise CalibrationError(f"{where}: {n_bad} of {len(x)} rows hold NaN or infinite values (at most "
                               f"{1 - config.CALIBRATION_MIN_VALID:.0%} may); check the electrodes and record again")
    segs = []
    for a, b in rec.segments.tolist():
        # the runs of consecutive valid rows: +1 where one starts, -1 just after it ends
        edges = np.diff(np.concatenate(([False], ~bad[a:b], [False])).view(np.int8))
        segs += [[a + s0, a + s1] for s0, s1 in zip(np.flatnonzero(edges == 1).tolist(),
                                                     np.flatnonzero(edges == -1).tolist())]
    log.warning("%s: %d row(s) with NaN or infinite values left out of the calibration (the chain restarts "
                "after each run of them)", where, n_bad)
    return dataclasses.replace(rec, segments=np.array(segs, np.int64).reshape(-1, 2))


def session_items(paths) -> list:
    items = [p if isinstance(p, Recording) else Path(p) for p in (paths if isinstance(paths, (list, tuple))
                                                                  else [paths])]
    if not items:
        raise CalibrationError("no session given; pass --data FILE (a 'neurogrip record' file or a dataset session)")
    return items


def read_item(p, bundle, digest, blocks: bool = False) -> tuple[Recording, np.ndarray, np.ndarray]:
    """One item of a session (a file, a folder, or a :class:`Recording` already read), hashed into
    ``digest``: ``(its recording without samples, the bundle's columns (n, C), its labels (n, L))``.
    With ``blocks`` (:func:`check_values`) the file is opened, not read: the columns are a
    :class:`~edge.recordings.Blocks`, read from it when they are filtered.

    Raises
    ------
    CalibrationError
        Channels or rate that do not fit the bundle, or no labels the bundle knows.
    """
    rec = p if isinstance(p, Recording) else open_recording(p) if blocks else read_recording(p)
    missing = [c for c in bundle.channels if c not in rec.channels]
    if missing:
        raise CalibrationError(f"{p}: lacks the bundle's channels {missing[:5]}{'...' if len(missing) > 5 else ''}; "
                               f"record with the same montage the bundle was trained on")
    if abs(rec.fs - bundle.fs) > 1e-6 * bundle.fs:
        raise CalibrationError(f"{p}: recorded at {rec.fs:g} Hz, the bundle expects {bundle.fs:g} Hz")
    cols = [list(rec.channels).index(c) for c in bundle.channels]
    # the file's own array, or a view of it, when the bundle's columns are a run of its columns in
    # order (a Muse file's four EEG channels before AUX): a copy would be most of the file again, at
    # the read's peak; the chain takes the view block by block
    c0 = cols[0]
    x = rec.samples[:, c0:c0 + len(cols)] if cols == list(range(c0, c0 + len(cols))) else rec.samples[:, cols]
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
    paths = session_items(paths)
    digest = hashlib.sha256()
    recs = [read_item(p, bundle, digest) for p in paths]
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


def check_values(p, bundle) -> bool:
    """Whether item ``p`` is read in blocks: a file whose values (rows x columns, counted before it is
    read) are more than one read may hold whole (``CALIBRATION_MAX_VALUES``).

    Every layout :func:`~edge.recordings.read_recording` takes is opened in blocks
    (:func:`~edge.recordings.open_recording`), up to its reader's own cap (``RECORDING_MAX_BYTES``
    for a CSV file, decompressed; ``RECORDING_MAX_XDF_BYTES``, ``RECORDING_MAX_EDF_BYTES``).

    Raises
    ------
    CalibrationError
        A file whose rows, were they one continuous recording, would make a session too long to
        calibrate: one line, before the file is opened.
    RecordingError
        A file over its reader's cap, or of no layout a reader takes: the reader's one line.
    """
    if isinstance(p, Recording):  # already in memory: nothing more to bound
        return False
    cap = config.CALIBRATION_MAX_VALUES
    if recording_values(p, stop_after=cap) <= cap:  # stops counting past the cap
        return False
    rows = recording_rows(p)  # a file of no layout read_recording takes: its reader's one line
    out = rows // bundle.signal_chain().factor  # the chain's output rows, were they one segment
    length, stride = int(bundle.window["length"]), calibration_stride(bundle)
    made = (out - length) // stride + 1 if out >= length else 0  # len(window_ends(out, length, stride))
    kept = thinned_budget(bundle, out if made else 0)
    if made > window_budget(bundle)[0] and made * stride > kept * config.CALIBRATION_MAX_STRIDE_WINDOWS * length:
        raise CalibrationError(f"{p}: {too_long(bundle, rows / bundle.fs, made, kept)}")
    return True


def map_large_blocks() -> None:
    """Have glibc map every block of 128 KiB or more on its own, so that it is given back when freed
    (``mallopt(M_MMAP_THRESHOLD)``, for this process; elsewhere than glibc, nothing).

    glibc raises that threshold to the size of the largest block freed (up to 32 MiB).  Once the
    first file's arrays are freed, the next file's are then carved from the heap, zeroed page by
    page and kept resident, instead of mapped lazily and unmapped when freed: reading a session's
    files one after another peaked 6-16 MB higher (two XDF files at ``CALIBRATION_MAX_VALUES``:
    117 MB, 100 MB with the threshold fixed at glibc's own default)."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, 128 << 10)


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
try:
    _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _LIBC.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator is left as it is
    _LIBC = None
