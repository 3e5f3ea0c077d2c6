"""The XDF container walked chunk by chunk, without pyxdf: the checks before pyxdf reads a file
(:func:`scan_streams`), and one stream's samples or timestamps a block at a time
(:func:`sample_blocks`, :class:`XdfRows`, :class:`StampSummary`, :func:`clock_map`), for
:func:`~edge.recordings.xdf.open_xdf`, which reads a file larger than calibration may hold.

An XDF file (https://github.com/sccn/xdf/wiki/Specifications) is ``XDF:`` and chunks
``[NumLengthBytes][Length][Tag][Content]``; a Samples chunk (tag 3) is a stream id, a sample
count and per sample a byte, a float64 timestamp unless that byte is 0, and the values.  Every
walk here holds at most about ``BLOCK_BYTES`` of one chunk, however large the chunk.

The timestamps are pyxdf's (its ``_read_chunk3`` and ``_clock_sync``, pyxdf 1.16 and 1.17): a sample
without one is the previous one's plus ``1 / nominal_srate`` (the same float64 additions, in the
same order); a stream with ClockOffset chunks and no clock reset is mapped as pyxdf maps it,
``t + (c0 + c1 * t)`` with ``(c0, c1)`` pyxdf's robust fit of its offsets (:func:`clock_map`, the same
numpy operations on the same values).  :func:`~edge.recordings.xdf.open_xdf` checks that map against
pyxdf itself before it relies on it.
"""

from __future__ import annotations

import math
import struct
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edge import config
from edge.errors import RecordingError
from edge.recordings import blocks
from edge.recordings._text import check_file
from edge.recordings.blocks import BlockReader

#: pyxdf's value formats → bytes per value (None: text).
XDF_FORMATS = {"float32": 4, "double64": 8, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "string": None}
#: ... → their little-endian dtype (pyxdf's ``StreamData`` formats).
XDF_DTYPES = {"float32": "<f4", "double64": "<f8", "int8": "<i1", "int16": "<i2", "int32": "<i4", "int64": "<i8"}
_MAGIC = b"XDF:"


def _corrupt(path: Path, offset: int, problem: str, expected: str = "a well-formed XDF chunk") -> RecordingError:
    return RecordingError(path, None, f"byte {offset}: {problem}", expected)


def _read_varlen(fh, path: Path, offset: int) -> tuple[int, int] | None:
    """``(value, bytes used)`` of the variable-length integer at ``offset``; None if the file ends in it."""
    head = fh.read(1)
    if not head:
        return None
    nb = head[0]
    if nb not in (1, 4, 8):
        raise _corrupt(path, offset, f"a length field of {nb} bytes (XDF allows 1, 4 or 8)")
    raw = fh.read(nb)
    if len(raw) < nb:
        return None
    return int.from_bytes(raw, "little"), 1 + nb


def _parse_xml(raw: bytes, path: Path, offset: int) -> ET.Element:
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise _corrupt(path, offset, f"malformed XML ({exc})", "the XML of an XDF header") from None
    depth, stack = 0, [(root, 1)]
    while stack:  # pyxdf converts the XML recursively: bound its nesting
        el, d = stack.pop()
        depth = max(depth, d)
        if depth > config.RECORDING_MAX_XDF_XML_DEPTH:
            raise _corrupt(path, offset, f"XML nested deeper than {config.RECORDING_MAX_XDF_XML_DEPTH} levels",
                           "XDF meta-data of a sane depth (RECORDING_MAX_XDF_XML_DEPTH)")
        stack.extend((child, d + 1) for child in el)
    return root


def _xml_dict(el: ET.Element):
    """pyxdf's ``_xml2dict``: each child by its tag, a list of them; a leaf is its text."""
    children: dict = {}
    for child in el:
        for tag, value in _xml_dict(child).items():
            children.setdefault(tag, []).append(value)
    return {el.tag: children or el.text}


def _stream_header(root: ET.Element, path: Path, offset: int) -> tuple[str, int]:
    """The (format, channel count) a StreamHeader declares, checked."""
    fmt = (root.findtext("channel_format") or "").strip()
    if fmt not in XDF_FORMATS:
        raise _corrupt(path, offset, f"channel_format {fmt!r}", f"one of {', '.join(XDF_FORMATS)}")
    try:
        n = int((root.findtext("channel_count") or "").strip())
        srate = float((root.findtext("nominal_srate") or "").strip())
    except ValueError:
        raise _corrupt(path, offset, "a stream header without a numeric channel_count and nominal_srate",
                       "<channel_count> and <nominal_srate> numbers") from None
    if not 1 <= n <= config.RECORDING_MAX_COLUMNS:
        raise _corrupt(path, offset, f"channel_count {n}",
                       f"1..{config.RECORDING_MAX_COLUMNS} channels (RECORDING_MAX_COLUMNS)")
    if not (math.isfinite(srate) and srate >= 0):
        raise _corrupt(path, offset, f"nominal_srate {srate!r}", "a finite rate >= 0 (0: irregular)")
    return fmt, n


@dataclass
class XdfStream:
    """One stream as the walk found it."""

    fmt: str
    n_ch: int
    info: dict                # its header as pyxdf's "info" dict
    header: tuple[int, int]   # [start, end) bytes of its StreamHeader chunk
    samples: int = 0          # in complete Samples chunks
    clock: list = field(default_factory=list)  # (collection time, offset) of each ClockOffset chunk
    footer: dict | None = None  # its StreamFooter as pyxdf's dict ({"info": ...})
    spans: list | None = None   # [start, end) of each of its chunks: of a text or irregular stream only


class XdfScan(NamedTuple):
    end: int          # the byte just after the last complete chunk
    n_chunks: int
    truncated: bool   # the file goes on after it (cut mid-chunk)
    values: int       # of every complete Samples chunk
    streams: dict     # stream id -> XdfStream


def scan_streams(path: str | Path) -> XdfScan:
    """Walk an XDF file's chunks without loading it: each is checked (sizes from :mod:`edge.config`,
    a Samples chunk's layout sample by sample), and each stream's header, samples, clock offsets and
    footer are noted.

    Raises
    ------
    RecordingError
        Not an XDF file, over the size caps, or a malformed chunk (named by its byte offset).
    """
    path = Path(path)
    size = check_file(path, config.RECORDING_MAX_XDF_BYTES, "RECORDING_MAX_XDF_BYTES")
    streams: dict[int, XdfStream] = {}
    with path.open("rb") as fh:
        if fh.read(4) != _MAGIC:
            raise RecordingError(path, None, "no 'XDF:' magic at the start",
                                 "an XDF file (from LabRecorder or neurogrip record)")
        pos, n_chunks, values = 4, 0, 0
        while pos < size:
            fh.seek(pos)
            got = _read_varlen(fh, path, pos)
            if got is None:
                return XdfScan(pos, n_chunks, True, values, streams)
            length, used = got
            start, end = pos + used, pos + used + length
            if length < 2:
                raise _corrupt(path, pos, f"a chunk of length {length}")
            if end > size:
                return XdfScan(pos, n_chunks, True, values, streams)
            tag = struct.unpack("<H", fh.read(2))[0]
            body = length - 2
            sid = None
            if tag in (2, 3, 4, 6):
                if body < 4:
                    raise _corrupt(path, start, f"a tag-{tag} chunk without a stream id")
                sid, body = struct.unpack("<I", fh.read(4))[0], body - 4
                if tag != 2 and sid not in streams:
                    raise _corrupt(path, start, f"a tag-{tag} chunk of stream {sid} before its StreamHeader")
            if tag in (1, 2, 6):
                if body > config.RECORDING_MAX_XDF_XML_BYTES:
                    raise _corrupt(path, start, f"an XML chunk of {body} bytes",
                                   f"at most {config.RECORDING_MAX_XDF_XML_BYTES} (RECORDING_MAX_XDF_XML_BYTES)")
                root = _parse_xml(fh.read(body), path, start)
                if tag == 2:
                    if sid in streams:
                        raise _corrupt(path, start, f"a second StreamHeader for stream {sid}")
                    if len(streams) >= config.RECORDING_MAX_XDF_STREAMS:
                        raise _corrupt(path, start, f"more than {config.RECORDING_MAX_XDF_STREAMS} streams",
                                       "fewer streams (RECORDING_MAX_XDF_STREAMS)")
                    fmt, n_ch = _stream_header(root, path, start)
                    irregular = float(root.findtext("nominal_srate")) == 0
                    streams[sid] = XdfStream(fmt, n_ch, _xml_dict(root)[root.tag], (pos, end),
                                             spans=[] if fmt == "string" or irregular else None)
                elif tag == 6:
                    streams[sid].footer = _xml_dict(root)
            elif tag == 3:
                n = _check_samples(fh, path, start, body, streams[sid].fmt, streams[sid].n_ch)
                streams[sid].samples += n
                values += n * streams[sid].n_ch
            elif tag == 4:
                if body != 16:
                    raise _corrupt(path, start, f"a ClockOffset chunk of {body + 6} bytes", "22 bytes")
                streams[sid].clock.append(struct.unpack("<dd", fh.read(16)))
            if sid is not None and streams[sid].spans is not None:
                streams[sid].spans.append((pos, end))
            pos, n_chunks = end, n_chunks + 1
        return XdfScan(pos, n_chunks, False, values, streams)


def _check_samples(fh, path: Path, offset: int, body: int, fmt: str, n_ch: int) -> int:
    """Walk a Samples chunk's layout: pyxdf trusts it (a count or a timestamp byte that does not fit
    the chunk's length would make it allocate wildly or read the next chunks out of step).  Returns
    its number of samples.  The chunk is read ``BLOCK_BYTES`` at a time, a text value's bytes skipped."""
    got = _read_varlen(fh, path, offset)
    if got is None:
        raise _corrupt(path, offset, "a Samples chunk without a sample count")
    n, used = got
    rest = body - used
    width = XDF_FORMATS[fmt]
    if n * (1 + (2 * n_ch if width is None else n_ch * width)) > rest:
        raise _corrupt(path, offset, f"a Samples chunk declaring {n} samples of {n_ch} {fmt} values in {rest} bytes")
    start, step = fh.tell(), max(blocks.BLOCK_BYTES, 16)
    data, lo = b"", 0  # the chunk's bytes [lo, lo + len(data))
    p, plain = 0, 1 + (0 if width is None else n_ch * width)
    for _ in range(n):
        if p >= rest:
            raise _corrupt(path, offset, f"a Samples chunk whose {n} samples overrun its {rest} bytes")
        if p >= lo + len(data):
            fh.seek(start + p)
            data, lo = fh.read(min(step, rest - p)), p
        p += plain if data[p - lo] == 0 else plain + 8  # pyxdf: any non-zero byte means "a timestamp follows"
        for _ in range(n_ch if width is None else 0):
            if p < rest and p + 9 > lo + len(data):  # a length field: its byte count and up to 8 bytes
                fh.seek(start + p)
                data, lo = fh.read(min(step, rest - p)), p
            nb = data[p - lo] if p < rest else 1
            if nb not in (1, 4, 8):
                raise _corrupt(path, offset, f"a string length field of {nb} bytes (XDF allows 1, 4 or 8)")
            p += 1 + nb + int.from_bytes(data[p + 1 - lo:p + 1 + nb - lo], "little")
    if p != rest:
        raise _corrupt(path, offset, f"a Samples chunk whose {n} samples do not fill its {rest} bytes exactly")
    return n


def sample_blocks(path: Path, end: int, stream_id: int, fmt: str, n_ch: int, srate: float | None = None):
    """Yield ``(first row, block)`` of one numeric stream's samples in file order, within the file's
    first ``end`` bytes: its values as stored (``(k, n_ch)`` in ``fmt``'s dtype), or with ``srate``
    (the stream's nominal rate) its raw timestamps (``(k,)`` float64, pyxdf's: a sample without one
    is the previous one's ``+ 1 / srate``, the first one's ``0.0 + 1 / srate``).

    The file must have been walked by :func:`scan_streams` first, which refuses any chunk that does
    not hold exactly what it declares.
    """
    dtype = np.dtype(XDF_DTYPES[fmt])
    width = n_ch * dtype.itemsize
    tdiff = (1.0 / srate if srate > 0 else 0.0) if srate is not None else None
    last, row, pos = 0.0, 0, 4
    with Path(path).open("rb") as fh:
        while pos < end:
            fh.seek(pos)
            nb = fh.read(1)[0]
            stop = pos + 1 + nb + int.from_bytes(fh.read(nb), "little")
            if struct.unpack("<H", fh.read(2))[0] == 3 and struct.unpack("<I", fh.read(4))[0] == stream_id:
                nb = fh.read(1)[0]
                n, carry = int.from_bytes(fh.read(nb), "little"), b""
                while n:
                    want = min(max(blocks.BLOCK_BYTES, 9 + width), stop - fh.tell())
                    part = fh.read(want) if want > 0 else b""
                    if not part:  # the scan saw these bytes: the file changed since
                        raise RecordingError(path, None, f"byte {fh.tell()}: the file changed while it was read",
                                             "a recording that is no longer being written to")
                    data = carry + part
                    view, p, parts = memoryview(data), 0, []
                    while n and p < len(data):
                        size = (9 if data[p] else 1) + width
                        if p + size > len(data):
                            break
                        if tdiff is None:
                            parts.append(view[p + size - width:p + size])
                        else:
                            last = struct.unpack_from("<d", data, p + 1)[0] if data[p] else last + tdiff
                            parts.append(last)
                        p, n = p + size, n - 1
                    carry = data[p:]
                    if parts:
                        got = (np.frombuffer(b"".join(parts), dtype).reshape(-1, n_ch) if tdiff is None
                               else np.array(parts, np.float64))
                        yield row, got
                        row += len(got)
            pos = stop


class XdfRows(BlockReader):
    """The first ``n_rows`` samples of one numeric XDF stream, as :func:`~edge.recordings.xdf.read_xdf`
    makes them: cast to float64 (a signalling NaN becomes a NaN, quietly), then each column times its
    unit's scale where that is not 1."""

    def __init__(self, path: Path, end: int, stream_id: int, fmt: str, n_ch: int, n_rows: int, scales):
        super().__init__(n_rows, n_ch)
        self._args = (Path(path), int(end), int(stream_id), fmt, int(n_ch))
        self.path = Path(path)  # named by a read error (BlockReader.read)
        self._scales = [float(s) for s in scales]
        self._walk, self._next = None, 0  # the walk over the chunks, and the first row it yields next

    def block(self, row: int) -> tuple[int, np.ndarray]:
        if self._walk is None or row < self._next:  # back: walk again from the file's start
            self._walk, self._next = sample_blocks(*self._args), 0
        for start, values in self._walk:
            self._next = start + len(values)
            if self._next > row:
                with np.errstate(invalid="ignore"):
                    x = values[:self.n_rows - start].astype(np.float64)
                for k, per in enumerate(self._scales):
                    if per != 1.0:
                        x[:, k] *= per
                return start, x
        raise RecordingError(self._args[0], None, f"fewer than {row + 1} samples of stream {self._args[2]}",
                             "the recording the file held when it was opened (it changed while it was read)")


class StampSummary:
    """What :func:`~edge.recordings.xdf.read_xdf` takes from a signal stream's timestamps, found from
    them a block at a time (:meth:`add`), the same as from the whole array: their count, whether all
    are finite and their span, the gaps (:func:`~edge.recordings.xdf.segments_from_timestamps`'s
    segments) and the row of each marker time (:func:`~edge.recordings.xdf.marker_rows`)."""

    def __init__(self, fs: float, times: np.ndarray):
        self.tol = config.DROP_TOLERANCE / fs
        self.times = times  # the marker times, sorted
        self.rows = np.zeros(len(times), np.int64)  # rows whose running maximum is before each time
        self.n, self.finite, self.lo, self.hi = 0, True, math.inf, -math.inf
        self._breaks, self._prev, self._top = [], None, -math.inf

    def add(self, ts: np.ndarray) -> None:
        if not ts.size:
            return
        self.finite = self.finite and bool(np.isfinite(ts).all())
        self.lo, self.hi = min(self.lo, float(ts.min())), max(self.hi, float(ts.max()))
        step = np.diff(ts) if self._prev is None else np.diff(np.concatenate(([self._prev], ts)))
        self._breaks.append(np.flatnonzero((step > self.tol) | (step < -self.tol)) + self.n + (self._prev is None))
        top = np.maximum(np.maximum.accumulate(ts), self._top)  # the running maximum across blocks
        self.rows += np.searchsorted(top, self.times, side="left")
        self.n, self._prev, self._top = self.n + ts.size, ts[-1], top[-1]

    def segments(self) -> np.ndarray:
        breaks = np.concatenate(self._breaks).astype(np.int64) if self._breaks else np.zeros(0, np.int64)
        return np.stack([np.concatenate(([0], breaks)), np.concatenate((breaks, [self.n]))], axis=1).astype(np.int64)


def clock_map(clock: list) -> tuple:
    """pyxdf's clock synchronisation of a stream whose offsets show no clock reset: ``(c0, c1)``, each
    timestamp ``t`` becoming ``t + (c0 + c1 * t)`` (pyxdf's ``_clock_sync`` for one range, its
    winsor threshold 0.0001, pyxdf's own ``_robust_fit``; raises ``numpy.linalg.LinAlgError`` where
    the fit fails, ``ValueError`` where this pyxdf has no such fit)."""
    times, values = [t for t, _ in clock], [v for _, v in clock]
    if len(clock) == 1:
        return values[0], 0
    try:  # pyxdf's own fit (a private name: where a version lacks it, the caller reads the times whole)
        from pyxdf.pyxdf import _robust_fit
    except ImportError as exc:
        raise ValueError(f"pyxdf has no _robust_fit ({exc})") from None
    winsor = 0.0001
    a = np.column_stack([np.ones((len(clock),)), np.array(times) / winsor])
    with warnings.catch_warnings():  # numpy 2 warns of its np.divide(..., where=) without out=
        warnings.simplefilter("ignore")
        coefs = _robust_fit(a, np.array(values) / winsor)
    coefs[0] *= winsor
    return coefs[0], coefs[1]
