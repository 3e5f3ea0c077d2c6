"""End to end: the Python link talks to the real firmware core (host build) over a pseudo-terminal."""

from __future__ import annotations

import itertools
import os
import signal
import time

import pytest
import serial

from firmware_bridge import protocol as P
from firmware_bridge.errors import DeadlineExpired, Disconnected, HeldAfterReset, Nacked, ProtocolError
from firmware_bridge.link import ArmLink
from firmware_bridge.sim import start_arm_host


def _poll(link: ArmLink, seconds: float, every: float = 0.01) -> list[P.Status]:
    out, t_end = [], time.monotonic() + seconds
    while time.monotonic() < t_end:
        out.append(link.status())
        time.sleep(every)
    return out


def _assert_slew(samples: list[P.Status], joint: int, speed_ddeg_s: int) -> None:
    """Between any two samples the joint moved at most speed x (firmware time elapsed), +1 for rounding."""
    for a, b in itertools.pairwise(samples):
        dt = b.uptime_ms - a.uptime_ms
        assert abs(b.position[joint] - a.position[joint]) <= speed_ddeg_s * dt / 1000 + 1, (a, b)


def test_command_ack_moves_within_limits_and_slew(arm_host):
    with ArmLink(arm_host.pty) as link:
        assert link.hello.protocol_version == P.PROTOCOL_VERSION and link.hello.n_joints == 2
        start = link.status()
        assert start.position == (400, 400) and not start.faults
        link.command(P.Action.GRASP, 1000, 600)  # returns only after the ACK
        samples = _poll(link, 0.5)
        _assert_slew(samples, 0, 600)
        assert samples[-1].position[1] == 400  # the other joint did not move
        # it moves towards the target: ~0.5 s at 60 °/s is 300 ddeg (less if the host process was
        # descheduled, never more: the slew check above is on the firmware clock)
        assert 150 <= samples[-1].position[0] - 400 <= 310
        assert all(x.target[0] == 1000 for x in samples)
        # a target beyond the joint's limit is clamped by the firmware, and flagged
        link.command(P.Action.LIFT, 1800, 3000)
        s = link.status()
        assert s.target[1] == 1500 and s.faults & P.Fault.CLAMPED
        samples = _poll(link, 0.4)
        _assert_slew(samples, 1, 900)  # the requested 300 °/s was clamped to the joint's 90 °/s
        assert max(x.position[1] for x in samples) <= 1500
        assert link.stats.ack_timeouts == 0 and link.stats.heartbeats_ok > 0


def test_heartbeats_stop_safe_pose_within_watchdog(host_build):
    arm = start_arm_host(host_build, trace_ms=1)  # reports faults every firmware millisecond
    try:
        _watchdog_scenario(arm)
    finally:
        arm.stop()


def _watchdog_scenario(arm):
    with ArmLink(arm.pty, heartbeat_period=None) as link:
        link.heartbeat()
        link.command(P.Action.GRASP, 1400, 3000)
        for _ in range(10):  # keep it alive for a while with manual heartbeats
            time.sleep(0.04)
            last = link.heartbeat()
        t_last = time.monotonic()
        assert not last.faults & P.Fault.WATCHDOG
        after = None
        while time.monotonic() - t_last < 1.0:
            s = link.status()  # STATUS_REQ does not feed the watchdog
            if s.faults & P.Fault.WATCHDOG:
                after = s
                break
            # no fault may be reported once the watchdog time has passed on the firmware clock
            assert s.uptime_ms - last.uptime_ms < P.WATCHDOG_DEFAULT_MS
            time.sleep(0.003)
        assert after is not None, "watchdog never tripped"
        assert time.monotonic() - t_last <= 0.5  # loose: host scheduling and pty latency included
        trip_ms, t_end = None, time.monotonic() + 1.0
        while trip_ms is None and time.monotonic() < t_end:  # the trace is read by another thread
            trip_ms = next((t[0] for t in list(arm.trace) if t[5] & P.Fault.WATCHDOG), None)
            time.sleep(0.01)
        # the firmware clock: safe state entered exactly at the watchdog time (1 ms trace period)
        assert P.WATCHDOG_DEFAULT_MS <= trip_ms - last.uptime_ms <= P.WATCHDOG_DEFAULT_MS + 2
        assert after.target == (400, 400) and after.watchdog_trips == 1
        with pytest.raises(Nacked, match="WATCHDOG"):
            link.command(P.Action.GRASP, 1000, 100)
        time.sleep(1.2)
        assert link.status().position == (400, 400)
        # heartbeats resume, the fault stays latched until cleared
        assert link.heartbeat().faults & P.Fault.WATCHDOG
        link.clear(P.Fault.WATCHDOG)
        link.heartbeat()
        link.command(P.Action.GRASP, 600, 100)


def test_pause_heartbeat_thread_trips_watchdog(arm_host):
    with ArmLink(arm_host.pty, heartbeat_period=0.05) as link:
        time.sleep(0.3)
        assert not link.status().faults & P.Fault.WATCHDOG
        link.pause_heartbeat()
        time.sleep(0.4)
        assert link.status().faults & P.Fault.WATCHDOG


def test_estop_latches_until_cleared(arm_host):
    with ArmLink(arm_host.pty) as link:
        link.command(P.Action.LIFT, 1400, 900)
        time.sleep(0.15)
        link.estop()
        frozen = link.status().position
        with pytest.raises(Nacked, match="ESTOPPED"):
            link.command(P.Action.LIFT, 500, 900)
        with pytest.raises(Nacked, match="ESTOPPED"):
            link.set_limits(1, 300, 1000, 400, 500)
        time.sleep(0.3)
        s = link.status()
        assert s.position == frozen and s.faults & P.Fault.ESTOP
        link.clear(P.Fault.ESTOP)
        time.sleep(0.1)
        assert link.status().position == frozen  # still until a new command
        link.command(P.Action.LOWER, 500, 900)
        time.sleep(0.1)
        assert link.status().position[1] < frozen[1]


def test_expired_command_is_never_sent(arm_host):
    with ArmLink(arm_host.pty) as link:
        before = link.status().commands_executed
        with pytest.raises(DeadlineExpired) as e:
            link.command(P.Action.GRASP, 1000, 100, deadline=time.monotonic() - 0.001)
        assert e.value.transmitted is False
        time.sleep(0.05)
        s = link.status()
        assert s.commands_executed == before and s.target[0] == 400
        assert link.stats.deadline_drops == 1


def test_unanswered_command_is_retried_then_dropped_at_its_deadline(host_build):
    arm = start_arm_host(host_build, log_commands=True)
    try:
        with ArmLink(arm.pty, heartbeat_period=None, ack_timeout=0.05, retries=10) as link:
            link.heartbeat()
            os.kill(arm.proc.pid, signal.SIGSTOP)  # the firmware stops answering (bytes queue up)
            try:
                with pytest.raises(DeadlineExpired) as e:
                    link.command(P.Action.GRASP, 1111, 100, deadline=time.monotonic() + 0.12)
            finally:
                os.kill(arm.proc.pid, signal.SIGCONT)
            # sent at 0, 50 and 100 ms (later if this machine is loaded); the retransmission due
            # at 150 ms was past the deadline and was not sent
            assert e.value.transmitted is True and link.stats.retransmissions in (1, 2)
            assert link.stats.deadline_drops == 1
            time.sleep(0.1)
            link.status()
        # the three identical copies reached the firmware: it ran the command at most once
        # (exactly once unless the pause outlasted the watchdog and it refused them all)
        runs = [pl for _, pl in arm.commands if pl == P.pack_arm_cmd(P.Action.GRASP, 1111, 100)]
        assert len(runs) <= 1
    finally:
        arm.stop()


def test_set_limits_and_watchdog_config_enforced(arm_host):
    with ArmLink(arm_host.pty) as link:
        with pytest.raises(Nacked, match="BAD_ARG"):
            link.set_limits(0, 500, 400, 450, 100)  # min > max: the firmware refuses
        with pytest.raises(Nacked, match="BAD_ARG"):
            link.set_watchdog(1000)  # longer than the safety ceiling of 250 ms
        link.set_limits(0, 300, 900, 400, 200)
        link.command(P.Action.GRASP, 1500, 3000)
        s = link.status()
        assert s.target[0] == 900 and s.faults & P.Fault.CLAMPED


def test_reconnects_after_unplug(tmp_path, host_build):
    name = tmp_path / "ttyARM"
    arm = start_arm_host(host_build, link=name)
    link = ArmLink(str(name), backoff_initial=0.02, backoff_max=0.2)
    try:
        link.open()
        link.set_limits(0, 300, 900, 400, 600)
        link.command(P.Action.GRASP, 800, 500)
        arm.stop()  # "unplug"
        t0 = time.monotonic()
        while link.connected and time.monotonic() - t0 < 2:
            time.sleep(0.01)
        assert not link.connected
        with pytest.raises(Disconnected, match="retry later"):
            link.command(P.Action.GRASP, 800, 500)
        arm = start_arm_host(host_build, link=name)  # "plug back in" under the same name
        assert link.wait_connected(3.0)
        assert link.stats.reconnects == 1
        # a new firmware process is a rebooted MCU (a replugged Uno reboots): seen before any command,
        # and commands are held until the owner clears, as after a watchdog trip
        assert link.stats.mcu_resets == 1 and link.hold_reason is not None
        with pytest.raises(HeldAfterReset):
            link.command(P.Action.GRASP, 800, 500)
        link.clear(P.Fault.WATCHDOG)
        link.command(P.Action.GRASP, 800, 500)
        assert link.status().target[0] == 800
        link.command(P.Action.GRASP, 1200, 500)  # the limits set before the unplug were restored
        assert link.status().target[0] == 900
    finally:
        link.close()
        arm.stop()


def test_an_unplugged_arms_name_never_reaches_the_next_arm(host_build):
    """The kernel gives a freed /dev/pts/N to the next terminal opened anywhere: a link re-opening the
    number of an arm that went away could reach another program's arm.  The name a simulated arm is
    opened by is its own, and goes with it, however the arm ends (here: killed, as a crash would)."""
    arms = [start_arm_host(host_build)]
    link = ArmLink(arms[0].pty, backoff_initial=0.02, backoff_max=0.05)
    try:
        link.open()
        name, freed = arms[0].pty, arms[0].device
        arms[0].proc.kill()  # it cannot remove its name itself
        t0 = time.monotonic()
        while link.connected and time.monotonic() - t0 < 2:  # the link closes its end: N is free
            time.sleep(0.01)
        assert not link.connected
        t0 = time.monotonic()
        while os.path.lexists(name) and time.monotonic() - t0 < 2:
            time.sleep(0.01)
        assert not os.path.lexists(name)
        for _ in range(5):  # the next terminals take the lowest free number: this one (or another program does)
            arms.append(start_arm_host(host_build))
            if os.path.exists(freed):
                break
        assert os.path.exists(freed), "no new terminal took the freed number: the test would prove nothing"
        time.sleep(0.5)  # the link retries all the while
        assert not link.connected and link.stats.reconnects == 0
    finally:
        link.close()
        for arm in arms:
            arm.stop()


def test_loop_url_is_detected_as_echo():
    link = ArmLink("loop://", heartbeat_period=None, boot_timeout=0.5)
    with pytest.raises(ProtocolError, match="loopback"):
        link.open()


def test_missing_port_names_the_fix():
    with pytest.raises(Disconnected, match="dialout"):
        ArmLink("/dev/does-not-exist-ttyACM9").open()


def test_spy_url_logs_traffic(arm_host, tmp_path):
    log = tmp_path / "spy.txt"
    with ArmLink(f"spy://{arm_host.pty}?file={log}", heartbeat_period=None) as link:
        link.command(P.Action.OPEN, 300, 100)
    text = log.read_text()
    assert "TX" in text and "RX" in text


def test_opening_does_not_assert_dtr(arm_host):
    # pyserial applies dtr/rts at open(); on a pty they are no-ops, but the attributes must be False.
    link = ArmLink(arm_host.pty, heartbeat_period=None)
    link.open()
    try:
        assert link._transport.port.dtr is False and link._transport.port.rts is False
    finally:
        link.close()


def test_argument_checks():
    with pytest.raises(TypeError, match="url must be"):
        ArmLink(None)
    with pytest.raises(ValueError, match="ack_timeout must be > 0"):
        ArmLink("loop://", ack_timeout=0)
    with pytest.raises(ValueError, match="retries"):
        ArmLink("loop://", retries=-1)
    assert serial.__version__


def test_an_unplug_and_mcu_reset_after_the_estop_release_do_not_start_the_arm(tmp_path, host_build):
    """The review: after the e-stop switch's release (the firmware holds its ESTOP latch until a start),
    the cable drops and the MCU reboots, forgetting the latch.  The reconnect must not read the new
    firmware's clean STATUS as a start: the link latches the stop again, and only start() releases it."""
    from firmware_bridge.link import FaultKind

    name = tmp_path / "ttyARM"
    arm = start_arm_host(host_build, link=name)
    link = ArmLink(str(name), backoff_initial=0.02, backoff_max=0.2)
    try:
        link.open()
        link.command(P.Action.GRASP, 800, 500)
        arm.set_estop(True)
        t0 = time.monotonic()
        while link.stats.estops == 0 and time.monotonic() - t0 < 2:
            time.sleep(0.01)
        arm.set_estop(False)
        seen = []
        t0 = time.monotonic()
        while FaultKind.ESTOP_SWITCH_RELEASED not in [f.kind for f in seen] and time.monotonic() - t0 < 2:
            seen += link.take_faults()
            time.sleep(0.01)
        assert FaultKind.ESTOP_SWITCH_RELEASED in [f.kind for f in seen]
        arm.stop()  # unplugged ...
        t0 = time.monotonic()
        while link.connected and time.monotonic() - t0 < 2:
            time.sleep(0.01)
        arm = start_arm_host(host_build, link=name)  # ... and plugged back in: a rebooted MCU
        assert link.wait_connected(3.0)
        time.sleep(0.2)
        kinds = [f.kind for f in link.take_faults()]
        assert FaultKind.ESTOP_RELEASED not in kinds, kinds  # the reboot is no start
        assert link.status().faults & P.Fault.ESTOP  # latched again on the new session
        link.clear(P.Fault.WATCHDOG)  # the reboot's own hold
        with pytest.raises(Nacked, match="ESTOPPED"):
            link.command(P.Action.GRASP, 800, 500)
        link.start()
        assert FaultKind.ESTOP_RELEASED in [f.kind for f in link.take_faults()]
        link.command(P.Action.GRASP, 800, 500)
    finally:
        link.close()
        arm.stop()
