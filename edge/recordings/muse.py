"""Muse raw CSV: ``timestamps,TP9,AF7,AF8,TP10,Right AUX`` at ~256 Hz, read and written.

File names like ``subjecta-relaxed-1.csv`` carry the subject, the mental state and the session.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edge.errors import RecordingError
from edge.recordings._text import read_table, segments_from_gaps
from edge.recordings.base import Recording
from edge.recordings.csv_blocks import open_table

MUSE_FS = 256.0
MUSE_COLUMNS = ("timestamps", "TP9", "AF7", "AF8", "TP10", "Right AUX")
MUSE_EEG_CHANNELS = ("TP9", "AF7", "AF8", "TP10")
MUSE_STATES = ("concentrating", "neutral", "relaxed")
# A Muse timestamp step larger than this many nominal sample periods is a gap
# (Bluetooth drop-outs); the shared recordings step by 3-4 ms at 256 Hz.
MUSE_GAP_PERIODS = 3.0

FILE_NAME = re.compile(r"^subject([^-]+)-([a-z]+)-(\d+)\.csv(\.gz)?$")
_MAX_SPAN_SAMPLES = 2.0**53  # sample numbers are int64 made from float64 timestamps: keep them exact


def read_muse(path: str | Path, state: str | None = None) -> Recording:
    """Read a raw Muse CSV (``timestamps,TP9,AF7,AF8,TP10,Right AUX``, ~256 Hz).

    Gaps are detected from the timestamps: a step longer than
    ``MUSE_GAP_PERIODS`` nominal sample periods starts a new segment.  The
    state label is taken from ``state`` or from a file name like
    ``subjecta-relaxed-1.csv``.
    """
    path = Path(path)
    t, samples = read_table(path, MUSE_COLUMNS, first_apart=True)  # in bounded blocks (edge.recordings._text)
    return _recording(path, t, samples, state)


def open_muse(path: str | Path, state: str | None = None) -> Recording:
    """:func:`read_muse`'s recording, checked the same way, without its samples in memory: ``samples``
    is a :class:`~edge.recordings.blocks.Blocks` read from the file a block of lines at a time
    (:mod:`edge.recordings.csv_blocks`), ``sample_index`` an empty array, ``timestamps`` None (they
    are held, 8 bytes a row, only while it is opened)."""
    path = Path(path)
    t, samples = open_table(path, MUSE_COLUMNS, first_apart=True)
    return _recording(path, t, samples, state, opened=True)


def _recording(path: Path, t: np.ndarray, samples, state: str | None, opened: bool = False) -> Recording:
    span = float(t.max()) - float(t.min()) if t.size else 0.0
    if span * MUSE_FS > _MAX_SPAN_SAMPLES:
        raise RecordingError(path, None, f"timestamps spanning {span:.6g} s",
                             "timestamps in seconds of one recording (a span below 2**53 samples)")
    step = np.diff(t)
    if np.any(step <= 0):
        bad = int(np.flatnonzero(step <= 0)[0]) + 1
        kind = "duplicated" if step[bad - 1] == 0 else "decreasing"
        raise RecordingError(path, 2 + bad, f"{kind} timestamp {t[bad]!r} after {t[bad - 1]!r}",
                             "strictly increasing timestamps")
    match = FILE_NAME.match(path.name)
    subject = session = ""
    if match:
        subject, session = match.group(1), match.group(3)
        if state is None and match.group(2) in MUSE_STATES:
            state = match.group(2)
    return Recording(
        samples=samples,
        channels=MUSE_COLUMNS[1:],
        fs=MUSE_FS,
        segments=segments_from_gaps(step > MUSE_GAP_PERIODS / MUSE_FS),
        sample_index=np.zeros(0, np.int64) if opened else np.round((t - t[0]) * MUSE_FS).astype(np.int64),
        label_names=MUSE_STATES,
        state=state,
        subject=subject,
        session=session,
        timestamps=None if opened else t,
        source=path,
    )


def write_muse(recording: Recording, path: str | Path) -> Path:
    """Write a Muse recording as ``timestamps,TP9,AF7,AF8,TP10,Right AUX`` CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = np.column_stack([recording.timestamps, recording.samples])
    lines = [",".join(MUSE_COLUMNS)]
    lines += [f"{r[0]:.3f}," + ",".join(f"{v:.3f}" for v in r[1:]) for r in table.tolist()]
    path.write_text("\n".join(lines) + "\n")
    return path
