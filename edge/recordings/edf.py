"""EDF, EDF+, BDF and BDF+ recordings, read with edfio (pure Python).

The fixed 256-byte header is parsed here first and the file refused (before edfio reads a byte
of it) when it is too large, declares too many signals or does not add up
(:data:`~edge.config.RECORDING_MAX_EDF_BYTES`, :data:`~edge.config.RECORDING_MAX_EDF_SIGNALS`).
The signals at the file's highest sampling rate form the recording (EDF allows one rate per
signal: slower ones, such as a 1 Hz oxygen saturation, are left out and said so in the log);
physical units are converted to µV where they name a voltage; EDF+/BDF+ annotations become the
recording's ``markers``.  A discontinuous EDF+D/BDF+D file whose records leave gaps is refused
(neurogrip never bridges a gap).

:func:`open_edf` is the same read without holding the samples (a file larger than calibration may
hold): edfio reads the file a run of data records at a time, handed to it as a file of its own
(the header, its record count set to theirs, and those records), so every value is edfio's own
calibration of the same digits.  An annotation's onset counts from the first record's start (its
time-keeping annotation), so each run of records is read after the first record, whose own
annotations are then taken out once.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from edge import config
from edge.errors import RecordingError
from edge.recordings import blocks
from edge.recordings._text import check_file, clip, quoted_names
from edge.recordings.base import STOP_MARKERS, Recording, labels_from_markers
from edge.recordings.blocks import BlockReader, Blocks
from edge.recordings.xdf import to_uv, unit_scales

log = logging.getLogger(__name__)

#: The version field of each format (first 8 header bytes).
EDF_VERSIONS = {b"0       ": "EDF", b"\xffBIOSEMI": "BDF"}
HEADER_BYTES = 256
_EXPECTED = "an EDF/EDF+ or BDF/BDF+ file"


def _field(head: bytes, a: int, b: int) -> str:
    return head[a:b].decode("latin-1").strip()


def read_edf_header(path: str | Path) -> dict:
    """The fixed header's fields neurogrip checks: ``format`` ("EDF"/"BDF"), ``variant`` ("", "EDF+C",
    "EDF+D"...), ``n_signals``, ``header_bytes``, ``n_records``, ``record_duration``, ``size``.

    Raises
    ------
    RecordingError
        Missing, too large, not EDF/BDF, or a header whose sizes do not add up.
    """
    path = Path(path)
    size = check_file(path, config.RECORDING_MAX_EDF_BYTES, "RECORDING_MAX_EDF_BYTES")
    with path.open("rb") as fh:
        head = fh.read(HEADER_BYTES)
    if len(head) < HEADER_BYTES:
        raise RecordingError(path, None, f"a file of {len(head)} bytes", f"{_EXPECTED} (its header is 256 bytes)")
    fmt = EDF_VERSIONS.get(head[:8])
    if fmt is None:
        raise RecordingError(path, None, f"version field {head[:8]!r}",
                             f"{_EXPECTED}: version '0' (EDF) or '\\xffBIOSEMI' (BDF)")
    values = {}
    for name, a, b, cast in (("header_bytes", 184, 192, int), ("n_records", 236, 244, int),
                             ("record_duration", 244, 252, float), ("n_signals", 252, 256, int)):
        text = _field(head, a, b)
        try:
            values[name] = cast(text)
        except ValueError:
            raise RecordingError(path, None, f"header field {name} is {text!r}", f"a number ({_EXPECTED})") from None
    ns, cap = values["n_signals"], config.RECORDING_MAX_EDF_SIGNALS
    if not 1 <= ns <= cap:
        raise RecordingError(path, None, f"{ns} signals declared",
                             f"1..{cap} signals (RECORDING_MAX_EDF_SIGNALS in edge/config.py)")
    if values["header_bytes"] != HEADER_BYTES * (ns + 1):
        raise RecordingError(path, None, f"a header of {values['header_bytes']} bytes for {ns} signals",
                             f"256 x (signals + 1) = {HEADER_BYTES * (ns + 1)} bytes")
    if size < values["header_bytes"]:
        raise RecordingError(path, None, f"a file of {size} bytes, shorter than its {values['header_bytes']}-byte "
                             "header", "a complete file")
    if not (math.isfinite(values["record_duration"]) and values["record_duration"] >= 0):
        raise RecordingError(path, None, f"data record duration {values['record_duration']!r}", "seconds >= 0")
    return {"format": fmt, "variant": _field(head, 192, 236)[:5], "size": size, **values}


def edf_values(path: str | Path) -> int:
    """How many values (samples × signals, annotations included) the file's data records hold, from
    its size and header alone (:func:`read_edf_header`; its errors): 2 bytes each in EDF, 3 in BDF."""
    header = read_edf_header(path)
    return (header["size"] - header["header_bytes"]) // (3 if header["format"] == "BDF" else 2)


def edf_rows(path: str | Path) -> int:
    """How many samples of each signal :func:`read_edf` would read (those at the highest rate), from
    the header and the file's size alone (:func:`read_edf_header`; its errors)."""
    path = Path(path)
    header = read_edf_header(path)
    head, _, n_records = _layout(path, header)
    ns = header["n_signals"]
    spr = [int(head[256 + ns * 216 + 8 * i:256 + ns * 216 + 8 * (i + 1)]) for i in range(ns)
           if head[256 + 16 * i:256 + 16 * (i + 1)].strip() not in (b"EDF Annotations", b"BDF Annotations")]
    return n_records * max(spr, default=0)


def _check_calibration(path: Path, signal) -> None:
    """edfio returns digital values uncalibrated when a signal's ranges are unreadable or empty: refuse."""
    try:
        pmin, pmax = signal.physical_min, signal.physical_max
        dmin, dmax = signal.digital_min, signal.digital_max
    except ValueError as exc:
        raise RecordingError(path, None, f"signal {signal.label.strip()!r} has an unreadable calibration field "
                             f"({clip(str(exc))})", "numbers in its physical and digital minimum and maximum") from None
    if not (dmin < dmax and pmin != pmax):
        raise RecordingError(path, None, f"signal {signal.label.strip()!r} has digital range {dmin}..{dmax} and "
                             f"physical range {pmin:g}..{pmax:g}", "digital minimum < maximum and physical minimum "
                             "!= maximum (its values cannot be calibrated otherwise)")


def _onset_row(onset: float, fs: float) -> int:
    # The first sample at or after the onset; rounding first keeps 4.1 s x 160 Hz on sample 656.
    return max(0, math.ceil(round(onset * fs, 6)))


def read_edf(path: str | Path, *, label_names=None) -> Recording:
    """Read an EDF, EDF+, BDF or BDF+ recording.

    Parameters
    ----------
    path : str or Path
        The format is taken from the file's version field, not its name.
    label_names : sequence of str, optional
        Cue names: ``labels`` then come from the annotations (:func:`labels_from_markers`); an
        annotation with a duration whose text is a label ends its label when it ends.

    Returns
    -------
    Recording
        The signals at the highest sampling rate, in µV where their physical dimension names a
        voltage (else as stored, see ``units``); one segment; ``markers`` from the annotations.

    Raises
    ------
    RecordingError
        Missing, too large or malformed file, more signals than the cap, no data, or an EDF+D /
        BDF+D file with gaps.
    """
    return _read(Path(path), label_names, lazy=False)


def open_edf(path: str | Path, *, label_names=None) -> Recording:
    """:func:`read_edf`'s recording without its samples in memory: ``samples`` is a
    :class:`~edge.recordings.blocks.Blocks` read a run of data records at a time, ``sample_index``
    an empty array; every other field, and every value read, is :func:`read_edf`'s.

    Raises
    ------
    RecordingError
        As :func:`read_edf`.
    """
    return _read(Path(path), label_names, lazy=True)


def _layout(path: Path, header: dict) -> tuple[bytes, int, int]:
    """``(the header's bytes, bytes of one data record, whole data records in the file)``."""
    with path.open("rb") as fh:
        head = fh.read(header["header_bytes"])
    ns, width = header["n_signals"], 3 if header["format"] == "BDF" else 2
    spr = [head[256 + ns * 216 + 8 * i:256 + ns * 216 + 8 * (i + 1)].decode("latin-1").strip() for i in range(ns)]
    try:
        record = sum(int(v) for v in spr) * width
    except ValueError:
        raise RecordingError(path, None, f"samples per data record {spr}", f"numbers ({_EXPECTED})") from None
    return head, record, (header["size"] - header["header_bytes"]) // record if record > 0 else 0


def _records(path: Path, header: dict, head: bytes, record: int, runs) -> object:
    """edfio's reading of the data records in ``runs`` (``[a, b)`` each, in order), as one file."""
    import edfio

    parts = [head[:236], str(sum(b - a for a, b in runs)).ljust(8).encode("latin-1"), head[244:]]
    with path.open("rb") as fh:
        for a, b in runs:
            fh.seek(header["header_bytes"] + a * record)
            parts.append(fh.read((b - a) * record))
    read = edfio.read_bdf if header["format"] == "BDF" else edfio.read_edf
    return read(b"".join(parts), header_encoding="latin-1")


class _EdfRows(BlockReader):
    """The chosen signals' values (each times its unit's scale where that is not 1), a run of data
    records (about ``BLOCK_BYTES``) at a time."""

    def __init__(self, path: Path, header: dict, layout: tuple, chosen: list[int], spr: int, scales):
        super().__init__(layout[2] * spr, len(chosen))
        self._path, self._header, self._layout, self._chosen, self._spr = path, header, layout, chosen, spr
        self.path = path  # named by a read error (BlockReader.read)
        self._scales = scales
        self._per_block = max(1, blocks.BLOCK_BYTES // max(layout[1], 1))

    def block(self, row: int) -> tuple[int, np.ndarray]:
        a = row // self._spr
        b = min(self._layout[2], a + self._per_block)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the whole file's read said them
            signals = _records(self._path, self._header, *self._layout[:2], [(a, b)]).signals
        x = np.empty(((b - a) * self._spr, self.n_cols))
        for k, i in enumerate(self._chosen):
            x[:, k] = signals[i].data
            if self._scales[k] != 1.0:
                x[:, k] *= self._scales[k]
        return a * self._spr, x


def _annotations(path: Path, header: dict, layout: tuple) -> tuple[list, bool]:
    """Every annotation of the file (edfio's, sorted) and whether its records follow one another,
    read a run of records at a time."""
    head, record, n = layout
    step = max(1, blocks.BLOCK_BYTES // max(record, 1))
    first = Counter(_records(path, header, head, record, [(0, min(1, n))]).annotations)
    out, continuous = [], True
    for a in range(0, n, step):
        b = min(n, a + step)
        got = Counter(_records(path, header, head, record, [(0, 1), (a, b)] if a else [(0, b)]).annotations)
        out += (got - first if a else got).elements()
        if header["variant"].endswith("+D"):
            continuous = continuous and _records(path, header, head, record, [(max(a - 1, 0), b)]).is_continuous
    return sorted(out), continuous


def _read(path: Path, label_names, lazy: bool) -> Recording:
    import edfio

    header = read_edf_header(path)
    fmt = header["format"]
    if lazy:
        layout = _layout(path, header)
        n_records, rest = layout[2], header["size"] - header["header_bytes"] - layout[2] * layout[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if lazy and rest:  # what edfio says of the whole file
            warnings.warn(f"Incomplete data record at the end of the {fmt} file. Data was truncated.", stacklevel=1)
        if lazy and header["n_records"] != n_records:
            warnings.warn(f"{fmt} header indicates {header['n_records']} data records, but file contains "
                          f"{n_records} records. Updating header.", stacklevel=1)
        try:
            # latin-1: every byte decodes, and "µV" as written by Windows tools comes out as µV.
            edf = (_records(path, header, *layout[:2], []) if lazy else
                   (edfio.read_bdf if fmt == "BDF" else edfio.read_edf)(path, header_encoding="latin-1"))
            signals = edf.signals
            if not signals:
                raise RecordingError(path, None, "only annotation signals", f"{_EXPECTED} with data signals")
            fs = max(float(s.sampling_frequency) for s in signals)
            fast = [abs(float(s.sampling_frequency) - fs) <= 1e-9 * fs for s in signals]
            chosen = [s for s, f in zip(signals, fast) if f]
            slower = [s for s, f in zip(signals, fast) if not f]
            if not lazy:
                annotations, continuous = edf.annotations, None
            elif header["n_signals"] > len(signals):  # annotation signals: read through the records
                annotations, continuous = _annotations(path, header, layout)
            else:
                annotations, continuous = [], True
            if header["variant"].endswith("+D") and not (continuous if lazy else edf.is_continuous):
                raise RecordingError(path, None, f"a discontinuous {header['variant']} recording with gaps between "
                                     "data records", f"a continuous {fmt}+C recording (neurogrip never bridges a "
                                     "gap: export the continuous parts as separate files)")
            for s in chosen:
                _check_calibration(path, s)
            if not lazy:
                # one column at a time into the result: a list of every signal's float64 values, then
                # their stack, held the recording three times at once (issue 24)
                first = np.asarray(chosen[0].data, dtype=np.float64)
                x = np.empty((len(first), len(chosen)), np.float64)
                x[:, 0] = first
                del first
                for k, s in enumerate(chosen[1:], 1):
                    x[:, k] = s.data
        except RecordingError:
            raise
        except Exception as exc:  # noqa: BLE001 - edfio raises many kinds on a malformed file
            raise RecordingError(path, None, f"edfio cannot read it ({type(exc).__name__}: {clip(str(exc))})",
                                 _EXPECTED) from None
    for w in caught:
        log.warning("%s: %s", path, w.message)
    n_annotation = header["n_signals"] - len(signals)
    log.info("%s: %d signal(s) at %g Hz%s%s", path, len(chosen), fs,
             f"; skipped {len(slower)} slower signal(s): {quoted_names([s.label for s in slower])}" if slower else "",
             f"; {n_annotation} {fmt} Annotations signal(s) read as markers" if n_annotation else "")
    n = n_records * chosen[0].samples_per_data_record if lazy else x.shape[0]
    if n == 0:
        raise RecordingError(path, None, "no data records", f"{_EXPECTED} with at least one data record")
    labels = [s.label.strip() for s in chosen]
    if not all(labels) or len(set(labels)) != len(labels):
        log.warning("%s: channel labels are empty or repeated (%s); using ch0..ch%d", path, quoted_names(labels),
                    len(labels) - 1)
        labels = [f"ch{i}" for i in range(len(labels))]
    dims = [s.physical_dimension for s in chosen]
    if lazy:
        scales, units = unit_scales(path, labels, dims)
        x = Blocks(_EdfRows(path, header, layout, [i for i, f in enumerate(fast) if f],
                            chosen[0].samples_per_data_record, scales))
    else:
        x, units = to_uv(path, labels, dims, np.ascontiguousarray(x))
    events = sorted(((_onset_row(a.onset, fs), a.onset, a.text.strip(), a.duration or 0.0) for a in annotations),
                    key=lambda e: e[1])
    markers = tuple((min(row, n), text) for row, _, text, _ in events)
    rec = Recording(samples=x, channels=tuple(labels), fs=fs, segments=np.array([[0, n]], dtype=np.int64),
                    sample_index=np.zeros(0, np.int64) if lazy else np.arange(n, dtype=np.int64), source=path,
                    markers=markers, units=units)
    if label_names is not None:
        rec.label_names = tuple(label_names)
        # A labelled annotation with a duration ends there: an "end" cue at its end (before any cue
        # starting on the same row, which sorts after it).
        ends = [(_onset_row(t + d, fs), t + d, STOP_MARKERS[0], -1) for _, t, text, d in events
                if d > 0 and text in rec.label_names]
        cues = sorted([(row, t, text, 0) for row, t, text, _ in events] + ends, key=lambda e: (e[0], e[3], e[1]))
        rec.labels = labels_from_markers(n, [(min(row, n), text) for row, _, text, _ in cues], rec.label_names)
    return rec
