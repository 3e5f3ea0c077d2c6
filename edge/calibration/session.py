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
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge import config
from edge.chain import segment_windows
from edge.errors import CalibrationError
from edge.recordings import Recording, read_recording
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


def read_session(paths, bundle) -> tuple[Recording, str, np.ndarray]:
    """Read the session file(s) as one labelled :class:`Recording` (each file its own segment(s),
    nothing bridging two files) and the session's hash (sha256 over the files' bytes, in order).

    An item of ``paths`` may be a :class:`Recording` already read (hashed by its samples and labels).
    The third value is each file's ``[start, stop)`` rows in the session (its *parts*).

    Raises
    ------
    CalibrationError
        Channels or rate that do not fit the bundle, or no labels the bundle knows.
    """
    paths = [p if isinstance(p, Recording) else Path(p) for p in (paths if isinstance(paths, (list, tuple))
                                                                  else [paths])]
    if not paths:
        raise CalibrationError("no session given; pass --data FILE (a 'neurogrip record' file or a dataset session)")
    labels = bundle.labels
    recs, digest = [], hashlib.sha256()
    for p in paths:
        rec = p if isinstance(p, Recording) else read_recording(p)
        missing = [c for c in bundle.channels if c not in rec.channels]
        if missing:
            raise CalibrationError(f"{p}: lacks the bundle's channels {missing[:5]}{'...' if len(missing) > 5 else ''}; "
                                   f"record with the same montage the bundle was trained on")
        if abs(rec.fs - bundle.fs) > 1e-6 * bundle.fs:
            raise CalibrationError(f"{p}: recorded at {rec.fs:g} Hz, the bundle expects {bundle.fs:g} Hz")
        cols = [list(rec.channels).index(c) for c in bundle.channels]
        x = rec.samples[:, cols]
        rec = _without_invalid_rows(rec, x, p)
        y = _task_labels(rec, labels, p, bundle.task_spec.mode == "multilabel")
        if isinstance(p, Recording):  # an in-memory session (tests, the bench): hash what calibration reads
            digest.update(np.ascontiguousarray(rec.samples).tobytes())
            digest.update(np.ascontiguousarray(y).tobytes())
        # only the bundle's columns are kept: the file's other channels are let go now, not at the end
        # (new empty arrays: a [:0] view would keep the whole file's array alive through its .base)
        recs.append((dataclasses.replace(rec, samples=np.empty((0, rec.samples.shape[1]), rec.samples.dtype),
                                         labels=None, sample_index=np.empty(0, np.int64)), len(x), x, y))
        del rec
        if isinstance(p, Recording):
            continue
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for f in files:
            with f.open("rb") as fh:  # in blocks: a session file may be far larger than the edge's memory budget
                while block := fh.read(1 << 20):
                    digest.update(block)
    offsets = np.cumsum([0] + [n for _, n, _, _ in recs[:-1]])
    # one file: its arrays as they are (a concatenation would hold the session twice at its peak)
    xs, ys = [x for _, _, x, _ in recs], [y for _, _, _, y in recs]
    session = Recording(
        samples=xs[0] if len(xs) == 1 else np.concatenate(xs), channels=tuple(bundle.channels), fs=bundle.fs,
        segments=np.concatenate([r.segments + o for (r, _, _, _), o in zip(recs, offsets)]),
        sample_index=np.arange(sum(n for _, n, _, _ in recs), dtype=np.int64),
        labels=ys[0] if len(ys) == 1 else np.concatenate(ys), label_names=tuple(labels),
        subject=recs[0][0].subject, session="+".join(str(getattr(p, "source", p)) for p in paths),
        source=getattr(paths[0], "source", paths[0]))
    parts = np.array([[o, o + n] for (_, n, _, _), o in zip(recs, offsets)], np.int64)
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


@dataclass
class SessionWindows:
    """Every window of a session: the filtered windows, their first and last rows, their truth."""

    windows: np.ndarray   # (n, length, C) float32, the chain's output
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


def session_windows(bundle, rec: Recording) -> SessionWindows:
    """The bundle's windows of every segment (the chain restarts at each, as the runtime does)."""
    chain = bundle.signal_chain()
    length, stride, f = int(bundle.window["length"]), int(bundle.window["stride"]), chain.factor
    ws, first, last = [], [], []
    for a, b in rec.segments:
        w, ends = segment_windows(chain, rec.samples[a:b], length, stride)
        if len(ends):
            ws.append(w)
            stop = a + ends * f + f - 1
            last.append(stop)
            first.append(stop - length * f + 1)
    if not ws:
        raise CalibrationError(f"{rec.source}: the session is shorter than one window; record longer")
    last_ = np.concatenate(last)
    return SessionWindows(np.concatenate(ws), np.maximum(np.concatenate(first), 0), last_, rec.labels[last_])
