"""XDF written by LabRecorder, the LSL ecosystem's own recorder (its command-line build,
``LabRecorderCLI``, as the ``liesl`` package ships it for x86-64 Linux), not by neurogrip.

A real Muse recording is published by neurogrip's player with a marker stream of cues beside it;
LabRecorderCLI records both over loopback into an XDF; neurogrip then reads that file: the samples
exactly, the units, the cues as markers, and ``neurogrip info`` / ``evaluate`` / ``replay:`` on it.

LabRecorderCLI was linked against ``liblsl64.so.1.13.0``; pylsl's own liblsl (the same C API) is
offered under that name in a temporary folder, so nothing is installed system-wide.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main
from edge.recordings import read_muse, read_recording
from edge.runtime import RuntimeConfig, serve
from edge.sources.player import Player
from tests.conftest import FIXTURE_BUNDLES, SHARED_DATA

pylsl = pytest.importorskip("pylsl")

MUSE = SHARED_DATA / "muse_mental_state"
STATES = ("concentrating", "neutral", "relaxed")
SECONDS = 20  # of each state


def _labrecorder(tmp: Path) -> tuple[Path, dict]:
    if not (sys.platform.startswith("linux") and platform.machine() == "x86_64"):
        pytest.skip("liesl ships LabRecorderCLI for x86-64 Linux only")
    spec = importlib.util.find_spec("liesl")
    if spec is None:
        pytest.skip("liesl (the dev extra) is not installed")
    shipped = Path(spec.submodule_search_locations[0]) / "files" / "labrecorder" / "lib" / "LabRecorderCLI"
    exe = tmp / "LabRecorderCLI"
    shutil.copy(shipped, exe)  # the wheel may not keep the executable bit
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    shim = tmp / "lib"
    shim.mkdir()
    (shim / "liblsl64.so.1.13.0").symlink_to(pylsl.lib.lib._name)
    return exe, dict(os.environ, LD_LIBRARY_PATH=str(shim))


@pytest.fixture(scope="module")
def labrecorder_xdf(tmp_path_factory):
    """(the XDF LabRecorder wrote, the published recording, the cue rows)."""
    if not MUSE.is_dir():
        pytest.skip(f"{MUSE} is not here (../shared/data)")
    tmp = tmp_path_factory.mktemp("labrecorder")
    exe, env = _labrecorder(tmp)
    parts = [read_muse(MUSE / f"subjectb-{st}-1.csv") for st in STATES]
    n = SECONDS * 256
    x = np.concatenate([p.samples[:n, :4] for p in parts]).astype(np.float32)
    rec = dataclasses.replace(parts[0], samples=x, channels=parts[0].channels[:4], segments=np.array([[0, len(x)]]),
                              sample_index=np.arange(len(x)), timestamps=None, state=None, units=("uV",) * 4)
    cues = [(k * n, st) for k, st in enumerate(STATES)] + [(3 * n - 1, "end")]
    name = f"ng-lr-{os.getpid()}"
    out = tmp / "labrecorder.xdf"
    markers = pylsl.StreamOutlet(pylsl.StreamInfo(f"{name}-cues", "Markers", 1, 0, "string", f"{name}-cues"))
    with Player(rec, name=name, source_id=name, speed=0, chunk_size=32, wait_consumers=10.0) as player:
        proc = subprocess.Popen([str(exe), str(out), f'source_id="{name}"', f'source_id="{name}-cues"'],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                text=True)
        try:
            deadline = time.monotonic() + 20
            while not (markers.have_consumers() and player.t0_lsl is not None) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert player.t0_lsl is not None, "LabRecorderCLI did not connect"
            for row, text in cues:  # on the signal's own clock, half a sample before that row's timestamp:
                # each stream's clock offsets are applied separately, so "at" the sample could read after it
                markers.push_sample([text], player.t0_lsl + (row - 0.5) / rec.fs)
            assert player.wait(30)
            time.sleep(1.0)  # the last chunks reach the recorder
            log, _ = proc.communicate("\n", timeout=30)  # LabRecorderCLI stops on Enter
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0 and "Closing the file" in log, log[-2000:]
    return out, rec, cues


def test_neurogrip_reads_what_labrecorder_wrote(labrecorder_xdf):
    path, rec, cues = labrecorder_xdf
    got = read_recording(path)
    assert got.channels == ("TP9", "AF7", "AF8", "TP10") and got.fs == 256.0 and got.units == ("uV",) * 4
    np.testing.assert_array_equal(got.samples, rec.samples)  # every sample, in order, float32 exactly
    np.testing.assert_array_equal(got.segments, [[0, rec.n_samples]])  # nominal timestamps: no gap
    assert [(row, text) for row, text in got.markers] == cues


def test_info_evaluate_and_replay_on_a_labrecorder_file(labrecorder_xdf, tmp_path, capsys):
    path, rec, _ = labrecorder_xdf
    assert main(["info", str(path)]) == 0
    assert f"{rec.n_samples} samples x 4 channels at 256 Hz" in capsys.readouterr().out
    report = tmp_path / "e.json"
    assert main(["evaluate", str(FIXTURE_BUNDLES / "emotion"), "--data", str(path), "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["n_windows"] > 10 and result["protocol"].startswith("time blocks 60/20/20 (per recorded file")
    summary = serve(FIXTURE_BUNDLES / "emotion", f"replay:{path}?speed=0", "none", config=RuntimeConfig(),
                    install_signals=False)
    assert summary.windows > 100 and summary.faults == {}


def test_a_labrecorder_file_read_in_blocks_is_the_file_read_whole(labrecorder_xdf, monkeypatch, caplog):
    """What calibrate reads a file larger than it may hold with (open_recording): LabRecorder's clock
    offsets mapped as pyxdf maps them (every timestamp pyxdf's, bit for bit), the same recording."""
    import pyxdf

    from edge.recordings import blocks, open_recording
    from edge.recordings.xdf import xdf_timestamps

    path, _, _ = labrecorder_xdf
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 4096)
    whole, opened = read_recording(path), open_recording(path)
    assert np.array_equal(np.asarray(opened.samples), whole.samples) and opened.markers == whole.markers
    np.testing.assert_array_equal(opened.segments, whole.segments)
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    eeg = next(s for s in streams if s["info"]["channel_format"][0] != "string")
    assert eeg["clock_times"]  # LabRecorder measured the stream's clock offset as it recorded
    with caplog.at_level("INFO", logger="edge.recordings.xdf"):
        ours = np.concatenate(list(xdf_timestamps(path)))
    assert np.array_equal(ours.view(np.int64), eeg["time_stamps"].view(np.int64))
    assert "read whole" not in caplog.text  # mapped a block at a time, not loaded by pyxdf
