"""What a reader returns: a :class:`Recording` (a continuous, possibly gapped, signal) or a
:class:`FeatureTable` (precomputed features per window)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edge._checks import check_int
from edge.config import EVENT_HALF_WIDTH_S

#: Marker texts that end the current label (rows after them are unlabelled until the next label).
STOP_MARKERS = ("end", "pause")


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
        Per-sample labels (grasp-and-lift events; for XDF/EDF, cues from ``markers`` when the
        reader is given label names).
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
    markers : tuple of (int, str)
        Events the file carries (XDF marker streams, EDF+/BDF+ annotations), as ``(row, text)``
        sorted by row: ``row`` is the first sample at or after the event's time (``n_samples``
        for an event after the last sample).  :func:`labels_from_markers` turns cue markers into
        ``labels``.
    units : tuple of str
        Unit of each column when the file declares one ("uV" once converted to microvolts; the
        declared text where it names no voltage), else empty.
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
    markers: tuple = ()
    units: tuple = ()

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])

    def rows(self, a: int, b: int) -> Recording:
        """Rows ``[a, b)`` as a recording of their own: every per-row field cut, the segments clipped
        to them, the markers in them moved to the new row numbers."""
        a, b = max(0, int(a)), min(self.n_samples, int(b))
        segs = np.clip(self.segments, a, b) - a
        return replace(self, samples=self.samples[a:b], sample_index=self.sample_index[a:b],
                       segments=segs[segs[:, 1] > segs[:, 0]],
                       labels=None if self.labels is None else self.labels[a:b],
                       timestamps=None if self.timestamps is None else self.timestamps[a:b],
                       markers=tuple((row - a, text) for row, text in self.markers if a <= row < b))


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


def labels_from_markers(n_samples: int, markers, label_names) -> np.ndarray:
    """Per-sample one-hot labels from cue markers.

    A marker whose text is one of ``label_names`` starts that class at its row; the class holds
    until the next marker that is a label, or whose text is one of :data:`STOP_MARKERS` ("end",
    "pause": unlabelled from there).  Any other marker ("gap", "partial", a comment) leaves the
    labels as they are.  Texts are compared exactly.

    Parameters
    ----------
    n_samples : int
        Rows of the recording.
    markers : iterable of (int, str)
        ``(row, text)`` sorted by row (:attr:`Recording.markers`); rows at or past ``n_samples``
        change nothing.  Of several markers on one row the last wins.
    label_names : sequence of str
        The classes, in column order; distinct, and none of them a stop marker.

    Returns
    -------
    ndarray, shape (n_samples, len(label_names)), uint8
    """
    n_samples = check_int(n_samples, "n_samples", lo=0, exc=ValueError)
    if isinstance(label_names, str):
        raise TypeError(f"label_names must be a sequence of str, not one str ({label_names!r}); "
                        f"write label_names=({label_names!r},)")
    names = tuple(label_names)
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"label_names must be distinct non-empty strings, got {names!r}")
    if any(n in STOP_MARKERS for n in names):
        raise ValueError(f"label_names {names!r} include a stop marker ({', '.join(STOP_MARKERS)}); rename that class")
    column = {name: k for k, name in enumerate(names)}
    out = np.zeros((int(n_samples), len(names)), dtype=np.uint8)
    active, since, last_row = None, 0, None
    for row, text in markers:
        row = int(row)
        if last_row is not None and row < last_row:
            raise ValueError(f"markers must be sorted by row; row {row} comes after row {last_row}")
        last_row = row
        if text not in column and text not in STOP_MARKERS:
            continue
        start = min(max(row, 0), n_samples)
        if active is not None:
            out[since:start, active] = 1
        active, since = column.get(text), start
    if active is not None:
        out[since:, active] = 1
    return out


def event_labels(n_samples: int, events, n_labels: int, half_width: int) -> np.ndarray:
    """Per-sample event labels: column ``k`` is 1 on rows ``[row − half_width, row + half_width)`` of
    each event ``(row, k)`` (the Kaggle grasp-lift convention, ±150 ms around each event)."""
    out = np.zeros((int(n_samples), int(n_labels)), np.uint8)
    for row, k in events:
        out[max(0, row - half_width):min(n_samples, row + half_width), k] = 1
    return out


def task_labels(rec: Recording, labels, multilabel: bool, event_half_width_s: float | None = None) -> np.ndarray | None:
    """Per-sample 0/1 labels ``(n_samples, len(labels))`` of a recording, in ``labels``' order, or
    ``None`` when the recording carries none of them.

    In order of preference: the recording's own per-sample labels (a Kaggle events file) when they
    name every label; its whole-recording ``state``; its cue markers.  Markers of a multi-label
    (event) task mark ``event_half_width_s`` (default :data:`edge.config.EVENT_HALF_WIDTH_S`) either side of
    each cue, as the Kaggle files do
    (:func:`event_labels`); those of a multi-class task hold their class until the next cue
    (:func:`labels_from_markers`).
    """
    labels = list(labels)
    n = rec.n_samples
    if rec.labels is not None and set(labels) <= set(rec.label_names):
        cols = [list(rec.label_names).index(lab) for lab in labels]
        return np.asarray(rec.labels[:, cols], np.uint8)
    if rec.state is not None and rec.state in labels:
        out = np.zeros((n, len(labels)), np.uint8)
        out[:, labels.index(rec.state)] = 1
        return out
    if not rec.markers:
        return None
    if multilabel:
        out = event_labels(n, [(row, labels.index(text)) for row, text in rec.markers if text in labels and row < n],
                           len(labels), round((EVENT_HALF_WIDTH_S if event_half_width_s is None
                                               else event_half_width_s) * rec.fs))
    else:
        out = labels_from_markers(n, rec.markers, labels)
    return out if out.any() else None
