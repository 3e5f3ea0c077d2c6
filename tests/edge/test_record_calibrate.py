"""`neurogrip record` → `neurogrip calibrate` → `neurogrip run`, end to end, through the CLI, with the
cues fed by the stream's own clock: on a replayed real Myo session and on a synthetic EEG source.
Also: the XDF that record writes read back by pyxdf (another library), Ctrl-C and a source that
ends early leave a valid file marked partial, and paradigm files."""

import io
import json

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.cli import main
from edge.errors import RecordingError
from edge.record import Recorder, load_paradigm, parse_paradigm
from edge.record.display import CueDisplay
from edge.recordings import read_recording
from edge.runtime import RuntimeConfig, serve
from edge.sources import open_source
from tests.conftest import FIXTURE_BUNDLES, record_synthetic_grasp_lift, write_edf_plus


def _markers(path):
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(path))
    by = {s["info"]["type"][0]: s for s in streams}
    return by, [m[0] for m in by["Markers"]["time_series"]]


def test_record_calibrate_run_on_a_replayed_real_session(shared_data, tmp_path, capsys):
    session = shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "training0"
    xdf = tmp_path / "me.xdf"
    assert main(["record", "--source", f"replay:{session}?speed=max", "--paradigm", "gesture",
                 "--out", str(xdf)]) == 0
    assert "cue 28/28" in capsys.readouterr().err
    # another library reads it: the signal, its channel metadata, the cues in order
    by, texts = _markers(xdf)
    emg = by["EMG"]
    assert emg["time_series"].shape == (read_recording(session).n_samples, 8)
    chans = emg["info"]["desc"][0]["channels"][0]["channel"]
    assert [c["label"][0] for c in chans] == [f"emg{i}" for i in range(1, 9)] and chans[0]["unit"][0] == "myo"
    assert texts[:7] == ["neutral", "radial_deviation", "wrist_flexion", "ulnar_deviation", "wrist_extension",
                         "hand_close", "hand_open"] and texts.count("neutral") == 4 and texts[-1] == "end"
    mine = tmp_path / "mine"
    assert main(["calibrate", "--bundle", str(FIXTURE_BUNDLES / "gesture"), "--data", str(xdf),
                 "--out", str(mine)]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "held-out accuracy" in out
    bundle = load_bundle(mine)
    assert bundle.manifest["provenance"]["parent"] == load_bundle(FIXTURE_BUNDLES / "gesture").content_hash
    # `evaluate` reads the recorded file too: its last 20 %, inside the block calibration held out
    report = tmp_path / "eval.json"
    assert main(["evaluate", str(mine), "--data", str(xdf), "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["protocol"].startswith("time blocks 60/20/20 (per recorded file") and result["n_windows"] > 400
    assert result["int8"]["accuracy"] > 0.6  # seven gestures: chance is 0.14
    test = shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "Test0"
    summary = serve(mine, f"replay:{test}?speed=0", "none", config=RuntimeConfig(), install_signals=False)
    assert summary.windows > 2000 and summary.faults == {} and summary.decisions_fired >= 1


def test_record_calibrate_run_on_a_synthetic_source(tmp_path, capsys):
    """A synthetic grasp-lift stream under the grasp-lift paradigm: the cues do not follow the
    synthetic trials, so calibration may find nothing to gain — either way the outcome is explicit
    (written, or refused as worse), and a forced bundle runs."""
    xdf = record_synthetic_grasp_lift(tmp_path / "syn.xdf", repeat=12)
    rec = read_recording(xdf)
    assert rec.fs == 500.0 and len(rec.channels) == 32 and rec.n_samples == pytest.approx(96 * 500, abs=2)
    mine = tmp_path / "mine"
    code = main(["calibrate", "--bundle", str(FIXTURE_BUNDLES / "grasp-lift"), "--data", str(xdf), "--out",
                 str(mine)])
    captured = capsys.readouterr()
    assert (code == 0 and "wrote" in captured.out) or (code != 0 and "worse than the base" in captured.err)
    assert main(["calibrate", "--bundle", str(FIXTURE_BUNDLES / "grasp-lift"), "--data", str(xdf), "--out",
                 str(mine), "--force", "--overwrite"]) == 0  # it may have been written above
    summary = serve(mine, "synthetic:?kind=grasp-lift&seed=4&trials=3&speed=0", "none", config=RuntimeConfig(),
                    install_signals=False)
    assert summary.windows > 100 and summary.faults == {}


class _Interrupting:
    """A source that raises KeyboardInterrupt (Ctrl-C) after ``n`` chunks."""

    def __init__(self, src, n):
        self.src, self.n = src, n

    def __getattr__(self, name):
        return getattr(self.src, name)

    def read(self, timeout=0.0):
        self.n -= 1
        if self.n < 0:
            raise KeyboardInterrupt
        return self.src.read(timeout)


def test_ctrl_c_leaves_a_valid_file_marked_partial(shared_data, tmp_path):
    session = shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "training0"
    src = _Interrupting(open_source(f"replay:{session}?speed=max"), 300)
    xdf = tmp_path / "cut.xdf"
    res = Recorder(src, load_paradigm("gesture"), xdf, CueDisplay(io.StringIO())).run()
    assert res.partial and "Ctrl-C" in res.reason and 0 < res.samples < 27949
    by, texts = _markers(xdf)
    assert by["EMG"]["time_series"].shape[0] == res.samples and texts[0] == "neutral"
    assert "partial" in json.dumps(by["EMG"]["footer"]) and "Ctrl-C" in json.dumps(by["EMG"]["footer"])


def test_a_source_that_ends_early_is_reported_partial(shared_data, tmp_path):
    from dataclasses import replace

    from edge.sources import ReplaySource

    rec = read_recording(shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "Test0")
    n = 10_000  # 50 s of the paradigm's 140 s
    short = replace(rec, samples=rec.samples[:n], labels=rec.labels[:n], sample_index=rec.sample_index[:n],
                    segments=np.array([[0, n]]))
    res = Recorder(ReplaySource(short, speed=0), load_paradigm("gesture"), tmp_path / "x.xdf",
                   CueDisplay(io.StringIO())).run()
    assert res.partial and "ended before" in res.reason and res.cues_done < 28


def test_gaps_are_marked_never_bridged(tmp_path):
    """A grasp-lift segments file has gaps in its sample ids: each is a 'gap' marker, and the
    timestamps keep the hole (read back as separate segments)."""
    from edge.recordings.synthetic import grasp_lift_series

    rec = grasp_lift_series(subject=1, series=1, n_trials=3, seed=0)
    keep = np.r_[0:4000, 6000:rec.n_samples]
    from dataclasses import replace

    gapped = replace(rec, samples=rec.samples[keep], sample_index=rec.sample_index[keep],
                     labels=rec.labels[keep], segments=np.array([[0, 4000], [4000, len(keep)]]),
                     timestamps=None)
    from edge.sources import ReplaySource

    res = Recorder(ReplaySource(gapped, speed=0), load_paradigm("grasp-lift"), tmp_path / "g.xdf",
                   CueDisplay(io.StringIO())).run()
    assert res.gaps == 1 and "gap" in [t for _, t in res.markers]
    back = read_recording(tmp_path / "g.xdf")
    assert len(back.segments) == 2 and back.segments[1][0] == 4000


def test_paradigm_files_are_checked():
    par = parse_paradigm({"task": "gesture", "repeat": 2, "cue": [{"label": "neutral", "seconds": 3}]})
    assert par.seconds == 6 and [c.label for c in par.cues] == ["neutral", "neutral"]
    for bad, msg in (({"task": "nope", "cue": []}, "task"),
                     ({"task": "gesture", "cue": [{"label": "fly", "seconds": 3}]}, "fly"),
                     ({"task": "gesture", "cue": [{"label": "neutral", "seconds": -1}]}, "seconds"),
                     ({"task": "gesture", "repeat": 0, "cue": [{"label": "neutral", "seconds": 1}]}, "repeat")):
        with pytest.raises(RecordingError, match=msg):
            parse_paradigm(bad)


def test_evaluate_reads_edf_files_written_by_pyedflib(shared_data, tmp_path, capsys):
    """Three real Muse recordings of one person, each written by pyedflib as an EDF+ with its state
    as a cue annotation: ``neurogrip evaluate`` on the folder runs the emotion bundle on the last
    20 % of each file, so every state is in the evaluated block."""
    from edge.recordings import read_muse

    folder = tmp_path / "edf"
    folder.mkdir()
    for st in ("concentrating", "neutral", "relaxed"):
        rec = read_muse(shared_data / "muse_mental_state" / f"subjectd-{st}-1.csv")
        write_edf_plus(folder / f"{st}.edf", rec.samples[:, :4].clip(-2000, 2000), rec.channels[:4], 256,
                       [(0.0, st)], unit="uV", physical=(-2000, 2000), digital=(-32768, 32767))
    report = tmp_path / "e.json"
    assert main(["evaluate", str(FIXTURE_BUNDLES / "emotion"), "--data", str(folder), "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    rows = [sum(r) for r in result["int8"]["confusion"]]
    assert all(k > 5 for k in rows) and sum(rows) == result["n_windows"]  # every state evaluated
    assert "time blocks" in capsys.readouterr().out


def test_nan_rows_are_counted_in_the_footer_and_calibrate_leaves_them_out(shared_data, tmp_path, capsys):
    from dataclasses import replace

    from edge.sources import ReplaySource

    session = shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "training0"
    rec = read_recording(session)
    x = rec.samples.copy()
    x[1000:1012, 3] = np.nan  # a dropped packet
    res = Recorder(ReplaySource(replace(rec, samples=x), speed=0), load_paradigm("gesture"), tmp_path / "n.xdf",
                   CueDisplay(io.StringIO())).run()
    assert res.invalid_rows == 12 and "12 row(s) with NaN" in res.summary() and not res.partial
    assert "{" not in res.summary()  # what was adapted, in words: no Python structure on the console
    by, _ = _markers(tmp_path / "n.xdf")
    assert by["EMG"]["footer"]["info"]["neurogrip"][0]["invalid_rows"] == ["12"]
    assert main(["calibrate", "--bundle", str(FIXTURE_BUNDLES / "gesture"), "--data", str(tmp_path / "n.xdf"),
                 "--out", str(tmp_path / "mine")]) == 0
    assert "wrote" in capsys.readouterr().out


def test_record_and_calibrate_never_replace_or_write_through_what_is_there(shared_data, tmp_path, capsys):
    session = shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "training0"
    old = tmp_path / "old.xdf"
    old.write_bytes(b"an earlier session")
    link = tmp_path / "link.xdf"
    link.symlink_to(tmp_path / "elsewhere.xdf")
    for out in (old, link):
        assert main(["record", "--source", f"replay:{session}?speed=max", "--paradigm", "gesture",
                     "--out", str(out)]) == 1
        assert "already exists" in capsys.readouterr().err
    assert old.read_bytes() == b"an earlier session" and not (tmp_path / "elsewhere.xdf").exists()
    other = tmp_path / "other-bundle"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    args = ["calibrate", "--bundle", str(FIXTURE_BUNDLES / "gesture"), "--data", str(session), "--out", str(other)]
    assert main(args) == 1 and "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]
    assert main([*args, "--overwrite"]) == 0 and load_bundle(other).task == "gesture"


def test_sigterm_closes_the_session_with_its_footer(shared_data, tmp_path):
    """A service stop (SIGTERM) during `neurogrip record`: the file ends with footers saying why."""
    import signal
    import subprocess
    import sys
    import time

    session = shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "training0"
    xdf = tmp_path / "t.xdf"
    p = subprocess.Popen([sys.executable, "-m", "edge.cli", "record", "--source", f"replay:{session}?speed=4",
                          "--paradigm", "gesture", "--out", str(xdf)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not xdf.exists() or xdf.stat().st_size < 20_000):
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and "Traceback" not in err and "SIGTERM" in err
    by, texts = _markers(xdf)
    assert "SIGTERM" in json.dumps(by["EMG"]["footer"]) and texts[0] == "neutral"
