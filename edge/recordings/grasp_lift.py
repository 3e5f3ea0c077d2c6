"""The Kaggle Grasp-and-Lift layout: ``subjN_seriesM_data.csv[.gz]`` with its
``subjN_seriesM_events.csv[.gz]`` (32 channels at 500 Hz, 6 event labels), read and written.

Ids may have gaps; the recording is then split into contiguous segments.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.errors import RecordingError
from edge.recordings._text import (
    check_header,
    check_ids,
    header_fields,
    parse_numeric,
    read_bytes,
    read_table,
    segments_from_gaps,
    split_header,
    write_table,
)
from edge.recordings.base import Recording
from edge.recordings.csv_blocks import open_table, scan_table

GRASP_LIFT_FS = 500.0
GRASP_LIFT_CHANNELS = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz",
    "C4", "T8", "TP9", "CP5", "CP1", "CP2", "CP6", "TP10", "P7", "P3", "Pz", "P4", "P8", "PO9",
    "O1", "Oz", "O2", "PO10",
)
GRASP_LIFT_EVENTS = (
    "HandStart", "FirstDigitTouch", "BothStartLoadPhase", "LiftOff", "Replace", "BothReleased",
)

FILE_NAME = re.compile(r"^subj(\d+)_series(\d+)_(data|events)\.csv(\.gz)?$")


def grasp_lift_paths(data_path: str | Path) -> tuple[Path, Path, str, str]:
    """Return ``(data_file, events_file, subject, series)`` for a Kaggle data file name."""
    data_path = Path(data_path)
    match = FILE_NAME.match(data_path.name)
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

    # in bounded blocks straight into the ids and the (n, 32) samples (edge.recordings._text)
    ids, samples = read_table(data_file, ("id",) + GRASP_LIFT_CHANNELS, id_prefix=prefix, first_apart=True)
    check_ids(ids, data_file)
    index = ids.astype(np.int64)

    labels = None
    if events:
        ev_ids, flags = read_table(events_file, ("id",) + GRASP_LIFT_EVENTS, id_prefix=prefix, first_apart=True)
        mismatch = np.flatnonzero(ev_ids != ids) if ev_ids.shape[0] == ids.shape[0] else np.empty(0, np.int64)
        row = int(mismatch[0]) if mismatch.size else None
        bad = np.flatnonzero(~np.isin(flags, (0.0, 1.0)).all(axis=1))
        _check_events(events_file, data_file, prefix, (ev_ids.shape[0], ids.shape[0]),
                      None if row is None else (row, ev_ids[row], ids[row]), int(bad[0]) if bad.size else None)
        labels = flags.astype(np.uint8)
        del ev_ids, flags
    return _recording(samples, index, labels, subject, series, data_file)


def _recording(samples, index: np.ndarray, labels, subject: str, series: str, data_file: Path) -> Recording:
    return Recording(
        samples=samples,
        channels=GRASP_LIFT_CHANNELS,
        fs=GRASP_LIFT_FS,
        segments=segments_from_gaps(np.diff(index) != 1),
        sample_index=index,
        labels=labels,
        label_names=GRASP_LIFT_EVENTS,
        subject=subject,
        session=series,
        source=data_file,
    )


def _check_events(events_file: Path, data_file: Path, prefix: bytes, counts: tuple[int, int], mismatch, bad) -> None:
    """The events file's rows against the data file's: ``counts`` (events rows, data rows), the first
    row whose id differs ``(row, its id, the data row's id)`` and the first row with a value other
    than 0/1 (or None)."""
    n_ev, n = counts
    if n_ev != n:
        raise RecordingError(events_file, 2 + min(n_ev, n), f"{n_ev} event rows for {n} data rows",
                             f"one events row per row of {data_file.name}")
    if mismatch is not None:
        row, ev_id, data_id = mismatch
        raise RecordingError(events_file, 2 + row, f"id {prefix.decode()}{int(ev_id)}",
                             f"the id of the same row in {data_file.name}: {prefix.decode()}{int(data_id)}")
    if bad is not None:
        raise RecordingError(events_file, 2 + bad, "an event value other than 0/1", "0 or 1")


def open_grasp_lift(data_path: str | Path, events: bool = True) -> Recording:
    """:func:`read_grasp_lift`'s recording, checked the same way, without its samples in memory:
    ``samples`` is a :class:`~edge.recordings.blocks.Blocks` read from the data file a block of lines
    at a time (:mod:`edge.recordings.csv_blocks`), ``sample_index`` an empty array.  Held: the
    labels (6 bytes a row), and while it is opened the ids (8 bytes a row)."""
    data_file, events_file, subject, series = grasp_lift_paths(data_path)
    prefix = f"subj{subject}_series{series}_".encode()
    ids, samples = open_table(data_file, ("id",) + GRASP_LIFT_CHANNELS, id_prefix=prefix, first_apart=True)
    check_ids(ids, data_file)
    labels = None
    if events:
        found = {"mismatch": None, "bad": None, "labels": None}

        def each(n_ev, done, values):
            ev_ids, flags = values[:, 0], values[:, 1:]
            if found["labels"] is None:
                found["labels"] = np.empty((n_ev, len(GRASP_LIFT_EVENTS)), np.uint8)
            if found["mismatch"] is None and n_ev == ids.shape[0]:
                mismatch = np.flatnonzero(ev_ids != ids[done:done + len(ev_ids)])
                if mismatch.size:
                    row = done + int(mismatch[0])
                    found["mismatch"] = (row, ev_ids[row - done], ids[row])
            bad = np.flatnonzero(~np.isin(flags, (0.0, 1.0)).all(axis=1))
            if found["bad"] is None and bad.size:
                found["bad"] = done + int(bad[0])
            found["labels"][done:done + len(flags)] = flags.astype(np.uint8)

        n_ev = scan_table(events_file, ("id",) + GRASP_LIFT_EVENTS, each, id_prefix=prefix)[0]
        _check_events(events_file, data_file, prefix, (n_ev, ids.shape[0]), found["mismatch"], found["bad"])
        labels = found["labels"]
    rec = _recording(samples, ids.astype(np.int64), labels, subject, series, data_file)
    return replace(rec, sample_index=np.zeros(0, np.int64))


def read_grasp_lift_events(events_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Kaggle events file alone; returns ``(sample_index, labels)``."""
    events_path = Path(events_path)
    match = FILE_NAME.match(events_path.name)
    if match is None or match.group(3) != "events":
        raise RecordingError(events_path, None, "unexpected file name",
                             "a Kaggle name like subj1_series1_events.csv or .csv.gz")
    prefix = f"subj{match.group(1)}_series{match.group(2)}_".encode()
    header, body = split_header(read_bytes(events_path), events_path)
    check_header(header_fields(header), ("id",) + GRASP_LIFT_EVENTS, events_path)
    ev = parse_numeric(body, 1 + len(GRASP_LIFT_EVENTS), events_path, id_prefix=prefix)
    check_ids(ev[:, 0], events_path)
    return ev[:, 0].astype(np.int64), ev[:, 1:].astype(np.uint8)


def find_grasp_lift_series(directory: str | Path) -> list[Path]:
    """All ``subj*_series*_data.csv[.gz]`` files in ``directory``, sorted by subject and series."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RecordingError(directory, None, "not a directory", "a folder of Kaggle-layout files")
    found = []
    for p in directory.iterdir():
        m = FILE_NAME.match(p.name)
        if m and m.group(3) == "data":
            found.append((int(m.group(1)), int(m.group(2)), p))
    return [p for _, _, p in sorted(found)]


def write_grasp_lift(recording: Recording, directory: str | Path, compress: bool = True) -> tuple[Path, Path]:
    """Write a grasp-lift recording as Kaggle ``subjN_seriesM_{data,events}.csv[.gz]``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".csv.gz" if compress else ".csv"
    stem = f"subj{recording.subject}_series{recording.session}"
    ids = [f"{stem}_{i}" for i in recording.sample_index]
    data_path = directory / f"{stem}_data{suffix}"
    events_path = directory / f"{stem}_events{suffix}"
    write_table(data_path, ("id",) + tuple(recording.channels), ids,
                 recording.samples.astype(np.int64), "%d")
    if recording.labels is not None:
        write_table(events_path, ("id",) + tuple(recording.label_names), ids, recording.labels, "%d")
    return data_path, events_path
