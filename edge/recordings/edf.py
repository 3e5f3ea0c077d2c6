"""EDF, EDF+, BDF and BDF+ recordings, read with edfio (pure Python).

The fixed 256-byte header is parsed here first and the file refused (before edfio reads a byte
of it) when it is too large, declares too many signals or does not add up
(:data:`~edge.config.RECORDING_MAX_EDF_BYTES`, :data:`~edge.config.RECORDING_MAX_EDF_SIGNALS`).
The signals at the file's highest sampling rate form the recording (EDF allows one rate per
signal: slower ones, such as a 1 Hz oxygen saturation, are left out and said so in the log);
physical units are converted to µV where they name a voltage; EDF+/BDF+ annotations become the
recording's ``markers``.  A discontinuous EDF+D/BDF+D file whose records leave gaps is refused
(neurogrip never bridges a gap).
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np

from edge import config
from edge.errors import RecordingError
from edge.recordings._text import check_file, clip, quoted_names
from edge.recordings.base import STOP_MARKERS, Recording, labels_from_markers
from edge.recordings.xdf import to_uv

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
    import edfio

    path = Path(path)
    header = read_edf_header(path)
    fmt = header["format"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # latin-1: every byte decodes, and "µV" as written by Windows tools comes out as µV.
            edf = (edfio.read_bdf if fmt == "BDF" else edfio.read_edf)(path, header_encoding="latin-1")
            signals = edf.signals
            if not signals:
                raise RecordingError(path, None, "only annotation signals", f"{_EXPECTED} with data signals")
            fs = max(float(s.sampling_frequency) for s in signals)
            fast = [abs(float(s.sampling_frequency) - fs) <= 1e-9 * fs for s in signals]
            chosen = [s for s, f in zip(signals, fast) if f]
            slower = [s for s, f in zip(signals, fast) if not f]
            if header["variant"].endswith("+D") and not edf.is_continuous:
                raise RecordingError(path, None, f"a discontinuous {header['variant']} recording with gaps between "
                                     "data records", f"a continuous {fmt}+C recording (neurogrip never bridges a "
                                     "gap: export the continuous parts as separate files)")
            for s in chosen:
                _check_calibration(path, s)
            # one column at a time into the result: a list of every signal's float64 values, then
            # their stack, held the recording three times at once (issue 24)
            first = np.asarray(chosen[0].data, dtype=np.float64)
            x = np.empty((len(first), len(chosen)), np.float64)
            x[:, 0] = first
            del first
            for k, s in enumerate(chosen[1:], 1):
                x[:, k] = s.data
            annotations = edf.annotations
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
    if x.shape[0] == 0:
        raise RecordingError(path, None, "no data records", f"{_EXPECTED} with at least one data record")
    labels = [s.label.strip() for s in chosen]
    if not all(labels) or len(set(labels)) != len(labels):
        log.warning("%s: channel labels are empty or repeated (%s); using ch0..ch%d", path, quoted_names(labels),
                    len(labels) - 1)
        labels = [f"ch{i}" for i in range(len(labels))]
    x, units = to_uv(path, labels, [s.physical_dimension for s in chosen], np.ascontiguousarray(x))
    n = x.shape[0]
    events = sorted(((_onset_row(a.onset, fs), a.onset, a.text.strip(), a.duration or 0.0) for a in annotations),
                    key=lambda e: e[1])
    markers = tuple((min(row, n), text) for row, _, text, _ in events)
    rec = Recording(samples=x, channels=tuple(labels), fs=fs, segments=np.array([[0, n]], dtype=np.int64),
                    sample_index=np.arange(n, dtype=np.int64), source=path, markers=markers, units=units)
    if label_names is not None:
        rec.label_names = tuple(label_names)
        # A labelled annotation with a duration ends there: an "end" cue at its end (before any cue
        # starting on the same row, which sorts after it).
        ends = [(_onset_row(t + d, fs), t + d, STOP_MARKERS[0], -1) for _, t, text, d in events
                if d > 0 and text in rec.label_names]
        cues = sorted([(row, t, text, 0) for row, t, text, _ in events] + ends, key=lambda e: (e[0], e[3], e[1]))
        rec.labels = labels_from_markers(n, [(min(row, n), text) for row, _, text, _ in cues], rec.label_names)
    return rec
