"""Reading a calibration session's files: one at a time, bounded (``CALIBRATION_MAX_VALUES`` per file),
their labels from the cues, rows that are not finite refused or dropped with one line, and the
session's digest.  The whole-session reader :func:`read_session` keeps everything in memory (tests,
the bench); ``neurogrip calibrate`` reads through :func:`edge.calibration.session.calibration_session`.
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
from edge.errors import CalibrationError
from edge.recordings import Recording, read_recording, recording_values
from edge.recordings.base import task_labels

log = logging.getLogger(__name__)


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


def session_items(paths) -> list:
    items = [p if isinstance(p, Recording) else Path(p) for p in (paths if isinstance(paths, (list, tuple))
                                                                  else [paths])]
    if not items:
        raise CalibrationError("no session given; pass --data FILE (a 'neurogrip record' file or a dataset session)")
    return items


def read_item(p, bundle, digest) -> tuple[Recording, np.ndarray, np.ndarray]:
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


def check_values(p, bundle) -> None:
    """Refuse a file whose values (rows x columns, counted before it is read) are more than one read
    may hold (``CALIBRATION_MAX_VALUES``): a reader holds its file whole."""
    if isinstance(p, Recording):  # already in memory: nothing more to bound
        return
    cap = config.CALIBRATION_MAX_VALUES
    if recording_values(p, stop_after=cap) > cap:  # stops counting past the cap
        minutes = cap / len(bundle.channels) / bundle.fs / 60
        raise CalibrationError(
            f"the session is too large to calibrate within the edge's memory: {p} holds more than {cap} values "
            f"(rows x columns), what one file may hold (CALIBRATION_MAX_VALUES: a reader holds a file whole), "
            f"at most {minutes:.1f} min of this bundle's {len(bundle.channels)} channels: record the session "
            "as several shorter files (--data takes them all, in order)")


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
