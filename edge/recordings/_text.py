"""The strict, bounded CSV engine every reader shares, and the table writer the writers share.

numpy's C parser (``np.loadtxt``) parses well-formed files in about a second per full Kaggle
series; only when that path finds something wrong does a slow line-by-line pass
(:func:`_diagnose`) run to name the exact line and problem.  Every problem is reported as one
:class:`~edge.errors.RecordingError`.

The signal readers (grasp-lift, Muse, GAMEEMO) read a table in bounded memory (:func:`read_table`):
one pass counts the rows, a second parses blocks of ``_BLOCK_BYTES`` of whole lines straight into
the preallocated result, so a read holds the values plus about two blocks, never the file's text
or a second copy of the values (issue 24: a 3.4 MB series took 30 MB of text, stripped text and
float64 intermediates at once).  The values are those of one ``np.loadtxt`` over the whole body.

Every read is bounded before it is made (the ``bounds`` section of :mod:`edge.config`, read at
call time): a file's size is checked with ``stat`` and the read (after decompression, for
``.gz``) stops at ``RECORDING_MAX_BYTES``; the header line is at most
``RECORDING_MAX_HEADER_BYTES`` and ``RECORDING_MAX_COLUMNS`` columns, counted before it is split;
a data line is at most ``RECORDING_MAX_LINE_BYTES``; a line's cells are counted before they are
split; and a message quotes at most ``ERROR_QUOTE_CHARS`` of the bad input.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from edge import config
from edge.errors import RecordingError

_MAX_EXACT_ID = 2**53  # ids are parsed as float64: above this they are no longer exact integers
# Text handed to numpy's parser at once: its temporaries (the block, the block without its id
# prefixes, loadtxt's float64 rows) are a few times this, whatever the file's size.
_BLOCK_BYTES = 1 << 20


def quote(text, limit: int | None = None) -> str:
    """repr of (a prefix of) bad input for a message: about ``ERROR_QUOTE_CHARS`` characters at most."""
    limit = config.ERROR_QUOTE_CHARS if limit is None else limit
    if isinstance(text, bytes):
        text = text[:limit + 1].decode("utf-8", "replace")
    return repr(text[:limit]) + "..." if len(text) > limit else repr(text)


def _read_capped(fh, limit: int, chunk: int = 1 << 20) -> bytes:
    """At most ``limit + 1`` bytes of ``fh``, read in chunks (no ``limit``-sized buffer up front)."""
    parts, n = [], 0
    while n <= limit:
        part = fh.read(min(chunk, limit + 1 - n))
        if not part:
            break
        parts.append(part)
        n += len(part)
    return b"".join(parts)


def check_file(path: Path, limit: int, name: str) -> int:
    """A regular file of at most ``limit`` bytes (``name``: its bound in edge/config.py), checked before
    it is read; returns its size.  Every reader calls this first."""
    if not path.is_file():
        what = "not a regular file" if path.exists() else "file not found"
        raise RecordingError(path, None, what, "an existing recording file (check the path)")
    size = path.stat().st_size
    if size > limit:
        raise RecordingError(path, None, f"{size} bytes, over the {limit}-byte limit",
                             f"a file of at most {limit} bytes ({name} in edge/config.py); split the recording")
    return size


def _unreadable(path: Path, exc: BaseException) -> RecordingError:
    return RecordingError(path, None, f"cannot be read ({clip(str(exc))})", "a readable, complete file")


def read_bytes(path: Path) -> bytes:
    """The whole file (decompressed for ``.gz``), refused beyond ``RECORDING_MAX_BYTES``."""
    limit = config.RECORDING_MAX_BYTES
    try:
        check_file(path, limit, "RECORDING_MAX_BYTES")
        with _open(path) as fh:
            data = _read_capped(fh, limit)  # bounded even if the file grew since stat(); a bomb stops here
    except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt gzip, permissions, ...
        raise _unreadable(path, exc) from None
    if len(data) > limit:
        raise _over_limit(path)
    # Normalise Windows line ends once so every later step sees only "\n".
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _over_limit(path: Path) -> RecordingError:
    limit = config.RECORDING_MAX_BYTES
    return RecordingError(path, None, f"{'inflates to' if path.suffix == '.gz' else 'holds'} more than {limit} bytes",
                          f"a recording of at most {limit} bytes (RECORDING_MAX_BYTES)")


def _take_header(data: bytes, path: Path) -> tuple[str, bytes]:
    """The header line (decoded, its size and columns checked) and everything after its line end."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # UTF-8 byte-order mark from spreadsheet exports
    max_head, max_cols = config.RECORDING_MAX_HEADER_BYTES, config.RECORDING_MAX_COLUMNS
    end = data.find(b"\n", start, start + max_head + 1)
    if end < 0:
        if len(data) - start > max_head:
            raise RecordingError(path, 1, f"a header line longer than {max_head} bytes",
                                 f"a CSV header line of at most {max_head} bytes (RECORDING_MAX_HEADER_BYTES)")
        end = len(data)
    n_cols = data.count(b",", start, end) + 1
    if n_cols > max_cols + 1:  # + 1: GAMEEMO's trailing comma
        raise RecordingError(path, 1, f"a header of {n_cols} columns",
                             f"at most {max_cols} columns (RECORDING_MAX_COLUMNS)")
    try:
        header = data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise RecordingError(path, 1, "header is not UTF-8 text", "a CSV header line") from None
    return header, data[end + 1:]


def _no_rows(path: Path) -> RecordingError:
    return RecordingError(path, 2, "no data rows", "at least one data row after the header")


def split_header(data: bytes, path: Path) -> tuple[str, bytes]:
    """Return the header line (decoded) and the body without trailing newlines."""
    header, body = _take_header(data, path)
    body = body.rstrip(b"\n")
    if not body:
        raise _no_rows(path)
    return header, body


def _blocks(path: Path, *, start: int = 0, part_bytes: int | None = None, offsets: bool = False):
    """The file's text (decompressed for ``.gz``) in blocks of whole lines, line ends made ``"\n"``.

    From byte ``start`` of the (decompressed) text, a line's start, read ``part_bytes`` at a time
    (``_BLOCK_BYTES``); with ``offsets``, ``(where the block starts in the text, block)``: never
    between a ``"\r"`` and its ``"\n"``, so reading from there gives the same blocks' text again.

    Every block but the last ends with ``"\n"``; the first holds the whole header line.  About
    ``_BLOCK_BYTES`` plus one line is held at a time.  The file's size is checked first and the
    text is refused beyond ``RECORDING_MAX_BYTES`` (a gzip bomb stops there), the header line
    beyond ``RECORDING_MAX_HEADER_BYTES`` and any other line beyond ``RECORDING_MAX_LINE_BYTES``
    (whatever the parts read: a long line inside one is refused as one cut across two).
    """
    limit = config.RECORDING_MAX_BYTES
    try:
        check_file(path, limit, "RECORDING_MAX_BYTES")
        with _open(path) as fh:
            if start:
                fh.seek(start)
            total, carry, lines, header, at = start, b"", 0, not start, start
            part_bytes = _BLOCK_BYTES if part_bytes is None else part_bytes
            while True:
                part = fh.read(part_bytes)
                total += len(part)
                if total > limit:  # bounded even if the file grew since stat()
                    raise _over_limit(path)
                data = carry + part
                if not part:
                    if b"\r" in data:
                        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                    if data:
                        yield (at, data) if offsets else data
                    return
                # a "\r" at the end may be the first half of a "\r\n": it waits for the next part
                held = b"\r" if data.endswith(b"\r") else b""
                data = data[:-1] if held else data
                if b"\r" in data:  # Windows and old Mac line ends, as read_bytes normalises them
                    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                cut = data.rfind(b"\n") + 1
                if cut:
                    if cut > config.RECORDING_MAX_LINE_BYTES:  # however the file's parts fell
                        _check_lines(data[:cut], path, lines, header)
                    lines += data.count(b"\n", 0, cut)
                    header = False
                    yield (at, data[:cut]) if offsets else data[:cut]
                carry = data[cut:] + held  # no "\r" or "\n" but ``held``: as many bytes as in the file
                at = total - len(carry)
                if header and len(carry) > config.RECORDING_MAX_HEADER_BYTES + 3:  # + 3: a byte-order mark
                    _take_header(carry, path)  # raises, naming the header's limit
                elif not header and len(carry) > config.RECORDING_MAX_LINE_BYTES:
                    max_line = config.RECORDING_MAX_LINE_BYTES
                    raise RecordingError(path, lines + 1, f"a line longer than {max_line} bytes",
                                         f"a CSV line of at most {max_line} bytes (RECORDING_MAX_LINE_BYTES)")
    except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt gzip, permissions, ...
        raise _unreadable(path, exc) from None


def _check_lines(block: bytes, path: Path, before: int, header: bool) -> None:
    """Refuse a line of ``block`` (whole lines, ``before`` lines into the file; with ``header`` the
    header line first, bounded apart) longer than ``RECORDING_MAX_LINE_BYTES``."""
    max_line = config.RECORDING_MAX_LINE_BYTES
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
    over = np.diff(ends, prepend=-1) - 1 > max_line
    over[:int(header)] = False
    long = np.flatnonzero(over)
    if long.size:
        raise RecordingError(path, before + int(long[0]) + 1, f"a line longer than {max_line} bytes",
                             f"a CSV line of at most {max_line} bytes (RECORDING_MAX_LINE_BYTES)")


def read_header(path: Path) -> str:
    """The header line alone (what a layout is recognised by), read in bounded memory."""
    for block in _blocks(path):
        return _take_header(block, path)[0]
    raise RecordingError(path, 1, "an empty file", "a CSV header line")


def count_rows(path: Path, columns: tuple[str, ...] | None = None, stop_after: int | None = None) -> tuple[str, int]:
    """The header line and how many data rows follow it (trailing empty lines not counted), in one
    bounded pass.  ``columns``: the header is checked against them (:func:`check_header`) before
    anything else is read.  With ``stop_after`` the pass stops once more rows than that are seen
    (the count is then ``stop_after + 1``)."""
    header, rows, trailing, content = None, 0, 0, False
    for block in _blocks(path):
        if header is None:
            header, block = _take_header(block, path)
            if columns is not None:
                check_header(header_fields(header), columns, path)
        rows += block.count(b"\n")
        body = block.rstrip(b"\n")
        if body:
            content, trailing = True, len(block) - len(body)
        else:
            trailing += len(block)
        if stop_after is not None and rows - trailing + 1 > stop_after:
            return header, stop_after + 1
    if header is None:  # an empty file: what split_header says of it
        raise _no_rows(path)
    return header, (rows - trailing + 1 if content else 0)


def read_table(path: Path, columns: tuple[str, ...], *, id_prefix: bytes | None = None,
                trailing_comma: bool = False, first_apart: bool = False):
    """A CSV file with the header ``columns``, parsed in bounded memory into float64.

    Parameters
    ----------
    path : Path
    columns : tuple of str
        The header the file must have (:func:`check_header`).
    id_prefix : bytes, optional
        The first column holds ids ``<prefix><integer>`` (see :func:`parse_numeric`).
    trailing_comma : bool
        Every row ends with one comma (GAMEEMO), dropped before parsing.
    first_apart : bool
        Return the first column (ids, timestamps) and the others as two arrays, each contiguous.

    Returns
    -------
    ndarray (n_rows, n_cols), or (ndarray (n_rows,), ndarray (n_rows, n_cols - 1)) with ``first_apart``
        The values :func:`parse_numeric` gives for the whole body, checked the same way (a bad
        line is named by its number in the file).

    Raises
    ------
    RecordingError
        As :func:`read_bytes`, :func:`split_header` and :func:`parse_numeric`, or a file that
        changed between the two passes.
    """
    _, n_rows = count_rows(path, columns)
    if not n_rows:
        raise _no_rows(path)
    n_cols = len(columns)
    if first_apart:
        first, rest = np.empty(n_rows, np.float64), np.empty((n_rows, n_cols - 1), np.float64)
    else:
        table = np.empty((n_rows, n_cols), np.float64)
    for _, done, values in table_blocks(path, n_rows, n_cols, id_prefix=id_prefix, trailing_comma=trailing_comma):
        k = len(values)
        if first_apart:
            first[done:done + k], rest[done:done + k] = values[:, 0], values[:, 1:]
        else:
            table[done:done + k] = values
    return (first, rest) if first_apart else table


def table_blocks(path: Path, n_rows: int, n_cols: int, *, id_prefix: bytes | None = None,
                 trailing_comma: bool = False, start: int = 0, done: int = 0, part_bytes: int | None = None):
    """:func:`read_table`'s second pass: ``(where the block starts in the text, its first row, its
    values)`` for each block of rows, the file holding ``n_rows`` (:func:`count_rows`).  From byte
    ``start``, row ``done`` (a place an earlier pass gave) it reads on from there, as
    :class:`~edge.recordings.csv_blocks.CsvRows` does."""
    first_block = not start
    for at, block in _blocks(path, start=start, part_bytes=part_bytes, offsets=True):
        values = block_values(block, path, done, n_rows, n_cols, header=first_block, id_prefix=id_prefix,
                              trailing_comma=trailing_comma)
        first_block = False
        if values is not None:
            yield at, done, values
            done += len(values)
    if done != n_rows:
        raise _changed(path)


def block_values(block: bytes, path: Path, done: int, n_rows: int, n_cols: int, *, header: bool,
                 id_prefix: bytes | None, trailing_comma: bool) -> np.ndarray | None:
    """The rows of one block of :func:`_blocks` (the file's first, with ``header``) whose first row is
    row ``done`` of ``n_rows``, parsed (:func:`parse_numeric`); None when it holds none."""
    if header:
        block = _take_header(block, path)[1]
        if not block:  # the first block held the header line alone
            return None
    if done == n_rows:
        if block.strip(b"\n"):
            raise _changed(path)
        return None
    lines = block[:-1] if block.endswith(b"\n") else block  # the last line's end, not a blank line
    k = lines.count(b"\n") + 1
    if k > n_rows - done:  # what follows the last row: empty lines only (the first pass saw them)
        cut = -1
        for _ in range(n_rows - done):
            cut = lines.index(b"\n", cut + 1)
        if lines[cut:].strip(b"\n"):
            raise _changed(path)
        lines = lines[:cut]
    if trailing_comma:
        lines = lines.replace(b",\n", b"\n")
        if lines.endswith(b","):
            lines = lines[:-1]
    return parse_numeric(lines, n_cols, path, first_line=2 + done, id_prefix=id_prefix)


def _changed(path: Path) -> RecordingError:
    return RecordingError(path, None, "changed while it was read", "a recording that is not being written to")


def header_fields(header: str) -> list[str]:
    fields = [f.strip().strip('"').strip() for f in header.split(",")]
    if fields and fields[-1] == "":  # GAMEEMO's trailing comma
        fields = fields[:-1]
    return fields


def check_header(found: list[str], expected: tuple[str, ...], path: Path) -> None:
    if tuple(found) == tuple(expected):
        return
    if sorted(found) == sorted(expected):
        problem = "columns are reordered: " + clip(",".join(found))
    else:
        have, want = set(found), set(expected)
        missing = [c for c in expected if c not in have]
        extra = [c for c in found if c not in want]
        problem = f"wrong header (missing {quoted_names(missing)}, unexpected {quoted_names(extra)})"
    raise RecordingError(path, 1, problem, "the header " + ",".join(expected))


def clip(text: str, limit: int | None = None) -> str:
    limit = config.ERROR_QUOTE_CHARS if limit is None else limit
    return text if len(text) <= limit else text[:limit - 3] + "..."


def quoted_names(names: list[str]) -> str:
    """A bounded rendering of a list of column names: the first few, then how many more."""
    if not names:
        return "none"
    shown = [quote(n, 40) for n in names[:8]]
    more = f", ... {len(names) - 8} more" if len(names) > 8 else ""
    return clip("[" + ", ".join(shown) + more + "]")


def _diagnose(body: bytes, n_cols: int, path: Path, first_line: int, id_prefix: bytes | None) -> None:
    """Slow pass that raises a RecordingError naming the first bad line.

    Lines are found one at a time and a line's cells counted before it is split, so a line of
    millions of cells costs no list of millions of strings.
    """
    start, offset = 0, 0
    while start <= len(body):
        end = body.find(b"\n", start)
        end = len(body) if end < 0 else end
        line, lineno = body[start:end], first_line + offset
        start, offset = end + 1, offset + 1
        n = line.count(b",") + 1
        if n != n_cols:
            raise RecordingError(path, lineno, f"{n} cells", f"{n_cols} comma-separated cells")
        for col, cell in enumerate(line.split(b",")):
            text = cell.decode("utf-8", "replace").strip()
            if col == 0 and id_prefix is not None:
                prefix = id_prefix.decode()
                if not text.startswith(prefix) or not text[len(prefix):].isdigit():
                    raise RecordingError(path, lineno, f"id {quote(text)}",
                                         f"an id of the form {prefix}<sample number>")
                continue
            try:
                value = float(text)
            except ValueError:
                raise RecordingError(path, lineno, f"non-numeric cell {quote(text)} in column {col + 1}",
                                     "a number") from None
            if not np.isfinite(value):
                raise RecordingError(path, lineno, f"non-finite value {quote(text)} in column {col + 1}",
                                     "a finite number (no NaN/inf)")


def parse_numeric(body: bytes, n_cols: int, path: Path, first_line: int = 2,
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


def check_ids(ids: np.ndarray, path: Path, first_line: int = 2) -> None:
    wrong = (ids < 0) | (ids != np.round(ids)) | (ids > _MAX_EXACT_ID)
    if wrong.any():
        bad = int(np.flatnonzero(wrong)[0])
        raise RecordingError(path, first_line + bad, f"id number {float(ids[bad])!r}",
                             "a non-negative integer below 2**53")
    step = np.diff(ids)
    if np.any(step <= 0):
        bad = int(np.flatnonzero(step <= 0)[0]) + 1
        kind = "duplicated" if step[bad - 1] == 0 else "decreasing"
        raise RecordingError(path, first_line + bad, f"{kind} id (sample {int(ids[bad])} after "
                             f"{int(ids[bad - 1])})", "strictly increasing ids")


def segments_from_gaps(gap: np.ndarray) -> np.ndarray:
    """[start, stop) rows of the contiguous runs; ``gap[i]`` is True between rows i and i+1."""
    breaks = np.flatnonzero(gap) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [gap.size + 1]))
    return np.stack([starts, stops], axis=1).astype(np.int64)


def write_table(path: Path, header, first_col, values, fmt) -> None:
    body = "\n".join(f"{a}," + ",".join(fmt % v for v in row) for a, row in zip(first_col, values.tolist()))
    text = (",".join(header) + "\n" + body + "\n").encode()
    if path.suffix == ".gz":
        # mtime=0 keeps the file byte-identical for identical content.
        with gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as fh:
            fh.write(text)
    else:
        path.write_bytes(text)
