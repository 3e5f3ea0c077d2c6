"""The runtime reads the link's own fault reports (firmware_bridge.link.ArmLink.take_faults, healthy):
an MCU reset or a watchdog trip it did not ask for rests the arm and restarts the arm-state sequence;
a link whose threads died stops the process with an error, for the service manager to restart it."""

import pytest

from edge.bundle import load_bundle
from edge.config import RuntimeConfig
from edge.errors import RunError
from edge.recordings.synthetic import grasp_lift_series
from edge.runtime import Runtime
from edge.sources import ReplaySource
from firmware_bridge.errors import Nacked
from firmware_bridge.link import FaultKind, LinkFault
from firmware_bridge.protocol import Action, Reason
from tests.conftest import FIXTURE_BUNDLES
from tests.edge.fake_arm import AckingArm

#: The firmware and the runtime in real time under CPU load: make test's exclusive phase (pyproject's markers).
pytestmark = pytest.mark.exclusive

GL = load_bundle(FIXTURE_BUNDLES / "grasp-lift")


class _ReportingArm(AckingArm):
    """Acknowledges commands; reports the given link faults once, on its third loop turn; ``die_after``
    turns, its threads have died (``healthy()`` False)."""

    def __init__(self, faults=(), die_after=None):
        super().__init__()
        self.faults, self.turns, self.die_after = list(faults), 0, die_after
        self.failed = None

    def take_faults(self):
        self.turns += 1
        out, self.faults = (self.faults, []) if self.turns == 3 else ([], self.faults)
        return out

    def healthy(self):
        if self.die_after is not None and self.turns >= self.die_after:
            self.failed = RuntimeError("reader thread died")
            return False
        return True


def _runtime(arm):
    rec = grasp_lift_series(1, 7, seed=0, n_trials=2)
    return Runtime(GL, ReplaySource(rec, speed=0), arm, RuntimeConfig(budget_ms=1000))


@pytest.mark.parametrize("kind", [FaultKind.MCU_RESET, FaultKind.WATCHDOG_TRIP])
def test_the_firmware_protecting_itself_rests_the_arm_and_restarts_the_sequence(kind):
    arm = _ReportingArm([LinkFault(kind, "test")])
    rt = _runtime(arm)
    rt.pipeline.arm_state.state = "lifted"
    s = rt.run()
    assert s.faults.get("arm") == 1 and s.safe_state_entries >= 2 and arm.rests >= 2


def test_an_intended_watchdog_trip_is_only_logged():
    arm = _ReportingArm([LinkFault(FaultKind.WATCHDOG_TRIP, "asked for", intended=True)])
    s = _runtime(arm).run()
    assert "arm" not in s.faults and s.safe_state_entries == 1  # the final stop only


def test_a_dead_link_stops_the_runtime_with_an_error_after_resting_the_arm():
    arm = _ReportingArm(die_after=5)
    rt = _runtime(arm)
    with pytest.raises(RunError, match="service manager restarts"):
        rt.run()
    assert arm.rests >= 1  # the final REST was still attempted


def test_the_arms_estop_holds_every_command_sends_nothing_and_keeps_where_the_arm_is():
    """The arm froze where it is (a lifted object stays lifted): no REST while it is pressed, no
    decision sent, and the arm-state sequence is kept for when it is released."""
    arm = _ReportingArm([LinkFault(FaultKind.ESTOP, "the e-stop switch was pressed")])
    rt = _runtime(arm)
    rt.pipeline.arm_state.state = "lifted"
    sent_before = []
    fault = rt.fault

    def spy(kind, detail):
        if kind == "arm" and not sent_before:
            sent_before.append(len(arm.sent))
        fault(kind, detail)

    rt.fault = spy
    s = rt.run()
    assert s.faults.get("arm") == 1 and rt._safe_reason == "e-stopped"
    assert rt.pipeline.arm_state.state == "lifted"  # not restarted at "ready": opening at height stays invalid
    assert arm.sent[sent_before[0]:] == [Action.REST]  # nothing while pressed; only the final stop's REST


def test_a_firmware_rest_during_an_estop_resumes_through_rest_after_the_release():
    """An MCU reset while the e-stop is pressed: on release, REST first (its path clears the
    firmware's latch), then control resumes — not straight into a command the firmware refuses."""
    arm = _ReportingArm()
    rt = _runtime(arm)
    rt._hold("e-stopped", rest=False)
    arm.faults = [LinkFault(FaultKind.MCU_RESET, "test")]
    arm.turns = 2
    rt._watch_link()  # turn 3: the reset is reported while held
    assert rt._safe_reason == "e-stopped" and rt._firmware_rested and arm.rests == 0
    rt._release("e-stopped", "released")
    assert rt._safe and rt._safe_reason == "arm rested by its firmware" and arm.rests == 1
    assert not rt._firmware_rested  # REST acknowledged: valid data will resume control


def test_a_rest_the_estop_refused_after_a_firmware_rest_is_sent_again_on_the_release():
    """The other order: the firmware rested the arm, its REST was refused (NACK ESTOPPED: the switch
    was pressed meanwhile).  The firmware's latch still needs that REST, so the release sends it
    again — control must not stay at rest for good."""
    arm = _ReportingArm()
    rt = _runtime(arm)
    arm.refuse_rest = True
    command = arm.command

    def refusing(action, *a, **kw):
        if action is Action.REST and arm.refuse_rest:
            raise Nacked(0, Reason.ESTOPPED)
        command(action, *a, **kw)

    arm.command = refusing
    arm.faults = [LinkFault(FaultKind.MCU_RESET, "test"), LinkFault(FaultKind.ESTOP, "pressed")]
    arm.turns = 2
    rt._watch_link()  # turn 3: the reset (its REST refused by the e-stop), then the e-stop itself
    assert rt._safe and rt._firmware_rested and arm.rests == 0
    arm.refuse_rest = False
    rt._release("e-stopped", "released")
    assert arm.rests == 1 and not rt._firmware_rested  # REST acknowledged: valid data will resume control


class _SilentStatusArm(AckingArm):
    """Acknowledges commands, but its last valid STATUS is ``age`` seconds old (``age`` a function of the
    loop turn): a peer whose STATUS replies are all malformed."""

    def __init__(self, age):
        super().__init__()
        self.age, self.turns = age, 0

    def take_faults(self):
        self.turns += 1
        return []

    def status_age(self):
        return self.age(self.turns)

    def healthy(self):
        return True


def test_no_valid_status_from_the_arm_holds_it_and_sends_nothing_until_it_reports_again():
    from edge import config as C
    from tests.edge.test_runtime import _forced

    stale = C.ARM_STATUS_MAX_AGE_S + 0.5
    arm = _SilentStatusArm(lambda turn: stale if turn < 5 else 0.02)  # unknown at first, then it reports
    rt = _runtime(arm)
    rt.pipeline.decider = _forced(GL)
    s = rt.run()
    sent_before = [a for a in arm.sent[:1] if a is not Action.REST]
    assert s.faults.get("arm") == 1 and s.safe_state_entries >= 2 and not sent_before
    assert [a for a in arm.sent if a is not Action.REST] and "arm state unknown" not in rt._holds

    arm = _SilentStatusArm(lambda turn: stale)  # never a valid STATUS
    rt = _runtime(arm)
    rt.pipeline.decider = _forced(GL)
    s = rt.run()
    assert s.faults.get("arm") == 1 and [a for a in arm.sent if a is not Action.REST] == []
    assert s.decisions_fired == 0


class _EstopArm(AckingArm):
    """The real link's e-stop sequence: ESTOP, then ESTOP_SWITCH_RELEASED; ESTOP_RELEASED only after
    :meth:`start` (the firmware keeps its latch until then); ``pressed``: start refused."""

    def __init__(self):
        super().__init__()
        self.queue, self.started, self.pressed = [], 0, False

    def take_faults(self):
        out, self.queue = self.queue, []
        return out

    def healthy(self):
        return True

    def start(self):
        if self.pressed:
            raise Nacked(0, Reason.ESTOPPED)
        self.started += 1
        self.queue.append(LinkFault(FaultKind.ESTOP_RELEASED, "started"))


def test_releasing_the_estop_switch_does_not_restart_only_a_deliberate_start_does(caplog):
    """ISO 13850 / IEC 60204-1: resetting an emergency stop must not by itself restart the machine."""
    arm = _EstopArm()
    rt = _runtime(arm)
    arm.queue = [LinkFault(FaultKind.ESTOP, "pressed")]
    arm.pressed = True
    rt._watch_link()
    assert rt._safe and rt._safe_reason == "e-stopped"
    rt.request_start()  # while it is pressed: refused, counted, still held
    rt._watch_link()
    assert arm.started == 0 and rt._safe and rt.summary.faults["arm"] == 2
    arm.pressed = False
    arm.queue = [LinkFault(FaultKind.ESTOP_SWITCH_RELEASED, "released")]
    with caplog.at_level("WARNING"):
        for _ in range(5):
            rt._watch_link()
    assert rt._safe and rt._safe_reason == "e-stopped" and arm.sent == []  # released, not restarted
    assert "SIGUSR1" in caplog.text
    rt.request_start()  # the deliberate start (what SIGUSR1 does)
    rt._watch_link()  # the start is sent
    rt._watch_link()  # its ESTOP_RELEASED arrives
    assert arm.started == 1 and not rt._safe


def test_sigusr1_requests_the_start_in_serve():
    """serve() maps SIGUSR1 to Runtime.request_start (the service's start action)."""
    import os
    import signal
    import threading

    from edge.runtime import serve

    seen, before = {}, signal.getsignal(signal.SIGUSR1)

    def on_ready(rt):
        os.kill(os.getpid(), signal.SIGUSR1)
        seen["requested"] = rt._start_requested
        threading.Timer(0.2, rt.stop).start()

    serve(FIXTURE_BUNDLES / "grasp-lift", "synthetic:?kind=grasp-lift&trials=1", "none", on_ready=on_ready,
          install_signals=True)
    assert seen["requested"] is True
    assert signal.getsignal(signal.SIGUSR1) is before  # restored after the run


@pytest.mark.parametrize("kind", ["simavr", "host"])
def test_a_run_on_an_arm_left_latched_by_the_previous_session_starts_clean(kind, tmp_path):
    """The previous session closed the link and its heartbeats stopped (every run ends so): the firmware's
    watchdog latched.  The next run, on the real firmware behind the simulator, did not cause that latch:
    it clears it and logs it, and starts without a fault or a safe-state episode."""
    import json
    import time

    from edge.runtime import JsonLog
    from firmware_bridge.link import ArmLink
    from firmware_bridge.protocol import Fault
    from firmware_bridge.sim import SimError, start
    from tests.conftest import REQUIRE_AVR, missing

    try:
        sim = start(kind)
    except SimError as exc:
        missing(f"the simulated arm cannot run here ({exc})", REQUIRE_AVR)
    if sim.kind != kind:  # simavr asked for, the host build ran
        sim.stop()
        missing(f"simavr cannot run here ({sim.fallback_reason})", REQUIRE_AVR)
    try:
        with ArmLink(sim.pty, boot_timeout=3):
            pass  # a session that ends: the link closes and its heartbeats stop
        time.sleep(0.6)  # several watchdog periods
        link = ArmLink(sim.pty, boot_timeout=3)
        link.open()
        try:
            assert Fault.WATCHDOG in link.last_status.faults  # latched before this run
            log = JsonLog(tmp_path / "run.jsonl")
            rt = Runtime(GL, ReplaySource(grasp_lift_series(1, 7, seed=0, n_trials=2), speed=0), link,
                         RuntimeConfig(budget_ms=1000), log)
            s = rt.run()
            log.close()
            assert Fault.WATCHDOG not in link.status().faults
        finally:
            link.close()
    finally:
        sim.stop()
    assert "arm" not in s.faults and s.safe_state_entries == 1  # the final stop only
    events = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    cleared = [e for e in events if e["event"] == "stale_fault_cleared"]
    assert len(cleared) == 1 and cleared[0]["fault"] == "WATCHDOG"
    assert not any(e["event"] == "link_fault" and e["kind"] == "watchdog_trip" for e in events)
