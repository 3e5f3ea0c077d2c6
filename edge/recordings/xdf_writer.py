"""A streaming XDF writer: the file format of ``neurogrip record``.

XDF (https://github.com/sccn/xdf/wiki/Specifications, version 1.0) is the LSL ecosystem's
recording format, read by pyxdf, MNE, EEGLAB and LabRecorder's tools.  pyxdf only reads it, so
neurogrip writes it itself, as it implements its own serial protocol.  The layout:

* the magic ``XDF:``, then chunks; a chunk is ``[NumLengthBytes][Length][Tag][Content]``:
  ``NumLengthBytes`` is 1, 4 or 8, ``Length`` (that many bytes, little-endian) counts the tag
  and the content, ``Tag`` is a little-endian uint16;
* FileHeader (tag 1): XML ``<info><version>1.0</version>...``;
* StreamHeader (2): uint32 stream id, XML ``<info>`` with ``name, type, channel_count,
  nominal_srate, channel_format, source_id, created_at...`` and ``desc/channels/channel/{label,
  unit, type}`` (the meta-data conventions, https://github.com/sccn/xdf/wiki/Meta-Data);
* Samples (3): stream id, a variable-length sample count, then per sample a timestamp byte (8 and
  a float64 timestamp, or 0 when the timestamp is the previous one + 1 / nominal_srate) and the
  values: little-endian float32 (or float64) per channel, or per channel a variable-length byte
  count and UTF-8 text for a string stream;
* ClockOffset (4): stream id, collection time and offset (float64 each);
* Boundary (5): a fixed 16-byte UUID that lets a reader resume after a corrupt chunk;
* StreamFooter (6): stream id, XML ``<info>`` with ``first_timestamp, last_timestamp,
  sample_count, clock_offsets`` and, here, a ``<neurogrip>`` element (``partial``, ``reason``,
  gap counts: whatever the caller records).

Every chunk is built whole and written with unbuffered writes as it comes, and the file is
fsynced at least every ``fsync_every_s``: a writer that is killed leaves only complete chunks
(bar a write cut by the kernel), which pyxdf reads.  A failed write (disk full, I/O error)
truncates the file back to its last complete chunk and raises
:class:`~edge.errors.RecordingWriteError`; :meth:`XdfWriter.close` then still tries to append the
footers (marked partial), and the file stays readable either way.
"""

from __future__ import annotations

import datetime
import errno
import logging
import os
import re
import socket
import stat
import struct
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge import config
from edge._checks import check_int, check_number, check_option, check_type
from edge.errors import RecordingWriteError

log = logging.getLogger(__name__)

MAGIC = b"XDF:"
TAG_FILE_HEADER, TAG_STREAM_HEADER, TAG_SAMPLES, TAG_CLOCK_OFFSET, TAG_BOUNDARY, TAG_STREAM_FOOTER = range(1, 7)
#: The Boundary chunk's content, fixed by the specification.
BOUNDARY_UUID = bytes([0x43, 0xA5, 0x46, 0xDC, 0xCB, 0xF5, 0x41, 0x0F,
                       0xB3, 0x0E, 0xD5, 0x46, 0x73, 0x83, 0xCB, 0xE4])
#: Value formats this writer writes (XDF's ``channel_format``) → numpy dtype (None: text).
FORMATS = {"float32": np.dtype("<f4"), "double64": np.dtype("<f8"), "string": None}
CHANNEL_KEYS = ("label", "unit", "type")

# Characters XML 1.0 cannot carry (a reader's parser would reject the chunk).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def varlen(n: int) -> bytes:
    """XDF's variable-length integer: a byte 1, 4 or 8, then ``n`` in that many bytes (little-endian)."""
    if n < 1 << 8:
        return bytes((1, n))
    if n < 1 << 32:
        return b"\x04" + struct.pack("<I", n)
    return b"\x08" + struct.pack("<Q", n)


def chunk(tag: int, content: bytes) -> bytes:
    """One whole chunk: length (of tag + content), tag, content."""
    return varlen(len(content) + 2) + struct.pack("<H", tag) + content


def _text(value, what: str) -> str:
    text = str(value)
    bad = _XML_ILLEGAL.search(text)
    if bad:
        raise ValueError(f"{what} contains the control character {bad.group()!r}, which XML cannot carry; "
                         "remove it")
    return text


def _tag(name, what: str) -> str:
    if not isinstance(name, str) or not _XML_NAME.match(name) or name.lower().startswith("xml"):
        raise ValueError(f"{what} key {name!r} is not an XML element name; use letters, digits and _ "
                         "(starting with a letter), e.g. 'partial' or 'gap_count'")
    return name


def _add(parent: ET.Element, name: str, value, what: str) -> None:
    """``value`` under ``parent`` as element ``name``: a dict nests, a list repeats the element."""
    if isinstance(value, dict):
        el = ET.SubElement(parent, _tag(name, what))
        for key, sub in value.items():
            _add(el, key, sub, what)
    elif isinstance(value, (list, tuple)):
        for sub in value:
            _add(parent, name, sub, what)
    else:
        ET.SubElement(parent, _tag(name, what)).text = _text("" if value is None else value, f"{what} {name!r}")


def _xml(root: ET.Element) -> bytes:
    return b'<?xml version="1.0"?>' + ET.tostring(root, encoding="unicode").encode("utf-8")


def _number(x: float) -> str:
    return repr(float(x))  # round-trips exactly through float(text)


@dataclass
class _Stream:
    fmt: str
    n_channels: int
    tdiff: float                  # what a reader adds to the previous timestamp for a deduced one
    last_ts: float = 0.0          # the reader's "previous timestamp" after the chunks written so far
    first: float | None = None
    last: float | None = None
    count: int = 0
    clock_offsets: list = field(default_factory=list)


class XdfWriter:
    """Write an XDF file chunk by chunk (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The file to write; an existing file is replaced.  Its folder must exist.
    fsync_every_s : float
        Written chunks reach the disk at least this often (:data:`edge.config.RECORD_FSYNC_EVERY_S`);
        0 syncs after every chunk.

    Raises
    ------
    RecordingWriteError
        The file cannot be created or written (also from every method that writes).

    Examples
    --------
    >>> with XdfWriter("session.xdf") as w:                               # doctest: +SKIP
    ...     eeg = w.add_stream("EEG", "EEG", 4, 256.0, channels=[{"label": c, "unit": "microvolts",
    ...                                                              "type": "EEG"} for c in "ABCD"])
    ...     cues = w.add_stream("Cues", "Markers", 1, 0.0, "string")
    ...     w.write_samples(eeg, t, x)                                    # t (n,), x (n, 4)
    ...     w.write_samples(cues, [t[0]], ["rest"])
    """

    def __init__(self, path, *, fsync_every_s: float = config.RECORD_FSYNC_EVERY_S):
        self.path = Path(check_type(path, (str, Path), "path"))
        self.fsync_every_s = check_number(fsync_every_s, "fsync_every_s", lo=0.0)
        self._streams: dict[int, _Stream] = {}
        self._error: RecordingWriteError | None = None
        self._closed = False
        self._good = 0  # bytes of complete chunks: where a failed write is cut back to
        try:
            self._fh = self._create(self.path)
        except FileExistsError:
            raise RecordingWriteError(self.path, "already exists (or is a link)",
                                      "choose another --out, or move the old file away first") from None
        except OSError as exc:
            raise RecordingWriteError(self.path, f"cannot be created ({exc.strerror or exc})",
                                      _fix(exc, creating=True)) from None
        self._last_sync = self._last_boundary = time.monotonic()
        head = ET.Element("info")
        ET.SubElement(head, "version").text = "1.0"
        ET.SubElement(head, "datetime").text = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        ET.SubElement(head, "writer").text = "neurogrip"
        try:
            self._write(MAGIC + chunk(TAG_FILE_HEADER, _xml(head)))
        except RecordingWriteError:
            self._closed = True
            self._fh.close()
            raise

    # -- the public API --------------------------------------------------------------------
    def add_stream(self, name: str, type: str, channel_count: int, nominal_srate: float,
                   channel_format: str = "float32", *, channels: list[dict] | None = None,
                   source_id: str = "", desc: dict | None = None) -> int:
        """Declare a stream; its StreamHeader chunk is written now.

        Parameters
        ----------
        name, type : str
            The stream's name and content type ("EEG", "EMG", "Markers"...).
        channel_count : int
        nominal_srate : float
            Samples per second; 0 for an irregular stream (markers).
        channel_format : {"float32", "double64", "string"}
        channels : list of dict, optional
            One dict per channel with any of ``label``, ``unit``, ``type``.
        source_id : str
            A unique identifier of the data's source (LSL's ``source_id``).
        desc : dict, optional
            More ``<desc>`` meta-data: a dict nests elements, a list repeats one.

        Returns
        -------
        int
            The stream id for :meth:`write_samples`.
        """
        self._check_writable()
        name = _text(check_type(name, str, "name"), "name")
        if not name.strip():
            raise ValueError("name must be a non-empty stream name, e.g. 'EEG'")
        type_ = _text(check_type(type, str, "type"), "type")
        n = check_int(channel_count, "channel_count", lo=1, hi=config.RECORDING_MAX_COLUMNS)
        srate = check_number(nominal_srate, "nominal_srate", lo=0.0)
        check_option(channel_format, "channel_format", FORMATS)
        info = ET.Element("info")
        for key, value in (("name", name), ("type", type_), ("channel_count", str(n)),
                           ("channel_format", channel_format), ("source_id", _text(source_id, "source_id")),
                           ("nominal_srate", _number(srate)), ("version", "1.1"),
                           # liblsl's local_clock() is the monotonic clock on Linux, as time.monotonic().
                           ("created_at", _number(time.monotonic())), ("uid", str(uuid.uuid4())),
                           ("session_id", "default"), ("hostname", socket.gethostname())):
            ET.SubElement(info, key).text = value
        desc_el = ET.SubElement(info, "desc")
        if channels is not None:
            check_type(channels, (list, tuple), "channels")
            if len(channels) != n:
                raise ValueError(f"channels lists {len(channels)} channels but channel_count is {n}; "
                                 "give one dict per channel")
            chs = ET.SubElement(desc_el, "channels")
            for k, ch in enumerate(channels):
                check_type(ch, dict, f"channels[{k}]")
                unknown = set(ch) - set(CHANNEL_KEYS)
                if unknown:
                    raise ValueError(f"channels[{k}] has unknown keys {sorted(unknown)}; use {', '.join(CHANNEL_KEYS)}")
                el = ET.SubElement(chs, "channel")
                for key in CHANNEL_KEYS:
                    if key in ch:
                        ET.SubElement(el, key).text = _text(ch[key], f"channels[{k}][{key!r}]")
        for key, value in (check_type(desc, dict, "desc") if desc is not None else {}).items():
            if key == "channels" and channels is not None:
                raise ValueError("desc has 'channels' and channels= is given; give the channels once")
            _add(desc_el, key, value, "desc")
        sid = len(self._streams) + 1
        self._write(chunk(TAG_STREAM_HEADER, struct.pack("<I", sid) + _xml(info)))
        self._streams[sid] = _Stream(channel_format, n, 1.0 / srate if srate > 0 else 0.0)
        return sid

    def write_samples(self, stream_id: int, timestamps, values) -> None:
        """Append samples to a stream (one Samples chunk, written and flushed now).

        Parameters
        ----------
        stream_id : int
            From :meth:`add_stream`.
        timestamps : array_like, shape (n,)
            Finite times in seconds.  One equal to the previous + 1 / nominal_srate (bit for bit) is
            stored as "deduced", as the specification allows; every reader computes it back exactly.
        values : array_like, shape (n, channel_count), or list of str
            Numbers for a numeric stream; for a string stream a list of ``n`` strings (one channel)
            or of ``n`` sequences of ``channel_count`` strings.
        """
        self._check_writable()
        st = self._stream(stream_id)
        ts = np.asarray(timestamps, dtype=np.float64)
        if ts.ndim != 1:
            raise ValueError(f"timestamps must have shape (n,), got {ts.shape}")
        if not np.isfinite(ts).all():
            raise ValueError("timestamps must be finite numbers (no NaN/inf)")
        n = ts.shape[0]
        prev = np.empty(n)
        prev[:1], prev[1:] = st.last_ts, ts[:-1]
        explicit = ts != prev + st.tdiff  # the reader's own arithmetic: deduced stamps come back exact
        if st.fmt == "string":
            body = self._string_samples(st, ts, explicit, values)
        else:
            body = self._numeric_samples(st, ts, explicit, values)
        if n == 0:
            return
        now = time.monotonic()
        if now - self._last_boundary >= config.XDF_BOUNDARY_EVERY_S:
            self._write(chunk(TAG_BOUNDARY, BOUNDARY_UUID))
            self._last_boundary = now
        self._write(chunk(TAG_SAMPLES, struct.pack("<I", stream_id) + varlen(n) + body))
        st.last_ts = float(ts[-1])
        st.first = float(ts[0]) if st.first is None else st.first
        st.last, st.count = float(ts[-1]), st.count + n

    def write_clock_offset(self, stream_id: int, collection_time: float, offset: float) -> None:
        """Record a clock offset of a stream (a ClockOffset chunk): at local ``collection_time`` the
        stream's clock was ``offset`` seconds behind (what ``pylsl.StreamInlet.time_correction()``
        returns).  pyxdf adds the fitted offsets to the stream's timestamps."""
        self._check_writable()
        self._stream(stream_id)
        t = check_number(collection_time, "collection_time")
        v = check_number(offset, "offset")
        self._write(chunk(TAG_CLOCK_OFFSET, struct.pack("<Idd", stream_id, t, v)))
        self._streams[stream_id].clock_offsets.append((t, v))

    @staticmethod
    def _create(path: Path):
        """A new file: "x" is O_CREAT | O_EXCL, which also refuses a symlink wherever it points, so a
        session is never written through a link nor over an earlier one.  A character device (/dev/null
        for a dry run) is opened as it is."""
        try:
            return open(path, "xb", buffering=0)  # closed by close()
        except FileExistsError:
            if stat.S_ISCHR(os.lstat(path).st_mode):
                return open(path, "wb", buffering=0)
            raise

    def close(self, *, footer: dict | None = None) -> None:
        """Write every stream's StreamFooter and close the file; a second call does nothing.

        Parameters
        ----------
        footer : dict, optional
            Goes into each footer's ``<neurogrip>`` element, e.g. ``{"partial": "true", "reason":
            "interrupted (Ctrl-C)"}``.  After a failed write the writer adds ``partial=true`` and
            ``write_error`` itself.

        Raises
        ------
        RecordingWriteError
            The footers or the final sync failed (and no earlier write had failed: that error was
            raised already).  The file is closed and readable up to its last complete chunk.
        """
        if self._closed:
            return
        extra = dict(check_type(footer, dict, "footer") if footer is not None else {})
        for key, value in extra.items():
            _tag(key, "footer")
            _text(value, f"footer {key!r}")
        if self._error is not None:
            extra.setdefault("partial", "true")
            extra.setdefault("write_error", self._error.problem)
        earlier, self._error = self._error, None  # the footers are tried even after a failed write
        self._closed = True
        try:
            if self._fh.tell() != self._good:  # an interrupt (Ctrl-C) cut a chunk: drop its rest
                self._fh.truncate(self._good)
                self._fh.seek(self._good)
        except OSError:
            pass
        try:
            for sid, st in self._streams.items():
                self._write(chunk(TAG_STREAM_FOOTER, struct.pack("<I", sid) + self._footer(st, extra)))
            self._sync()
        except RecordingWriteError:
            if earlier is None:
                raise
            log.warning("%s: the footers could not be written after the earlier write error; the file ends "
                        "at its last complete chunk (still readable)", self.path)
        finally:
            self._error = self._error or earlier
            self._fh.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        reason = "interrupted (Ctrl-C)" if issubclass(exc_type, KeyboardInterrupt) else f"{exc_type.__name__}: {exc}"
        try:
            self.close(footer={"partial": "true", "reason": reason[:config.ERROR_QUOTE_CHARS]})
        except RecordingWriteError as close_exc:  # the exception in flight is the one to report
            log.warning("%s", close_exc)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("failed" if self._error else "open")
        return f"<XdfWriter {self.path} {len(self._streams)} stream(s), {self._good} bytes, {state}>"

    # -- internals ---------------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self._closed:
            raise RecordingWriteError(self.path, "the writer is closed", "open a new XdfWriter to write more")
        if self._error is not None:
            raise RecordingWriteError(self.path, f"the writer stopped at an earlier error ({self._error.problem})",
                                      "close() it: the file keeps what was written before")

    def _stream(self, stream_id) -> _Stream:
        if isinstance(stream_id, bool) or not isinstance(stream_id, (int, np.integer)) \
                or int(stream_id) not in self._streams:
            raise ValueError(f"stream_id {stream_id!r} is not a stream of this file; use the id add_stream() "
                             f"returned ({', '.join(map(str, self._streams)) or 'none yet'})")
        return self._streams[int(stream_id)]

    @staticmethod
    def _numeric_samples(st: _Stream, ts, explicit, values) -> bytes:
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (ts.shape[0], st.n_channels):
            raise ValueError(f"values must have shape (n, {st.n_channels}) with n = {ts.shape[0]} timestamps, "
                             f"got {v.shape}")
        vb = np.ascontiguousarray(v.astype(FORMATS[st.fmt])).view(np.uint8).reshape(v.shape[0], -1)
        width = vb.shape[1]
        rec_len = 1 + width + 8 * explicit
        starts = np.zeros(len(rec_len), dtype=np.int64)
        np.cumsum(rec_len[:-1], out=starts[1:])
        buf = np.zeros(int(rec_len.sum()), dtype=np.uint8)
        at = starts[explicit]
        buf[at] = 8
        tsb = ts[explicit].astype("<f8").view(np.uint8).reshape(-1, 8)
        buf[(at + 1)[:, None] + np.arange(8)] = tsb
        buf[(starts + 1 + 8 * explicit)[:, None] + np.arange(width)] = vb
        return buf.tobytes()

    @staticmethod
    def _string_samples(st: _Stream, ts, explicit, values) -> bytes:
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise TypeError("values of a string stream must be a list of str (one per sample)")
        if len(values) != ts.shape[0]:
            raise ValueError(f"{len(values)} values for {ts.shape[0]} timestamps; give one per sample")
        parts = []
        for k, sample in enumerate(values):
            row = [sample] if isinstance(sample, str) else list(sample)
            if len(row) != st.n_channels or not all(isinstance(s, str) for s in row):
                raise ValueError(f"values[{k}] must be {st.n_channels} str (one per channel), got {sample!r}"[:300])
            parts.append(b"\x08" + struct.pack("<d", ts[k]) if explicit[k] else b"\x00")
            for s in row:
                raw = s.encode("utf-8")
                parts.append(varlen(len(raw)) + raw)
        return b"".join(parts)

    @staticmethod
    def _footer(st: _Stream, extra: dict) -> bytes:
        info = ET.Element("info")
        ET.SubElement(info, "first_timestamp").text = _number(st.first or 0.0)
        ET.SubElement(info, "last_timestamp").text = _number(st.last or 0.0)
        ET.SubElement(info, "sample_count").text = str(st.count)
        offsets = ET.SubElement(info, "clock_offsets")
        for t, v in st.clock_offsets:
            el = ET.SubElement(offsets, "offset")
            ET.SubElement(el, "time").text = _number(t)
            ET.SubElement(el, "value").text = _number(v)
        ours = ET.SubElement(info, "neurogrip")
        for key, value in extra.items():
            ET.SubElement(ours, key).text = str(value)
        return _xml(info)

    def _write(self, data: bytes) -> None:
        """Write one whole chunk; on failure cut the file back to the last complete chunk and raise."""
        try:
            view = memoryview(data)
            while view:
                n = self._fh.write(view)
                if not n:  # a regular file never accepts 0 bytes but on a full disk
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
            self._good += len(data)
            if time.monotonic() - self._last_sync >= self.fsync_every_s:
                self._sync()
        except OSError as exc:
            self._fail(exc)

    def _sync(self) -> None:
        try:
            os.fsync(self._fh.fileno())
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not a file that can be synced (a pipe, /dev/full)
                self._fail(exc)
        self._last_sync = time.monotonic()

    def _fail(self, exc: OSError):
        try:  # drop a half-written chunk so the file ends at a chunk boundary
            self._fh.truncate(self._good)
            self._fh.seek(self._good)
        except OSError:
            pass
        self._error = RecordingWriteError(self.path, f"cannot write ({exc.strerror or exc})", _fix(exc))
        raise self._error from exc


def _fix(exc: OSError, creating: bool = False) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return ("free disk space or write to another disk (e.g. --out on a USB stick); the file keeps every "
                "sample written before this point and reads as a partial recording")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "write to a folder you may write to (check its permissions, or that the disk is not read-only)"
    if creating and exc.errno == errno.ENOENT:
        return "create the folder first (mkdir -p), or write elsewhere"
    if creating and exc.errno == errno.EISDIR:
        return "give a file name, e.g. session.xdf"
    return "check the disk (dmesg shows I/O errors) and write to another one"
