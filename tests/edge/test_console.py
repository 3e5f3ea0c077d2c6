"""What a person sees: ``neurogrip run`` says what the arm does (a line per command on a terminal, the
truth and continuous-use score of a labelled replay at the end, the report only with --quiet or in a
pipe), says when there is no arm, prints each fault once in the words of the bundle's own signal
(EEG, EMG), never a Python structure; ``evaluate`` shows a bar on a terminal; ``demo`` pins its own
stream and types it as its signal; the timeline plot is readable and honest about gaps.

Real parts throughout: the CLI in a child process on a real pseudo-terminal (``pty``) or a pipe, the
firmware's host build (or simavr) behind its pty, real LSL on loopback, real bundles.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.evaluation.replay import timeline
from edge.recordings import Recording
from edge.recordings.myo import GESTURES, MYO_CHANNELS, N_FILES
from edge.recordings.synthetic import grasp_lift_series
from edge.runtime import RunSummary, Runtime, RuntimeConfig, format_report
from edge.sources import ReplaySource
from tests.conftest import FIXTURE_BUNDLES, REPO

GL = str(FIXTURE_BUNDLES / "grasp-lift")
GESTURE = str(FIXTURE_BUNDLES / "gesture")
GL_REPLAY = "synthetic:?kind=grasp-lift&trials=3&speed=max"  # labelled; the fixture fires a few commands on it
ENV = {**{k: v for k, v in os.environ.items() if k != "NEUROGRIP_VERBOSE"}, "PYTHONPATH": str(REPO)}
# one line per command: "    0.34 s  BothReleased -> RELEASE   sent, ACK 1.8 ms" (or decided, held, not sent)
COMMAND = r"^ +\d+\.\d\d s  \w+ -> [A-Z]+ +(?:sent, ACK \d+\.\d ms|decided \(no arm: nothing sent\)|held: .+|not .+)$"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge.cli", *args]


def on_a_terminal(argv: list[str], timeout: float = 180.0) -> tuple[str, int]:
    """Run ``argv`` with stdin, stdout and stderr on a new pseudo-terminal (160 columns, as a person's);
    everything it wrote, and its exit status."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=REPO, env=ENV, close_fds=True)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 1 << 16)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return out.decode(errors="replace").replace("\r\n", "\n"), rc


def in_a_pipe(argv: list[str], timeout: float = 180.0) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO, env=ENV, timeout=timeout)


def no_python_structures(text: str) -> None:
    """No dict, list or set (or a repr of one) reached the console: "[run]" and "[demo]" are ours."""
    rest = re.sub(r"\[(?:run|demo)\]", "", text)
    assert not re.search(r"[{}\[\]]", rest), text


# --------------------------------------------------------------------------- run: a line per command


@pytest.mark.exclusive  # --arm sim is simavr: its ACKs in real time need the cores
def test_a_terminal_run_says_what_the_arm_does_as_it_happens():
    out, rc = on_a_terminal(cli("run", "--bundle", GL, "--source", GL_REPLAY, "--arm", "sim"))
    assert rc == 0, out
    assert "[run] grasp-lift bundle (EEG, 6 labels)" in out and re.search(r"\[run\] arm /\S+/tty\b", out)
    sent = re.findall(r"^ +\d+\.\d\d s  \w+ -> [A-Z]+ +sent, ACK \d+\.\d ms$", out, re.MULTILINE)
    assert sent, out
    lines = re.findall(COMMAND, out, re.MULTILINE)
    report = re.search(r"fired: (\d+)", out)
    assert len(lines) == int(report.group(1))  # every command that fired, one line each
    # as it happens, before the report; the commands against the labelled replay's truth at the end
    assert out.index(sent[0]) < out.index("interpreter:") < out.index("decisions vs true labels")
    no_python_structures(out)


def test_quiet_keeps_the_report_only_and_a_pipe_does_unless_asked():
    quiet, rc = on_a_terminal(cli("run", "--bundle", GL, "--source", GL_REPLAY, "--quiet"))
    assert rc == 0 and "interpreter:" in quiet
    assert not re.search(COMMAND, quiet, re.MULTILINE) and "decisions vs true labels" not in quiet
    piped = in_a_pipe(cli("run", "--bundle", GL, "--source", GL_REPLAY))
    assert piped.returncode == 0 and "interpreter:" in piped.stdout
    assert not re.search(COMMAND, piped.stdout, re.MULTILINE) and "[run] grasp-lift bundle" not in piped.stdout
    asked = in_a_pipe(cli("run", "--bundle", GL, "--source", GL_REPLAY, "--lines"))
    assert asked.returncode == 0 and re.search(COMMAND, asked.stdout, re.MULTILINE)
    assert "decided (no arm: nothing sent)" in asked.stdout


def test_a_run_with_no_arm_says_so_at_its_start():
    for argv in (cli("run", "--bundle", GL, "--source", GL_REPLAY), cli("run", "--bundle", GL, "--source", GL_REPLAY,
                                                                        "--quiet", "--arm", "none")):
        out = in_a_pipe(argv)
        assert out.returncode == 0
        assert out.stdout.splitlines()[0].startswith("[run] no arm (--arm none): commands are decided and counted, "
                                                     "nothing is sent")


def _myo_session(folder, rows: int = 300, seed: int = 0):
    """A labelled Myo armband session in its own layout (classe_K.dat, K = 0..27, gesture K % 7): EMG-like
    bursts whose channel pattern depends on the gesture."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for k in range(N_FILES):
        g = k % len(GESTURES)
        gain = 4.0 + 30.0 * (np.arange(len(MYO_CHANNELS)) == g % len(MYO_CHANNELS)) * (g > 0)
        x = np.clip(np.round(rng.normal(0, 1, (rows, len(MYO_CHANNELS))) * gain), -128, 127)
        x.astype("<i2").tofile(folder / f"classe_{k}.dat")
    return folder


def test_a_labelled_emg_replay_ends_with_its_continuous_use_score(tmp_path):
    session = _myo_session(tmp_path / "Test0")
    out, rc = on_a_terminal(cli("run", "--bundle", GESTURE, "--source", f"replay:{session}?speed=max"))
    assert rc == 0, out
    assert "[run] gesture bundle (EMG, 7 labels)" in out and "[run] no arm (--arm none)" in out
    assert out.index("interpreter:") < out.index("continuous use (as a user feels it)")
    assert re.search(r"gestures commanded +\d+/16", out) and "false activations" in out
    no_python_structures(out)


# --------------------------------------------------------------------------- faults: once, in the signal's words


def test_each_arm_fault_is_printed_once(tmp_path):
    """A microcontroller reset during a run against the simulated arm: the link reports it and the runtime
    takes it from the link, but the console says it once."""
    from firmware_bridge.sim import start

    sim = start("host")
    try:
        proc = subprocess.Popen(cli("run", "--bundle", GL, "--source", "synthetic:?kind=grasp-lift&trials=4",
                                    "--arm", sim.pty, "--lines", "--duration", "4"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=ENV)
        for line in proc.stdout:  # connected and running
            if line.startswith("[run] arm"):
                break
        time.sleep(0.8)
        sim.reset_mcu()
        out, err = proc.communicate(timeout=60)
    finally:
        sim.stop()
    assert proc.returncode == 0, err
    said = [line for line in err.splitlines() if "mcu_reset" in line]  # the link's report, taken by the runtime
    assert len(said) == 1 and "the arm's microcontroller reset" in said[0], err
    assert "safe state: arm rested by its firmware" in err and "safe state: stopped" not in err
    assert re.search(r"faults: (?:\w+ \d+, )*arm \d+", out)
    no_python_structures(out + err)


def _emg(seconds: float, nan_after: float | None = None) -> Recording:
    n = int(seconds * 200)
    x = np.random.default_rng(1).normal(0, 20, (n, len(MYO_CHANNELS))).round().clip(-128, 127)
    if nan_after is not None:
        x[int(nan_after * 200):] = np.nan
    return Recording(x, MYO_CHANNELS, 200.0, np.array([[0, n]]), np.arange(n))


def test_an_emg_stall_and_invalid_emg_are_named_emg(caplog):
    gesture = load_bundle(GESTURE)
    with caplog.at_level(logging.WARNING, logger="edge.runtime.loop"):
        # paced at 1/20 of real time: the first chunk comes after a second, the stream is silent before
        rt = Runtime(gesture, ReplaySource(_emg(2.0), speed=0.05), None, RuntimeConfig(budget_ms=1000))
        rt.run(max_seconds=0.6)
    # the safe state's reason as logged: when the run ends (0.6 s) the state's reason becomes "stopped"
    assert re.search(r"fault stream: no EMG for \d+ ms", caplog.text) and "safe state: stream stalled" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge.runtime.loop"):
        rt = Runtime(gesture, ReplaySource(_emg(3.0, nan_after=1.0), speed=1.0), None, RuntimeConfig(budget_ms=1000))
        rt.run(max_seconds=2.0)
    assert "no valid (finite, in-range) EMG" in caplog.text and "safe state: no valid EMG" in caplog.text
    assert "EEG" not in caplog.text


def test_the_report_shows_no_python_structures():
    s = RunSummary(faults={"link": 2, "arm": 1}, held={"GRASP in holding": 3})
    text = format_report(s)
    assert "faults: arm 1, link 2" in text and "3x GRASP in holding" in text
    no_python_structures(text)


# --------------------------------------------------------------------------- evaluate, demo, the timeline


def test_evaluate_shows_a_bar_on_a_terminal_and_lines_in_a_pipe(tmp_path):
    argv = cli("evaluate", GL, "--data", "synthetic", "--quick")
    out, rc = on_a_terminal(argv)
    assert rc == 0, out
    assert re.search(r"\[evaluate\] reading the grasp-lift recordings of synthetic[^\n]*\d+%\|", out), out
    piped = in_a_pipe(argv)
    assert piped.returncode == 0
    assert "[evaluate] reading the grasp-lift recordings of synthetic\n" in piped.stdout and "%|" not in piped.stdout
    assert re.search(r"\[evaluate\] \d+ held-out recording\(s\) read in \d+\.\d s", piped.stdout)
    # a gesture bundle on Myo sessions: a bar over the sessions, each session's result kept above it
    for name in ("Test0", "Test1"):
        _myo_session(tmp_path / "Male9" / name, rows=150)
    out, rc = on_a_terminal(cli("evaluate", GESTURE, "--data", str(tmp_path / "Male9")))
    assert rc == 0, out
    assert re.search(r"sessions: +50%\|", out) and "[evaluate] Male9/Test1: int8 accuracy" in out


def test_demo_pins_its_own_stream_and_types_it_as_its_signal(tmp_path):
    session = _myo_session(tmp_path / "Test0", rows=200)
    log = tmp_path / "run.jsonl"
    out = in_a_pipe(cli("demo", "--bundle", GESTURE, "--recording", str(session), "--arm", "none", "--speed", "8",
                        "--view", "none", "--log", str(log)))
    assert out.returncode == 0, out.stderr
    assert "(type EMG)" in out.stdout and "nothing is sent" in out.stdout
    assert "does not pin" not in out.stderr and "declares no source_id" not in out.stderr, out.stderr
    start = json.loads(log.read_text().splitlines()[0])
    assert start["event"] == "start" and "type 'EMG'" in start["source"]


def test_the_timeline_has_a_panel_per_label_a_legend_and_leaves_gaps_empty():
    pytest.importorskip("matplotlib")
    from benchmarks.plots import timeline_figure

    gl = load_bundle(GL)
    rec = grasp_lift_series(1, 7, seed=3, n_trials=3)
    n, cut, gap = 12_000, 6_000, 3_000  # 3000 samples (6 s) missing after row 6000
    index = np.concatenate([np.arange(cut), np.arange(cut, n) + gap])
    rec = Recording(rec.samples[:n], rec.channels, rec.fs, np.array([[0, cut], [cut, n]]), index,
                    rec.labels[:n], rec.label_names, source=rec.source)
    tl = timeline(gl, rec)
    assert tl["gaps"] == [[cut / rec.fs, (cut + gap) / rec.fs]]
    fig = timeline_figure(tl, "test")
    assert len(fig.axes) == len(gl.labels) + 1  # one panel per label, then the commands and the arm
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"probability", "threshold", "label true", "no data (a gap)"} <= set(legend)
    a, b = tl["gaps"][0]
    for ax in fig.axes[:-1]:
        x = np.asarray(ax.lines[0].get_xdata(), float)
        nan, t = np.isnan(x), x[~np.isnan(x)]
        assert (t < a).any() and (t > b).any() and not ((t > a) & (t < b)).any()  # real time, nothing inside
        k = int(np.argmax(nan))
        assert nan.sum() == 1 and x[k - 1] < a and x[k + 1] > b  # the trace is broken at the gap: no line across
        shaded = [p.get_path().get_extents(p.get_patch_transform()) for p in ax.patches]
        assert any(abs(e.x0 - a) < 1e-6 and abs(e.x1 - b) < 1e-6 for e in shaded)  # the gap is shaded
