"""Readers and writers for the EEG/EMG recording layouts neurogrip trains on and replays.

Everything here is numpy-only (the Pi replays recordings too).  One module per file format,
its reader and (where neurogrip writes it) its writer side by side; all readers share one
strict CSV engine (:mod:`edge.recordings._text`) and report every problem as one
:class:`~edge.errors.RecordingError`.

Layouts
-------
* Kaggle Grasp-and-Lift (:mod:`~edge.recordings.grasp_lift`): ``subjN_seriesM_data.csv[.gz]``
  with its ``subjN_seriesM_events.csv[.gz]`` (:func:`read_grasp_lift`, :func:`write_grasp_lift`).
  Ids may have gaps; the recording is then split into contiguous segments.
* Muse raw CSV ``timestamps,TP9,AF7,AF8,TP10,Right AUX`` (:mod:`~edge.recordings.muse`:
  :func:`read_muse`, :func:`write_muse`).
* GAMEEMO ``SxxGyAllChannels.csv[.gz]`` (:mod:`~edge.recordings.gameemo`: :func:`read_gameemo`).
* The ``emotions.csv`` feature table (:mod:`~edge.recordings.emotions_table`:
  :func:`read_emotions_table`).
* The Myo armband EMG dataset (:mod:`~edge.recordings.myo`): folders of ``classe_K.dat``
  (:func:`read_myo`, :func:`read_myo_session`, :func:`read_myo_file`, :func:`find_myo_sessions`).
* XDF (:mod:`~edge.recordings.xdf`, read with pyxdf: :func:`read_xdf`), the LSL ecosystem's format,
  which ``neurogrip record`` writes (:class:`~edge.recordings.xdf_writer.XdfWriter`).
* EDF, EDF+, BDF, BDF+ (:mod:`~edge.recordings.edf`, read with edfio: :func:`read_edf`).

:func:`open_recording` reads any of them but the feature table without holding its samples
(:mod:`~edge.recordings.blocks`: they are read a block of rows at a time, the same values; a CSV
layout's through :mod:`~edge.recordings.csv_blocks`), for ``neurogrip calibrate``'s files larger
than it may hold; :func:`recording_rows` counts its rows first, from sizes and headers (a CSV
file's lines).

Marker streams and annotations become :attr:`Recording.markers`; :func:`labels_from_markers`
turns cue markers into per-sample labels (the readers do, given ``label_names``).

:func:`read_recording` picks the reader from the file name, else from the header; a directory
is read as a Myo armband session, participant or dataset folder.  A new format is one new module
here and one line in :func:`read_recording`.
"""

from __future__ import annotations

from pathlib import Path

from edge.errors import RecordingError
from edge.recordings import gameemo, grasp_lift, muse
from edge.recordings._text import count_rows, header_fields, read_header
from edge.recordings.base import STOP_MARKERS, FeatureTable, Recording, labels_from_markers, task_labels
from edge.recordings.blocks import Blocks
from edge.recordings.edf import edf_rows, edf_values, open_edf, read_edf
from edge.recordings.emotions_table import EMOTION_LABELS, read_emotions_table
from edge.recordings.gameemo import GAMEEMO_CHANNELS, GAMEEMO_FS, GAMEEMO_GAMES, open_gameemo, read_gameemo
from edge.recordings.grasp_lift import (
    GRASP_LIFT_CHANNELS,
    GRASP_LIFT_EVENTS,
    GRASP_LIFT_FS,
    find_grasp_lift_series,
    grasp_lift_paths,
    open_grasp_lift,
    read_grasp_lift,
    read_grasp_lift_events,
    write_grasp_lift,
)
from edge.recordings.muse import (
    MUSE_COLUMNS,
    MUSE_EEG_CHANNELS,
    MUSE_FS,
    MUSE_GAP_PERIODS,
    MUSE_STATES,
    open_muse,
    read_muse,
    write_muse,
)
from edge.recordings.myo import (
    GESTURES,
    MAX_FILE_BYTES,
    MYO_CHANNELS,
    MYO_FS,
    N_CYCLES,
    N_FILES,
    find_myo_sessions,
    myo_values,
    open_myo,
    read_myo,
    read_myo_file,
    read_myo_session,
)
from edge.recordings.xdf import open_xdf, read_xdf, xdf_rows, xdf_values
from edge.recordings.xdf_writer import XdfWriter

#: File suffixes (any case) read by a binary-format reader, whatever the name's other parts.
SUFFIX_READERS = {".xdf": read_xdf, ".edf": read_edf, ".bdf": read_edf}
#: ... and by :func:`open_recording` (with a folder: a Myo one).
SUFFIX_OPENERS = {".xdf": open_xdf, ".edf": open_edf, ".bdf": open_edf}


def recorded_files(data) -> list[Path] | None:
    """The XDF/EDF/BDF files ``data`` names: itself, when it is one, or those directly inside it
    (sorted by name); ``None`` when it names none (a dataset folder in its own layout).

    ``train`` and ``evaluate`` read such files as labelled recordings (their cue markers or
    annotations become labels, :func:`edge.recordings.base.task_labels`)."""
    path = Path(str(data))
    if path.is_file():
        return [path] if path.suffix.lower() in SUFFIX_READERS else None
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIX_READERS)
        return files or None
    return None


def read_recording(path: str | Path) -> Recording:
    """Read any supported recording, choosing the reader from the file name/header.

    A directory is a Myo armband folder (:func:`read_myo`: a session, a participant, a dataset
    half or the dataset root); ``.xdf``, ``.edf`` and ``.bdf`` (any case) are read by
    :func:`read_xdf` and :func:`read_edf` with their defaults.
    """
    path = Path(path)
    if path.is_dir():
        return read_myo(path)
    reader = SUFFIX_READERS.get(path.suffix.lower())
    if reader is not None:
        return reader(path)
    return _csv_layout(path)[0](path)


def _csv_layout(path: Path):
    """``(reader, opener)`` of a CSV file's layout, from its name, else from its header line."""
    name = path.name
    if grasp_lift.FILE_NAME.match(name):
        if "_events.csv" in name:
            raise RecordingError(path, None, "an events file", "the matching _data.csv file")
        return read_grasp_lift, open_grasp_lift
    if gameemo.FILE_NAME.match(name):
        return read_gameemo, open_gameemo
    if muse.FILE_NAME.match(name):
        return read_muse, open_muse
    fields = header_fields(read_header(path))  # the header line only: the reader then reads the file in blocks
    if tuple(fields) == MUSE_COLUMNS:
        return read_muse, open_muse
    if tuple(fields) == GAMEEMO_CHANNELS:
        return read_gameemo, open_gameemo
    raise RecordingError(path, 1, "unknown layout",
                         "a Kaggle subjN_seriesM_data.csv, a Muse CSV, a GAMEEMO CSV, or an .xdf, .edf or .bdf file")


def opens_in_blocks(path: str | Path) -> bool:
    """Whether :func:`open_recording` takes ``path``: a folder (Myo), an XDF, EDF or BDF file, or a
    CSV file of a signal layout (grasp-lift data, Muse, GAMEEMO; not an events file or a feature table)."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() in SUFFIX_OPENERS:
        return True
    try:
        _csv_layout(path)
    except RecordingError:
        return False
    return True


def open_recording(path: str | Path) -> Recording:
    """:func:`read_recording`'s recording without its samples in memory: ``samples`` is a
    :class:`~edge.recordings.blocks.Blocks` (its rows are read from the file when made into an
    array, a block at a time: the same values), ``sample_index`` an empty array and ``timestamps``
    None; every other field is :func:`read_recording`'s (:func:`~edge.recordings.xdf.open_xdf`,
    :func:`~edge.recordings.edf.open_edf`, :func:`~edge.recordings.myo.open_myo`, and for the CSV
    layouts :func:`~edge.recordings.grasp_lift.open_grasp_lift`, :func:`~edge.recordings.muse.open_muse`,
    :func:`~edge.recordings.gameemo.open_gameemo`, :mod:`~edge.recordings.csv_blocks`).

    Raises
    ------
    RecordingError
        What :func:`read_recording` raises, with the same message.
    """
    path = Path(path)
    if path.is_dir():
        return open_myo(path)
    opener = SUFFIX_OPENERS.get(path.suffix.lower())
    return opener(path) if opener is not None else _csv_layout(path)[1](path)


def recording_rows(path: str | Path) -> int:
    """How many rows :func:`open_recording` (and :func:`read_recording`) would give ``path``, found
    without reading them: an XDF's signal stream's samples from its chunks' headers, an EDF/BDF's
    from its header and size, a Myo folder's from its files' sizes, a CSV file's by counting its
    lines (one bounded pass).

    Raises
    ------
    RecordingError
        What :func:`open_recording` would raise about the file's size, header or layout.
    """
    path = Path(path)
    if path.is_dir():
        return myo_values(path) // len(MYO_CHANNELS)
    suffix = path.suffix.lower()
    if suffix in SUFFIX_OPENERS:
        return xdf_rows(path) if suffix == ".xdf" else edf_rows(path)
    _csv_layout(path)  # raises: not a layout read_recording takes
    return count_rows(path)[1]  # one bounded pass over its lines


def recording_values(path: str | Path, stop_after: int | None = None) -> int:
    """How many values :func:`read_recording` would hold for ``path`` (rows × columns of every stream,
    and of a Kaggle data file's events file; an XDF file's bytes / 4 where that is more), found
    without reading them.

    What bounds a read before it is made (``neurogrip calibrate``'s session caps): from the files'
    sizes (a Myo folder, EDF/BDF), from the chunks' headers (XDF, :func:`~edge.recordings.xdf.xdf_values`),
    or from one bounded pass counting a CSV file's lines, which stops as soon as more than
    ``stop_after`` values are seen (a larger count is then returned, not the exact one).

    Raises
    ------
    RecordingError
        What the reader would raise about the file's size, header or layout, found on the way.
    """
    path = Path(path)
    if path.is_dir():
        return myo_values(path)
    suffix = path.suffix.lower()
    if suffix == ".xdf":  # a string stream's text is counted by its bytes, as many as 4-byte values
        return max(xdf_values(path), path.stat().st_size // 4)
    if suffix in (".edf", ".bdf"):
        return edf_values(path)
    files = [path]
    match = grasp_lift.FILE_NAME.match(path.name)
    if match and match.group(3) == "data":
        events = grasp_lift_paths(path)[1]
        files += [events] if events.is_file() else []  # a missing one is the reader's to report
    total = 0
    for f in files:
        header, _ = count_rows(f, stop_after=0)  # the header line alone
        per_row = len(header_fields(header))
        left = None if stop_after is None else max(stop_after - total, 0) // per_row
        total += count_rows(f, stop_after=left)[1] * per_row
    return total


__all__ = [
    "EMOTION_LABELS",
    "GAMEEMO_CHANNELS",
    "GAMEEMO_FS",
    "GAMEEMO_GAMES",
    "GESTURES",
    "GRASP_LIFT_CHANNELS",
    "GRASP_LIFT_EVENTS",
    "GRASP_LIFT_FS",
    "MAX_FILE_BYTES",
    "MUSE_COLUMNS",
    "MUSE_EEG_CHANNELS",
    "MUSE_FS",
    "MUSE_GAP_PERIODS",
    "MUSE_STATES",
    "MYO_CHANNELS",
    "MYO_FS",
    "N_CYCLES",
    "N_FILES",
    "STOP_MARKERS",
    "SUFFIX_OPENERS",
    "SUFFIX_READERS",
    "Blocks",
    "FeatureTable",
    "Recording",
    "XdfWriter",
    "find_grasp_lift_series",
    "find_myo_sessions",
    "grasp_lift_paths",
    "labels_from_markers",
    "open_gameemo",
    "open_grasp_lift",
    "open_muse",
    "open_recording",
    "opens_in_blocks",
    "read_edf",
    "read_emotions_table",
    "read_gameemo",
    "read_grasp_lift",
    "read_grasp_lift_events",
    "read_muse",
    "read_myo",
    "read_myo_file",
    "read_myo_session",
    "read_recording",
    "read_xdf",
    "recorded_files",
    "recording_rows",
    "recording_values",
    "task_labels",
    "write_grasp_lift",
    "write_muse",
]
