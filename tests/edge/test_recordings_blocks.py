"""Recordings read in blocks (edge.recordings.blocks, open_recording): an XDF, EDF/BDF file, a Myo
folder or a CSV file opened without holding its samples gives, bit for bit, the recording its whole read gives;
an XDF's timestamps are pyxdf's own (clock synchronisation included), from files neurogrip's
XdfWriter wrote and from files laid out by hand as other writers lay them out (integer formats, a
chunk of a whole recording, a timestamp on every sample or on none); EDF+/BDF+ from pyedflib and
edfio; the CSV layouts (grasp-lift data and events, Muse, GAMEEMO) from the project's writers, laid
out by hand and the shared recordings, refused alike when malformed.  (LabRecorder's own files:
tests/edge/test_labrecorder_xdf.py.)
"""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path

import edfio
import numpy as np
import pyedflib
import pytest
import pyxdf

from edge import config
from edge.errors import RecordingError
from edge.recordings import (
    GRASP_LIFT_CHANNELS,
    GRASP_LIFT_EVENTS,
    MUSE_COLUMNS,
    Blocks,
    Recording,
    XdfWriter,
    blocks,
    open_gameemo,
    open_grasp_lift,
    open_muse,
    open_recording,
    opens_in_blocks,
    read_gameemo,
    read_grasp_lift,
    read_muse,
    read_recording,
    recording_rows,
    write_grasp_lift,
    write_muse,
)
from edge.recordings.edf import open_edf, read_edf
from edge.recordings.myo import open_myo, read_myo
from edge.recordings.xdf import open_xdf, read_xdf, xdf_timestamps
from edge.recordings.xdf_writer import chunk, varlen

FS = 250.0
FIELDS = ("channels", "fs", "units", "markers", "label_names", "state", "subject", "session", "source")


def _same(whole, opened, *, labels=True) -> None:
    """The opened recording is the whole one: every value (NaN where NaN), every field."""
    assert isinstance(opened.samples, Blocks) and opened.samples.shape == whole.samples.shape
    x = np.asarray(opened.samples)
    assert x.dtype == np.float64 and x.flags.c_contiguous
    assert np.array_equal(x.view(np.int64), whole.samples.view(np.int64))  # bit for bit, NaNs too
    assert np.array_equal(opened.segments, whole.segments) and opened.segments.dtype == np.int64
    for f in FIELDS:
        assert getattr(opened, f) == getattr(whole, f), f
    if labels and whole.labels is not None:
        assert np.array_equal(opened.labels, whole.labels)
    assert opened.timestamps is None and opened.sample_index.size == 0


def _pyxdf_stamps(path: Path, name: str) -> np.ndarray:
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    return next(s for s in streams if s["info"]["name"][0] == name)["time_stamps"]


@pytest.fixture(params=[64, 4096, 1 << 20], ids=["64B", "4KB", "1MB"])
def block_bytes(request, monkeypatch):
    """Blocks of a few samples (one chunk in many blocks, a sample cut across two reads) and larger."""
    monkeypatch.setattr(blocks, "BLOCK_BYTES", request.param)
    return request.param


# -- XDF written by neurogrip's writer -------------------------------------------------------------

def _stamps(n: int, seed: int, t0: float = 1000.0) -> np.ndarray:
    """Mostly nominal steps, summed as pyxdf deduces them (the writer then omits those timestamps),
    some jittered, a gap of lost samples and a clock stepping back."""
    rng = np.random.default_rng(seed)
    t = np.empty(n)
    t[0] = t0
    for k in range(1, n):
        t[k] = t[k - 1] + 1 / FS
    t += np.where(rng.random(n) < 0.3, rng.uniform(-2e-4, 2e-4, n), 0.0)
    t[n // 2:] += 0.5          # lost samples
    t[3 * n // 4:] -= 2.0      # a clock stepping back
    return t


def _session(path: Path, n: int = 6000, *, fmt: str = "float32", chunk_rows: int = 97, clock=None,
             nan_rows=(), other_streams: bool = True) -> Path:
    rng = np.random.default_rng(n)
    x = rng.normal(scale=30.0, size=(n, 4))
    x[list(nan_rows), 1] = np.nan
    t = _stamps(n, 1)
    units = ["microvolts", "V", "mV", "bananas"]
    with XdfWriter(path) as w:
        eeg = w.add_stream("eeg", "EEG", 4, FS, fmt, channels=[{"label": f"C{i}", "unit": u, "type": "EEG"}
                                                              for i, u in enumerate(units)])
        if other_streams:
            cues = w.add_stream("cues", "Markers", 1, 0.0, "string")
            level = w.add_stream("level", "Markers", 1, 0.0, "double64")
            acc = w.add_stream("acc", "Accelerometer", 3, 50.0)
        for a in range(0, n, chunk_rows):
            w.write_samples(eeg, t[a:a + chunk_rows], x[a:a + chunk_rows])
            if other_streams:
                w.write_samples(acc, t[a:a + 3], rng.normal(size=(len(t[a:a + 3]), 3)))
        if clock is not None:
            for k, (tc, v) in enumerate(clock):
                w.write_clock_offset(eeg, tc, v)
                if other_streams:
                    w.write_clock_offset(cues, tc, v + 0.01 * (k % 2))
        if other_streams:
            rows = [r * n // 6000 for r in (10, 900, 2500, 4000, 5000)]
            w.write_samples(cues, t[rows] - 1e-4, ["left", "pause", "right", "left", "end"])
            w.write_samples(level, [t[50], t[n // 2 + 100]], [[1.5], [2.0]])
    return path


@pytest.mark.parametrize("fmt", ["float32", "double64"])
def test_an_xdf_opened_is_the_xdf_read(tmp_path, block_bytes, fmt):
    path = _session(tmp_path / "s.xdf", fmt=fmt, nan_rows=(5, 6, 3000))
    whole = read_xdf(path, label_names=("left", "right"))
    opened = open_xdf(path, label_names=("left", "right"))
    _same(whole, opened)
    assert len(whole.segments) == 3 and len(whole.markers) == 7  # the gap and the step back; both marker streams
    stamps = np.concatenate(list(xdf_timestamps(path)))
    assert np.array_equal(stamps.view(np.int64), _pyxdf_stamps(path, "eeg").view(np.int64))
    assert recording_rows(path) == whole.n_samples


def test_a_giant_chunk_and_a_cut_file(tmp_path, block_bytes):
    """One Samples chunk of the whole recording (read a block of it at a time), and the same file cut
    inside a chunk (read up to its last whole chunk, as pyxdf reads it)."""
    path = _session(tmp_path / "one.xdf", n=3000, chunk_rows=3000, other_streams=False)
    _same(read_xdf(path), open_xdf(path))
    cut = tmp_path / "cut.xdf"
    data = _session(tmp_path / "many.xdf", n=3000, chunk_rows=100).read_bytes()
    cut.write_bytes(data[:len(data) * 2 // 3])
    whole, opened = read_xdf(cut), open_xdf(cut)
    _same(whole, opened)
    assert 0 < whole.n_samples < 3000


def test_clock_offsets_are_applied_as_pyxdf_applies_them(tmp_path, caplog):
    """A drifting clock (one fit: walked and mapped a block at a time, checked against pyxdf), and a
    clock reset pyxdf maps piece by piece (then its timestamps are pyxdf's, read whole)."""
    t = _stamps(6000, 1)
    drift = [(tc, 1e-3 + 2e-6 * (tc - 1000)) for tc in np.arange(t.min(), t.max(), 5.0)]
    reset = [(tc, 1e-3 if tc < 1010 else 250.0) for tc in np.arange(990.0, 1030.0, 2.0)]
    reset = [(tc + (15.0 if tc >= 1010 else 0.0), v) for tc, v in reset]  # a pause, then another clock
    for name, clock in (("drift", drift), ("reset", reset)):
        path = _session(tmp_path / f"{name}.xdf", clock=clock)
        with caplog.at_level(logging.INFO, logger="edge.recordings.xdf"):
            caplog.clear()
            stamps = np.concatenate(list(xdf_timestamps(path)))
            _same(read_xdf(path, label_names=("left", "right")), open_xdf(path, label_names=("left", "right")))
        assert np.array_equal(stamps.view(np.int64), _pyxdf_stamps(path, "eeg").view(np.int64)), name
        assert ("read whole" in caplog.text) == (name == "reset"), caplog.text


def _raw_xdf(path: Path, fmt: str, values: np.ndarray, stamps: np.ndarray, flags: np.ndarray, per_chunk: int):
    """An XDF laid out by hand, as other writers may: any value format, a timestamp byte of any
    non-zero value, no footer, no file header."""
    n_ch = values.shape[1]
    head = (f"<?xml version='1.0'?><info><name>raw</name><type>EMG</type><channel_count>{n_ch}</channel_count>"
            f"<nominal_srate>{FS}</nominal_srate><channel_format>{fmt}</channel_format></info>").encode()
    out = [b"XDF:", chunk(2, struct.pack("<I", 7) + head)]
    dtype = np.dtype({"int8": "<i1", "int16": "<i2", "int32": "<i4", "int64": "<i8", "float32": "<f4"}[fmt])
    for a in range(0, len(values), per_chunk):
        body = b"".join((bytes([f]) + struct.pack("<d", s) if f else b"\x00") + v.astype(dtype).tobytes()
                        for f, s, v in zip(flags[a:a + per_chunk], stamps[a:a + per_chunk],
                                           values[a:a + per_chunk]))
        out.append(chunk(3, struct.pack("<I", 7) + varlen(len(values[a:a + per_chunk])) + body))
    path.write_bytes(b"".join(out))
    return path


@pytest.mark.parametrize("fmt", ["int8", "int16", "int32", "int64", "float32"])
@pytest.mark.parametrize("stamped", ["all", "none", "some"])
def test_xdf_laid_out_by_other_writers(tmp_path, block_bytes, fmt, stamped):
    rng = np.random.default_rng(3)
    n = 2000
    values = rng.integers(-100, 100, (n, 3))
    if fmt == "float32":
        values = rng.normal(size=(n, 3)).astype(np.float32)
        values.view(np.uint32)[7, 0] = 0x7F800001  # a signalling NaN: a NaN, quietly, both ways
    stamps = 500.0 + np.arange(n) / FS + rng.uniform(-1e-4, 1e-4, n)
    flags = {"all": np.full(n, 8), "none": np.zeros(n, int), "some": rng.choice([0, 1, 8, 255], n)}[stamped]
    path = _raw_xdf(tmp_path / "raw.xdf", fmt, values, stamps, flags, per_chunk=333)
    with np.errstate(invalid="ignore"):
        _same(read_xdf(path), open_xdf(path))
    ours = np.concatenate(list(xdf_timestamps(path)))
    assert np.array_equal(ours.view(np.int64), _pyxdf_stamps(path, "raw").view(np.int64))


def test_xdf_stream_picked_by_name_and_refusals_alike(tmp_path):
    path = _session(tmp_path / "s.xdf")
    _same(read_xdf(path, stream="acc"), open_xdf(path, stream="acc"))
    for stream in ("nothing", None):
        bad = tmp_path / "bad.xdf"
        with XdfWriter(bad) as w:
            w.add_stream("cues", "Markers", 1, 0.0, "string")
        with pytest.raises(RecordingError) as whole:
            read_xdf(bad, stream=stream)
        with pytest.raises(RecordingError) as opened:
            open_xdf(bad, stream=stream)
        assert str(whole.value) == str(opened.value)
        bad.unlink()


# -- Blocks ---------------------------------------------------------------------------------------

def test_blocks_slice_like_the_array(tmp_path, block_bytes):
    path = _session(tmp_path / "s.xdf", n=3000)
    x, b = read_xdf(path).samples, open_xdf(path).samples
    rng = np.random.default_rng(0)
    for _ in range(30):  # forwards and back
        i, j = sorted(rng.integers(0, len(x) + 1, 2))
        cols = list(rng.permutation(4)[:rng.integers(1, 5)])
        for key in ((slice(i, j), cols), slice(i, j), (slice(None), slice(1, 3)), (slice(-50, None), [3, 0])):
            got = b[key]
            assert isinstance(got, Blocks) and got.shape == x[key].shape
            assert np.array_equal(np.asarray(got), x[key], equal_nan=True)
        assert np.array_equal(np.asarray(b[:, cols][i:j]), x[:, cols][i:j], equal_nan=True)
    assert np.asarray(b[10:5]).shape == (0, 4) and len(b) == len(x)
    with pytest.raises(TypeError, match="slice of rows of step 1"):
        b[::2]
    with pytest.raises(TypeError, match="slice of rows"):
        b[3]


# -- EDF+ / BDF+ ----------------------------------------------------------------------------------

def _pyedflib(path: Path, kind: str, seconds: int = 40) -> Path:
    """Four 256 Hz signals (one in mV), a 1 Hz one, annotations with and without durations."""
    bdf = kind == "bdf"
    dmin, dmax = (-8388608, 8388607) if bdf else (-32768, 32767)
    rng = np.random.default_rng(2)
    headers = [{"label": c, "dimension": u, "sample_frequency": 256, "physical_min": -200.0, "physical_max": 200.0,
                "digital_min": dmin, "digital_max": dmax} for c, u in (("Fp1", "uV"), ("Fp2", "uV"), ("Cz", "mV"),
                                                                      ("Pz", "uV"))]
    headers.append({"label": "SpO2", "dimension": "%", "sample_frequency": 1, "physical_min": 0,
                    "physical_max": 100, "digital_min": dmin, "digital_max": dmax})
    with pyedflib.EdfWriter(str(path), 5, file_type=pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS) as f:
        f.setSignalHeaders(headers)
        f.writeSamples([rng.normal(scale=40, size=256 * seconds).clip(-199, 199) for _ in range(4)]
                       + [np.full(seconds, 97.0)])
        for k in range(seconds - 1):
            f.writeAnnotation(k + 0.3, 1.5 if k % 3 == 0 else -1, ("left", "right", "end", "note")[k % 4])
        f.writeAnnotation(0.3, 1.5, "left")  # the first one again
    return path


@pytest.mark.parametrize("kind", ["edf", "bdf"])
def test_an_edf_opened_is_the_edf_read(tmp_path, block_bytes, kind):
    path = _pyedflib(tmp_path / f"rec.{kind}", kind)
    whole, opened = read_edf(path, label_names=("left", "right")), open_edf(path, label_names=("left", "right"))
    _same(whole, opened)
    assert len(whole.markers) == 40 and whole.labels.any() and recording_rows(path) == whole.n_samples
    # a last data record cut short, and a header that counts another number of records: edfio's warnings
    data = path.read_bytes()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(data[:len(data) - 100])
    _same(read_edf(cut), open_edf(cut))
    assert open_edf(cut).n_samples == whole.n_samples - 256


def test_edf_written_by_edfio_without_annotations(tmp_path, block_bytes):
    path = tmp_path / "edfio.edf"
    x = np.random.default_rng(4).normal(scale=30e-6, size=(128 * 60, 2))
    edfio.Edf([edfio.EdfSignal(x[:, 0], 128, label="Oz", physical_dimension="V", physical_range=(-2e-4, 2e-4)),
               edfio.EdfSignal(x[:, 1], 128, label="Pz", physical_dimension="uV", physical_range=(-1, 1))]).write(path)
    _same(read_edf(path), open_edf(path))


# -- Myo folders ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("where", "continuous"), [("Male1/training0", True), ("Male1", True), ("Male1", False)])
def test_a_myo_folder_opened_is_the_folder_read(shared_data, where, continuous):
    path = shared_data / "myo_armband" / "EvaluationDataset" / where
    _same(read_myo(path, continuous=continuous), open_myo(path, continuous=continuous))
    assert recording_rows(path) == read_myo(path).n_samples


def test_a_myo_file_changed_after_it_was_opened_is_refused(shared_data, tmp_path):
    src = shared_data / "myo_armband" / "EvaluationDataset" / "Male1" / "training0"
    folder = tmp_path / "training0"
    folder.mkdir()
    for k in range(28):
        (folder / f"classe_{k}.dat").write_bytes((src / f"classe_{k}.dat").read_bytes())
    rec = open_recording(folder)
    (folder / "classe_3.dat").write_bytes((src / "classe_3.dat").read_bytes()[:-16])
    with pytest.raises(RecordingError, match="when it was opened"):
        np.asarray(rec.samples)


# -- CSV layouts ----------------------------------------------------------------------------------


def _same_csv(whole, opened) -> None:
    """As :func:`_same`, for a CSV layout's recording (its labels too)."""
    _same(whole, opened)
    assert (opened.labels is None) == (whole.labels is None)


def _grasp_lift_rec(n: int = 3000, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    ids = np.arange(n) + np.cumsum(rng.random(n) < 0.01) * 37  # ids jumping: gaps
    return Recording(samples=rng.integers(-3000, 3000, (n, 32)).astype(float), channels=GRASP_LIFT_CHANNELS,
                     fs=500.0, segments=np.array([[0, n]]), sample_index=ids,
                     labels=(rng.random((n, 6)) < 0.1).astype(np.uint8), label_names=GRASP_LIFT_EVENTS,
                     subject="3", session="4")


def _muse_rec(n: int = 3000) -> Recording:
    rng = np.random.default_rng(5)
    t = 1.6e9 + np.arange(n) / 256.0
    t[n // 3:] += 0.5  # a gap
    return Recording(samples=rng.normal(scale=300, size=(n, 5)), channels=MUSE_COLUMNS[1:], fs=256.0,
                     segments=np.array([[0, n]]), sample_index=np.arange(n), timestamps=t)


@pytest.mark.parametrize("compress", [False, True])
def test_a_grasp_lift_series_opened_is_the_series_read(tmp_path, block_bytes, compress):
    data, _ = write_grasp_lift(_grasp_lift_rec(), tmp_path, compress=compress)
    whole, opened = read_grasp_lift(data), open_grasp_lift(data)
    _same_csv(whole, opened)
    assert len(whole.segments) > 10 and whole.labels.any()
    assert recording_rows(data) == whole.n_samples
    _same_csv(read_grasp_lift(data, events=False), open_grasp_lift(data, events=False))
    assert isinstance(open_recording(data).samples, Blocks) and opens_in_blocks(data)


def test_a_muse_file_opened_is_the_file_read(tmp_path, block_bytes):
    path = write_muse(_muse_rec(), tmp_path / "subjectz-relaxed-2.csv")
    whole, opened = read_muse(path), open_muse(path)
    _same_csv(whole, opened)
    assert len(whole.segments) == 2 and whole.state == "relaxed"
    other = tmp_path / "mine.csv"  # a Muse file recognised by its header
    other.write_bytes(path.read_bytes())
    _same_csv(read_recording(other), open_recording(other))


@pytest.mark.parametrize("variant", ["crlf", "cr", "bom", "no-final-newline", "blank-lines-after", "gz"])
def test_csv_line_ends_and_tails(tmp_path, block_bytes, variant):
    """CR LF (one cut across two reads), old Mac CRs, a byte-order mark, a last line without its end
    (a trailing partial line), empty lines after the last row: as the whole read reads them."""
    data, events = write_grasp_lift(_grasp_lift_rec(800, 1), tmp_path, compress=False)
    text = data.read_bytes()
    text = {"crlf": text.replace(b"\n", b"\r\n"), "cr": text.replace(b"\n", b"\r"), "bom": b"\xef\xbb\xbf" + text,
            "no-final-newline": text[:-1], "blank-lines-after": text + b"\n\r\n\n", "gz": text}[variant]
    if variant == "gz":
        gz = tmp_path / "gz"
        gz.mkdir()
        data, ev = gz / (data.name + ".gz"), gz / (events.name + ".gz")
        data.write_bytes(gzip.compress(text.replace(b"\n", b"\r\n"), mtime=0))
        ev.write_bytes(gzip.compress(events.read_bytes(), mtime=0))
    else:
        data.write_bytes(text)
    _same_csv(read_grasp_lift(data), open_grasp_lift(data))


def _refusal(read, opener, path) -> str:
    with pytest.raises(RecordingError) as whole:
        read(path)
    with pytest.raises(RecordingError) as opened:
        opener(path)
    assert str(whole.value) == str(opened.value)
    return str(opened.value)


@pytest.mark.parametrize("bad", ["cell", "nan", "cells", "blank", "id-back", "id-dup", "ev-id", "ev-count",
                                 "ev-value", "ev-cell", "header", "empty", "long-line"])
def test_malformed_csv_refused_alike(tmp_path, block_bytes, monkeypatch, bad):
    data, events = write_grasp_lift(_grasp_lift_rec(600, 2), tmp_path, compress=False)
    lines, ev = data.read_text().split("\n"), events.read_text().split("\n")
    k = 450  # a line far into the file (many blocks)
    cells = lines[k].split(",")
    if bad == "cell":
        lines[k] = ",".join(cells[:5] + ["oops"] + cells[6:])
    elif bad == "nan":
        lines[k] = ",".join(cells[:5] + ["nan"] + cells[6:])
    elif bad == "cells":
        lines[k] += ",7"
    elif bad == "blank":
        lines.insert(k, "")
    elif bad in ("id-back", "id-dup"):
        prev = int(lines[k - 1].split(",")[0].rsplit("_", 1)[1])
        lines[k] = ",".join([f"subj3_series4_{prev - (bad == 'id-back')}"] + cells[1:])
    elif bad == "ev-id":
        ev[k] = ",".join(["subj3_series4_999999"] + ev[k].split(",")[1:])
    elif bad == "ev-count":
        ev = ev[:k] + ev[-1:]
    elif bad == "ev-value":
        ev[k] = ",".join(ev[k].split(",")[:3] + ["2"] + ev[k].split(",")[4:])
    elif bad == "ev-cell":
        ev[k] = ev[k] + ",1"
    elif bad == "header":
        lines[0] = lines[0].replace("Fp1,Fp2", "Fp2,Fp1")
    elif bad == "empty":
        lines = lines[:1]
    elif bad == "long-line":
        monkeypatch.setattr(config, "RECORDING_MAX_LINE_BYTES", 1000)
        lines[k] += "1" * 2000
    data.write_text("\n".join(lines))
    events.write_text("\n".join(ev))
    message = _refusal(read_grasp_lift, open_grasp_lift, data)
    assert "line" in message or bad == "empty"


def test_muse_refusals_alike(tmp_path, block_bytes):
    path = write_muse(_muse_rec(1000), tmp_path / "subjectz-neutral-1.csv")
    lines = path.read_text().split("\n")
    lines[700] = lines[699].split(",")[0] + "," + lines[700].split(",", 1)[1]  # a duplicated timestamp
    path.write_text("\n".join(lines))
    assert "duplicated timestamp" in _refusal(read_muse, open_muse, path)
    lines[900] = "9e20," + lines[900].split(",", 1)[1]  # ... and a span too long, which is said first
    path.write_text("\n".join(lines))
    assert "spanning" in _refusal(read_muse, open_muse, path)


def test_a_csv_file_changed_after_it_was_opened_is_refused(tmp_path, block_bytes):
    data, _ = write_grasp_lift(_grasp_lift_rec(500), tmp_path, compress=False)
    rec = open_grasp_lift(data)
    data.write_bytes(data.read_bytes()[:-200])
    with pytest.raises(RecordingError, match="changed (since it was opened|while it was read)"):
        np.asarray(rec.samples)


def test_csv_blocks_slice_like_the_array(tmp_path, block_bytes):
    data, _ = write_grasp_lift(_grasp_lift_rec(1500), tmp_path, compress=True)
    x, b = read_grasp_lift(data).samples, open_grasp_lift(data).samples
    rng = np.random.default_rng(1)
    for _ in range(20):  # forwards, back, and far ahead
        i, j = sorted(rng.integers(0, len(x) + 1, 2))
        cols = list(rng.permutation(32)[:rng.integers(1, 33)])
        assert np.array_equal(np.asarray(b[i:j, cols]), x[i:j, cols])
    assert np.array_equal(np.asarray(b[-7:]), x[-7:])


def _shared_csv(shared_data: Path) -> list[Path]:
    return (sorted((shared_data / "grasp_lift_segments").glob("subj1_series[12]_data.csv.gz"))
            + sorted((shared_data / "muse_mental_state").glob("subjecta-*-1.csv"))
            + sorted((shared_data / "gameemo").glob("*G1AllChannels.csv.gz"))[:1])


@pytest.mark.parametrize("block", [4096, 1 << 20])
def test_the_shared_csv_recordings_opened_are_the_recordings_read(shared_data, monkeypatch, block):
    monkeypatch.setattr(blocks, "BLOCK_BYTES", block)
    paths = _shared_csv(shared_data)
    assert len(paths) == 6
    for path in paths:
        whole = read_recording(path)
        _same_csv(whole, open_recording(path))
        assert recording_rows(path) == whole.n_samples and opens_in_blocks(path)


def test_gameemo_opened_is_gameemo_read(shared_data, monkeypatch):
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 64)
    path = max((shared_data / "gameemo").glob("*.csv.gz"))
    _same_csv(read_gameemo(path), open_gameemo(path))


def test_what_is_not_a_signal_is_not_opened(tmp_path):
    _, events = write_grasp_lift(_grasp_lift_rec(50), tmp_path, compress=False)
    table = tmp_path / "emotions.csv"
    table.write_text("mean_0_a,label\n1.0,NEGATIVE\n")
    for path in (events, table):
        assert not opens_in_blocks(path)
        with pytest.raises(RecordingError) as whole:
            read_recording(path)
        with pytest.raises(RecordingError) as opened:
            open_recording(path)
        assert str(whole.value) == str(opened.value)


@pytest.mark.parametrize("kind", ["xdf", "edf"])
def test_a_file_cut_after_it_was_opened_is_one_recording_error(tmp_path, block_bytes, kind):
    """Opened (checked whole), then cut short before its samples are read: every cut gives the one-line
    RecordingError, never an IndexError or struct.error from the walk or edfio's shapes."""
    path = _session(tmp_path / "s.xdf", n=3000) if kind == "xdf" else _pyedflib(tmp_path / "s.edf", "edf", 20)
    opener = open_xdf if kind == "xdf" else open_edf
    data = path.read_bytes()
    cuts = range(len(data) // 3, len(data) - 1, max(1, len(data) // 40))
    for cut in cuts:
        rec = opener(path)
        path.write_bytes(data[:cut])
        try:
            with pytest.raises(RecordingError, match="changed (since it was opened|while it was read)"):
                np.asarray(rec.samples)
        finally:
            path.write_bytes(data)
