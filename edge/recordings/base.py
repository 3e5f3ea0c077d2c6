"""What a reader returns: a :class:`Recording` (a continuous, possibly gapped, signal) or a
:class:`FeatureTable` (precomputed features per window)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


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
