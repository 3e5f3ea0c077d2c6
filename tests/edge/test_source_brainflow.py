"""edge.sources.boards: BrainFlow boards as a source, with BrainFlow's own boards for real.

BrainFlow's SYNTHETIC_BOARD streams for real; its PLAYBACK_FILE_BOARD replays a file written by
BrainFlow's own ``DataFilter.write_file`` in the Muse 2 layout, so a known signal comes back and the
emotion fixture bundle (TP9, AF7, AF8, TP10 at 256 Hz, µV) runs on it through the runtime.  The
missing native library (pip's brainflow on a Raspberry Pi) is reproduced with a copy of the package
whose library is one built for another machine: BrainFlow's own 32-bit ARM library.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.commands import doctor
from edge.errors import EdgeError
from edge.recordings.synthetic import muse_recording
from edge.runtime import JsonLog, Runtime, RuntimeConfig
from edge.signals.units import amplitude_problem, plan_units
from edge.sources import (
    BrainFlowSource,
    SourceError,
    SourceSpecError,
    import_brainflow,
    open_source,
    parse_spec,
)
from edge.sources.base import option_mismatches
from edge.sources.boards import resolve_board
from tests.conftest import FIXTURE_BUNDLES, REPO
from tests.edge.fake_arm import AckingArm

EMO = FIXTURE_BUNDLES / "emotion"


@pytest.fixture(scope="module")
def bf():
    return import_brainflow()


def write_muse_file(bf, path, seconds: float, seed: int = 0):
    """A Muse-like recording in BrainFlow's MUSE_2_BOARD layout, written by BrainFlow; returns (rows, the EEG)."""
    muse = bf.BoardIds.MUSE_2_BOARD
    descr = bf.BoardShim.get_board_descr(muse)
    rec = muse_recording("a", "relaxed", seconds, seed=seed)
    n = rec.n_samples
    data = np.zeros((descr["num_rows"], n))
    data[descr["package_num_channel"]] = np.arange(n) % 256
    eeg = np.stack([rec.samples[:, rec.channels.index(c)] for c in descr["eeg_names"].split(",")])
    data[descr["eeg_channels"]] = eeg
    data[descr["other_channels"][0]] = rec.samples[:, rec.channels.index("Right AUX")]
    data[descr["timestamp_channel"]] = time.time() + np.arange(n) / rec.fs
    from brainflow.data_filter import DataFilter

    DataFilter.write_file(data, str(path), "w")
    return data, eeg.T


def read_until_stalled(src, limit_s: float = 10.0):
    chunks, t0 = [], time.monotonic()
    while not src.stalled and time.monotonic() - t0 < limit_s:
        c = src.read(timeout=0.02)
        if c is not None:
            chunks.append(c.copy())
    return chunks


# --------------------------------------------------------------------------- specs


def test_parse_spec_forms():
    assert parse_spec("brainflow:board=synthetic") == ("brainflow", "", {"board": "synthetic"})
    assert parse_spec("brainflow:?board=muse_2&timeout=20") == ("brainflow", "", {"board": "muse_2", "timeout": "20"})
    assert parse_spec("brainflow:cyton?serial_port=/dev/ttyUSB0")[2] == {"serial_port": "/dev/ttyUSB0", "board": "cyton"}
    assert option_mismatches(BrainFlowSource) == []
    for key in BrainFlowSource.OPTIONS:  # every constructor keyword can be set by a spec
        assert key in parse_spec(f"brainflow:board=synthetic&{key}=1" if key != "board" else "brainflow:board=x")[2]


def test_board_names_and_numbers(bf):
    ids = bf.BoardIds
    assert resolve_board("Cyton", ids) == (0, "CYTON_BOARD")
    assert resolve_board("-1", ids) == (-1, "SYNTHETIC_BOARD")
    assert resolve_board("muse-2", ids) == (int(ids.MUSE_2_BOARD), "MUSE_2_BOARD")
    assert resolve_board("MUSE_S_BLED_BOARD", ids)[1] == "MUSE_S_BLED_BOARD"
    assert resolve_board("playback", ids) == (-3, "PLAYBACK_FILE_BOARD")
    assert resolve_board(str(int(ids.GANGLION_BOARD)), ids)[1] == "GANGLION_BOARD"


@pytest.mark.parametrize("spec, fix", [
    ("brainflow:", "names no board; write e.g. brainflow:board=synthetic"),
    ("brainflow:board=nonesuch", "unknown BrainFlow board 'nonesuch'; use one of synthetic, playback, cyton"),
    ("brainflow:board=12345", "unknown BrainFlow board"),
    ("brainflow:board=cyton", r"board=cyton needs serial_port= \(its USB dongle"),
    ("brainflow:board=muse_2_bled", "needs serial_port="),
    ("brainflow:board=playback", "needs master_board=NAME&file=PATH"),
    ("brainflow:board=playback&master_board=playback&file=x.csv", "must be the board that recorded the data"),
    ("brainflow:board=synthetic&file=x.csv", "apply to board=playback"),
    ("brainflow:board=muse_2&signal=emg", "MUSE_2_BOARD has no EMG channels; use signal=eeg"),
    ("brainflow:board=synthetic&signal=ecg", "signal must be one of 'eeg', 'emg'"),
    ("brainflow:board=synthetic&ip_port=0", "ip_port must be an int in 1..65535"),
    ("brainflow:board=synthetic&timeout=soon", "timeout='soon'.*whole number"),
    ("brainflow:board=synthetic&drop_tolerance=1", "drop_tolerance must be > 1"),
    ("brainflow:board=synthetic&stall_timeout=0", "stall_timeout must be > 0"),
    ("brainflow:board=synthetic&unit=uV&scale=2", "not both"),
    ("brainflow:cyton?board=ganglion", "two boards"),
    ("brainflow:board=synthetic&sensor=1", "allowed: board, serial_port, mac_address"),
])
def test_bad_specs_raise_a_typed_error_naming_the_fix(spec, fix):
    with pytest.raises(SourceSpecError, match=fix) as info:
        open_source(spec)
    assert isinstance(info.value, ValueError) and isinstance(info.value, EdgeError)


def test_a_board_that_is_not_there_names_the_fix():
    with pytest.raises(SourceError, match=r"could not open CYTON_BOARD \(.*\); check that the dongle is plugged in "
                                          r"at serial_port=/dev/ng-absent.*neurogrip doctor --port"):
        open_source("brainflow:board=cyton&serial_port=/dev/ng-absent")


def test_a_playback_file_is_checked_before_brainflow_reads_it(bf, tmp_path):
    with pytest.raises(SourceError, match="playback file .*absent.csv does not exist"):
        open_source(f"brainflow:board=playback&master_board=muse_2&file={tmp_path / 'absent.csv'}")
    bad = tmp_path / "three.csv"
    bad.write_text("1\t2\t3\n4\t5\t6\n")
    with pytest.raises(SourceError, match="has 3 column.* but MUSE_2_BOARD writes 8; give the master_board="):
        open_source(f"brainflow:board=playback&master_board=muse_2&file={bad}")


# --------------------------------------------------------------------------- missing pieces


def test_brainflow_not_installed_names_the_install_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "brainflow", None)  # makes `import brainflow` fail
    with pytest.raises(SourceError, match=r"brainflow is not installed; install it with pip install 'neurogrip\[edge\]'"):
        import_brainflow()
    c = doctor.check_brainflow()
    assert c.ok and c.warn and "not installed" in c.detail and "neurogrip[edge]" in c.fix


@pytest.mark.parametrize("library", ["foreign", "absent"])
def test_a_missing_native_library_is_named_with_the_raspberry_pi_fix(bf, tmp_path, library):
    """What pip's brainflow does on a Pi (its x86-64 library cannot load), reproduced the other way round:
    a copy of the package whose libBoardController.so is BrainFlow's own 32-bit ARM library (or none)."""
    package = os.path.dirname(bf.__file__)
    copy = tmp_path / "brainflow"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("lib", "__pycache__"))
    (copy / "lib").mkdir()
    if library == "foreign":
        shutil.copy(os.path.join(package, "lib", "libunicorn_raspberry.so"), copy / "lib" / "libBoardController.so")
    code = ("from edge.sources import import_brainflow, SourceError\n"
            "from edge.commands.doctor import check_brainflow\n"
            "print(check_brainflow().line())\n"
            "try:\n    import_brainflow()\nexcept SourceError as e:\n    print('SourceError', e)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    doctor_line, error = out.stdout.splitlines()
    assert doctor_line.startswith("WARN brainflow: BrainFlow's native library cannot be loaded (")
    assert "docs/deploy-pi.md" in doctor_line and "build BrainFlow" in doctor_line
    if library == "foreign":
        assert "libBoardController.so is built for armv7l, this machine is x86_64" in error
    else:
        assert "No such file" in error or "missed" in error
    assert error.startswith("SourceError BrainFlow's native library cannot be loaded")
    assert "x86-64 only" in error and "docs/deploy-pi.md" in error


@pytest.mark.parametrize("verbose", ["0", "1"])
def test_brainflow_log_lines_are_off_unless_verbose(verbose):
    code = ("from edge.sources import open_source, SourceError\n"
            "try:\n    open_source('brainflow:board=cyton&serial_port=/dev/ng-absent')\n"
            "except SourceError:\n    print('refused')\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), NEUROGRIP_VERBOSE=verbose)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.stdout == "refused\n"
    assert ("[board_logger]" in out.stderr) == (verbose == "1"), out.stderr


def test_doctor_reports_the_loaded_library(bf):
    c = doctor.check_brainflow()
    assert c.ok and not c.warn and c.detail.startswith(f"BrainFlow {bf.BoardShim.get_version()}")


# --------------------------------------------------------------------------- boards, for real


def test_synthetic_board_streams_named_microvolt_channels_with_monotonic_timestamps(bf):
    synthetic = bf.BoardIds.SYNTHETIC_BOARD
    with open_source("brainflow:board=synthetic") as src:
        assert src.kind == "brainflow" and src.fs == bf.BoardShim.get_sampling_rate(synthetic) == 250
        assert src.channels == bf.BoardShim.get_eeg_names(synthetic)
        assert src.units == ["uV"] * 16 and src.channel_types == ["EEG"] * 16 and src.stream_type == "EEG"
        chunks, t0 = [], time.monotonic()
        while time.monotonic() - t0 < 0.6:
            c = src.read(timeout=0.02)
            if c is not None:
                chunks.append(c.copy())
        assert not src.stalled and src.counters.stalls == 0
    x = np.concatenate([c.samples for c in chunks])
    ts = np.concatenate([c.timestamps for c in chunks])
    assert x.shape[1] == 16 and 50 <= len(x) <= 250  # ~150 samples in 0.6 s, generous for a busy machine
    assert [c.first_index for c in chunks] == list(np.cumsum([0] + [c.n for c in chunks[:-1]]))
    assert np.all(np.diff(ts) > 0) and abs(ts[-1] - time.time()) < 5  # Unix seconds, increasing
    assert abs(np.median(np.diff(ts)) - 1 / 250) < 0.5 / 250
    assert amplitude_problem(x, "uV", "synthetic", src)[1] is None  # microvolts, plausibly
    wants_volts = SimpleNamespace(channels=["Cz", "Fz"], manifest={"signal": {"units": "V"}}, fs=250.0)
    plan = plan_units(src, wants_volts)  # the declared µV converts like a declared LSL unit
    assert plan.factor == [1e-6, 1e-6] and plan.idx.tolist() == [2, 0] and plan.unchecked == []


def test_synthetic_emg_channels_are_named_for_emg_bundles():
    with open_source("brainflow:board=synthetic&signal=emg") as src:
        assert src.channels == [f"emg{k}" for k in range(1, 17)] and src.channel_types == ["EMG"] * 16
        assert repr(src) == "<BrainFlowSource SYNTHETIC_BOARD (Synthetic) 16 EMG ch @ 250 Hz>"


def test_playback_board_returns_the_file_written_by_brainflow_then_stalls_without_raising(bf, tmp_path):
    path = tmp_path / "muse.csv"
    _, eeg = write_muse_file(bf, path, 1.0)
    src = open_source(f"brainflow:board=playback&master_board=muse_2&file={path}&stall_timeout=0.3")
    try:
        assert src.channels == ["TP9", "AF7", "AF8", "TP10"] and src.fs == 256.0
        chunks = read_until_stalled(src)
        x = np.concatenate([c.samples for c in chunks])
        # write_file keeps 6 decimals: the recording comes back to 1e-6 µV
        np.testing.assert_allclose(x, eeg, atol=1e-6)
        ts = np.concatenate([c.timestamps for c in chunks])
        assert np.all(np.diff(ts) > 0) and src.counters.discontinuities == 0
        # the file is over, the board sends nothing: a stall, reported and counted, never an exception
        assert src.stalled and src.counters.stalls == 1 and src.seconds_since_last_sample() > 0.3
        assert src.read(timeout=0.05) is None and src.stalled and src.counters.stalls == 1
    finally:
        src.close()
    with pytest.raises(SourceError, match="closed"):
        src.read()


def test_chunks_that_fall_behind_count_missing_samples_and_bursts_do_not():
    """Timing on BrainFlow's arrival stamps: bursts (4 samples stamped at once, as a USB-serial read
    delivers them) are no loss; a chunk 10 periods behind is; time going back is a discontinuity."""
    with open_source("brainflow:board=synthetic") as src:
        fs, t0 = src.fs, 1.7e9
        n = 0

        def chunk(late_periods: float, bursts: int = 3):
            nonlocal n
            idx = n + np.arange(4 * bursts)
            ts = t0 + (idx // 4 * 4 + 3) / fs + late_periods / fs  # each burst stamped when its last arrives
            n += len(idx)
            gap = src._check_timing(ts)
            src.counters.samples = n
            return gap

        assert [chunk(0) for _ in range(5)] == [False] * 5 and src.counters.dropped == 0
        assert chunk(10) and src.counters.dropped == 10
        assert not chunk(10) and src.counters.dropped == 10  # the new phase holds
        assert chunk(-100) and src.counters.dropped == 10  # the clock went back: flagged, nothing missing


def test_a_playback_board_runs_through_the_runtime_and_the_arm_rests_when_it_stops(bf, tmp_path):
    """The emotion bundle (TP9, AF7, AF8, TP10 at 256 Hz, µV) on 3 s of a Muse-layout file played by BrainFlow."""
    path = tmp_path / "muse.csv"
    write_muse_file(bf, path, 3.0, seed=4)
    bundle = load_bundle(EMO)
    arm, log = AckingArm(), JsonLog(tmp_path / "run.jsonl")
    src = open_source(f"brainflow:board=playback&master_board=muse_2&file={path}")
    try:
        rt = Runtime(bundle, src, arm, RuntimeConfig(budget_ms=1000), log)
        s = rt.run(max_seconds=4.0)
    finally:
        src.close()
        log.close()
    window, stride = 2.0, 0.25  # the emotion task's window and stride
    assert (3.0 - window) / stride - 1 <= s.windows <= (3.0 - window) / stride + 1
    assert abs(s.stream_seconds - 3.0) < 0.05 and s.faults.get("timestamps", 0) == 0
    assert s.processing_ms["n"] > 0 and s.processing_ms["p50"] < 1000
    assert s.decisions_fired == 0 and s.commands_sent == 0  # the emotion task never moves the arm
    assert s.faults.get("stream", 0) == 1 and arm.rests >= 1  # the file ended: a stall, the arm rested
    # BrainFlow stamps with this machine's clock: an honest board's data are on time (edge/runtime/rate.py)
    assert "rate" not in s.faults and "age" not in s.faults and s.untimely_windows == 0
    events = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert "BrainFlowSource PLAYBACK_FILE_BOARD (Muse2)" in events[0]["source"]
    assert any(e["event"] == "safe_state" and e["reason"] == "stream stalled" for e in events)
