"""Files from other tools: XDF (written by neurogrip's XdfWriter, read back by pyxdf itself and by
read_xdf) and EDF+/BDF+ (written by pyedflib and by edfio, read by read_edf).  Truncated files,
a full disk, the size caps, replay and `neurogrip info` on both."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import edfio
import numpy as np
import pyedflib
import pytest
import pyxdf

from edge import config
from edge.cli import main as cli_main
from edge.errors import RecordingError, RecordingWriteError
from edge.recordings import (
    XdfWriter,
    labels_from_markers,
    read_edf,
    read_recording,
    read_xdf,
)
from edge.recordings.xdf import scan_xdf
from edge.sources import open_source
from tests.conftest import drain

REPO = Path(__file__).resolve().parents[2]
FS = 250.0
CHANNELS = ("C3", "Cz", "C4", "Pz")


def _signal(n: int, n_ch: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=20.0, size=(n, n_ch))


def _jittered(n: int, t0: float = 1000.0, seed: int = 1) -> np.ndarray:
    """LSL-like timestamps: nominal steps with sub-millisecond jitter (all written explicitly)."""
    return t0 + np.arange(n) / FS + np.random.default_rng(seed).uniform(-2e-4, 2e-4, n)


def _write_session(path: Path, *, unit: str = "microvolts", gap_s: float = 0.0, footer=None,
                   chunk: int = 25) -> dict:
    """An EEG stream (two runs, with an optional gap between them) and a cue stream."""
    x = _signal(1000)
    t = _jittered(1000)
    t[500:] += gap_s
    cue_t = [t[100], t[300], t[400], t[450], t[700]]
    cue_x = ["left", "pause", "right", "gap", "end"]
    with XdfWriter(path) as w:
        eeg = w.add_stream("neurogrip-EEG", "EEG", 4, FS, channels=[{"label": c, "unit": unit, "type": "EEG"}
                                                                    for c in CHANNELS],
                           source_id="test-1", desc={"acquisition": {"manufacturer": "neurogrip"}})
        cues = w.add_stream("neurogrip-cues", "Markers", 1, 0.0, "string")
        for a in range(0, 1000, chunk):
            w.write_samples(eeg, t[a:a + chunk], x[a:a + chunk])
        w.write_samples(cues, cue_t, cue_x)
        w.close(footer=footer)
    return {"x": x, "t": t, "cue_t": cue_t, "cue_x": cue_x}


def _by_name(streams) -> dict:
    return {s["info"]["name"][0]: s for s in streams}


# --------------------------------------------------------------------------- XDF: write, read by pyxdf


def test_pyxdf_reads_what_the_writer_wrote(tmp_path):
    path = tmp_path / "session.xdf"
    s = _write_session(path, footer={"partial": "false", "gap_count": 0})
    streams, header = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    assert header["info"]["version"] == ["1.0"]
    by = _by_name(streams)
    eeg, cues = by["neurogrip-EEG"], by["neurogrip-cues"]
    assert eeg["info"]["type"] == ["EEG"] and eeg["info"]["channel_format"] == ["float32"]
    assert eeg["info"]["source_id"] == ["test-1"] and float(eeg["info"]["nominal_srate"][0]) == FS
    np.testing.assert_array_equal(eeg["time_series"], s["x"].astype(np.float32))
    np.testing.assert_array_equal(eeg["time_stamps"], s["t"])  # float64, exact
    chans = eeg["info"]["desc"][0]["channels"][0]["channel"]
    assert [c["label"][0] for c in chans] == list(CHANNELS)
    assert {c["unit"][0] for c in chans} == {"microvolts"} and {c["type"][0] for c in chans} == {"EEG"}
    assert eeg["info"]["desc"][0]["acquisition"][0]["manufacturer"] == ["neurogrip"]
    assert [row[0] for row in cues["time_series"]] == s["cue_x"]
    np.testing.assert_array_equal(cues["time_stamps"], s["cue_t"])
    foot = eeg["footer"]["info"]
    assert int(foot["sample_count"][0]) == 1000
    assert float(foot["first_timestamp"][0]) == s["t"][0] and float(foot["last_timestamp"][0]) == s["t"][-1]
    assert foot["neurogrip"][0] == {"partial": ["false"], "gap_count": ["0"]}
    assert int(cues["footer"]["info"]["sample_count"][0]) == 5


def test_deduced_timestamps_come_back_exact_and_save_space(tmp_path):
    n = 2000
    t = np.empty(n)
    t[0] = 12.5
    for k in range(1, n):  # as a recorder stamps a regular stream: previous + 1 / rate
        t[k] = t[k - 1] + 1.0 / FS
    x = _signal(n, 2)
    sizes = {}
    for name, ts in (("regular", t), ("jittered", _jittered(n))):
        path = tmp_path / f"{name}.xdf"
        with XdfWriter(path) as w:
            sid = w.add_stream("EEG", "EEG", 2, FS, "double64")
            for a in range(0, n, 100):
                w.write_samples(sid, ts[a:a + 100], x[a:a + 100])
        (s,), _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
        np.testing.assert_array_equal(s["time_stamps"], ts)
        np.testing.assert_array_equal(s["time_series"], x)  # double64: bit for bit
        sizes[name] = sum(b - a for a, b, tag in _chunks(path.read_bytes()) if tag == 3)
    # 8 bytes per sample less when every stamp but the first of the file is deduced
    assert sizes["jittered"] - sizes["regular"] == 8 * (n - 1)


def test_clock_offsets_are_written_and_applied_by_pyxdf(tmp_path):
    path = tmp_path / "clock.xdf"
    t = 100.0 + np.arange(500) / FS
    with XdfWriter(path) as w:
        sid = w.add_stream("EEG", "EEG", 1, FS)
        w.write_clock_offset(sid, 100.0, 0.25)
        w.write_samples(sid, t, np.zeros((500, 1)))
        w.write_clock_offset(sid, 102.0, 0.25)
    (s,), _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    np.testing.assert_allclose(s["time_stamps"], t + 0.25, atol=1e-9)
    assert len(s["footer"]["info"]["clock_offsets"][0]["offset"]) == 2


def test_multichannel_string_stream_and_utf8(tmp_path):
    path = tmp_path / "text.xdf"
    with XdfWriter(path) as w:
        sid = w.add_stream("Notes", "Markers", 2, 0.0, "string")
        w.write_samples(sid, [1.0, 2.0], [("grün", "a"), ("µV ✓", "x" * 300)])
    (s,), _ = pyxdf.load_xdf(str(path))
    assert s["time_series"] == [["grün", "a"], ["µV ✓", "x" * 300]]


def test_exiting_on_an_exception_marks_the_file_partial(tmp_path):
    path = tmp_path / "interrupted.xdf"
    with pytest.raises(KeyboardInterrupt), XdfWriter(path) as w:
        sid = w.add_stream("EEG", "EEG", 4, FS)
        w.write_samples(sid, _jittered(50), _signal(50))
        raise KeyboardInterrupt
    assert w.closed
    (s,), _ = pyxdf.load_xdf(str(path))
    assert s["footer"]["info"]["neurogrip"][0] == {"partial": ["true"], "reason": ["interrupted (Ctrl-C)"]}
    assert s["time_series"].shape == (50, 4)


def test_writer_refuses_bad_arguments_before_writing(tmp_path):
    w = XdfWriter(tmp_path / "args.xdf")
    with pytest.raises(ValueError, match="channel_format"):
        w.add_stream("EEG", "EEG", 4, FS, "int16")
    with pytest.raises(ValueError, match="one dict per channel"):
        w.add_stream("EEG", "EEG", 4, FS, channels=[{"label": "C3"}])
    with pytest.raises(ValueError, match="unknown keys"):
        w.add_stream("EEG", "EEG", 1, FS, channels=[{"name": "C3"}])
    with pytest.raises(ValueError, match="control character"):
        w.add_stream("EEG\x01", "EEG", 1, FS)
    with pytest.raises(ValueError, match="nominal_srate"):
        w.add_stream("EEG", "EEG", 1, -1.0)
    sid = w.add_stream("EEG", "EEG", 4, FS)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        w.write_samples(sid, [1.0, 2.0], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        w.write_samples(sid, [np.nan], np.zeros((1, 4)))
    with pytest.raises(ValueError, match="not a stream of this file"):
        w.write_samples(7, [1.0], np.zeros((1, 4)))
    with pytest.raises(ValueError, match="XML element name"):
        w.close(footer={"not a name": "x"})
    assert not w.closed  # a bad footer leaves the writer open
    w.close()
    w.close()  # idempotent
    with pytest.raises(RecordingWriteError, match="closed"):
        w.write_samples(sid, [1.0], np.zeros((1, 4)))
    (s,), _ = pyxdf.load_xdf(str(tmp_path / "args.xdf"))
    assert len(s["time_stamps"]) == 0 and s["footer"]["info"]["sample_count"] == ["0"]


# --------------------------------------------------------------------------- XDF: read_xdf


def test_read_xdf_units_segments_markers_labels(tmp_path):
    path = tmp_path / "cues.xdf"
    s = _write_session(path, unit="V", gap_s=0.5)
    rec = read_xdf(path, label_names=("left", "right"))
    assert rec.channels == CHANNELS and rec.fs == FS and rec.units == ("uV",) * 4
    np.testing.assert_allclose(rec.samples, s["x"].astype(np.float32).astype(np.float64) * 1e6, rtol=1e-12)
    np.testing.assert_array_equal(rec.timestamps, s["t"])
    np.testing.assert_array_equal(rec.segments, [[0, 500], [500, 1000]])  # the 0.5 s gap is not bridged
    assert np.all(np.diff(rec.sample_index) >= 1) and rec.sample_index[500] - rec.sample_index[499] == 126
    assert rec.markers == ((100, "left"), (300, "pause"), (400, "right"), (450, "gap"), (700, "end"))
    expected = np.zeros((1000, 2), np.uint8)
    expected[100:300, 0] = 1
    expected[400:700, 1] = 1  # "gap" changes nothing; "end" stops "right"
    np.testing.assert_array_equal(rec.labels, expected)
    assert rec.label_names == ("left", "right")
    assert read_xdf(path).labels is None


def test_read_xdf_picks_the_signal_stream(tmp_path):
    path = tmp_path / "many.xdf"
    with XdfWriter(path) as w:
        a = w.add_stream("amp-A", "EEG", 2, FS)
        b = w.add_stream("amp-B", "EEG", 3, FS)
        acc = w.add_stream("motion", "ACC", 3, 50.0)
        for sid, n_ch in ((a, 2), (b, 3), (acc, 3)):
            w.write_samples(sid, _jittered(10), _signal(10, n_ch))
    with pytest.raises(RecordingError, match="2 signal streams.*'amp-A'.*'amp-B'"):
        read_xdf(path)
    assert read_xdf(path, stream="amp-B").samples.shape == (10, 3)
    assert read_xdf(path, stream="acc").fs == 50.0  # by type, any case
    with pytest.raises(RecordingError, match="named or typed 'EMG'"):
        read_xdf(path, stream="EMG")
    # motion streams are not candidates; of one EEG stream and one EMG-less other, EEG wins
    path2 = tmp_path / "eeg_and_ppg.xdf"
    with XdfWriter(path2) as w:
        e = w.add_stream("Muse", "EEG", 4, 256.0)
        p = w.add_stream("Muse-PPG", "PPG", 3, 64.0)
        w.add_stream("Muse-ACC", "Accelerometer", 3, 52.0)
        w.write_samples(e, _jittered(5), _signal(5))
        w.write_samples(p, _jittered(5), _signal(5, 3))
    rec = read_xdf(path2)
    assert rec.fs == 256.0 and rec.channels == ("ch0", "ch1", "ch2", "ch3")  # no labels declared


def test_writer_killed_midway_leaves_a_file_both_readers_load(tmp_path):
    path = tmp_path / "killed.xdf"
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        from edge.recordings import XdfWriter
        w = XdfWriter({str(path)!r})
        sid = w.add_stream("EEG", "EEG", 4, {FS})
        cues = w.add_stream("cues", "Markers", 1, 0.0, "string")
        w.write_samples(cues, [10.0], ["left"])
        for k in range(8):
            w.write_samples(sid, 10.0 + (np.arange(25) + 25 * k) / {FS}, np.full((25, 4), float(k)))
        print("written", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
    streams, _ = pyxdf.load_xdf(str(path))
    eeg = _by_name(streams)["EEG"]
    assert eeg["time_series"].shape == (200, 4) and "footer" not in eeg
    rec = read_xdf(path, label_names=("left",))
    assert rec.n_samples == 200 and rec.markers == ((0, "left"),) and rec.labels.all()


def _chunks(data: bytes) -> list[tuple[int, int, int]]:
    """(start, end, tag) of every chunk, walked by the specification (independently of scan_xdf)."""
    out, pos = [], 4
    while pos < len(data):
        nb = data[pos]
        length = int.from_bytes(data[pos + 1:pos + 1 + nb], "little")
        tag = int.from_bytes(data[pos + 1 + nb:pos + 3 + nb], "little")
        out.append((pos, pos + 1 + nb + length, tag))
        pos += 1 + nb + length
    return out


def test_a_file_cut_mid_chunk_still_loads(tmp_path):
    full = tmp_path / "full.xdf"
    _write_session(full, chunk=100)
    data = full.read_bytes()
    assert scan_xdf(full) == (len(data), len(_chunks(data)), False)
    samples = [(a, b) for a, b, tag in _chunks(data) if tag == 3]
    cut = tmp_path / "cut.xdf"
    a, b = samples[5]  # cut inside the 6th EEG chunk: pyxdf itself reads the first 5
    cut.write_bytes(data[:(a + b) // 2])
    streams, _ = pyxdf.load_xdf(str(cut), dejitter_timestamps=False)
    assert len(_by_name(streams)["neurogrip-EEG"]["time_stamps"]) == 500
    assert read_xdf(cut).n_samples == 500
    assert scan_xdf(cut) == (a, len([c for c in _chunks(data) if c[1] <= a]), True)
    # Every cut gives the samples of the complete chunks or one RecordingError, never another error.
    seen = set()
    for k in range(0, len(data), 97):
        cut.write_bytes(data[:k])
        try:
            seen.add(read_xdf(cut).n_samples)
        except RecordingError as exc:
            assert any(m in str(exc) for m in ("'XDF:' magic", "no signal stream", "has no samples")), exc
    assert seen <= set(range(100, 1001, 100)) and 1000 in seen


def test_corrupt_chunks_are_refused_with_their_offset(tmp_path):
    path = tmp_path / "ok.xdf"
    _write_session(path)
    data = path.read_bytes()
    rng = np.random.default_rng(3)
    bad = tmp_path / "bad.xdf"
    for _ in range(150):  # flipped bytes: read as far as sane, or one RecordingError
        d = bytearray(data)
        for pos in rng.integers(0, len(d), 2):
            d[pos] = rng.integers(0, 256)
        bad.write_bytes(d)
        try:
            read_xdf(bad)
        except RecordingError:
            pass
    # A timestamp byte turned from "deduced" to "follows" would put pyxdf out of step: refused.
    t = np.empty(10)
    t[0] = 3.0
    for k in range(1, 10):
        t[k] = t[k - 1] + 1.0 / FS
    path = tmp_path / "deduced.xdf"  # XdfWriter never replaces a file
    with XdfWriter(path) as w:
        sid = w.add_stream("EEG", "EEG", 1, FS)
        w.write_samples(sid, t, np.zeros((10, 1)))
    data = bytearray(path.read_bytes())
    (_, end, _), = [c for c in _chunks(data) if c[2] == 3]
    flag = end - 5  # the last sample: a deduced-timestamp byte and one float32
    assert data[flag] == 0
    data[flag] = 8
    bad.write_bytes(data)
    with pytest.raises(RecordingError, match=r"byte \d+: a Samples chunk"):
        read_xdf(bad)
    bad.write_bytes(b"not an xdf file")
    with pytest.raises(RecordingError, match="no 'XDF:' magic"):
        read_xdf(bad)


def test_read_xdf_caps(tmp_path, monkeypatch):
    path = tmp_path / "s.xdf"
    _write_session(path)
    monkeypatch.setattr(config, "RECORDING_MAX_XDF_BYTES", 1000)
    with pytest.raises(RecordingError, match="over the 1000-byte limit.*RECORDING_MAX_XDF_BYTES"):
        read_xdf(path)
    monkeypatch.setattr(config, "RECORDING_MAX_XDF_BYTES", 1 << 30)
    monkeypatch.setattr(config, "RECORDING_MAX_COLUMNS", 3)
    with pytest.raises(RecordingError, match="channel_count 4"):
        read_xdf(path)
    monkeypatch.setattr(config, "RECORDING_MAX_COLUMNS", 4096)
    monkeypatch.setattr(config, "RECORDING_MAX_XDF_XML_BYTES", 100)
    with pytest.raises(RecordingError, match="an XML chunk of .* bytes"):
        read_xdf(path)
    with pytest.raises(RecordingError, match="file not found"):
        read_xdf(tmp_path / "missing.xdf")


# --------------------------------------------------------------------------- XDF: a full disk


@pytest.mark.parametrize("footer_fits", [True, False])
def test_disk_full_raises_and_leaves_a_readable_partial_file(tmp_path, footer_fits):
    """RLIMIT_FSIZE makes the kernel refuse writes past a size (EFBIG), as a full disk does (ENOSPC),
    including a chunk cut half-way; no mount needed.  After the error the footers fit in the room
    the cut-back chunk left, or (the limit lowered to the file's size) do not: readable either way."""
    path = tmp_path / "full.xdf"
    limit = 6000
    script = textwrap.dedent(f"""
        import os, resource, signal
        import numpy as np
        from edge.errors import RecordingWriteError
        from edge.recordings import XdfWriter
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        w = XdfWriter({str(path)!r})
        sid = w.add_stream("EEG", "EEG", 4, {FS})
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        written = 0
        try:
            for k in range(1000):
                w.write_samples(sid, 5.0 + (np.arange(30) + 30 * k) / 250.0 + 1e-5, np.full((30, 4), float(k)))
                written += 30
        except RecordingWriteError as exc:
            print("ERROR", exc, flush=True)
        if not {footer_fits}:
            size = os.path.getsize({str(path)!r})
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, {limit}))
        try:
            w.write_samples(sid, [1.0], np.zeros((1, 4)))
        except RecordingWriteError as exc:
            print("AGAIN", exc, flush=True)
        w.close(footer={{"reason": "disk full"}})
        print("WRITTEN", written, flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert str(path) in lines["ERROR"] and "File too large" in lines["ERROR"] and "free disk space" in lines["ERROR"]
    assert "stopped at an earlier error" in lines["AGAIN"]
    written = int(lines["WRITTEN"])
    assert path.stat().st_size <= limit
    (s,), _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    assert s["time_series"].shape == (written, 4) and written > 0
    np.testing.assert_array_equal(s["time_series"][::30, 0], np.arange(written // 30))
    if footer_fits:
        ours = s["footer"]["info"]["neurogrip"][0]
        assert ours["partial"] == ["true"] and ours["reason"] == ["disk full"]
        assert ours["write_error"] == ["cannot write (File too large)"]
    else:
        assert "footer" not in s
    assert read_xdf(path).n_samples == written
    assert scan_xdf(path)[2] is False  # no half chunk left behind


def test_an_unwritable_target_raises_recording_write_error(tmp_path):
    with pytest.raises(RecordingWriteError, match="/dev/full: cannot write .*free disk space"):
        XdfWriter("/dev/full")
    with pytest.raises(RecordingWriteError, match="cannot be created.*create the folder"):
        XdfWriter(tmp_path / "no" / "such.xdf")
    assert issubclass(RecordingWriteError, RecordingError)


# --------------------------------------------------------------------------- labels from markers


def test_labels_from_markers():
    markers = [(-3, "left"), (2, "gap"), (4, "right"), (6, "pause"), (8, "left"), (8, "right"), (12, "left")]
    y = labels_from_markers(10, markers, ("left", "right"))
    assert y.dtype == np.uint8 and y.shape == (10, 2)
    np.testing.assert_array_equal(y[:, 0], [1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(y[:, 1], [0, 0, 0, 0, 1, 1, 0, 0, 1, 1])  # the last of row 8 wins
    assert labels_from_markers(3, [], ("a",)).sum() == 0
    assert labels_from_markers(0, [(0, "a")], ("a",)).shape == (0, 1)
    with pytest.raises(ValueError, match="sorted"):
        labels_from_markers(5, [(3, "a"), (1, "a")], ("a",))
    with pytest.raises(ValueError, match="stop marker"):
        labels_from_markers(5, [], ("a", "end"))
    with pytest.raises(ValueError, match="distinct"):
        labels_from_markers(5, [], ("a", "a"))
    with pytest.raises(TypeError, match="one str"):
        labels_from_markers(5, [], "left")


# --------------------------------------------------------------------------- EDF+ / BDF+


def _pyedflib_file(path: Path, kind: str, unit: str, scale: float) -> np.ndarray:
    """256 Hz, 3 signals + one 1 Hz signal, annotations with and without durations."""
    fs, n = 256, 256 * 10
    x = np.random.default_rng(5).normal(scale=30.0, size=(n, 3)).clip(-190, 190)
    bdf = kind == "bdf"
    dmin, dmax = (-8388608, 8388607) if bdf else (-32768, 32767)
    headers = [{"label": c, "dimension": unit, "sample_frequency": fs, "physical_min": -200 / scale,
                "physical_max": 200 / scale, "digital_min": dmin, "digital_max": dmax} for c in ("Fp1", "Fp2", "Cz")]
    headers.append({"label": "SpO2", "dimension": "%", "sample_frequency": 1, "physical_min": 0,
                    "physical_max": 100, "digital_min": dmin, "digital_max": dmax})
    ftype = pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS
    with pyedflib.EdfWriter(str(path), 4, file_type=ftype) as f:
        f.setSignalHeaders(headers)
        f.writeSamples([x[:, 0] / scale, x[:, 1] / scale, x[:, 2] / scale, np.full(10, 97.0)])
        f.writeAnnotation(1.0, 2.0, "left")     # a cue with a duration: left for 2 s
        f.writeAnnotation(3.5, -1, "right")     # no duration: until the next cue
        f.writeAnnotation(4.0, -1, "artefact")  # not a label: changes nothing
        f.writeAnnotation(5.0, -1, "end")
    return x


@pytest.mark.parametrize(("kind", "unit", "scale"), [("edf", "uV", 1.0), ("bdf", "mV", 1e3), ("edf", "V", 1e6)])
def test_read_edf_written_by_pyedflib(tmp_path, caplog, kind, unit, scale):
    path = tmp_path / f"rec.{kind}"
    x = _pyedflib_file(path, kind, unit, scale)
    with caplog.at_level("INFO", logger="edge.recordings.edf"):
        rec = read_edf(path, label_names=("left", "right"))
    assert "skipped 1 slower signal(s): ['SpO2']" in caplog.text and "Annotations signal(s) read as markers" in caplog.text
    assert rec.channels == ("Fp1", "Fp2", "Cz") and rec.fs == 256.0 and rec.units == ("uV",) * 3
    step = 400.0 / (65535 if kind == "edf" else 16777215)  # physical range / digital range, in µV
    assert rec.samples.shape == x.shape and np.abs(rec.samples - x).max() <= step
    np.testing.assert_array_equal(rec.segments, [[0, x.shape[0]]])
    assert rec.markers == ((256, "left"), (896, "right"), (1024, "artefact"), (1280, "end"))
    expected = np.zeros((x.shape[0], 2), np.uint8)
    expected[256:768, 0] = 1   # left's 2 s duration ends it
    expected[896:1280, 1] = 1  # right holds until "end"
    np.testing.assert_array_equal(rec.labels, expected)


def test_read_edf_written_by_edfio_in_volts(tmp_path):
    path = tmp_path / "edfio.edf"
    t = np.arange(512) / 128.0
    x = np.sin(2 * np.pi * 10 * t) * 40e-6  # volts
    edf = edfio.Edf([edfio.EdfSignal(x, 128, label="EEG Oz", physical_dimension="V", physical_range=(-1e-4, 1e-4)),
                     edfio.EdfSignal(x * 1e3, 128, label="EEG Pz", physical_dimension="mV",
                                     physical_range=(-0.1, 0.1))],
                    annotations=[edfio.EdfAnnotation(0.5, None, "rest"), edfio.EdfAnnotation(2.0, 1.0, "lift")])
    edf.write(path)
    rec = read_recording(path)
    assert rec.channels == ("EEG Oz", "EEG Pz") and rec.fs == 128.0 and rec.labels is None
    step = 200 / 65535  # µV per digital step
    assert np.abs(rec.samples - x[:, None] * 1e6).max() <= step
    assert rec.markers == ((64, "rest"), (256, "lift"))
    rec = read_edf(path, label_names=("lift",))
    assert rec.labels[:, 0].sum() == 128 and rec.labels[256:384, 0].all()


def test_read_edf_refuses_before_edfio_reads(tmp_path, monkeypatch):
    path = tmp_path / "rec.edf"
    _pyedflib_file(path, "edf", "uV", 1.0)

    def no(*a, **k):
        raise AssertionError("edfio must not be called")

    monkeypatch.setattr(edfio, "read_edf", no)
    monkeypatch.setattr(config, "RECORDING_MAX_EDF_SIGNALS", 4)  # 4 signals + annotations = 5
    with pytest.raises(RecordingError, match="5 signals declared.*RECORDING_MAX_EDF_SIGNALS"):
        read_edf(path)
    monkeypatch.setattr(config, "RECORDING_MAX_EDF_SIGNALS", 1024)
    monkeypatch.setattr(config, "RECORDING_MAX_EDF_BYTES", 1024)
    with pytest.raises(RecordingError, match="over the 1024-byte limit.*RECORDING_MAX_EDF_BYTES"):
        read_edf(path)
    monkeypatch.setattr(config, "RECORDING_MAX_EDF_BYTES", 1 << 30)
    data = bytearray(path.read_bytes())
    bad = tmp_path / "bad.edf"
    for offset, field, match in ((252, b"abcd", "n_signals is 'abcd'"), (184, b"999     ", "a header of 999 bytes"),
                                 (0, b"1       ", "version field")):
        d = bytearray(data)
        d[offset:offset + len(field)] = field
        bad.write_bytes(d)
        with pytest.raises(RecordingError, match=match):
            read_edf(bad)
    bad.write_bytes(data[:100])
    with pytest.raises(RecordingError, match="a file of 100 bytes"):
        read_edf(bad)


def test_read_edf_damaged_files(tmp_path, caplog):
    path = tmp_path / "rec.bdf"
    x = _pyedflib_file(path, "bdf", "uV", 1.0)
    data = path.read_bytes()
    cut = tmp_path / "cut.bdf"
    cut.write_bytes(data[:len(data) - 1000])  # a recorder that stopped mid-record: whole records are read
    rec = read_edf(cut)
    assert rec.n_samples == x.shape[0] - 256 and np.abs(rec.samples - x[:rec.n_samples]).max() < 1e-3
    assert "Incomplete data record" in caplog.text
    ns = 5
    bad = bytearray(data)
    at = 256 + ns * (16 + 80 + 8)  # the first signal's physical minimum
    for field, match in ((b"low     ", "unreadable calibration field"), (b"200     ", "cannot be calibrated")):
        bad[at:at + 8] = field  # edfio would return raw digital values: refused instead
        cut.write_bytes(bad)
        with pytest.raises(RecordingError, match=match):
            read_edf(cut)


# --------------------------------------------------------------------------- through the rest of neurogrip


def test_read_recording_by_suffix_any_case(tmp_path):
    xdf = tmp_path / "S.XDF"
    _write_session(xdf)
    bdf = tmp_path / "R.BdF"
    _pyedflib_file(bdf, "bdf", "uV", 1.0)
    assert read_recording(xdf).n_samples == 1000
    assert read_recording(bdf).channels == ("Fp1", "Fp2", "Cz")


def test_replay_of_xdf_and_edf_delivers_every_sample(tmp_path):
    xdf = tmp_path / "gap.xdf"
    s = _write_session(xdf, gap_s=1.0)
    edf = tmp_path / "rec.edf"
    x = _pyedflib_file(edf, "edf", "uV", 1.0)
    for path, n, n_seg in ((xdf, 1000, 2), (edf, x.shape[0], 1)):
        with open_source(f"replay:{path}?speed=max") as src:
            chunks = drain(src)
        rec = src.recording
        if path == xdf:
            np.testing.assert_array_equal(np.concatenate([c.timestamps for c in chunks]), s["t"])
        got = np.concatenate([c.samples for c in chunks])
        assert got.shape == (n, rec.samples.shape[1])
        np.testing.assert_array_equal(got, rec.samples)
        assert sum(bool(c.discontinuity) for c in chunks) == n_seg - 1
        bounds = {int(a) for a in rec.segments[:, 0]}
        row = 0
        for c in chunks:  # no chunk straddles a segment boundary
            assert not any(row < b < row + len(c.samples) for b in bounds)
            row += len(c.samples)


def test_neurogrip_info_on_xdf_and_edf(tmp_path, capsys):
    xdf = tmp_path / "session.xdf"
    _write_session(xdf, gap_s=1.0)
    edf = tmp_path / "rec.edf"
    _pyedflib_file(edf, "edf", "uV", 1.0)
    assert cli_main(["info", str(xdf), str(edf)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{xdf}: 1000 samples x 4 channels at 250 Hz (4.0 s), 2 contiguous segment(s)")
    assert out[1].startswith(f"{edf}: 2560 samples x 3 channels at 256 Hz (10.0 s), 1 contiguous segment(s)")
    os.truncate(xdf, 10)
    assert cli_main(["info", str(xdf)]) != 0
    assert "no signal stream" in capsys.readouterr().err
