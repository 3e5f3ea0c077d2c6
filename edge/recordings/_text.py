"""The strict, bounded CSV engine every reader shares, and the table writer the writers share.

numpy's C parser (``np.loadtxt``) parses well-formed files in about a second per full Kaggle
series; only when that path finds something wrong does a slow line-by-line pass
(:func:`_diagnose`) run to name the exact line and problem.  Every problem is reported as one
:class:`~edge.errors.RecordingError`.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

from edge.errors import RecordingError


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


def _write_table(path: Path, header, first_col, values, fmt) -> None:
    body = "\n".join(f"{a}," + ",".join(fmt % v for v in row) for a, row in zip(first_col, values.tolist()))
    text = (",".join(header) + "\n" + body + "\n").encode()
    if path.suffix == ".gz":
        # mtime=0 keeps the file byte-identical for identical content.
        with gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as fh:
            fh.write(text)
    else:
        path.write_bytes(text)
