"""Readers for the EEG recording layouts neurogrip trains on and replays.

All readers are numpy-only (the Pi replays recordings too) and share one
strict CSV engine: numpy's C parser (``np.loadtxt``) parses well-formed files in about a
second per full Kaggle series, and only when that path finds something wrong
does a slow line-by-line pass run to name the exact line and problem.  Every
problem is reported as one :class:`~edge.errors.RecordingError`.

Layouts
-------
* Kaggle Grasp-and-Lift: ``subjN_seriesM_data.csv[.gz]`` with its
  ``subjN_seriesM_events.csv[.gz]`` (:func:`read_grasp_lift`).  Ids may have
  gaps; the recording is then split into contiguous segments.
* Muse raw CSV ``timestamps,TP9,AF7,AF8,TP10,Right AUX`` (:func:`read_muse`).
* GAMEEMO ``SxxGyAllChannels.csv[.gz]`` (:func:`read_gameemo`).
* The ``emotions.csv`` feature table (:func:`read_emotions_table`).
"""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import RecordingError

GRASP_LIFT_FS = 500.0
GRASP_LIFT_CHANNELS = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz",
    "C4", "T8", "TP9", "CP5", "CP1", "CP2", "CP6", "TP10", "P7", "P3", "Pz", "P4", "P8", "PO9",
    "O1", "Oz", "O2", "PO10",
)
GRASP_LIFT_EVENTS = (
    "HandStart", "FirstDigitTouch", "BothStartLoadPhase", "LiftOff", "Replace", "BothReleased",
)

MUSE_FS = 256.0
MUSE_COLUMNS = ("timestamps", "TP9", "AF7", "AF8", "TP10", "Right AUX")
MUSE_EEG_CHANNELS = ("TP9", "AF7", "AF8", "TP10")
MUSE_STATES = ("concentrating", "neutral", "relaxed")
# A Muse timestamp step larger than this many nominal sample periods is a gap
# (Bluetooth drop-outs); the shared recordings step by 3-4 ms at 256 Hz.
MUSE_GAP_PERIODS = 3.0

GAMEEMO_FS = 128.0
GAMEEMO_CHANNELS = (
    "AF3", "AF4", "F3", "F4", "F7", "F8", "FC5", "FC6", "O1", "O2", "P7", "P8", "T7", "T8",
)
GAMEEMO_GAMES = {"G1": "boring", "G2": "calm", "G3": "horror", "G4": "funny"}

EMOTION_LABELS = ("NEGATIVE", "NEUTRAL", "POSITIVE")

_GRASP_LIFT_NAME = re.compile(r"^subj(\d+)_series(\d+)_(data|events)\.csv(\.gz)?$")
_MUSE_NAME = re.compile(r"^subject([^-]+)-([a-z]+)-(\d+)\.csv(\.gz)?$")
_GAMEEMO_NAME = re.compile(r"^S(\d+)(G[1-4])AllChannels\.csv(\.gz)?$")


@dataclass
class Recording:
    """A continuous (possibly gapped) multichannel recording.

    Attributes
    ----------
    samples : ndarray, shape (n_samples, n_channels), float64
        Values as stored in the file (µV for all shared layouts).
    channels : tuple of str
        Channel names in column order.
    fs : float
        Nominal sampling rate in Hz.
    segments : ndarray, shape (n_segments, 2), int64
        Half-open ``[start, stop)`` row ranges that are contiguous in time.
        Nothing may bridge two segments (no filter state, no window).
    sample_index : ndarray, shape (n_samples,), int64
        Sample number of each row on the recording's own clock (the Kaggle id
        suffix, or the rounded timestamp offset for Muse).
    labels : ndarray, shape (n_samples, n_labels), uint8, or None
        Per-sample labels (grasp-and-lift events).
    label_names : tuple of str
        Names of the label columns, or of the possible states.
    state : str or None
        Whole-recording label (Muse mental state, GAMEEMO game) if known.
    subject, session : str
        Identifiers parsed from the file name ("" when unknown).
    timestamps : ndarray or None
        Per-row timestamps in seconds when the file carries them.
    source : Path
        The file that was read.
    """

    samples: np.ndarray
    channels: tuple[str, ...]
    fs: float
    segments: np.ndarray
    sample_index: np.ndarray
    labels: np.ndarray | None = None
    label_names: tuple[str, ...] = ()
    state: str | None = None
    subject: str = ""
    session: str = ""
    timestamps: np.ndarray | None = None
    source: Path = field(default_factory=Path)

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])


@dataclass
class FeatureTable:
    """The ``emotions.csv`` layout: one row of precomputed features per window.

    Attributes
    ----------
    features : ndarray, shape (n_rows, n_features), float64
    feature_names : tuple of str
    labels : ndarray, shape (n_rows,), int64
        Index into ``label_names``.
    label_names : tuple of str
    source : Path
    """

    features: np.ndarray
    feature_names: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    source: Path = field(default_factory=Path)


# --------------------------------------------------------------------------- CSV engine


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise RecordingError(path, None, "file not found", "an existing file (check the path)")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError) as exc:  # truncated gzip, permissions, ...
        raise RecordingError(path, None, f"cannot be read ({exc})", "a readable, complete file") from exc
    # Normalise Windows line ends once so every later step sees only "\n".
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def _split_header(data: bytes, path: Path) -> tuple[str, bytes]:
    """Return the header line (decoded) and the body without trailing newlines."""
    if data.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark from spreadsheet exports
        data = data[3:]
    head, _, body = data.partition(b"\n")
    body = body.rstrip(b"\n")
    try:
        header = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordingError(path, 1, "header is not UTF-8 text", "a CSV header line") from exc
    if not body:
        raise RecordingError(path, 2, "no data rows", "at least one data row after the header")
    return header, body


def _header_fields(header: str) -> list[str]:
    fields = [f.strip().strip('"').strip() for f in header.split(",")]
    if fields and fields[-1] == "":  # GAMEEMO's trailing comma
        fields = fields[:-1]
    return fields


def _check_header(found: list[str], expected: tuple[str, ...], path: Path) -> None:
    if tuple(found) == tuple(expected):
        return
    if sorted(found) == sorted(expected):
        problem = "columns are reordered: " + ",".join(found)
    else:
        missing = [c for c in expected if c not in found]
        extra = [c for c in found if c not in expected]
        problem = f"wrong header (missing {missing or 'none'}, unexpected {extra or 'none'})"
    raise RecordingError(path, 1, problem, "the header " + ",".join(expected))


def _diagnose(body: bytes, n_cols: int, path: Path, first_line: int, id_prefix: bytes | None) -> None:
    """Slow pass that raises a RecordingError naming the first bad line."""
    for offset, line in enumerate(body.split(b"\n")):
        lineno = first_line + offset
        cells = line.split(b",")
        if len(cells) != n_cols:
            raise RecordingError(path, lineno, f"{len(cells)} cells", f"{n_cols} comma-separated cells")
        for col, cell in enumerate(cells):
            text = cell.decode("utf-8", "replace").strip()
            if col == 0 and id_prefix is not None:
                prefix = id_prefix.decode()
                if not text.startswith(prefix) or not text[len(prefix):].isdigit():
                    raise RecordingError(path, lineno, f"id {text!r}", f"an id of the form {prefix}<sample number>")
                continue
            try:
                value = float(text)
            except ValueError:
                raise RecordingError(path, lineno, f"non-numeric cell {text!r} in column {col + 1}",
                                     "a number") from None
            if not np.isfinite(value):
                raise RecordingError(path, lineno, f"non-finite value {text!r} in column {col + 1}",
                                     "a finite number (no NaN/inf)")


def _parse_numeric(body: bytes, n_cols: int, path: Path, first_line: int = 2,
                   id_prefix: bytes | None = None) -> np.ndarray:
    """Parse a comma-separated numeric body into an (n_rows, n_cols) float64 array.

    ``id_prefix``: the first column holds ids ``<prefix><integer>``; the prefix
    is stripped and the integer parsed as column 0.
    """
    n_rows = body.count(b"\n") + 1
    ok = True
    if id_prefix is not None:
        stripped = body.replace(b"\n" + id_prefix, b"\n")
        stripped = stripped.removeprefix(id_prefix)
        # Every row must have had the prefix exactly once, at its start.
        ok = len(stripped) == len(body) - n_rows * len(id_prefix)
        body_numeric = stripped
    else:
        body_numeric = body
    values = None
    if ok:
        try:
            # numpy's C parser; it rejects wrong cell counts and non-numbers.  comments=None:
            # '#' is data here.  Blank lines are skipped by loadtxt, hence the row-count check.
            values = np.loadtxt(io.BytesIO(body_numeric), delimiter=",", dtype=np.float64,
                                comments=None, ndmin=2)
        except ValueError:
            values = None
        if values is not None and values.shape != (n_rows, n_cols):
            values = None
    if values is None:
        _diagnose(body, n_cols, path, first_line, id_prefix)
        # The fast path disagreed with a line-by-line check that found nothing:
        # refuse rather than guess.
        raise RecordingError(path, None, "unparsable content", f"{n_cols} numeric cells per line")
    finite = np.isfinite(values)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise RecordingError(path, first_line + int(row), f"non-finite value in column {col + 1}",
                             "a finite number (no NaN/inf)")
    return values


def _check_ids(ids: np.ndarray, path: Path, first_line: int = 2) -> None:
    if ids.size and (ids[0] < 0 or np.any(ids != np.round(ids))):
        bad = int(np.flatnonzero((ids < 0) | (ids != np.round(ids)))[0])
        raise RecordingError(path, first_line + bad, f"id number {ids[bad]!r}", "a non-negative integer")
    step = np.diff(ids)
    if np.any(step <= 0):
        bad = int(np.flatnonzero(step <= 0)[0]) + 1
        kind = "duplicated" if step[bad - 1] == 0 else "decreasing"
        raise RecordingError(path, first_line + bad, f"{kind} id (sample {int(ids[bad])} after "
                             f"{int(ids[bad - 1])})", "strictly increasing ids")


def _segments_from_gaps(gap: np.ndarray) -> np.ndarray:
    """[start, stop) rows of the contiguous runs; ``gap[i]`` is True between rows i and i+1."""
    breaks = np.flatnonzero(gap) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [gap.size + 1]))
    return np.stack([starts, stops], axis=1).astype(np.int64)


# --------------------------------------------------------------------------- readers


def grasp_lift_paths(data_path: str | Path) -> tuple[Path, Path, str, str]:
    """Return ``(data_file, events_file, subject, series)`` for a Kaggle data file name."""
    data_path = Path(data_path)
    match = _GRASP_LIFT_NAME.match(data_path.name)
    if match is None or match.group(3) != "data":
        raise RecordingError(data_path, None, "unexpected file name",
                             "a Kaggle name like subj1_series1_data.csv or .csv.gz")
    subject, series = match.group(1), match.group(2)
    events = data_path.with_name(data_path.name.replace("_data.csv", "_events.csv"))
    return data_path, events, subject, series


def read_grasp_lift(data_path: str | Path, events: bool = True) -> Recording:
    """Read one Kaggle Grasp-and-Lift series (data + events).

    Parameters
    ----------
    data_path : str or Path
        ``subjN_seriesM_data.csv`` or ``.csv.gz``; the events file is found next
        to it with the same compression.
    events : bool
        Read the events file too (the Kaggle *test* series have none).

    Returns
    -------
    Recording
        ``samples`` in µV as in the file, 32 channels at 500 Hz, ``labels`` of
        shape (n, 6) and contiguous ``segments`` (split wherever ids jump).

    Raises
    ------
    RecordingError
        Missing file, wrong or reordered header, non-numeric or non-finite cell,
        duplicated or decreasing ids, or data/events rows that do not match.
    """
    data_file, events_file, subject, series = grasp_lift_paths(data_path)
    prefix = f"subj{subject}_series{series}_".encode()

    header, body = _split_header(_read_bytes(data_file), data_file)
    _check_header(_header_fields(header), ("id",) + GRASP_LIFT_CHANNELS, data_file)
    table = _parse_numeric(body, 1 + len(GRASP_LIFT_CHANNELS), data_file, id_prefix=prefix)
    ids = table[:, 0]
    _check_ids(ids, data_file)
    index = ids.astype(np.int64)

    labels = None
    if events:
        ev_header, ev_body = _split_header(_read_bytes(events_file), events_file)
        _check_header(_header_fields(ev_header), ("id",) + GRASP_LIFT_EVENTS, events_file)
        ev = _parse_numeric(ev_body, 1 + len(GRASP_LIFT_EVENTS), events_file, id_prefix=prefix)
        if ev.shape[0] != table.shape[0]:
            line = 2 + min(ev.shape[0], table.shape[0])
            raise RecordingError(events_file, line, f"{ev.shape[0]} event rows for {table.shape[0]} data rows",
                                 f"one events row per row of {data_file.name}")
        mismatch = np.flatnonzero(ev[:, 0] != ids)
        if mismatch.size:
            row = int(mismatch[0])
            raise RecordingError(events_file, 2 + row, f"id {prefix.decode()}{int(ev[row, 0])}",
                                 f"the id of the same row in {data_file.name}: {prefix.decode()}{int(ids[row])}")
        flags = ev[:, 1:]
        bad = np.flatnonzero(~np.isin(flags, (0.0, 1.0)).all(axis=1))
        if bad.size:
            raise RecordingError(events_file, 2 + int(bad[0]), "an event value other than 0/1", "0 or 1")
        labels = flags.astype(np.uint8)

    return Recording(
        samples=np.ascontiguousarray(table[:, 1:]),
        channels=GRASP_LIFT_CHANNELS,
        fs=GRASP_LIFT_FS,
        segments=_segments_from_gaps(np.diff(index) != 1),
        sample_index=index,
        labels=labels,
        label_names=GRASP_LIFT_EVENTS,
        subject=subject,
        session=series,
        source=data_file,
    )


def read_grasp_lift_events(events_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Kaggle events file alone; returns ``(sample_index, labels)``."""
    events_path = Path(events_path)
    match = _GRASP_LIFT_NAME.match(events_path.name)
    if match is None or match.group(3) != "events":
        raise RecordingError(events_path, None, "unexpected file name",
                             "a Kaggle name like subj1_series1_events.csv or .csv.gz")
    prefix = f"subj{match.group(1)}_series{match.group(2)}_".encode()
    header, body = _split_header(_read_bytes(events_path), events_path)
    _check_header(_header_fields(header), ("id",) + GRASP_LIFT_EVENTS, events_path)
    ev = _parse_numeric(body, 1 + len(GRASP_LIFT_EVENTS), events_path, id_prefix=prefix)
    _check_ids(ev[:, 0], events_path)
    return ev[:, 0].astype(np.int64), ev[:, 1:].astype(np.uint8)


def read_muse(path: str | Path, state: str | None = None) -> Recording:
    """Read a raw Muse CSV (``timestamps,TP9,AF7,AF8,TP10,Right AUX``, ~256 Hz).

    Gaps are detected from the timestamps: a step longer than
    ``MUSE_GAP_PERIODS`` nominal sample periods starts a new segment.  The
    state label is taken from ``state`` or from a file name like
    ``subjecta-relaxed-1.csv``.
    """
    path = Path(path)
    header, body = _split_header(_read_bytes(path), path)
    _check_header(_header_fields(header), MUSE_COLUMNS, path)
    table = _parse_numeric(body, len(MUSE_COLUMNS), path)
    t = table[:, 0]
    step = np.diff(t)
    if np.any(step <= 0):
        bad = int(np.flatnonzero(step <= 0)[0]) + 1
        kind = "duplicated" if step[bad - 1] == 0 else "decreasing"
        raise RecordingError(path, 2 + bad, f"{kind} timestamp {t[bad]!r} after {t[bad - 1]!r}",
                             "strictly increasing timestamps")
    match = _MUSE_NAME.match(path.name)
    subject = session = ""
    if match:
        subject, session = match.group(1), match.group(3)
        if state is None and match.group(2) in MUSE_STATES:
            state = match.group(2)
    return Recording(
        samples=np.ascontiguousarray(table[:, 1:]),
        channels=MUSE_COLUMNS[1:],
        fs=MUSE_FS,
        segments=_segments_from_gaps(step > MUSE_GAP_PERIODS / MUSE_FS),
        sample_index=np.round((t - t[0]) * MUSE_FS).astype(np.int64),
        label_names=MUSE_STATES,
        state=state,
        subject=subject,
        session=session,
        timestamps=t,
        source=path,
    )


def read_gameemo(path: str | Path) -> Recording:
    """Read a GAMEEMO ``SxxGyAllChannels.csv[.gz]`` file (14 channels, 128 Hz).

    The state is the game's label (G1 boring, G2 calm, G3 horror, G4 funny).
    GAMEEMO has no timestamps, so the file is one contiguous segment.
    """
    path = Path(path)
    header, body = _split_header(_read_bytes(path), path)
    _check_header(_header_fields(header), GAMEEMO_CHANNELS, path)
    # Every GAMEEMO row ends with a comma: drop it once, for the whole body.
    body = body.replace(b",\n", b"\n")
    if body.endswith(b","):
        body = body[:-1]
    table = _parse_numeric(body, len(GAMEEMO_CHANNELS), path)
    match = _GAMEEMO_NAME.match(path.name)
    subject = game = ""
    if match:
        subject, game = match.group(1), match.group(2)
    n = table.shape[0]
    return Recording(
        samples=table,
        channels=GAMEEMO_CHANNELS,
        fs=GAMEEMO_FS,
        segments=np.array([[0, n]], dtype=np.int64),
        sample_index=np.arange(n, dtype=np.int64),
        label_names=tuple(GAMEEMO_GAMES.values()),
        state=GAMEEMO_GAMES.get(game),
        subject=subject,
        session=game,
        source=path,
    )


def read_emotions_table(path: str | Path) -> FeatureTable:
    """Read the ``emotions.csv`` feature-table layout (features + ``label``).

    The last column must be ``label`` with values NEGATIVE/NEUTRAL/POSITIVE;
    every other column is a numeric feature.
    """
    path = Path(path)
    header, body = _split_header(_read_bytes(path), path)
    names = _header_fields(header)
    if not names or names[-1] != "label" or len(names) < 2:
        raise RecordingError(path, 1, f"last header column {names[-1] if names else ''!r}",
                             "feature columns followed by a final 'label' column")
    if names[0].startswith("#"):  # the published file's header starts with '# '
        names[0] = names[0].lstrip("#").strip()
    lines = body.split(b"\n")
    feature_rows = []
    labels = np.empty(len(lines), dtype=np.int64)
    for i, line in enumerate(lines):
        head, sep, label = line.rpartition(b",")
        text = label.decode("utf-8", "replace").strip().strip('"')
        if not sep or text not in EMOTION_LABELS:
            raise RecordingError(path, 2 + i, f"label {text!r}", "one of " + "/".join(EMOTION_LABELS))
        labels[i] = EMOTION_LABELS.index(text)
        feature_rows.append(head)
    features = _parse_numeric(b"\n".join(feature_rows), len(names) - 1, path)
    return FeatureTable(features=features, feature_names=tuple(names[:-1]), labels=labels,
                        label_names=EMOTION_LABELS, source=path)


def read_recording(path: str | Path) -> Recording:
    """Read any supported recording, choosing the reader from the file name/header."""
    path = Path(path)
    name = path.name
    if _GRASP_LIFT_NAME.match(name):
        if "_events.csv" in name:
            raise RecordingError(path, None, "an events file", "the matching _data.csv file")
        return read_grasp_lift(path)
    if _GAMEEMO_NAME.match(name):
        return read_gameemo(path)
    if _MUSE_NAME.match(name):
        return read_muse(path)
    header, _ = _split_header(_read_bytes(path), path)
    fields = _header_fields(header)
    if tuple(fields) == MUSE_COLUMNS:
        return read_muse(path)
    if tuple(fields) == GAMEEMO_CHANNELS:
        return read_gameemo(path)
    raise RecordingError(path, 1, "unknown layout",
                         "a Kaggle subjN_seriesM_data.csv, a Muse CSV or a GAMEEMO CSV")


def find_grasp_lift_series(directory: str | Path) -> list[Path]:
    """All ``subj*_series*_data.csv[.gz]`` files in ``directory``, sorted by subject and series."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RecordingError(directory, None, "not a directory", "a folder of Kaggle-layout files")
    found = []
    for p in directory.iterdir():
        m = _GRASP_LIFT_NAME.match(p.name)
        if m and m.group(3) == "data":
            found.append((int(m.group(1)), int(m.group(2)), p))
    return [p for _, _, p in sorted(found)]
