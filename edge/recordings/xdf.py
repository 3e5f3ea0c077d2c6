"""XDF recordings (LabRecorder, ``neurogrip record``, any LSL recorder), read with pyxdf.

The file is walked chunk by chunk first (:func:`scan_xdf`, bounded: sizes from
:mod:`edge.config`), so that pyxdf only ever sees a well-formed prefix: a file cut mid-chunk (a
recorder that crashed, a copy that stopped) is read up to its last complete chunk, and a chunk
that declares more than it holds is refused before pyxdf allocates for it.  Then
``pyxdf.load_xdf`` reads it with clock synchronisation (a no-op without ClockOffset chunks) and
without dejittering: timestamps stay as recorded, so lost samples show as gaps.

One numeric, regularly sampled stream becomes the :class:`~edge.recordings.base.Recording`;
string streams (and single-channel irregular numeric streams) become its ``markers``.
"""

from __future__ import annotations

import io
import logging
import math
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from edge import config
from edge.errors import RecordingError
from edge.recordings._text import check_file, clip, quoted_names
from edge.recordings.base import Recording, labels_from_markers

log = logging.getLogger(__name__)

#: pyxdf's value formats → bytes per value (None: text).
XDF_FORMATS = {"float32": 4, "double64": 8, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "string": None}
#: Stream types preferred when a file holds several signal streams and none is named.
SIGNAL_TYPES = ("eeg", "emg", "exg")
_MAGIC = b"XDF:"
_MAX_SPAN_SAMPLES = 2.0**53  # sample numbers are int64 made from float64 timestamps: keep them exact


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


def scan_xdf(path: str | Path) -> tuple[int, int, bool]:
    """Walk an XDF file's chunks without loading it.

    Returns
    -------
    (end, n_chunks, truncated) : (int, int, bool)
        The byte offset just after the last complete chunk, how many chunks precede it, and
        whether the file goes on after it (cut mid-chunk).

    Raises
    ------
    RecordingError
        Not an XDF file, over the size caps, or a malformed chunk (named by its byte offset).
    """
    return _scan(path)[:3]


def xdf_values(path: str | Path) -> int:
    """How many values (samples × channels, every stream) pyxdf would load from the file, counted from
    its chunks' headers without loading it (:func:`scan_xdf`'s walk; its errors)."""
    return _scan(path)[3]


def _scan(path: str | Path) -> tuple[int, int, bool, int]:
    """:func:`scan_xdf`'s walk, and the values of the complete Samples chunks (:func:`xdf_values`)."""
    path = Path(path)
    size = check_file(path, config.RECORDING_MAX_XDF_BYTES, "RECORDING_MAX_XDF_BYTES")
    streams: dict[int, tuple[str, int]] = {}
    with path.open("rb") as fh:
        if fh.read(4) != _MAGIC:
            raise RecordingError(path, None, "no 'XDF:' magic at the start",
                                 "an XDF file (from LabRecorder or neurogrip record)")
        pos, n_chunks, values = 4, 0, 0
        while pos < size:
            fh.seek(pos)
            got = _read_varlen(fh, path, pos)
            if got is None:
                return pos, n_chunks, True, values
            length, used = got
            start, end = pos + used, pos + used + length
            if length < 2:
                raise _corrupt(path, pos, f"a chunk of length {length}")
            if end > size:
                return pos, n_chunks, True, values
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
                    streams[sid] = _stream_header(root, path, start)
            elif tag == 3:
                values += _check_samples(fh, path, start, body, *streams[sid]) * streams[sid][1]
            elif tag == 4 and body != 16:
                raise _corrupt(path, start, f"a ClockOffset chunk of {body + 6} bytes", "22 bytes")
            pos, n_chunks = end, n_chunks + 1
        return pos, n_chunks, False, values


def _check_samples(fh, path: Path, offset: int, body: int, fmt: str, n_ch: int) -> int:
    """Walk a Samples chunk's layout: pyxdf trusts it (a count or a timestamp byte that does not fit
    the chunk's length would make it allocate wildly or read the next chunks out of step).  Returns
    its number of samples."""
    got = _read_varlen(fh, path, offset)
    if got is None:
        raise _corrupt(path, offset, "a Samples chunk without a sample count")
    n, used = got
    rest = body - used
    width = XDF_FORMATS[fmt]
    if n * (1 + (2 * n_ch if width is None else n_ch * width)) > rest:
        raise _corrupt(path, offset, f"a Samples chunk declaring {n} samples of {n_ch} {fmt} values in {rest} bytes")
    data = fh.read(rest)
    p, plain = 0, 1 + (0 if width is None else n_ch * width)
    for _ in range(n):
        if p >= rest:
            raise _corrupt(path, offset, f"a Samples chunk whose {n} samples overrun its {rest} bytes")
        p += plain if data[p] == 0 else plain + 8  # pyxdf: any non-zero byte means "a timestamp follows"
        for _ in range(n_ch if width is None else 0):
            nb = data[p] if p < rest else 1
            if nb not in (1, 4, 8):
                raise _corrupt(path, offset, f"a string length field of {nb} bytes (XDF allows 1, 4 or 8)")
            p += 1 + nb + int.from_bytes(data[p + 1:p + 1 + nb], "little")
    if p != rest:
        raise _corrupt(path, offset, f"a Samples chunk whose {n} samples do not fill its {rest} bytes exactly")
    return n


class _Prefix(io.RawIOBase):
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


def _first(info: dict, key: str) -> str:
    value = (info.get(key) or [None])[0]
    return "" if value is None or isinstance(value, dict) else str(value).strip()


def _describe(s: dict) -> str:
    info = s["info"]
    return (f"{_first(info, 'name')!r} (type {_first(info, 'type') or '?'}, {_first(info, 'channel_count')} ch "
            f"{_first(info, 'channel_format')} at {_first(info, 'nominal_srate')} Hz)")


def _channel_info(info: dict, n: int) -> tuple[list[str], list[str]]:
    """Labels and units from ``desc/channels/channel``; labels ch0.. when absent or not distinct."""
    desc = (info.get("desc") or [None])[0]
    rows = []
    if isinstance(desc, dict):
        chs = (desc.get("channels") or [None])[0]
        if isinstance(chs, dict):
            rows = [ch if isinstance(ch, dict) else {} for ch in chs.get("channel") or []]
    if len(rows) != n:
        rows = [{}] * n
    labels = [_first(r, "label") for r in rows]
    units = [_first(r, "unit") for r in rows]
    if not all(labels) or len(set(labels)) != n:
        log.warning("stream %r has no distinct channel labels in desc/channels/channel/label; using ch0..ch%d",
                    _first(info, "name"), n - 1)
        labels = [f"ch{i}" for i in range(n)]
    return labels, units


def _pick(streams: list, stream: str | None, path: Path) -> dict:
    from edge.signals.channels import is_non_signal

    numeric = [s for s in streams if _first(s["info"], "channel_format") != "string"
               and float(_first(s["info"], "nominal_srate") or 0) > 0]
    listing = "; ".join(_describe(s) for s in numeric) or "none"
    if stream is not None:
        found = [s for s in numeric if _first(s["info"], "name") == stream] or \
                [s for s in numeric if _first(s["info"], "type").lower() == stream.lower()]
        if len(found) != 1:
            problem = f"{'no' if not found else len(found)} regularly sampled numeric stream(s) named or typed {stream!r}"
            raise RecordingError(path, None, problem, f"one of: {listing}; pass its name as stream=")
        return found[0]
    found = [s for s in numeric if not is_non_signal(_first(s["info"], "type"))]
    if len(found) > 1:
        preferred = [s for s in found if _first(s["info"], "type").lower() in SIGNAL_TYPES]
        found = preferred if len(preferred) == 1 else found
    if len(found) != 1:
        problem = "no signal stream" if not found else f"{len(found)} signal streams"
        raise RecordingError(path, None, problem, f"one regularly sampled EEG/EMG stream, or stream=NAME to "
                             f"pick one of: {listing}")
    return found[0]


def to_uv(path: Path, labels, units, x: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Columns in a declared voltage unit → µV; others unchanged (their declared unit kept)."""
    from edge.errors import SourceError
    from edge.signals.units import is_declared, parse_unit

    out, unknown = [], []
    for k, unit in enumerate(units):
        if not is_declared(unit):
            out.append("")
            continue
        try:
            per = parse_unit(unit)
        except SourceError:
            per = None
            unknown.append(f"{labels[k]} ({unit})")
        if per is None:
            out.append(str(unit).strip())
        else:
            if per != 1.0:
                x[:, k] *= per
            out.append("uV")
    if unknown:
        log.warning("%s: channels in units that are not a voltage kept as stored: %s", path, quoted_names(unknown))
    return x, tuple(out)


def segments_from_timestamps(ts: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """``(segments, sample_index)`` from per-sample timestamps: a new segment where the step exceeds
    :data:`~edge.config.DROP_TOLERANCE` nominal periods forwards (lost samples) or backwards (a
    clock reset), as the LSL source flags a discontinuity.  The sample index counts rows within a
    segment and jumps by the rounded time at a gap (always increasing)."""
    tol = config.DROP_TOLERANCE / fs
    step = np.diff(ts)
    gap = (step > tol) | (step < -tol)
    breaks = np.flatnonzero(gap) + 1
    starts = np.concatenate(([0], breaks)).astype(np.int64)
    stops = np.concatenate((breaks, [ts.size])).astype(np.int64)
    index = np.arange(ts.size, dtype=np.int64)
    offset = 0
    for k in range(1, len(starts)):
        a = starts[k]
        jump = max(1, round(float(ts[a] - ts[a - 1]) * fs))
        offset += jump - 1
        index[a:stops[k]] += offset
    return np.stack([starts, stops], axis=1), index


def marker_rows(signal_ts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Row of the first sample at or after each time (``len(signal_ts)`` after the last sample)."""
    return np.searchsorted(np.maximum.accumulate(signal_ts), times, side="left").astype(np.int64)


def _markers(streams: list, chosen: dict, signal_ts: np.ndarray) -> tuple:
    times, texts = [], []
    for s in streams:
        info = s["info"]
        if s is chosen or not len(s["time_stamps"]):
            continue
        if _first(info, "channel_format") == "string":
            texts += [str(row[0]) if len(row) else "" for row in s["time_series"]]
        elif float(_first(info, "nominal_srate") or 0) == 0 and int(_first(info, "channel_count")) == 1:
            texts += [f"{float(v):g}" for v in np.asarray(s["time_series"]).ravel()]
        else:
            continue
        times.append(np.asarray(s["time_stamps"], dtype=np.float64))
    if not times:
        return ()
    t = np.concatenate(times)
    order = np.argsort(t, kind="stable")
    rows = marker_rows(signal_ts, t[order])
    return tuple((int(r), texts[i]) for r, i in zip(rows, order))


def _footer_note(s: dict, path: Path) -> None:
    footer = s.get("footer")
    if not isinstance(footer, dict):
        log.warning("%s: stream %s has no footer: the recorder did not close the file (it stopped or crashed); "
                    "reading what it wrote", path, _describe(s))
        return
    ours = ((footer.get("info") or {}).get("neurogrip") or [None])[0]
    if isinstance(ours, dict) and _first(ours, "partial").lower() == "true":
        why = _first(ours, "reason") or _first(ours, "write_error") or "no reason given"
        log.warning("%s: a partial recording (%s)", path, why)


def read_xdf(path: str | Path, *, stream: str | None = None, label_names=None) -> Recording:
    """Read an XDF recording's signal stream and its markers.

    Parameters
    ----------
    path : str or Path
    stream : str, optional
        Name (exact) or type (any case) of the signal stream.  By default the one regularly sampled
        numeric stream that is not declared as markers or motion; of several, the one of type
        EEG/EMG/ExG.
    label_names : sequence of str, optional
        Cue names: ``labels`` then come from the markers (:func:`labels_from_markers`).

    Returns
    -------
    Recording
        ``samples`` in µV where a channel declares a voltage unit (else as stored, see ``units``),
        channel labels from ``desc/channels/channel/label``, ``fs`` the nominal rate, timestamps as
        recorded, ``segments`` split wherever a step exceeds ``DROP_TOLERANCE`` periods, and
        ``markers`` from every string stream (and one-channel irregular numeric stream).

    Raises
    ------
    RecordingError
        Missing, too large or malformed file; no or several candidate signal streams (the
        message lists them); a signal stream without samples.
    """
    import pyxdf

    path = Path(path)
    end, n_chunks, truncated = scan_xdf(path)
    if truncated:
        log.warning("%s ends inside a chunk (a recorder that stopped, or a cut copy): reading its %d complete "
                    "chunks (%d bytes)", path, n_chunks, end)
    with path.open("rb", buffering=0) as raw:
        try:
            streams, _ = pyxdf.load_xdf(io.BufferedReader(_Prefix(raw, end)), dejitter_timestamps=False)
        except (ValueError, KeyError, IndexError, TypeError, struct.error, OSError) as exc:
            raise RecordingError(path, None, f"pyxdf cannot read it ({type(exc).__name__}: {clip(str(exc))})",
                                 "a valid XDF file") from None
    chosen = _pick(streams, stream, path)
    info = chosen["info"]
    fs = float(_first(info, "nominal_srate"))
    ts = np.asarray(chosen["time_stamps"], dtype=np.float64)
    if ts.size == 0:
        raise RecordingError(path, None, f"stream {_describe(chosen)} has no samples",
                             "a recording with samples (the recorder stopped before writing any)")
    span = float(ts.max() - ts.min()) * fs
    if not (np.isfinite(ts).all() and span < _MAX_SPAN_SAMPLES):
        raise RecordingError(path, None, f"stream {_describe(chosen)} has non-finite timestamps or spans "
                             f"{span:.3g} samples", "finite timestamps in seconds of one recording")
    # A damaged float32 can be a signalling NaN, whose cast numpy warns about: it becomes a NaN like any
    # other, and NaN samples are invalid downstream (never decided on).
    with np.errstate(invalid="ignore"):
        x = np.asarray(chosen["time_series"], dtype=np.float64).reshape(ts.size, -1)
    _footer_note(chosen, path)
    labels_text, units = _channel_info(info, x.shape[1])
    x, units = to_uv(path, labels_text, units, np.ascontiguousarray(x))
    segments, sample_index = segments_from_timestamps(ts, fs)
    markers = _markers(streams, chosen, ts)
    rec = Recording(samples=x, channels=tuple(labels_text), fs=fs, segments=segments, sample_index=sample_index,
                    timestamps=ts, source=path, markers=markers, units=units)
    if label_names is not None:
        rec.label_names = tuple(label_names)
        rec.labels = labels_from_markers(rec.n_samples, markers, rec.label_names)
    return rec
