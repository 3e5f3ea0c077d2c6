"""Pick the channels a model needs out of a source's channels, by name."""

from __future__ import annotations

import numpy as np

from edge.errors import SourceError


def channel_map(source_channels, wanted_channels) -> np.ndarray:
    """Column indices that pick ``wanted_channels`` (in that order) out of ``source_channels``.

    Raises
    ------
    SourceError
        Naming every wanted channel the source lacks, and the channels it has.
    """
    source_channels = [str(c) for c in source_channels]
    wanted_channels = [str(c) for c in wanted_channels]
    position: dict[str, int] = {}
    for i, name in enumerate(source_channels):
        position.setdefault(name, i)
    missing = [c for c in wanted_channels if c not in position]
    if missing:
        raise SourceError(f"the source lacks channel(s) {', '.join(missing)} that the model needs; it has "
                          f"{', '.join(source_channels) or 'no channels'}. Stream the montage the model "
                          "was trained on (or label the LSL channels with those names)")
    dupes = sorted({c for c in source_channels if source_channels.count(c) > 1} & set(wanted_channels))
    if dupes:
        raise SourceError(f"the source has channel(s) {', '.join(dupes)} more than once; channel names "
                          "must be unique to pick channels by name")
    return np.array([position[c] for c in wanted_channels], dtype=np.intp)
