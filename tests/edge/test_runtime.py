"""edge.runtime: the live pipeline equals the training path, faults are handled, the arm is kept safe.

Real parts throughout: real int8 bundles (tests/fixtures/bundles), real LSL over loopback, the
firmware's host build behind a real pty.
"""

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.chain.signal_chain import window_ends
from edge.decision import Decider, DecisionPolicy
from edge.model.inputs import normalise_windows, quantise
from edge.recordings.synthetic import grasp_lift_series, muse_recording
from edge.runtime import JsonLog, Pipeline, RunError, Runtime, RuntimeConfig, replay_outputs
from edge.sources import Chunk, ReplaySource, SourceError
from tests.conftest import FIXTURE_BUNDLES, REPO

GL = FIXTURE_BUNDLES / "grasp-lift"
EMO = FIXTURE_BUNDLES / "emotion"


@pytest.fixture(scope="module")
def gl():
    return load_bundle(GL)


@pytest.fixture(scope="module")
def rec():
    return grasp_lift_series(1, 7, seed=3, n_trials=3)


def _offline_outputs(bundle, rec):
    """The training path, written out: chain per segment, windows by window_ends, normalise, quantise."""
    chain, model = bundle.signal_chain(), bundle.model()
    L, S = bundle.window["length"], bundle.window["stride"]
    outs = []
    for start, stop in rec.segments:
        chain.reset()
        y = chain.process(rec.samples[start:stop]).astype(np.float32)
        for e in window_ends(len(y), L, S):
            w = normalise_windows(y[None, e - L + 1:e + 1], bundle.window["channel_scale"],
                                  bundle.window.get("clip"))
            outs.append(model.run_int8(quantise(w[0], *bundle.input_quant)))
    return np.array(outs)


def _chunk(samples, first_index, fs=500.0, discontinuity=False):
    n = samples.shape[0]
    return Chunk(samples, (first_index + np.arange(n)) / fs, time.monotonic(), first_index, discontinuity)


def test_live_pipeline_outputs_equal_the_training_path_for_any_chunk_size(gl, rec):
    ref = _offline_outputs(gl, rec)
    for chunk in (1, 7, 10, 333):
        outs, idx = replay_outputs(gl, rec, chunk=chunk)
        np.testing.assert_array_equal(outs, ref)
    assert len(ref) > 100 and np.all(np.diff(idx) > 0)


def test_window_output_depends_only_on_past_samples(gl, rec):
    cut = rec.n_samples // 2
    altered = grasp_lift_series(1, 7, seed=3, n_trials=3)
    altered.samples[cut:] = np.random.default_rng(1).normal(0, 80, altered.samples[cut:].shape)
    a, ia = replay_outputs(gl, rec)
    b, _ib = replay_outputs(gl, altered)
    past = ia < cut
    np.testing.assert_array_equal(a[past], b[past])
    assert not np.array_equal(a[~past], b[~past])


def test_nan_and_saturated_samples_never_reach_a_window(gl, rec):
    pipe = Pipeline(gl, rec.channels, rec.fs, drop_stale=False)
    x = rec.samples[:3000].copy()
    x[1000, 4] = np.nan
    x[2000, 7] = 1e9  # far outside the fixed-point input range
    ends = []
    for a in range(0, 3000, 10):
        ends += [r.index_end for r in pipe.process(_chunk(x[a:a + 10], a))]
    assert pipe.faults["nan"] == 1 and pipe.faults["saturated"] == 1
    span = gl.window["length"] * gl.signal_chain().factor
    for bad in (1000, 2000):
        assert not any(bad <= e < bad + span for e in ends), "a window contains a bad sample"
    assert any(e >= 2000 + span for e in ends), "processing resumed after the bad samples"


def test_gap_restarts_the_chain(gl, rec):
    pipe = Pipeline(gl, rec.channels, rec.fs, drop_stale=False)
    pipe.process(_chunk(rec.samples[:500], 0))
    out = pipe.process(_chunk(rec.samples[600:610], 600, discontinuity=True))
    assert out == [] and pipe.faults["discontinuity"] == 1 and pipe.buf.count == 5


def test_missing_channel_and_wrong_rate_are_refused_at_start(gl, rec):
    with pytest.raises(SourceError, match="Fp1"):
        Pipeline(gl, [c for c in rec.channels if c != "Fp1"], 500.0)
    with pytest.raises(RunError, match="256 Hz but the bundle expects 500 Hz"):
        Pipeline(gl, rec.channels, 256.0)


def test_reordered_channels_are_mapped_by_name(gl, rec):
    order = np.random.default_rng(0).permutation(len(rec.channels))
    shuffled = grasp_lift_series(1, 7, seed=3, n_trials=3)
    shuffled.samples = np.ascontiguousarray(rec.samples[:, order])
    shuffled.channels = tuple(rec.channels[i] for i in order)
    np.testing.assert_array_equal(replay_outputs(gl, shuffled)[0], replay_outputs(gl, rec)[0])


def _forced(bundle):
    """Make every label fire easily, so command paths run with the fixture model."""
    pol = DecisionPolicy(labels=tuple(bundle.labels), thresholds=0.02, hysteresis=0.01, min_dwell_ms=0,
                         refractory_ms=200)
    return Decider(pol)


def test_replay_run_reports_stage_timings_and_logs_json_lines(gl, rec, tmp_path):
    log = JsonLog(tmp_path / "run.jsonl")
    rt = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000), log)
    rt.pipeline.decider = _forced(gl)
    s = rt.run()
    log.close()
    assert s.windows > 100 and s.decisions_fired > 0 and s.deadline_misses == 0
    assert set(s.stages_ms) == {"acquire", "filter", "infer", "decide", "send"}
    assert s.latency_ms["n"] == s.decisions_fired and s.realtime_factor > 1
    events = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "summary" and "decision" in kinds
    assert {"event": "safe_state", "reason": "stopped"}.items() <= events[-3].items()
    assert {"event": "rest", "result": "no arm"}.items() <= events[-2].items()


def test_sustained_overload_puts_the_arm_in_its_safe_state(gl, rec):
    rt = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1e-6, overload_limit=3))
    s = rt.run()
    assert s.deadline_misses == s.windows and s.faults["overload"] == 1
    assert s.decisions_fired == 0  # held in the safe state: no command once overloaded


def test_emotion_bundle_publishes_state_but_never_commands_the_arm():
    emo = load_bundle(EMO)
    r = muse_recording("a", "relaxed", 20.0, seed=2)
    idx = [r.channels.index(c) for c in emo.channels]
    r.samples, r.channels = np.ascontiguousarray(r.samples[:, idx]), tuple(emo.channels)
    rt = Runtime(emo, ReplaySource(r, speed=0), None, RuntimeConfig(budget_ms=1000))
    s = rt.run()
    assert s.windows > 10 and s.decisions_fired == 0 and s.commands_sent == 0


# --------------------------------------------------------------------------- real LSL, real firmware


@pytest.fixture
def arm():
    from firmware_bridge.link import ArmLink
    from firmware_bridge.sim import start

    sim = start("host")
    link = ArmLink(sim.pty)
    link.open()
    yield link, sim
    link.close()
    sim.stop()


def test_stream_loss_rests_the_arm_within_250_ms_and_resumes(gl, rec, arm, tmp_path):
    from edge.sources import open_source
    from edge.sources.player import Player
    from firmware_bridge.protocol import Action

    link, _ = arm
    name = f"ng-test-{uuid.uuid4().hex[:8]}"
    player = Player(rec, name=name, speed=1.0, loop=True, wait_consumers=5.0).start()
    src = open_source(f"lsl:name={name}&timeout=5")
    sent = []
    real_command = link.command
    link.command = lambda a, t, s, deadline=None: (sent.append((time.monotonic(), Action(a))),
                                                    real_command(a, t, s, deadline=deadline))
    log = JsonLog(tmp_path / "run.jsonl")
    rt = Runtime(gl, src, link, RuntimeConfig(budget_ms=50), log)
    stops = {}

    def script():
        time.sleep(1.5)
        stops["t"] = time.monotonic()
        player.stop()
        time.sleep(1.0)
        stops["windows_before"] = rt.pipeline.windows
        stops["restart"] = Player(rec, name=name, speed=1.0, loop=True).start()
        time.sleep(4.0)
        rt.stop()

    th = threading.Thread(target=script)
    th.start()
    try:
        s = rt.run(max_seconds=15)
    finally:
        th.join()
        stops.get("restart") and stops["restart"].stop()
        src.close()
    rests = [t for t, a in sent if a == Action.REST and t >= stops["t"]]
    assert rests, "no REST sent after the stream stopped"
    assert 0 <= rests[0] - stops["t"] <= 0.25, f"REST sent {rests[0] - stops['t']:.3f} s after the stream stopped"
    assert s.faults.get("stream", 0) >= 1
    assert s.safe_state_entries >= 2  # the stall, then the final stop
    log.close()
    events = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert any(e["event"] == "resume" and e["after"] == "stream stalled" for e in events)
    assert s.windows > stops["windows_before"] > 0, "no window after the stream came back"


def test_commands_reach_the_firmware_and_link_loss_is_a_logged_fault(gl, rec, arm):
    link, sim = arm
    rt = Runtime(gl, ReplaySource(rec, speed=0), link, RuntimeConfig(budget_ms=1000))
    rt.pipeline.decider = _forced(gl)
    s = rt.run(max_seconds=3)
    assert s.commands_sent > 0 and s.commands_failed == 0
    sim.stop()  # the arm goes away mid-run: faults, no exception, no late replay
    rt2 = Runtime(gl, ReplaySource(rec, speed=0), link, RuntimeConfig(budget_ms=1000))
    rt2.pipeline.decider = _forced(gl)
    s2 = rt2.run(max_seconds=3)
    assert s2.decisions_fired > 0 and s2.commands_sent == 0 and s2.faults.get("link", 0) >= 1


@pytest.mark.exclusive  # --arm sim is simavr: its ACKs in real time need the cores
def test_run_command_stops_cleanly_on_sigterm_with_the_arm_at_rest(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log = tmp_path / "run.jsonl"
    recording = tmp_path / "rec"
    from edge.recordings import write_grasp_lift

    data, _ = write_grasp_lift(grasp_lift_series(1, 1, seed=0, n_trials=2), recording)
    p = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--bundle", str(GL), "--source",
                          f"replay:{data}?speed=1", "--arm", "sim", "--log", str(log)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (log.exists() and "start" in log.read_text()):
        time.sleep(0.1)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    events = [json.loads(line) for line in Path(log).read_text().splitlines()]
    stop_at = next(i for i, e in enumerate(events) if e["event"] == "safe_state" and e["reason"] == "stopped")
    assert {"event": "rest", "result": "acknowledged"}.items() <= events[stop_at + 1].items()
    assert "stage (ms)" in out and ("interpreter: tflite_runtime" in out or "interpreter: ai_edge_litert" in out)


def test_a_late_chunk_with_several_windows_runs_only_the_newest(gl, rec):
    pipe = Pipeline(gl, rec.channels, rec.fs, drop_stale=True)
    out = pipe.process(_chunk(rec.samples[:2000], 0))  # a backlog: 2000 samples arrive at once
    assert len(out) == 1 and pipe.dropped_windows > 10
    offline = Pipeline(gl, rec.channels, rec.fs, drop_stale=False).process(_chunk(rec.samples[:2000], 0))
    assert out[0].index_end == offline[-1].index_end
    np.testing.assert_array_equal(out[0].outputs, offline[-1].outputs)


def test_decisions_are_published_on_an_lsl_marker_stream(gl, rec):
    import pylsl

    from edge.runtime import MarkerOutlet

    name = f"ng-markers-{uuid.uuid4().hex[:8]}"
    outlet = MarkerOutlet(name, name)
    infos = pylsl.resolve_byprop("name", name, timeout=5)
    assert infos, "marker stream not visible on loopback"
    inlet = pylsl.StreamInlet(infos[0])
    inlet.open_stream(timeout=5)
    rt = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000), markers=outlet)
    rt.pipeline.decider = _forced(gl)
    s = rt.run()
    got = []
    deadline = time.monotonic() + 5
    while len(got) < s.decisions_fired and time.monotonic() < deadline:
        sample, _ = inlet.pull_sample(timeout=0.5)
        if sample:
            got.append(json.loads(sample[0]))
    assert s.decisions_fired > 0 and len(got) == s.decisions_fired
    assert {"label", "action", "probs"} <= set(got[0]) and got[0]["label"] in gl.labels


def test_a_gap_inside_a_chunk_restarts_the_chain_at_the_gap(gl, rec):
    """An LSL read can span a drop: the samples after the timestamp step start afresh."""
    pipe = Pipeline(gl, rec.channels, rec.fs, drop_stale=False)
    pipe.process(_chunk(rec.samples[:600], 0))
    x = rec.samples[600:700]
    ts = np.r_[np.arange(600, 650), np.arange(900, 950)] / rec.fs  # 250 samples lost at row 50
    out = pipe.process(Chunk(x, ts, time.monotonic(), 600, True))
    assert out == [] and pipe.buf.count == 25  # only the 50 samples after the gap (decimated by 2)
    assert pipe._reset_index == 650


def test_bad_samples_do_not_re_arm_a_command_in_its_refractory_time(gl, rec):
    def fired(with_nans):
        pipe = Pipeline(gl, rec.channels, rec.fs, drop_stale=False)
        pol = DecisionPolicy(labels=tuple(gl.labels), thresholds=0.02, hysteresis=0.01, min_dwell_ms=0,
                             refractory_ms=60_000)
        pipe.decider = Decider(pol)
        x = rec.samples[:20_000].copy()
        if with_nans:
            x[700::700, 3] = np.nan
        n = 0
        for a in range(0, len(x), 10):
            n += sum(r.decision.action is not None for r in pipe.process(_chunk(x[a:a + 10], a)))
        return n, pipe.faults["nan"]

    clean, _ = fired(False)
    glitchy, nans = fired(True)
    assert nans >= 15 and glitchy <= clean <= 6  # each label at most once in the refractory time


def test_a_stream_of_nans_rests_the_arm(gl, rec):
    r = grasp_lift_series(1, 7, seed=3, n_trials=3)
    r.samples[5000:] = np.nan  # the cap came off: samples keep coming, none usable
    src = ReplaySource(r, speed=1.0, chunk=10)
    rt = Runtime(gl, src, None, RuntimeConfig(budget_ms=1000))
    s = rt.run(max_seconds=10.8)
    assert s.faults.get("invalid", 0) >= 1 and s.faults["nan"] > 0
    assert rt._safe_reason == "no valid EEG" and s.safe_state_entries == 1


def test_unacknowledged_rest_pauses_heartbeats_so_the_watchdog_rests_the_arm(gl, rec, arm):
    link, sim = arm
    rt = Runtime(gl, ReplaySource(rec, speed=0), link, RuntimeConfig(budget_ms=1000))
    sim.stop()  # the arm stops answering
    rt.go_safe("test")
    assert rt._rest_pending and link.heartbeat_paused
    assert rt.summary.faults["link"] == 1


def test_the_json_log_rotates_by_size_and_keeps_its_backups(tmp_path):
    path = tmp_path / "run.jsonl"
    log = JsonLog(path, max_bytes=4096, backups=2)
    for k in range(500):
        log.write("decision", k=k, label="HandStart", p=[0.1] * 10)
    log.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["run.jsonl", "run.jsonl.1", "run.jsonl.2"]  # no .3: the oldest went
    assert all(f.stat().st_size <= 4096 for f in files)
    ks = [json.loads(line)["k"] for f in (files[2], files[1], files[0]) for line in f.read_text().splitlines()]
    assert ks == list(range(ks[0], 500)) and ks[0] > 0  # every line whole, in order, the newest kept
    with pytest.raises(ValueError, match="max_bytes"):
        JsonLog(tmp_path / "x.jsonl", max_bytes=10)


# --------------------------------------------------------------------------- a log that cannot be written


def _run_cli_with_log(log, *, fsize: int | None = None):
    """``neurogrip run`` on a short synthetic replay with ``--log log``; ``fsize``: the child's
    RLIMIT_FSIZE (``ulimit -f``), with SIGXFSZ ignored as a service's would be (the write fails EFBIG)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "edge.cli", "run", "--bundle", str(FIXTURE_BUNDLES / "grasp-lift"),
                           "--source", "synthetic:?kind=grasp-lift&trials=2&speed=max", "--log", str(log)],
                          capture_output=True, text=True, timeout=120, check=False, preexec_fn=limit)


def test_a_full_disk_under_the_log_never_ends_control(tmp_path):
    out = _run_cli_with_log("/dev/full")  # every write: ENOSPC
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("cannot be written") == 1  # said once
    lost = re.search(r"log lines lost \(the log could not be written; control went on\): (\d+)", out.stdout)
    assert lost and int(lost.group(1)) > 3 and "in->command" in out.stdout  # the run went on and reported


def test_a_file_size_limit_loses_the_lines_past_it_and_keeps_the_rest(tmp_path):
    log = tmp_path / "run.jsonl"
    out = _run_cli_with_log(log, fsize=2048)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "cannot be written" in out.stderr
    lines = log.read_bytes().split(b"\n")
    assert lines[0].startswith(b'{"t"') and json.loads(lines[0])["event"] == "start"
    assert log.stat().st_size <= 2048 and re.search(r"log lines lost[^:]*: [1-9]", out.stdout)


def test_the_log_resumes_when_it_can_be_written_again(tmp_path, monkeypatch, caplog):
    from edge import config as C

    monkeypatch.setattr(C, "LOG_RETRY_S", 0.0)
    log = JsonLog(tmp_path / "run.jsonl")
    log.write("start")
    real = log._f

    class Full:  # the card is full for three lines: the real file's writes fail as the kernel's would
        def write(self, line):
            raise OSError(28, "No space left on device")

        def close(self):
            real.close()

    log._f = Full()
    with caplog.at_level("WARNING"):
        for i in range(3):
            log.write("decision", i=i)
            if log._f is None:  # reopened at the next write: keep it failing until the third line
                log._retry_at = float("inf") if i < 2 else 0.0
        log.write("decision", i=3)
    log.close()
    events = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["start", "log_lost", "decision"]
    assert events[1]["lines"] == 3 and events[2]["i"] == 3 and log.lost == 3
    assert "written again" in caplog.text and caplog.text.count("cannot be written") == 1


def test_a_log_that_cannot_be_opened_is_a_one_line_error(tmp_path):
    with pytest.raises(RunError, match="cannot open the log"):
        JsonLog(tmp_path)  # a directory
