"""The ``emotions.csv`` feature table: precomputed features per window, then a ``label`` column."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.errors import RecordingError
from edge.recordings._text import header_fields, parse_numeric, quote, read_bytes, split_header
from edge.recordings.base import FeatureTable

EMOTION_LABELS = ("NEGATIVE", "NEUTRAL", "POSITIVE")


def read_emotions_table(path: str | Path) -> FeatureTable:
    """Read the ``emotions.csv`` feature-table layout (features + ``label``).

    The last column must be ``label`` with values NEGATIVE/NEUTRAL/POSITIVE;
    every other column is a numeric feature.
    """
    path = Path(path)
    header, body = split_header(read_bytes(path), path)
    names = header_fields(header)
    if not names or names[-1] != "label" or len(names) < 2:
        raise RecordingError(path, 1, f"last header column {quote(names[-1] if names else '')}",
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
            raise RecordingError(path, 2 + i, f"label {quote(text)}", "one of " + "/".join(EMOTION_LABELS))
        labels[i] = EMOTION_LABELS.index(text)
        feature_rows.append(head)
    features = parse_numeric(b"\n".join(feature_rows), len(names) - 1, path)
    return FeatureTable(features=features, feature_names=tuple(names[:-1]), labels=labels,
                        label_names=EMOTION_LABELS, source=path)
