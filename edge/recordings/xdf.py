"""XDF recordings (LabRecorder, ``neurogrip record``, any LSL recorder), read with pyxdf.

The file is walked chunk by chunk first (:func:`scan_xdf`, bounded: sizes from
:mod:`edge.config`), so that pyxdf only ever sees a well-formed prefix: a file cut mid-chunk (a
recorder that crashed, a copy that stopped) is read up to its last complete chunk, and a chunk
that declares more than it holds is refused before pyxdf allocates for it.  Then
``pyxdf.load_xdf`` reads it with clock synchronisation (a no-op without ClockOffset chunks) and
without dejittering: timestamps stay as recorded, so lost samples show as gaps.

One numeric, regularly sampled stream becomes the :class:`~edge.recordings.base.Recording`;
string streams (and single-channel irregular numeric streams) become its ``markers``.

:func:`open_xdf` is the same read without holding the samples (a file larger than calibration may
hold).  pyxdf has no way to read a stream in parts (``load_xdf`` keeps every sample and timestamp
of a stream it loads), so it loads only the marker streams, from a file of their chunks alone;
the signal stream is walked a block at a time by :mod:`edge.recordings.xdf_walk`: its samples cast
as pyxdf casts them, its timestamps as pyxdf makes them (a deduced one the previous one plus the
nominal period; clock offsets mapped as pyxdf maps them, checked against pyxdf itself on the
offsets, else loaded by pyxdf whole), their gaps and the markers' rows found block by block.
"""

from __future__ import annotations

import io
import logging
import struct
from pathlib import Path

import numpy as np

from edge.errors import RecordingError
from edge.recordings._text import clip, quoted_names
from edge.recordings.base import Recording, labels_from_markers
from edge.recordings.blocks import Blocks, FilePrefix
from edge.recordings.xdf_walk import (
    XDF_FORMATS,
    StampSummary,
    XdfRows,
    clock_map,
    sample_blocks,
    scan_streams,
)
from edge.recordings.xdf_writer import chunk, varlen

log = logging.getLogger(__name__)

#: Stream types preferred when a file holds several signal streams and none is named.
SIGNAL_TYPES = ("eeg", "emg", "exg")
_MAX_SPAN_SAMPLES = 2.0**53  # sample numbers are int64 made from float64 timestamps: keep them exact


def scan_xdf(path: str | Path) -> tuple[int, int, bool]:
    """Walk an XDF file's chunks without loading it (:func:`~edge.recordings.xdf_walk.scan_streams`).

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
    return scan_streams(path)[:3]


def xdf_values(path: str | Path) -> int:
    """How many values (samples × channels, every stream) pyxdf would load from the file, counted from
    its chunks' headers without loading it (:func:`scan_xdf`'s walk; its errors)."""
    return scan_streams(path).values


def xdf_rows(path: str | Path, *, stream: str | None = None) -> int:
    """How many samples :func:`read_xdf` would read of the signal stream, from the chunks' headers
    without loading it (:func:`scan_xdf`'s walk; its errors, and those of picking the stream)."""
    scan = scan_streams(path)
    return scan.streams[_pick_id(scan, stream, Path(path))].samples


def _pick_id(scan, stream: str | None, path: Path) -> int:
    """:func:`_pick` among the streams the walk found: the signal stream's id."""
    return _pick([{"info": s.info, "id": k} for k, s in scan.streams.items()], stream, path)["id"]


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
    scales, out = unit_scales(path, labels, units)
    for k, per in enumerate(scales):
        if per != 1.0:
            x[:, k] *= per
    return x, out


def unit_scales(path: Path, labels, units) -> tuple[list[float], tuple[str, ...]]:
    """What :func:`to_uv` does to each column: ``(the factor to µV, or 1; the unit it then has)``."""
    from edge.errors import SourceError
    from edge.signals.units import is_declared, parse_unit

    scales, out, unknown = [], [], []
    for k, unit in enumerate(units):
        per = None
        if is_declared(unit):
            try:
                per = parse_unit(unit)
            except SourceError:
                unknown.append(f"{labels[k]} ({unit})")
        scales.append(1.0 if per is None else per)
        out.append("" if not is_declared(unit) else ("uV" if per is not None else str(unit).strip()))
    if unknown:
        log.warning("%s: channels in units that are not a voltage kept as stored: %s", path, quoted_names(unknown))
    return scales, tuple(out)


def segments_from_timestamps(ts: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """``(segments, sample_index)`` from per-sample timestamps: a new segment where the step exceeds
    :data:`~edge.config.DROP_TOLERANCE` nominal periods forwards (lost samples) or backwards (a
    clock reset), as the LSL source flags a discontinuity.  The sample index counts rows within a
    segment and jumps by the rounded time at a gap (always increasing)."""
    summary = StampSummary(fs, np.zeros(0))
    for a in range(0, ts.size, 1 << 16):
        summary.add(ts[a:a + (1 << 16)])
    segments = summary.segments()
    starts, stops = segments[:, 0], segments[:, 1]
    index = np.arange(ts.size, dtype=np.int64)
    offset = 0
    for k in range(1, len(starts)):
        a = starts[k]
        jump = max(1, round(float(ts[a] - ts[a - 1]) * fs))
        offset += jump - 1
        index[a:stops[k]] += offset
    return segments, index


def marker_rows(signal_ts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Row of the first sample at or after each time (``len(signal_ts)`` after the last sample)."""
    return np.searchsorted(np.maximum.accumulate(signal_ts), times, side="left").astype(np.int64)


def _is_marker_stream(info: dict) -> bool:
    """A stream whose samples are markers: text, or one channel sampled irregularly."""
    return _first(info, "channel_format") == "string" or (
        float(_first(info, "nominal_srate") or 0) == 0 and int(_first(info, "channel_count")) == 1)


def _marker_events(streams: list, chosen: dict) -> tuple[np.ndarray, list[str]]:
    """Every marker stream's events: their times, sorted (stably), and their texts in that order."""
    times, texts = [], []
    for s in streams:
        info = s["info"]
        if s is chosen or not len(s["time_stamps"]) or not _is_marker_stream(info):
            continue
        if _first(info, "channel_format") == "string":
            texts += [str(row[0]) if len(row) else "" for row in s["time_series"]]
        else:
            texts += [f"{float(v):g}" for v in np.asarray(s["time_series"]).ravel()]
        times.append(np.asarray(s["time_stamps"], dtype=np.float64))
    if not times:
        return np.zeros(0), []
    t = np.concatenate(times)
    order = np.argsort(t, kind="stable")
    return t[order], [texts[i] for i in order]


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
    return _read(Path(path), stream, label_names, lazy=False)


def open_xdf(path: str | Path, *, stream: str | None = None, label_names=None) -> Recording:
    """:func:`read_xdf`'s recording without its samples in memory: ``samples`` is a
    :class:`~edge.recordings.blocks.Blocks` read from the file when made into an array, and neither
    ``timestamps`` nor ``sample_index`` is kept (``None``, and an empty array); every other field,
    and every value read, is :func:`read_xdf`'s.  It holds the marker streams and a block of the
    signal stream at a time (its timestamps whole only where pyxdf maps its clock offsets otherwise
    than :func:`~edge.recordings.xdf_walk.clock_map`: a clock reset, offsets it drops).

    Raises
    ------
    RecordingError
        As :func:`read_xdf`.
    """
    return _read(Path(path), stream, label_names, lazy=True)


def _load(path: Path, end: int, source=None, **options) -> list:
    """pyxdf's streams of the file's first ``end`` bytes (or of ``source``, bytes of an XDF file)."""
    import pyxdf

    try:
        if source is not None:
            return pyxdf.load_xdf(io.BytesIO(source), dejitter_timestamps=False, **options)[0]
        with path.open("rb", buffering=0) as raw:
            return pyxdf.load_xdf(io.BufferedReader(FilePrefix(raw, end)), dejitter_timestamps=False, **options)[0]
    except (ValueError, KeyError, IndexError, TypeError, struct.error, OSError) as exc:
        raise RecordingError(path, None, f"pyxdf cannot read it ({type(exc).__name__}: {clip(str(exc))})",
                             "a valid XDF file") from None


def _clock_coefs(path: Path, sid: int, sig) -> tuple | None:
    """:func:`~edge.recordings.xdf_walk.clock_map` of the signal stream, if pyxdf maps its offsets so:
    pyxdf loads the stream's header and offsets with a sample at each offset's time (and at 0), and
    every timestamp it returns must be the map's, bit for bit.  None where pyxdf maps them otherwise
    (a clock reset, a fit that fails, offsets it would drop with the samples past the footer's count)."""
    count = (((sig.footer or {}).get("info") or {}).get("sample_count") or [None])[0]
    try:
        if count is not None and sig.samples > int(count) and len(sig.clock) >= 3:
            return None
        c0, c1 = clock_map(sig.clock)
    except (ValueError, np.linalg.LinAlgError):  # a footer pyxdf cannot read either, a fit it would not make
        return None
    probes = np.array([0.0] + sorted(t for t, _ in sig.clock))
    width = sig.n_ch * XDF_FORMATS[sig.fmt]
    with path.open("rb") as fh:
        fh.seek(sig.header[0])
        data = [b"XDF:", fh.read(sig.header[1] - sig.header[0])]
    samples = b"".join(b"\x08" + struct.pack("<d", t) + bytes(width) for t in probes.tolist())
    data.append(chunk(3, struct.pack("<I", sid) + varlen(len(probes)) + samples))
    data += [chunk(4, struct.pack("<Idd", sid, t, v)) for t, v in sig.clock]
    got = np.asarray(_load(path, 0, b"".join(data))[0]["time_stamps"], np.float64)
    probes += c0 + (c1 * probes)
    return (c0, c1) if np.array_equal(got.view(np.int64), probes.view(np.int64)) else None


def xdf_timestamps(path: Path, scan=None, sid: int | None = None, *, stream: str | None = None):
    """Yield the signal stream's timestamps as pyxdf returns them (``load_xdf(..., dejitter_timestamps=
    False)``), a block at a time: read by the walk (:func:`~edge.recordings.xdf_walk.sample_blocks`) and
    mapped by pyxdf's clock synchronisation where pyxdf maps the stream's offsets so
    (:func:`_clock_coefs`), else loaded by pyxdf whole, the values dropped as it reads them.  ``scan``
    and ``sid``: the file's walk and the stream's id, when found already."""
    path = Path(path)
    scan = scan_streams(path) if scan is None else scan
    sid = _pick_id(scan, stream, path) if sid is None else sid
    sig = scan.streams[sid]
    srate = float(sig.info["nominal_srate"][0])  # as pyxdf reads it
    coefs = _clock_coefs(path, sid, sig) if sig.clock else (0.0, 0.0)
    if coefs is None:
        log.info("%s: pyxdf maps the clock offsets of stream %d otherwise: its timestamps are read whole", path, sid)

        def drop(values, stamps, info, stream_id):
            return np.empty((0, sig.n_ch), values.dtype), stamps, info

        ts = _load(path, scan.end, select_streams=[sid], on_chunk=drop)[0]["time_stamps"]
        yield from (ts[a:a + (1 << 16)] for a in range(0, ts.size, 1 << 16))
        return
    for _, ts in sample_blocks(path, scan.end, sid, sig.fmt, sig.n_ch, srate):
        if sig.clock:
            ts += coefs[0] + (coefs[1] * ts)  # pyxdf's _clock_sync, in place as it does it
        yield ts


def _read(path: Path, stream: str | None, label_names, lazy: bool) -> Recording:
    scan = scan_streams(path)
    if scan.truncated:
        log.warning("%s ends inside a chunk (a recorder that stopped, or a cut copy): reading its %d complete "
                    "chunks (%d bytes)", path, scan.n_chunks, scan.end)
    if lazy:  # pyxdf reads the marker streams (alone: a file of their chunks); the signal is walked
        sid = _pick_id(scan, stream, path)
        spans = sorted(span for k, s in scan.streams.items() if k != sid and _is_marker_stream(s.info)
                       for span in s.spans or ())
        marks = [b"XDF:"]
        with path.open("rb") as fh:
            for a, b in spans:
                fh.seek(a)
                marks.append(fh.read(b - a))
        streams = _load(path, 0, b"".join(marks)) if spans else []
        sig = scan.streams[sid]
        chosen = {"info": sig.info, **({"footer": sig.footer} if sig.footer is not None else {})}
    else:
        streams = _load(path, scan.end)
        chosen = _pick(streams, stream, path)
    info = chosen["info"]
    fs = float(_first(info, "nominal_srate"))
    times, texts = _marker_events(streams, chosen)
    if lazy:
        summary = StampSummary(fs, times)
        for ts in xdf_timestamps(path, scan, sid):
            summary.add(ts)
        n, finite, span = summary.n, summary.finite, (summary.hi - summary.lo) * fs
    else:
        ts = np.asarray(chosen["time_stamps"], dtype=np.float64)
        n = ts.size
        if n:
            finite, span = bool(np.isfinite(ts).all()), float(ts.max() - ts.min()) * fs
    if n == 0:
        raise RecordingError(path, None, f"stream {_describe(chosen)} has no samples",
                             "a recording with samples (the recorder stopped before writing any)")
    if not (finite and span < _MAX_SPAN_SAMPLES):
        raise RecordingError(path, None, f"stream {_describe(chosen)} has non-finite timestamps or spans "
                             f"{span:.3g} samples", "finite timestamps in seconds of one recording")
    _footer_note(chosen, path)
    n_ch = int(_first(info, "channel_count"))
    labels_text, units = _channel_info(info, n_ch)
    if lazy:
        scales, units = unit_scales(path, labels_text, units)
        x = Blocks(XdfRows(path, scan.end, sid, sig.fmt, n_ch, n, scales))
        segments, sample_index, timestamps, rows = summary.segments(), np.zeros(0, np.int64), None, summary.rows
    else:
        # A damaged float32 can be a signalling NaN, whose cast numpy warns about: it becomes a NaN like
        # any other, and NaN samples are invalid downstream (never decided on).
        with np.errstate(invalid="ignore"):
            x = np.asarray(chosen["time_series"], dtype=np.float64).reshape(n, -1)
        x, units = to_uv(path, labels_text, units, np.ascontiguousarray(x))
        segments, sample_index = segments_from_timestamps(ts, fs)
        timestamps, rows = ts, marker_rows(ts, times)
    markers = tuple(zip(rows.tolist(), texts))
    rec = Recording(samples=x, channels=tuple(labels_text), fs=fs, segments=segments, sample_index=sample_index,
                    timestamps=timestamps, source=path, markers=markers, units=units)
    if label_names is not None:
        rec.label_names = tuple(label_names)
        rec.labels = labels_from_markers(rec.n_samples, markers, rec.label_names)
    return rec
