"""``neurogrip calibrate`` in bounded memory (issue 24): the session is read one file at a time, in
blocks, into windows kept as the filtered signal; a file over the values cap is read in blocks
from the file itself (XDF, EDF/BDF, a Myo folder, a CSV file: the same windows, bit for bit, as read
whole); a session over the window cap is thinned, not refused (the
same share of every label's windows, evenly over the session), and only a session too long even
then, or a bundle whose windows are too large for any, is refused; the largest session at
calibration's own stride, the longest one thinned and the longest single file stay within the
edge's footprint; and none of it changes a number calibration computes where nothing is thinned.

The footprint is measured as the edge bench does (benchmarks/calibration.py): ``neurogrip
calibrate`` in a child process reporting its own VmHWM.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge import config
from edge.bundle import load_bundle, write_bundle
from edge.calibration import calibrate
from edge.calibration.session import calibration_session
from edge.calibration.session_files import read_session
from edge.calibration.windows import (
    SessionRows,
    SessionWindows,
    WindowArray,
    calibration_stride,
    max_windows,
    session_windows,
    thinned_budget,
    thinned_windows,
    window_budget,
)
from edge.chain.signal_chain import segment_windows
from edge.errors import CalibrationError, RecordingError
from edge.recordings import (
    _text,
    read_grasp_lift,
    read_muse,
    read_recording,
    recording_values,
    write_grasp_lift,
)
from tests.conftest import FIXTURE_BUNDLES, REPO

FOOTPRINT_MB = 120.0  # the edge's peak RSS goal (docs/design.md §3), which calibration must keep too

# As benchmarks/calibration.py: VmHWM is the child's own high-water mark (ru_maxrss would start at
# the forking pytest's size).
_CHILD = ("import re, sys\nfrom edge import config\n"
          "if sys.argv[1] != '-':\n    config.CALIBRATION_MAX_VALUES = int(sys.argv[1])\n"
          "from edge.cli import main\nrc = main(sys.argv[2:])\n"
          "print('PEAK_RSS_KB', re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1))\n"
          "sys.exit(rc)")


def _calibrate_child(bundle, data, out: Path, max_values: int | None = None) -> tuple[int, float, str]:
    """``neurogrip calibrate`` in a child process (with ``CALIBRATION_MAX_VALUES`` set to ``max_values``):
    (exit code, peak RSS in MB, its output)."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, "-" if max_values is None else str(max_values), "calibrate",
                           "--bundle", str(FIXTURE_BUNDLES / bundle), "--data", *map(str, data), "--out", str(out),
                           "--force"],
                          capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    peak = re.search(r"PEAK_RSS_KB (\d+)", proc.stdout)
    assert peak, proc.stdout + proc.stderr
    return proc.returncode, int(peak.group(1)) / 1024, proc.stdout + proc.stderr


# -- sessions of a chosen size, tiled from the real recordings ------------------------------------

def _grasp_lift_rows(shared_data: Path) -> tuple[str, str, list[str], list[str]]:
    """The header lines and the id-less rows of subject 1's series 1-3 (data, events)."""
    rows, evs = [], []
    for k in (1, 2, 3):
        with gzip.open(shared_data / "grasp_lift_segments" / f"subj1_series{k}_data.csv.gz", "rt") as fh:
            head = fh.readline()
            rows += [line.split(",", 1)[1] for line in fh]
        with gzip.open(shared_data / "grasp_lift_segments" / f"subj1_series{k}_events.csv.gz", "rt") as fh:
            ev_head = fh.readline()
            evs += [line.split(",", 1)[1] for line in fh]
    return head, ev_head, rows, evs


def _write_grasp_lift(shared_data: Path, folder: Path, n_rows: int, tail: str = "") -> Path:
    """A continuous Kaggle pair of ``n_rows`` real rows (ids 0..n-1); ``tail`` is appended to the data."""
    head, ev_head, rows, evs = _grasp_lift_rows(shared_data)
    folder.mkdir(parents=True, exist_ok=True)
    pre = "subj9_series1_"
    data = folder / f"{pre}data.csv"
    data.write_text(head + "".join(f"{pre}{i},{rows[i % len(rows)]}" for i in range(n_rows)) + tail)
    (folder / f"{pre}events.csv").write_text(ev_head + "".join(f"{pre}{i},{evs[i % len(evs)]}" for i in range(n_rows)))
    return data


def _write_myo(shared_data: Path, folder: Path, n_rows: int) -> Path:
    """A Myo session folder of about ``n_rows`` rows: each real training0 file tiled to its share."""
    src = shared_data / "myo_armband" / "EvaluationDataset" / "Male1" / "training0"
    lengths = [(src / f"classe_{k}.dat").stat().st_size // 16 for k in range(28)]
    folder.mkdir(parents=True, exist_ok=True)
    for k, n in enumerate(lengths):
        x = np.fromfile(src / f"classe_{k}.dat", "<i2").reshape(-1, 8)
        np.resize(x, (n * n_rows // sum(lengths), 8)).astype("<i2").tofile(folder / f"classe_{k}.dat")
    return folder


def _write_muse(shared_data: Path, folder: Path, n_rows: int) -> list[Path]:
    """Three Muse files (one per state) of ``n_rows`` real rows each, timestamps continuous at 256 Hz."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for state in ("concentrating", "neutral", "relaxed"):
        rec = read_muse(shared_data / "muse_mental_state" / f"subjecta-{state}-1.csv")
        x = np.resize(rec.samples, (n_rows, rec.samples.shape[1]))
        lines = (f"{1.6e9 + i / 256.0:.6f}," + ",".join(f"{v:g}" for v in row) for i, row in enumerate(x.tolist()))
        path = folder / f"subjectz-{state}-1.csv"
        path.write_text("timestamps,TP9,AF7,AF8,TP10,Right AUX\n" + "\n".join(lines) + "\n")
        out.append(path)
    return out


def _write_xdf(shared_data: Path, path: Path, n_rows: int, t0: float, *, gaps: bool = False,
               clock: bool = False) -> Path:
    """A ``neurogrip record`` file: ``n_rows`` real grasp-lift rows (32 channels, 500 Hz, tiled) and a
    cue marker at each event's onset (its labels are ±150 ms around it, as the Kaggle files').
    ``gaps``: lost samples, rows of NaN and a clock stepping back; ``clock``: ClockOffset chunks of a
    drifting clock every 5 s, as LabRecorder writes them."""
    from edge.recordings import GRASP_LIFT_CHANNELS, GRASP_LIFT_EVENTS, XdfWriter

    src = [read_grasp_lift(shared_data / "grasp_lift_segments" / f"subj1_series{k}_data.csv.gz") for k in (1, 2, 3)]
    x = np.resize(np.concatenate([r.samples for r in src]), (n_rows, 32)).astype(np.float32)
    ev = np.resize(np.concatenate([r.labels for r in src]), (n_rows, 6)).astype(np.int8)
    t = t0 + np.arange(n_rows) / 500.0
    if gaps:
        t[n_rows // 3:] += 0.2
        t[2 * n_rows // 3:] -= 5.0
        x[n_rows // 2:n_rows // 2 + 40, 3] = np.nan
    half = round(config.EVENT_HALF_WIDTH_S * 500)
    cues = sorted((r, GRASP_LIFT_EVENTS[c]) for c in range(6)
                  for r in (np.flatnonzero(np.diff(ev[:, c]) == 1) + 1 + half).tolist() if r < n_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with XdfWriter(path) as w:
        eeg = w.add_stream("neurogrip-EEG", "EEG", 32, 500.0, source_id="test-long",
                           channels=[{"label": c, "unit": "microvolts", "type": "EEG"} for c in GRASP_LIFT_CHANNELS])
        markers = w.add_stream("neurogrip-cues", "Markers", 1, 0.0, "string")
        for a in range(0, n_rows, 5000):
            w.write_samples(eeg, t[a:a + 5000], x[a:a + 5000])
        for tc in np.arange(t0, t0 + n_rows / 500.0, 5.0) if clock else ():
            w.write_clock_offset(eeg, tc, 3e-4 + 1e-6 * (tc - t0))
            w.write_clock_offset(markers, tc, -2e-4)
        w.write_samples(markers, [t[r] for r, _ in cues], [name for _, name in cues])
        w.close(footer={"partial": "false", "gap_count": 0})
    return path


def _write_muse_xdf(shared_data: Path, path: Path, n_rows: int) -> Path:
    """A Muse recording as LabRecorder writes it (every timestamp, ClockOffset chunks every 5 s):
    ``n_rows`` real rows (5 channels, 256 Hz), a minute of each state in turn, each minute of that
    state's recording (tiled), and its cue."""
    from edge.recordings import MUSE_COLUMNS, MUSE_STATES, XdfWriter

    per = 256 * 60
    src = [np.resize(read_muse(shared_data / "muse_mental_state" / f"subjecta-{s}-1.csv").samples,
                     ((n_rows // per // 3 + 1) * per, 5)).astype(np.float32) for s in MUSE_STATES]
    x = np.empty((n_rows, 5), np.float32)
    for a in range(0, n_rows, per):
        m = a // per
        x[a:a + per] = src[m % 3][m // 3 * per:m // 3 * per + min(per, n_rows - a)]
    del src
    t = 4000.0 + np.arange(n_rows) / 256.0 + np.random.default_rng(0).uniform(-1e-4, 1e-4, n_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with XdfWriter(path) as w:
        eeg = w.add_stream("Muse", "EEG", 5, 256.0, source_id="muse",
                           channels=[{"label": c, "unit": "microvolts", "type": "EEG"} for c in MUSE_COLUMNS[1:]])
        cues = w.add_stream("cues", "Markers", 1, 0.0, "string")
        for a in range(0, n_rows, 256 * 5):
            w.write_samples(eeg, t[a:a + 256 * 5], x[a:a + 256 * 5])
            w.write_clock_offset(eeg, t[a], 1e-4 + 1e-9 * a)
            w.write_clock_offset(cues, t[a], 2e-4)
        rows = range(0, n_rows, per)
        w.write_samples(cues, [t[r] - 1 / 512 for r in rows], [MUSE_STATES[r // per % 3] for r in rows])
        w.close()
    return path


def _longest_file_rows(bundle) -> int:
    """The rows of the longest continuous file calibrate takes for ``bundle`` (max_windows windows)."""
    length, stride, f = int(bundle.window["length"]), calibration_stride(bundle), bundle.signal_chain().factor
    return ((max_windows(bundle) - 1) * stride + length) * f


def _longest(kind: str, shared_data: Path, folder: Path) -> list[Path]:
    """The longest session of ``kind`` calibrate thins rather than refuses (max_windows), in files
    the values cap takes (a Myo folder, a Muse file, a record file: each of them at that cap)."""
    bundle = load_bundle(FIXTURE_BUNDLES / "grasp-lift" if kind == "record" else FIXTURE_BUNDLES / kind)
    n = max_windows(bundle)
    length, stride, f = int(bundle.window["length"]), int(bundle.window["stride"]), bundle.signal_chain().factor
    if kind == "grasp-lift":  # four Kaggle series files (one folder each: their names are a series')
        rows = ((n // 4 - 1) * stride + length) * f
        return [_write_grasp_lift(shared_data, folder / f"s{k}", rows) for k in range(4)]
    if kind == "gesture":  # one training0 folder, 41 of the 52 min: its 8 channels reach the values cap
        return [_write_myo(shared_data, folder / "training0", config.CALIBRATION_MAX_VALUES // 8 - 10_000)]
    if kind == "emotion":  # three Muse files at the values cap, 43 min each (of the 51 the session may have)
        return _write_muse(shared_data, folder, config.CALIBRATION_MAX_VALUES // 6 - 2_000)
    # two record files at the values cap (with their timestamps and markers), 8 of the 11 min: the
    # heaviest read (pyxdf), the second one's while the first one's windows are held
    rows = config.CALIBRATION_MAX_VALUES * 4 // (32 * 4 + 8) - 3_000
    return [_write_xdf(shared_data, folder / f"session{k}.xdf", rows, 1000.0 + 10_000 * k) for k in range(2)]


def _at_the_window_cap(kind: str, shared_data: Path, folder: Path) -> list[Path]:
    """A continuous session of ``kind`` making as many windows as CALIBRATION_MAX_WINDOW_BYTES takes."""
    bundle = load_bundle(FIXTURE_BUNDLES / kind)
    n, rows = window_budget(bundle)
    if kind == "grasp-lift":
        return [_write_grasp_lift(shared_data, folder, rows)]
    if kind == "gesture":
        return [_write_myo(shared_data, folder / "training0", rows)]
    length, stride, f = int(bundle.window["length"]), int(bundle.window["stride"]), bundle.signal_chain().factor
    per_file = ((n // 3 - 1) * stride + length) * f  # three files, each its own segment
    return _write_muse(shared_data, folder, per_file)


def _far_off_base(kind: str, out: Path) -> Path:
    """The fixture bundle with its channel scales 50 times the person's: the person's normalisation is
    then chosen, and re-estimated on every window once judged (calibration's heaviest path)."""
    base = load_bundle(FIXTURE_BUNDLES / kind)
    m = json.loads(json.dumps(base.manifest))
    m["window"]["channel_scale"] = [50.0 * v for v in m["window"]["channel_scale"]]
    return write_bundle(out, m, base.model_bytes)


# -- the footprint --------------------------------------------------------------------------------

# Re-estimating the normalisation on every window (edge.model.inputs.window_spec) is done one
# channel (and, for band powers, 256 windows) at a time: it held five copies of the windows at once
# before, 152-174 MB at the cap; 94-110 MB after.
@pytest.mark.parametrize("kind", ["grasp-lift", "gesture", "emotion"])
def test_the_largest_session_the_caps_take_calibrates_within_the_footprint(kind, shared_data, tmp_path):
    """At CALIBRATION_MAX_WINDOW_BYTES (the binding cap: a continuous session's values are far under
    CALIBRATION_MAX_VALUES), for each kind of bundle: raw EEG windows, EMG with its time-domain
    expert, band-power features; the person's normalisation chosen (the heaviest path)."""
    data = _at_the_window_cap(kind, shared_data, tmp_path / "session")
    rc, peak, out = _calibrate_child(_far_off_base(kind, tmp_path / "base"), data, tmp_path / "mine")
    assert rc == 0 and "normalisation person" in out and "{'" not in out, out
    made = int(re.search(r"\[calibrate\] (\d+) windows", out).group(1))
    assert made >= 0.95 * window_budget(load_bundle(FIXTURE_BUNDLES / kind))[0], out  # really at the cap
    assert peak <= FOOTPRINT_MB, f"{kind}: peak RSS {peak:.1f} MB at the session cap\n{out[-600:]}"


@pytest.mark.parametrize("kind", ["grasp-lift", "gesture"])
def test_a_real_session_calibrates_within_the_footprint(kind, shared_data, tmp_path):
    """Sessions of the shared data: two grasp-lift series (74-75 MB; the three of issue 24 took
    143-146 MB before the streaming, 118-124 MB after it), a Myo training0 (79-82 MB; 89-93 before)."""
    data = _sessions(shared_data)[kind]
    rc, peak, out = _calibrate_child(kind, data, tmp_path / "mine")
    assert rc == 0, out
    assert peak <= FOOTPRINT_MB, f"{kind}: peak RSS {peak:.1f} MB\n{out[-600:]}"


# A long session was refused on its windows; its windows are now thinned.  Peaks (this machine,
# tflite_runtime / ai_edge_litert): grasp-lift 85 / 87 MB, gesture 91 / 93, emotion 99 / 101,
# record 99 / 100 (117 for two record files before glibc's mmap threshold was fixed,
# edge.calibration.session.map_large_blocks).
@pytest.mark.parametrize("kind", ["grasp-lift", "gesture", "emotion", "record"])
def test_a_long_session_calibrates_within_the_footprint(kind, shared_data, tmp_path):
    """The longest session of each kind calibrate takes (a few times the window cap, in files at the
    values cap): it calibrates, says in one line how far apart its windows were taken, records it
    in the bundle, and stays within the edge's footprint on the heaviest path."""
    data = _longest(kind, shared_data, tmp_path / "session")
    base = "grasp-lift" if kind == "record" else kind
    bundle = load_bundle(FIXTURE_BUNDLES / base)
    rc, peak, out = _calibrate_child(_far_off_base(base, tmp_path / "base"), data, tmp_path / "mine")
    assert rc == 0 and "normalisation person" in out and "{'" not in out, out
    said = re.search(r"\[calibrate\] session of (\d+) s: windows taken every ([\d.]+) ms on average instead of "
                     r"([\d.]+) ms to stay within 16 MB \(CALIBRATION_MAX_WINDOW_BYTES; (\d+) of (\d+) windows", out)
    assert said, out
    seconds, taken_ms, base_ms, kept, of = (float(v) for v in said.groups())
    fs_out = bundle.signal_chain().fs_out
    assert base_ms == pytest.approx(int(bundle.window["stride"]) * 1000.0 / fs_out)
    assert of > 2 * window_budget(bundle)[0] and kept == thinned_budget(bundle, 1 << 62)  # really long
    assert taken_ms == pytest.approx(base_ms * of / kept, rel=1e-3)
    assert taken_ms <= config.CALIBRATION_MAX_STRIDE_WINDOWS * int(bundle.window["length"]) * 1000.0 / fs_out
    assert re.search(rf"\[calibrate\] {int(kept)} windows: ", out), out
    manifest = json.loads((tmp_path / "mine" / "manifest.json").read_text())
    assert manifest["provenance"]["calibration"]["window_stride_ms"] == pytest.approx(
        {"taken": taken_ms, "instead_of": base_ms}, rel=1e-3)
    assert peak <= FOOTPRINT_MB, f"{kind}: peak RSS {peak:.1f} MB on a {seconds:.0f} s session\n{out[-600:]}"


def _series_over_the_cap(shared_data: Path, folder: Path, rows: int) -> Path:
    """A Kaggle series of ``rows`` contiguous rows written by write_grasp_lift (uncompressed): subject
    1's real segments tiled, their labels with them."""
    real = [read_grasp_lift(shared_data / "grasp_lift_segments" / f"subj1_series{k}_data.csv.gz") for k in (1, 2)]
    x = np.resize(np.concatenate([r.samples for r in real]), (rows, 32))
    y = np.resize(np.concatenate([r.labels for r in real]), (rows, 6))
    rec = replace(real[0], samples=x, labels=y, sample_index=np.arange(rows), subject="9", session="1")
    return write_grasp_lift(rec, folder, compress=False)[0]


# Before: refused ("too large to calibrate ... a CSV reader holds a file whole").  After (this machine,
# tflite_runtime / ai_edge_litert): the 126 k-row series below (5.0 M values with its events, 18 MB of
# CSV) calibrates at 82 / 94 MB (92 / 103 MB read whole, the cap lifted); the longest one file may be
# (325 k rows, a 48 MB CSV, thinned) at 74 / 77 MB; about 10 s each.
@pytest.mark.parametrize("longest", [False, True])
def test_a_csv_series_over_the_values_cap_calibrates_within_the_footprint(longest, shared_data, tmp_path):
    """A grasp-lift series (data and events) over CALIBRATION_MAX_VALUES, or as long as one file may be for
    the bundle: checked in one pass, read in blocks from the file (the longest thinned), within the edge's
    footprint."""
    rows = (_longest_file_rows(load_bundle(FIXTURE_BUNDLES / "grasp-lift")) - 10 if longest
            else config.CALIBRATION_MAX_VALUES // 32 + 1000)
    data = _series_over_the_cap(shared_data, tmp_path / "big", rows)
    assert recording_values(data) > (2.5 if longest else 1) * config.CALIBRATION_MAX_VALUES
    rc, peak, out = _calibrate_child("grasp-lift", [data], tmp_path / "mine")
    assert rc == 0 and "Traceback" not in out and ("windows taken every" in out or not longest), out
    assert peak <= FOOTPRINT_MB, f"peak RSS {peak:.1f} MB calibrating a {rows}-row CSV series\n{out[-600:]}"


def test_a_bad_csv_over_the_values_cap_is_refused_with_its_readers_line(shared_data, tmp_path):
    """A malformed line far into a CSV series over the cap: the reader's one line, nothing written."""
    rows = config.CALIBRATION_MAX_VALUES // (33 + 7) + 1000
    data = _write_grasp_lift(shared_data, tmp_path / "big", rows, tail="subj9_series1_x,not,a,row\n")
    rc, peak, out = _calibrate_child("grasp-lift", [data], tmp_path / "mine")
    assert rc != 0 and f"line {rows + 2}" in out and "Traceback" not in out, out
    assert peak <= FOOTPRINT_MB, f"peak RSS {peak:.1f} MB refusing a session"
    assert not (tmp_path / "mine").exists()


# -- one file over the values cap, read in blocks ---------------------------------------------------

def _muse_edf(shared_data: Path, path: Path, seconds: int, kind: str) -> Path:
    """A Muse recording as EDF+ (edfio) or BDF+: 4 channels at 256 Hz, a state annotation every minute."""
    import edfio

    from edge.recordings import MUSE_STATES

    x = np.resize(np.concatenate([read_muse(shared_data / "muse_mental_state" / f"subjecta-{s}-1.csv").samples
                                  for s in MUSE_STATES]), (256 * seconds, 5))
    signal = edfio.BdfSignal if kind == "bdf" else edfio.EdfSignal
    signals = [signal(x[:, k], 256, label=c, physical_dimension="uV", physical_range=(-2000, 2000))
               for k, c in enumerate(("TP9", "AF7", "AF8", "TP10"))]
    notes = [edfio.EdfAnnotation(m * 60.0, None, MUSE_STATES[m % 3]) for m in range(seconds // 60)]
    (edfio.Bdf if kind == "bdf" else edfio.Edf)(signals, annotations=notes).write(path)
    return path


def _one_file(kind: str, shared_data: Path, folder: Path):
    """(bundle, a session of one item) of each format read in blocks."""
    if kind.startswith("record"):  # lost samples, NaN rows, a clock stepping back, clock offsets
        return "grasp-lift", [_write_xdf(shared_data, folder / "s.xdf", 40_000, 1000.0, gaps=True, clock=True)]
    if kind in ("edf", "bdf"):
        return "emotion", [_muse_edf(shared_data, folder / f"s.{kind}", 600, kind)]
    if kind == "csv":  # a grasp-lift series with gaps in its ids, and a Muse file
        return "grasp-lift", [shared_data / "grasp_lift_segments" / "subj1_series1_data.csv.gz"]
    if kind == "muse-csv":
        return "emotion", [shared_data / "muse_mental_state" / f"subjecta-{s}-1.csv" for s in
                           ("concentrating", "neutral", "relaxed")]
    return "gesture", [shared_data / "myo_armband" / "EvaluationDataset" / "Male1" / "training0"]


@pytest.mark.parametrize("kind", ["record", "record-thinned", "edf", "bdf", "myo", "csv", "muse-csv"])
def test_a_file_read_in_blocks_gives_the_windows_of_the_file_read_whole(kind, shared_data, tmp_path, monkeypatch):
    """With CALIBRATION_MAX_VALUES lowered under the file, it is opened and filtered a block at a time
    through the same causal chain: the windows, their rows and truths, the segments, the parts and
    the session's hash are those of the file read whole, bit for bit (thinned, on both reads)."""
    name, data = _one_file(kind, shared_data, tmp_path)
    bundle = load_bundle(FIXTURE_BUNDLES / name)
    if kind.endswith("thinned"):
        monkeypatch.setattr(config, "CALIBRATION_MAX_WINDOW_BYTES", 600 * 50 * 32 * 4)
    files = sys.modules["edge.calibration.session_files"]
    opened, real = [], files.open_recording
    monkeypatch.setattr(files, "open_recording", lambda p: opened.append(p) or real(p))
    whole = calibration_session(data, bundle)
    assert not opened
    monkeypatch.setattr(config, "CALIBRATION_MAX_VALUES", 1000)
    streamed = calibration_session(data, bundle)
    assert opened == data * (2 if kind.endswith("thinned") else 1)
    (sw, rows, digest, parts), (ref, ref_rows, ref_digest, ref_parts) = streamed, whole
    assert len(sw.first) > 300 and np.array_equal(np.asarray(sw.windows), np.asarray(ref.windows))
    for a, b in ((sw.first, ref.first), (sw.last, ref.last), (sw.y, ref.y), (parts, ref_parts),
                 (rows.segments, ref_rows.segments)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert (digest, rows.n_samples, rows.thinning) == (ref_digest, ref_rows.n_samples, ref_rows.thinning)
    assert (rows.thinning is not None) == kind.endswith("thinned")
    if kind == "record":
        assert len(rows.segments) >= 4  # the gaps and the NaN rows cut it


@pytest.mark.parametrize("kind", ["record", "edf", "csv"])
def test_a_bundle_calibrated_on_a_file_read_in_blocks_is_bit_identical(kind, shared_data, tmp_path, monkeypatch):
    name, data = _one_file(kind, shared_data, tmp_path)
    calibrate(FIXTURE_BUNDLES / name, data, tmp_path / "whole", force=True)
    monkeypatch.setattr(config, "CALIBRATION_MAX_VALUES", 1000)
    calibrate(FIXTURE_BUNDLES / name, data, tmp_path / "blocks", force=True)
    for f in ("manifest.json", "model.tflite"):
        assert (tmp_path / "blocks" / f).read_bytes() == (tmp_path / "whole" / f).read_bytes(), f


def test_a_file_too_long_even_thinned_is_refused_before_it_is_opened(shared_data, tmp_path, monkeypatch):
    """Its rows, as one continuous recording, would make more windows than any thinning keeps: one
    line naming the file, before anything of it is held; the longest file that is taken is taken."""
    bundle = load_bundle(FIXTURE_BUNDLES / "grasp-lift")
    monkeypatch.setattr(config, "CALIBRATION_MAX_WINDOW_BYTES", 200 * 50 * 32 * 4)
    monkeypatch.setattr(config, "CALIBRATION_MAX_VALUES", 1000)
    longest = _longest_file_rows(bundle)
    fits = _write_xdf(shared_data, tmp_path / "fits.xdf", longest, 1000.0)
    over = _write_xdf(shared_data, tmp_path / "over.xdf", longest + calibration_stride(bundle) * 2, 1000.0)
    _, rows, _, _ = calibration_session([fits], bundle)
    assert rows.thinning is not None and rows.thinning.of == max_windows(bundle)
    files = sys.modules["edge.calibration.session_files"]
    monkeypatch.setattr(files, "open_recording", lambda p: pytest.fail(f"{p} was opened"))
    with pytest.raises(CalibrationError, match=r"over\.xdf: the session is too long to calibrate within the edge's "
                                               r"memory: \d+ s of recordings make \d+ windows.*calibrate on a "
                                               r"shorter session"):
        calibration_session([over], bundle)


# Peaks (this machine, tflite_runtime / ai_edge_litert): one record file of 10.8 min (325 k rows x 32
# channels, 2.6 times the values cap) 82 / 84 MB, where the same file read whole (the cap lifted)
# took 175 MB; the longest Muse file (2.36 M rows, 154 min, with clock offsets) 101 / 103 MB (307 MB
# whole); a 236 MB EDF+ 88 / 91 MB.
def test_the_longest_record_file_calibrates_within_the_footprint(shared_data, tmp_path):
    """One ``neurogrip record`` file over CALIBRATION_MAX_VALUES, as long as one file may be for the
    grasp-lift bundle: read in blocks, thinned, within the edge's footprint."""
    bundle = load_bundle(FIXTURE_BUNDLES / "grasp-lift")
    data = _write_xdf(shared_data, tmp_path / "session.xdf", _longest_file_rows(bundle) - 10, 1000.0)
    assert recording_values(data) > 2.5 * config.CALIBRATION_MAX_VALUES
    rc, peak, out = _calibrate_child(_far_off_base("grasp-lift", tmp_path / "base"), [data], tmp_path / "mine")
    assert rc == 0 and "normalisation person" in out and "windows taken every" in out, out
    assert peak <= FOOTPRINT_MB, f"peak RSS {peak:.1f} MB on one file of {recording_values(data)} values\n{out[-600:]}"


def _big_edf(shared_data: Path, path: Path, seconds: int, n_signals: int = 64) -> Path:
    """An EDF+C written by hand a minute at a time (never whole in memory): ``n_signals`` at 256 Hz,
    the Muse's four channels first (a minute of one state's recording each, tiled), the others
    noise, then the annotation signal: each 1 s record's time-keeping annotation and, each
    minute, the state's cue."""
    from edge.recordings import MUSE_STATES

    def field(value, n):
        return str(value).ljust(n)[:n].encode("latin-1")

    labels = ["TP9", "AF7", "AF8", "TP10"] + [f"X{i}" for i in range(n_signals - 4)] + ["EDF Annotations"]
    ns, data, tal = len(labels), n_signals, 60
    head = b"".join([field("0", 8), field("X X X X", 80), field("Startdate 01-JAN-2020 X X X", 80),
                     field("01.01.20", 8), field("00.00.00", 8), field(256 * (ns + 1), 8), field("EDF+C", 44),
                     field(seconds, 8), field(1, 8), field(ns, 4)])
    columns = [labels, [""] * ns, ["uV"] * data + [""], [-3000] * data + [-1], [3000] * data + [1],
               [-32768] * ns, [32767] * ns, [""] * ns, [256] * data + [tal // 2], [""] * ns]
    head += b"".join(field(v, n) for col, n in zip(columns, (16, 80, 8, 8, 8, 8, 8, 80, 8, 32)) for v in col)
    src = [read_muse(shared_data / "muse_mental_state" / f"subjecta-{s}-1.csv").samples[:, :4] for s in MUSE_STATES]
    rng = np.random.default_rng(0)
    with path.open("wb") as fh:
        fh.write(head)
        for a in range(0, seconds, 60):
            k, state = min(60, seconds - a), a // 60 % 3
            d = np.empty((k, data, 256), np.int16)
            d[:, :4] = np.round(np.resize(src[state], (k * 256, 4)) / 3000 * 32767).reshape(k, 256, 4).transpose(0, 2, 1)
            d[:, 4:] = rng.integers(-500, 500, (k, data - 4, 256), dtype=np.int16)
            for r in range(k):
                cue = f"+{a}\x14{MUSE_STATES[state]}\x14\x00" if r == 0 else ""
                fh.write(d[r].tobytes() + f"+{a + r}\x14\x14\x00{cue}".encode().ljust(tal, b"\x00"))
    return path


def test_an_edf_near_its_readers_cap_calibrates_within_the_footprint(shared_data, tmp_path):
    """An EDF+ of 236 MB (RECORDING_MAX_EDF_BYTES is 256 MB; 118 M values, 30 times the values cap):
    64 signals of which the emotion bundle takes four, two hours; read in blocks within the footprint."""
    data = _big_edf(shared_data, tmp_path / "big.edf", 7200)
    assert recording_values(data) > 25 * config.CALIBRATION_MAX_VALUES
    rc, peak, out = _calibrate_child(_far_off_base("emotion", tmp_path / "base"), [data], tmp_path / "mine")
    assert rc == 0 and "windows taken every" in out, out
    assert peak <= FOOTPRINT_MB, f"peak RSS {peak:.1f} MB on a 236 MB EDF\n{out[-600:]}"


@pytest.mark.parametrize("longest", [True, False])
def test_a_long_labrecorder_style_muse_file_calibrates_within_the_footprint(longest, shared_data, tmp_path):
    """A Muse XDF with a timestamp on every sample and clock offsets every 5 s, as LabRecorder writes
    it: the longest one file may be for the emotion bundle (154 min, 2.36 M rows), and a shorter
    one (19.5 min) with CALIBRATION_MAX_VALUES lowered under it in the child."""
    bundle = load_bundle(FIXTURE_BUNDLES / "emotion")
    rows = _longest_file_rows(bundle) - 10 if longest else 300_000
    data = _write_muse_xdf(shared_data, tmp_path / "muse.xdf", rows)
    cap = None if longest else 200_000
    assert recording_values(data) > (cap or config.CALIBRATION_MAX_VALUES)
    rc, peak, out = _calibrate_child(_far_off_base("emotion", tmp_path / "base"), [data], tmp_path / "mine", cap)
    assert rc == 0 and "normalisation person" in out and "windows taken every" in out, out
    assert peak <= FOOTPRINT_MB, f"peak RSS {peak:.1f} MB on a {rows}-row Muse file\n{out[-600:]}"


def test_the_values_cap_is_per_file(shared_data, monkeypatch):
    """Each file's values are counted before it is read: only a file over the cap is opened in blocks
    (a session of files each under it is read whole, file by file, whatever their sum), and either
    way the session's windows are the same."""
    bundle = load_bundle(FIXTURE_BUNDLES / "grasp-lift")
    series = [shared_data / "grasp_lift_segments" / f"subj1_series{k}_data.csv.gz" for k in (1, 2)]
    values = [recording_values(p) for p in series]
    assert values[0] == read_grasp_lift(series[0]).n_samples * (33 + 7)
    big = int(np.argmax(values))
    files = sys.modules["edge.calibration.session_files"]
    opened, real = [], files.open_recording
    monkeypatch.setattr(files, "open_recording", lambda p: opened.append(p) or real(p))
    monkeypatch.setattr(config, "CALIBRATION_MAX_VALUES", max(values))
    sw, rows, digest, _ = calibration_session(series, bundle)
    assert not opened and rows.thinning is None
    assert len(sw.first) == len(session_windows(bundle, read_session(series, bundle)[0]).first)
    monkeypatch.setattr(config, "CALIBRATION_MAX_VALUES", values[big] - 1)
    sw2, _, digest2, _ = calibration_session(series, bundle)
    assert opened == [series[big]] and digest2 == digest
    assert np.array_equal(np.asarray(sw2.windows), np.asarray(sw.windows)) and np.array_equal(sw2.y, sw.y)


def _thinned(shared_data, monkeypatch, budget: int):
    """Two grasp-lift series with the window cap lowered to ``budget`` windows: the session thinned,
    and the whole session windowed in memory at calibration's own stride."""
    bundle = load_bundle(FIXTURE_BUNDLES / "grasp-lift")
    series = [shared_data / "grasp_lift_segments" / f"subj1_series{k}_data.csv.gz" for k in (1, 2)]
    monkeypatch.setattr(config, "CALIBRATION_MAX_WINDOW_BYTES", budget * 50 * 32 * 4)
    return bundle, series, calibration_session(series, bundle), session_windows(bundle, read_session(series, bundle)[0])


def test_a_session_over_the_window_cap_is_thinned_not_refused(shared_data, monkeypatch):
    """Its windows are some of the session's own (the same values: the chain runs over every sample,
    only fewer windows are cut), as many as thinned_budget allows, the same share of every truth
    and evenly over the session: the held-out block (the end of each file) keeps its share too.
    The same windows on every run, and a line that says so."""
    bundle, series, (sw, rows, digest, parts), whole = _thinned(shared_data, monkeypatch, 600)
    assert rows.thinning is not None and len(whole.first) > 600
    f, length = bundle.signal_chain().factor, int(bundle.window["length"])
    kept = thinned_budget(bundle, sum((b - a) // f for a, b in rows.segments.tolist() if (b - a) // f >= length))
    assert len(sw.first) == kept == rows.thinning.kept < 600 and rows.thinning.of == len(whole.first)
    at = np.searchsorted(whole.last, sw.last)
    assert np.array_equal(whole.last[at], sw.last)  # windows of the session, in order
    assert np.array_equal(np.asarray(sw.windows), whole.windows[at])
    assert np.array_equal(sw.first, whole.first[at]) and np.array_equal(sw.y, whole.y[at])
    # every truth (here: each combination of events) keeps its share, to one window
    groups, counts = np.unique(whole.y, axis=0, return_counts=True)
    for g, c in zip(groups, counts):
        assert abs(int((sw.y == g).all(axis=1).sum()) - c * kept / len(whole.y)) < 1.0, g
    # evenly over the session: the held-out block and each file keep their share
    held = np.zeros(rows.n_samples, bool)
    for a, b in parts.tolist():
        held[b - (b - a) // 4:b] = True
    for mask_all, mask_kept in ((whole.inside(held), sw.inside(held)),
                                (whole.last < parts[0, 1], sw.last < parts[0, 1])):
        assert abs(mask_kept.sum() - mask_all.sum() * kept / len(whole.y)) <= len(groups), (mask_kept.sum(), mask_all.sum())
    # deterministic, and said in one line
    again = calibration_session(series, bundle)
    assert np.array_equal(again[0].last, sw.last) and again[2] == digest
    fs_out = bundle.signal_chain().fs_out
    assert str(rows.thinning) == (f"session of {rows.n_samples / 500:.0f} s: windows taken every "
                                  f"{12000 / fs_out * len(whole.y) / kept:.4g} ms on average instead of "
                                  f"{12000 / fs_out:.4g} ms to stay within {600 * 50 * 32 * 4 / 2**20:.4g} MB "
                                  f"(CALIBRATION_MAX_WINDOW_BYTES; {kept} of {len(whole.y)} windows, the same share "
                                  "of every label)")


def test_thinned_windows_keep_every_truths_share_where_a_larger_stride_would_not():
    """Events at a period the stride divides (a paradigm's cues, segments cut the same way around
    each trial): a regular grid sees every event at the same phase; the thinned windows keep each
    truth's share exactly and spread each truth's windows evenly in time."""
    n, period = 12_000, 40
    y = np.zeros((n, 2), np.uint8)
    y[np.arange(n) % period < 3, 0] = 1  # an event 3 windows long every 40
    y[(np.arange(n) % period >= 20) & (np.arange(n) % period < 30), 1] = 1
    grid = y[::4]  # every 4th window: the event is seen once per period, at the same phase
    assert abs(grid[:, 0].mean() - y[:, 0].mean()) / y[:, 0].mean() > 0.15
    keep = thinned_windows(y, n // 4)
    assert keep.sum() == n // 4
    for col in range(2):
        assert abs(y[keep, col].mean() - y[:, col].mean()) * keep.sum() <= 1.0
    ends = np.flatnonzero(keep & (y[:, 0] == 1))
    assert np.diff(ends).max() <= period * 2  # no long stretch of the session without the event
    assert np.array_equal(thinned_windows(y, n // 4), keep)  # the same every time
    assert thinned_windows(y, n).all() and thinned_windows(y, n + 5).all()


def test_what_cannot_be_thinned_is_refused_with_the_fix(shared_data, monkeypatch):
    """A session too long even with its windows CALIBRATION_MAX_STRIDE_WINDOWS lengths apart, and a
    bundle one of whose windows leaves fewer than calibration needs within the cap: one line each,
    naming the cap and what to do."""
    bundle = load_bundle(FIXTURE_BUNDLES / "grasp-lift")
    series = [shared_data / "grasp_lift_segments" / f"subj1_series{k}_data.csv.gz" for k in (1, 2)]
    monkeypatch.setattr(config, "CALIBRATION_MAX_WINDOW_BYTES", 200 * 50 * 32 * 4)
    with pytest.raises(CalibrationError, match=r"too long to calibrate.*\d+ s of recordings make \d+ windows.*"
                                               r"CALIBRATION_MAX_STRIDE_WINDOWS.*min of continuous recording: "
                                               r"calibrate on a shorter session"):
        calibration_session(series, bundle)
    monkeypatch.setattr(config, "CALIBRATION_MAX_WINDOW_BYTES", (config.CALIBRATION_MIN_WINDOWS - 1) * 50 * 32 * 4)
    with pytest.raises(CalibrationError, match=r"cannot be calibrated within the edge's memory: one window is 6400 "
                                               r"bytes.*holds 39 windows.*CALIBRATION_MAX_WINDOW_BYTES raised"):
        calibration_session(series, bundle)


def test_a_session_changed_between_its_two_reads_is_refused(shared_data, monkeypatch):
    """A thinned session is read twice; windows chosen on the first read are not cut from another."""
    session = sys.modules["edge.calibration.session"]
    read, calls = session.read_item, []

    def growing(p, bundle, digest):
        calls.append(p)
        rec, x, y = read(p, bundle, digest)
        if len(calls) > 2:  # the second read: the file has grown
            x, y = np.concatenate([x, x[:5000]]), np.concatenate([y, y[:5000]])
            rec = replace(rec, segments=np.array([[0, len(x)]]))
        return rec, x, y

    monkeypatch.setattr(session, "read_item", growing)
    with pytest.raises(CalibrationError, match="changed while it was read"):
        _thinned(shared_data, monkeypatch, 600)


# -- the numbers are unchanged --------------------------------------------------------------------

def _old_session_windows(bundle, rec) -> SessionWindows:
    """session_windows as it was before the streaming (every segment through the chain at once)."""
    chain = bundle.signal_chain()
    length, stride, f = int(bundle.window["length"]), int(bundle.window["stride"]), chain.factor
    ws, first, last = [], [], []
    for a, b in rec.segments:
        w, ends = segment_windows(chain, rec.samples[a:b], length, stride)
        if len(ends):
            ws.append(w)
            stop = a + ends * f + f - 1
            last.append(stop)
            first.append(stop - length * f + 1)
    last_ = np.concatenate(last)
    return SessionWindows(np.concatenate(ws), np.maximum(np.concatenate(first), 0), last_, rec.labels[last_])


def _whole_session(paths, bundle):
    """The session all in memory, windowed the old way: what calibrate read before issue 24."""
    rec, digest, parts = read_session(paths, bundle)
    return _old_session_windows(bundle, rec), SessionRows(rec.n_samples, rec.fs, rec.segments, rec.source), digest, parts


def _sessions(shared_data) -> dict:
    gl = shared_data / "grasp_lift_segments"
    muse = [read_muse(p).rows(0, 15000) for p in sorted((shared_data / "muse_mental_state").glob("subjecta-*-1.csv"))]
    return {"gesture": [shared_data / "myo_armband" / "EvaluationDataset" / "Male1" / "training0"],
            "grasp-lift": [gl / "subj1_series1_data.csv.gz", gl / "subj1_series2_data.csv.gz"],
            "emotion": muse}


@pytest.mark.parametrize("kind", ["gesture", "grasp-lift", "emotion"])
def test_the_streamed_session_is_the_whole_session(kind, shared_data):
    bundle = load_bundle(FIXTURE_BUNDLES / kind)
    paths = _sessions(shared_data)[kind]
    sw, rows, digest, parts = calibration_session(paths, bundle)
    ref, ref_rows, ref_digest, ref_parts = _whole_session(paths, bundle)
    assert isinstance(sw.windows, WindowArray) and sw.windows.shape == ref.windows.shape
    assert np.array_equal(np.asarray(sw.windows), ref.windows)
    for a, b in ((sw.first, ref.first), (sw.last, ref.last), (sw.y, ref.y), (parts, ref_parts),
                 (rows.segments, ref_rows.segments)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert (digest, rows.n_samples, rows.fs) == (ref_digest, ref_rows.n_samples, ref_rows.fs)
    # what calibrate asks of the windows: a mask, slices, single windows
    mask = np.random.default_rng(0).random(len(sw.first)) < 0.7
    for key in (mask, slice(3, 700), slice(None, None, 5), np.array([5, 1, 5]), 0, -1):
        got = sw.windows[key]
        assert got.flags.c_contiguous and np.array_equal(got, ref.windows[key])
    # and the in-memory session_windows, which the bench and the tests use, is the old one too
    eager = session_windows(bundle, read_session(paths, bundle)[0])
    assert isinstance(eager.windows, np.ndarray) and np.array_equal(eager.windows, ref.windows)


@pytest.mark.parametrize("kind", ["gesture", "grasp-lift", "emotion"])
def test_the_calibrated_bundle_is_bit_identical_to_the_whole_session_one(kind, shared_data, tmp_path, monkeypatch):
    """The written manifest (normalisation, head weights, provenance, held-out figures) is byte for
    byte the one of the pre-streaming path: the whole session in memory, windowed the old way, its
    features and time-domain inputs computed in one call."""
    cal = sys.modules["edge.calibration.calibrate"]
    data = _sessions(shared_data)[kind]
    calibrate(FIXTURE_BUNDLES / kind, data, tmp_path / "streamed", force=True)
    monkeypatch.setattr(cal, "calibration_session", _whole_session)
    monkeypatch.setattr(cal._Features, "_BATCH", 1 << 40)
    calibrate(FIXTURE_BUNDLES / kind, data, tmp_path / "whole", force=True)
    for name in ("manifest.json", "model.tflite"):
        assert (tmp_path / "streamed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


# -- the readers: blocks of lines, the same values --------------------------------------------------

def _pair(tmp_path: Path, rows: int, *, crlf=False, bom=False, trailing="\n", gz=False) -> Path:
    from edge.recordings import GRASP_LIFT_CHANNELS, GRASP_LIFT_EVENTS

    rng = np.random.default_rng(rows)
    x = rng.integers(-3000, 3000, (rows, 32))
    ids = np.arange(rows) + np.cumsum(rng.random(rows) < 0.01)  # a few gaps
    nl = "\r\n" if crlf else "\n"
    data = ",".join(("id",) + GRASP_LIFT_CHANNELS) + nl + nl.join(
        f"subj1_series2_{i}," + ",".join(map(str, r)) for i, r in zip(ids, x.tolist())) + trailing
    ev = ",".join(("id",) + GRASP_LIFT_EVENTS) + "\n" + "\n".join(
        f"subj1_series2_{i}," + ",".join(str(int(v)) for v in (rng.random(6) < 0.1)) for i in ids) + "\n"
    suffix = ".csv.gz" if gz else ".csv"
    path = tmp_path / f"subj1_series2_data{suffix}"
    raw = ("\ufeff" if bom else "") + data
    for p, text in ((path, raw), (tmp_path / f"subj1_series2_events{suffix}", ev)):
        p.write_bytes(gzip.compress(text.encode(), mtime=0) if gz else text.encode())
    return path


@pytest.mark.parametrize("variant", [{}, {"crlf": True}, {"bom": True, "crlf": True}, {"trailing": "\n\n\n"},
                                     {"trailing": ""}, {"gz": True}, {"gz": True, "crlf": True}])
def test_a_table_read_in_blocks_is_the_table_read_whole(variant, tmp_path, monkeypatch):
    """Blocks of a few lines (and of part of one: a line end split across two reads, a CR LF cut in
    two) give the array one parse of the whole body gives."""
    path = _pair(tmp_path, 700, **variant)
    whole = _text.parse_numeric(_text.split_header(_text.read_bytes(path), path)[1], 33, path,
                                 id_prefix=b"subj1_series2_")
    for block in (100, 257, 4096, 1 << 20):
        monkeypatch.setattr(_text, "_BLOCK_BYTES", block)
        rec = read_grasp_lift(path)
        assert rec.samples.flags.c_contiguous and np.array_equal(rec.samples, whole[:, 1:])
        assert np.array_equal(rec.sample_index, whole[:, 0].astype(np.int64))
        assert recording_values(path) == 700 * 40


def test_a_bad_line_is_named_by_its_number_across_blocks(tmp_path, monkeypatch):
    path = _pair(tmp_path, 300)
    lines = path.read_text().split("\n")
    for bad, expected in ((250, "non-numeric cell"), (3, "non-numeric cell")):
        cells = lines[bad - 1].split(",")
        cells[5] = "oops"
        broken = lines[:bad - 1] + [",".join(cells)] + lines[bad:]
        path.write_text("\n".join(broken))
        monkeypatch.setattr(_text, "_BLOCK_BYTES", 300)
        with pytest.raises(RecordingError, match=rf"line {bad}: {expected}"):
            read_grasp_lift(path)
    path.write_text("\n".join(lines[:100] + [""] + lines[100:]))  # a blank line inside, as before
    with pytest.raises(RecordingError, match="line 101: 1 cells"):
        read_grasp_lift(path)
    monkeypatch.setattr(config, "RECORDING_MAX_LINE_BYTES", 1000)
    path.write_text("\n".join(lines[:10] + [lines[10] + "," + "1" * 2000] + lines[11:]))
    with pytest.raises(RecordingError, match="line 11: a line longer than 1000 bytes"):
        read_grasp_lift(path)


def test_a_read_holds_about_its_values(tmp_path):
    """The reader's peak over its result: the blocks, not the file's text and a float64 copy of it."""
    path = _pair(tmp_path, 40_000, gz=True)
    code = ("import re, sys\nfrom edge.recordings import read_recording\n"
            "rss = lambda k: int(re.search(k + r':\\s*(\\d+)', open('/proc/self/status').read()).group(1))\n"
            "base = rss('VmRSS')\nrec = read_recording(sys.argv[1])\n"
            "print(rss('VmHWM') - base, rec.samples.nbytes // 1024)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, cwd=REPO)
    extra_kb, samples_kb = map(int, out.stdout.split())
    # samples, ids, the events' ids and flags (1.25x the samples) and a few 1 MiB blocks; whole, 4x
    assert extra_kb < 1.25 * samples_kb + 16 * 1024, (extra_kb, samples_kb)


def test_recording_values_counts_what_each_reader_holds(shared_data):
    myo = shared_data / "myo_armband" / "EvaluationDataset" / "Male1" / "training0"
    muse = shared_data / "muse_mental_state" / "subjecta-relaxed-1.csv"
    assert recording_values(myo) == read_recording(myo).samples.size
    assert recording_values(muse) == read_recording(muse).samples.size // 5 * 6  # and its timestamps
    assert recording_values(muse, stop_after=100) > 100  # stops early, counting past the limit


def test_in_memory_items_still_count_and_hash_as_before(shared_data):
    """A Recording given as a session item (the bench's halves) is hashed by its samples and labels."""
    bundle = load_bundle(FIXTURE_BUNDLES / "gesture")
    rec = read_recording(shared_data / "myo_armband" / "EvaluationDataset" / "Male1" / "training0")
    a = calibration_session([rec], bundle)
    b = calibration_session([replace(rec, samples=rec.samples.copy())], bundle)
    assert a[2] == b[2] and a[2] != calibration_session([rec.rows(0, rec.n_samples - 1)], bundle)[2]
