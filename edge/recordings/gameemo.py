"""GAMEEMO: ``SxxGyAllChannels.csv[.gz]`` (14 channels at 128 Hz, one file per game played)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.recordings._text import read_table
from edge.recordings.base import Recording
from edge.recordings.csv_blocks import open_table

GAMEEMO_FS = 128.0
GAMEEMO_CHANNELS = (
    "AF3", "AF4", "F3", "F4", "F7", "F8", "FC5", "FC6", "O1", "O2", "P7", "P8", "T7", "T8",
)
GAMEEMO_GAMES = {"G1": "boring", "G2": "calm", "G3": "horror", "G4": "funny"}

FILE_NAME = re.compile(r"^S(\d+)(G[1-4])AllChannels\.csv(\.gz)?$")


def read_gameemo(path: str | Path) -> Recording:
    """Read a GAMEEMO ``SxxGyAllChannels.csv[.gz]`` file (14 channels, 128 Hz).

    The state is the game's label (G1 boring, G2 calm, G3 horror, G4 funny).
    GAMEEMO has no timestamps, so the file is one contiguous segment.
    """
    path = Path(path)
    # Every GAMEEMO row ends with a comma: dropped once per row.  In bounded blocks (edge.recordings._text).
    return _recording(path, read_table(path, GAMEEMO_CHANNELS, trailing_comma=True))


def open_gameemo(path: str | Path) -> Recording:
    """:func:`read_gameemo`'s recording, checked the same way, without its samples in memory: ``samples``
    is a :class:`~edge.recordings.blocks.Blocks` read from the file a block of lines at a time
    (:mod:`edge.recordings.csv_blocks`), ``sample_index`` an empty array."""
    path = Path(path)
    rec = _recording(path, open_table(path, GAMEEMO_CHANNELS, trailing_comma=True))
    return replace(rec, sample_index=np.zeros(0, np.int64))


def _recording(path: Path, table) -> Recording:
    match = FILE_NAME.match(path.name)
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
