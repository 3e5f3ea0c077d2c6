"""A CSV table's rows read from the file a block at a time (issue 24: ``neurogrip calibrate`` takes
a grasp-lift series, a Muse or a GAMEEMO file larger than it may hold whole).

:func:`scan_table` is :func:`~edge.recordings._text.read_table` without keeping the values: the same
two passes (the rows counted, then every block of lines parsed by the same engine), so the same
checks and the same messages, and it notes where each block starts in the file's text (a byte of
it, decompressed for ``.gz``; about one every :data:`edge.recordings.blocks.BLOCK_BYTES`).
:class:`CsvRows` then reads a row's block by going to the nearest such byte and parsing on from
there: the values of the whole read, bit for bit (``np.loadtxt`` parses each cell alone, whatever
the lines around it).  Reading forwards goes on from where the last block ended (one pass, also
for ``.gz``); going back starts again from the nearest noted byte (a ``.gz`` file from its start).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.errors import RecordingError
from edge.recordings import blocks
from edge.recordings._text import count_rows, table_blocks


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def scan_table(path: Path, columns: tuple[str, ...], each=None, *, id_prefix: bytes | None = None,
               trailing_comma: bool = False) -> tuple[int, np.ndarray, np.ndarray]:
    """Check ``path`` as :func:`~edge.recordings._text.read_table` does, holding a block of it at a time:
    ``(rows, where blocks start in the text, their first rows)``; ``each(rows, first row, values)`` is
    called with every block's values (all the columns), in order.

    Raises
    ------
    RecordingError
        What :func:`~edge.recordings._text.read_table` raises, in the same order.
    """
    _, n_rows = count_rows(path, columns)
    if not n_rows:
        raise RecordingError(path, 2, "no data rows", "at least one data row after the header")
    starts, rows = [], []
    for at, done, values in table_blocks(path, n_rows, len(columns), id_prefix=id_prefix,
                                         trailing_comma=trailing_comma, part_bytes=blocks.BLOCK_BYTES):
        starts.append(at)
        rows.append(done)
        if each is not None:
            each(n_rows, done, values)
    return n_rows, np.array(starts, np.int64), np.array(rows, np.int64)


class CsvRows(blocks.BlockReader):
    """The float64 rows of a CSV table :func:`scan_table` checked (without its first column, with
    ``first_apart``), read from the file a block of lines at a time."""

    def __init__(self, path: Path, columns: tuple[str, ...], n_rows: int, starts: np.ndarray, rows: np.ndarray, *,
                 id_prefix: bytes | None = None, trailing_comma: bool = False, first_apart: bool = False,
                 stat: tuple[int, int] | None = None):
        super().__init__(n_rows, len(columns) - first_apart)
        self.path, self._n_cols, self._first_apart = Path(path), len(columns), first_apart
        self._starts, self._rows, self._stat = starts, rows, stat
        self._parse = {"id_prefix": id_prefix, "trailing_comma": trailing_comma}
        self._walk, self._next = None, 0  # the blocks read on from the last one, and its next row

    def block(self, row: int) -> tuple[int, np.ndarray]:
        k = int(np.searchsorted(self._rows, row, "right")) - 1
        ahead = self._walk is not None and self._next <= row
        if not ahead or (self._next < self._rows[k] and self.path.suffix != ".gz"):  # else: read on, no seek
            if self._stat is not None and _stat(self.path) != self._stat:
                raise RecordingError(self.path, None, "changed since it was opened",
                                     "a recording that is not being written to")
            self._walk = None  # its file is closed first
            self._walk = table_blocks(self.path, self.n_rows, self._n_cols, start=int(self._starts[k]),
                                      done=int(self._rows[k]), part_bytes=blocks.BLOCK_BYTES, **self._parse)
            self._next = int(self._rows[k])
        for _, done, values in self._walk:
            self._next = done + len(values)
            if row < self._next:
                return done, values[:, 1:] if self._first_apart else values
        raise RecordingError(self.path, None, "changed since it was opened", "a recording that is not being written to")


def open_table(path: Path, columns: tuple[str, ...], *, id_prefix: bytes | None = None,
               trailing_comma: bool = False, first_apart: bool = False):
    """:func:`~edge.recordings._text.read_table`'s result, its rows read from the file when made into
    an array: a :class:`~edge.recordings.blocks.Blocks` (without the first column, with
    ``first_apart``), and with ``first_apart`` the first column (ids, timestamps: 8 bytes a row)."""
    stat = _stat(path) if path.is_file() else None  # else scan_table says what it is
    first = []

    def keep_first(n_rows, done, values):
        if not first:
            first.append(np.empty(n_rows))
        first[0][done:done + len(values)] = values[:, 0]

    n_rows, starts, rows = scan_table(path, columns, keep_first if first_apart else None, id_prefix=id_prefix,
                                      trailing_comma=trailing_comma)
    samples = blocks.Blocks(CsvRows(path, columns, n_rows, starts, rows, id_prefix=id_prefix,
                                    trailing_comma=trailing_comma, first_apart=first_apart, stat=stat))
    return (first[0], samples) if first_apart else samples
