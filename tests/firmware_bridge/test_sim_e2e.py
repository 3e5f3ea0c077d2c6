"""End to end against a simulated arm, in both forms, each test id saying which ran:
``[simavr]`` is the real AVR binary on simavr's ATmega328P (pulse widths read from its Timer1),
``[host]`` the host build of the same firmware core (the fallback where simavr cannot run)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time

import pytest

from firmware_bridge import protocol as P
from firmware_bridge import sim
from firmware_bridge.errors import Nacked
from firmware_bridge.link import ArmLink
from tests.conftest import REPO, REQUIRE_AVR, missing, require_tool

SAFE_US = P.ddeg_to_pulse_us(400)


@pytest.fixture(params=["simavr", "host"])
def arm(request, host_build):
    if request.param == "simavr":
        require_tool("avr-gcc")
        require_tool("simavr")
        try:
            proc = sim.start_simavr(trace_ms=50)
        except sim.SimError as e:
            missing(f"simavr cannot run here ({e}); the [host] fallback variant ran instead", REQUIRE_AVR)
    else:
        proc = sim.start_arm_host(host_build, trace_ms=50)
    assert proc.kind == request.param
    yield proc
    proc.stop()


def _pulses_since(arm, t_ms: int) -> list[tuple]:
    return [p for p in list(arm.pulses) if p[0] >= t_ms]


def _max_step_us(speed_ddeg_s: int, dt_ms: int) -> float:
    # position moves <= speed x dt (+1 ddeg rounding); the pulse maps 1800 ddeg to 1000 us (+1 rounding)
    return (speed_ddeg_s * dt_ms / 1000 + 1) * 1000 / 1800 + 1


def _assert_slew(pulses: list[tuple], ch: int, speed_ddeg_s: int) -> None:
    """Each change of channel ``ch`` is at most speed x (time since its previous change), rising only.

    A report line is printed when either channel changes, so only this channel's own changes are
    compared; +1 ms covers the truncation of the reported milliseconds.
    """
    t_prev, v_prev = pulses[0][0], pulses[0][ch]
    for p in pulses[1:]:
        if p[ch] != v_prev:
            assert 0 < p[ch] - v_prev <= _max_step_us(speed_ddeg_s, p[0] - t_prev + 1), (ch, t_prev, v_prev, p)
            t_prev, v_prev = p[0], p[ch]


def test_command_changes_pulse_within_limits_and_slew(arm):
    with ArmLink(arm.pty, boot_timeout=3) as link:
        t0 = link.status().uptime_ms
        link.command(P.Action.GRASP, 1200, 600)
        link.command(P.Action.LIFT, 1800, 3000)  # beyond the joint's max and max speed: clamped
        time.sleep(1.5)
        s = link.status()
    pulses = _pulses_since(arm, t0)
    assert len(pulses) > 20
    _assert_slew(pulses, 1, 600)
    _assert_slew(pulses, 2, 900)
    assert max(p[2] for p in pulses) <= P.ddeg_to_pulse_us(1500)
    assert pulses[-1][1] == P.ddeg_to_pulse_us(1200) and pulses[-1][2] == P.ddeg_to_pulse_us(1500)
    assert s.position == (1200, 1500) and s.faults & P.Fault.CLAMPED
    if arm.kind == "simavr":
        assert arm.pwm_period_us == 20000  # 50 Hz measured on the simulated OC1A pin


def test_heartbeats_stop_safe_pose_within_watchdog(arm):
    with ArmLink(arm.pty, heartbeat_period=None, boot_timeout=3) as link:
        link.heartbeat()
        link.command(P.Action.GRASP, 1600, 1200)  # 1.0 s of travel: still moving up when it trips
        for _ in range(6):
            time.sleep(0.04)
            last = link.heartbeat()
        after = None
        t_end = time.monotonic() + 1.0
        while after is None and time.monotonic() < t_end:
            s = link.status()
            if s.faults & P.Fault.WATCHDOG:
                after = s
            else:
                assert s.uptime_ms - last.uptime_ms < P.WATCHDOG_DEFAULT_MS
            time.sleep(0.005)
        assert after is not None, f"[{arm.kind}] watchdog never tripped"
        time.sleep(1.0)
        final = link.status()
    assert final.position == (400, 400) and final.target == (400, 400)
    pulses = _pulses_since(arm, last.uptime_ms)
    # the trip on the firmware clock: the first pulse that moves back towards the safe pose
    turn = next(b[0] for a, b in itertools.pairwise(pulses) if b[1] < a[1])
    assert turn - last.uptime_ms <= P.WATCHDOG_DEFAULT_MS + 5, (arm.kind, turn, last.uptime_ms)
    assert pulses[-1][1:] == (SAFE_US, SAFE_US)


def test_estop_latches_until_cleared(arm):
    with ArmLink(arm.pty, boot_timeout=3) as link:
        link.command(P.Action.LIFT, 1400, 900)
        time.sleep(0.2)
        link.estop()
        t_stop = link.status().uptime_ms
        with pytest.raises(Nacked, match="ESTOPPED"):
            link.command(P.Action.LOWER, 500, 900)
        time.sleep(0.4)
        frozen = _pulses_since(arm, t_stop)
        assert len({p[1:] for p in frozen}) == 1 and frozen[0][2] > SAFE_US
        link.clear(P.Fault.ESTOP)
        time.sleep(0.2)
        t_clear = link.status().uptime_ms
        assert {p[1:] for p in _pulses_since(arm, t_stop)} == {frozen[0][1:]}
        link.command(P.Action.LOWER, 500, 900)
        time.sleep(0.2)
        assert _pulses_since(arm, t_clear)[-1][2] < frozen[0][2]


def test_start_falls_back_to_host_and_says_so(monkeypatch, host_build):
    def broken(**kw):
        raise sim.SimError("simavr not installed (test)")

    monkeypatch.setattr(sim, "start_simavr", broken)
    arm = sim.start("simavr")
    try:
        assert arm.kind == "host" and "simavr not installed" in arm.fallback_reason
        with ArmLink(arm.pty) as link:
            assert link.hello.protocol_version == P.PROTOCOL_VERSION
    finally:
        arm.stop()


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc: any Linux)."""
    out = []
    for d in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{d}/stat").read() if d.isdigit() else ""  # noqa: SIM115 - read at once
        except OSError:
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(d))
    return out


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("kind", ["simavr", "host"])
def test_arm_sim_stops_its_simulator_on_sigterm_and_sighup(kind, sig, host_build):
    """``neurogrip arm-sim`` stopped by a service manager (SIGTERM) or a closed terminal (SIGHUP) stops the
    simulator process it started: none is left running behind it."""
    if kind == "simavr":
        require_tool("avr-gcc")
        require_tool("simavr")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "arm-sim", *(["--host"] if kind == "host" else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    kids = []
    try:
        pty_path, what = proc.stdout.readline().strip(), proc.stdout.readline()
        # the name printed is the arm's own (a symlink to its pty), gone with it: see the end
        assert os.path.realpath(pty_path).startswith("/dev/pts/"), \
            proc.stderr.read() if proc.poll() is not None else pty_path
        if kind == "simavr" and "simavr unavailable" in what:
            missing(f"simavr cannot run here ({what.strip()})", REQUIRE_AVR)
        kids = _children(proc.pid)
        assert kids and all(_running(k) for k in kids)  # the simulator runs as its child
        time.sleep(0.3)
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0
        assert [k for k in kids if _running(k)] == []
        # no later terminal can answer at the printed name: it went with the arm, its folder too
        assert not os.path.lexists(pty_path) and not os.path.exists(os.path.dirname(pty_path))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for k in kids:  # what the test found running is never left behind, whatever it asserted
            if _running(k):
                os.kill(k, signal.SIGKILL)
