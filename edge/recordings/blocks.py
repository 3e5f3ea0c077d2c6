"""A recording's samples read from its file a block of rows at a time, never held whole (issue 24:
``neurogrip calibrate`` takes a file larger than it may hold).

:func:`edge.recordings.open_recording` returns the :class:`~edge.recordings.base.Recording` that
:func:`~edge.recordings.read_recording` returns for an XDF file, an EDF/BDF file or a Myo folder,
but with ``samples`` a :class:`Blocks`: it has their shape and dtype, slicing it (a run of rows,
any columns) gives another :class:`Blocks` without reading anything, and ``np.asarray`` reads the
rows it stands for: bit for bit the values of the whole read, since every step from the file's
bytes to float64 (the cast, the unit's scale, edfio's calibration) is done value by value.

Each reader is a :class:`BlockReader`: :meth:`~BlockReader.block` reads the block of rows holding
a row (about ``BLOCK_BYTES`` of the file), and the last block is kept, so reading forwards costs
one pass over the file.  Going back starts again: an EDF record or a Myo file is found by
arithmetic, an XDF stream's samples by walking the chunks from the file's start.  The readers are
with their formats (:func:`~edge.recordings.xdf.open_xdf` and :class:`~edge.recordings.xdf_walk.XdfRows`,
:func:`~edge.recordings.edf.open_edf`, :func:`~edge.recordings.myo.open_myo`).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np

from edge.errors import RecordingError

#: File bytes read at once (read at call time): a block's float64 values are a few times this.
BLOCK_BYTES = 1 << 20


class BlockReader:
    """The ``(n_rows, n_cols)`` float64 samples of one file, read a block of rows at a time.

    A reader implements :meth:`block`; :meth:`read` assembles any run of rows from the blocks,
    keeping the last one read (the one before it is let go first)."""

    def __init__(self, n_rows: int, n_cols: int):
        self.n_rows, self.n_cols = int(n_rows), int(n_cols)
        self._start, self._values = 0, np.empty((0, self.n_cols))

    def block(self, row: int) -> tuple[int, np.ndarray]:
        """``(first row, values)`` of a block of rows holding ``row``."""
        raise NotImplementedError

    def read(self, a: int, b: int) -> np.ndarray:
        """Rows ``[a, b)``, a new C-contiguous float64 array."""
        if not 0 <= a <= b <= self.n_rows:
            raise IndexError(f"rows [{a}, {b}) of a recording of {self.n_rows}")
        out = np.empty((b - a, self.n_cols))
        k = a
        while k < b:
            if not self._start <= k < self._start + len(self._values):
                self._start, self._values = 0, self._values[:0].copy()  # the old block goes first
                try:
                    self._start, self._values = self.block(k)
                except RecordingError:
                    raise
                except (IndexError, ValueError, struct.error, OSError, EOFError, zlib.error) as exc:
                    # the file was checked whole when it was opened: short or odd bytes now mean it changed
                    raise RecordingError(getattr(self, "path", "the recording"), None,
                                         f"changed since it was opened ({type(exc).__name__}: {str(exc)[:120]})",
                                         "a recording that is not being written to while it is read") from None
                if not self._start <= k < self._start + len(self._values):  # a bug, not bad input
                    raise RuntimeError(f"{type(self).__name__}.block({k}) gave rows from {self._start}")
            take = min(b, self._start + len(self._values)) - k
            out[k - a:k - a + take] = self._values[k - self._start:k - self._start + take]
            k += take
        return out


class Blocks:
    """A recording's ``(n, C)`` float64 samples, read from the file only when made into an array.

    ``blocks[a:b]``, ``blocks[:, cols]`` and ``blocks[a:b, cols]`` (rows: a slice of step 1;
    columns: a slice or a sequence of indices) are new :class:`Blocks`; ``np.asarray(blocks)``
    reads them (:meth:`BlockReader.read`).
    """

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, reader: BlockReader, rows: tuple[int, int] | None = None, cols: np.ndarray | None = None):
        self.reader = reader
        self.rows = (0, reader.n_rows) if rows is None else (int(rows[0]), int(rows[1]))
        self.cols = cols  # None: every column, in order
        self.shape = (self.rows[1] - self.rows[0], reader.n_cols if cols is None else len(cols))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"Blocks(rows {self.rows[0]}..{self.rows[1]} of {self.reader.n_rows}, {self.shape[1]} columns)"

    def __getitem__(self, key) -> Blocks:
        rows, cols = key if isinstance(key, tuple) and len(key) == 2 else (key, slice(None))
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError(f"Blocks take a slice of rows of step 1, not {rows!r}: read them with np.asarray")
        a, b, _ = rows.indices(len(self))
        b = max(a, b)
        if isinstance(cols, slice) and cols == slice(None):
            picked = self.cols
        else:
            picked = np.arange(self.reader.n_cols)[self.cols if self.cols is not None else slice(None)]
            picked = np.atleast_1d(picked[cols])
            if picked.ndim != 1:
                raise TypeError(f"Blocks take a slice or a sequence of columns, not {cols!r}")
        return Blocks(self.reader, (self.rows[0] + a, self.rows[0] + b), picked)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        x = self.reader.read(*self.rows)
        if self.cols is not None:
            x = x[:, self.cols]
        return x if dtype is None else x.astype(dtype, copy=False)


class FilePrefix(io.RawIOBase):
    """The first ``limit`` bytes of a file (pyxdf reads a file cut mid-chunk up to its last whole chunk)."""

    def __init__(self, fh, limit: int):
        self._fh, self._limit = fh, limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = max(0, min(len(b), self._limit - self._fh.tell()))
        return self._fh.readinto(memoryview(b)[:n]) if n else 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            offset, whence = self._limit + offset, io.SEEK_SET
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()
