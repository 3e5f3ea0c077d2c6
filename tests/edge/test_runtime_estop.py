"""The e-stop asked for from another thread (the live view's button) against the deliberate start
(edge/runtime/estop.py), on a stand-in arm that acts like the link: a stop always wins, every name that
pressed is logged, and an e-stop the firmware did not acknowledge pauses the heartbeats.  The same
orders against the firmware's host build are in tests/edge/test_view_server.py."""

from __future__ import annotations

import pytest

from edge.bundle import load_bundle
from edge.config import RuntimeConfig
from edge.recordings.synthetic import grasp_lift_series
from edge.runtime import Runtime
from edge.runtime.outputs import JsonLog
from edge.sources import ReplaySource
from firmware_bridge.errors import AckTimeout
from tests.conftest import FIXTURE_BUNDLES
from tests.edge.fake_arm import AckingArm

GL = load_bundle(FIXTURE_BUNDLES / "grasp-lift")


class _LatchingArm(AckingArm):
    """Keeps the firmware's e-stop latch: ``estop`` sets it, ``start`` clears it (the link's CLEAR);
    ``during_start`` runs inside start (another thread's request arriving meanwhile)."""

    def __init__(self):
        super().__init__()
        self.latched, self.estops, self.starts = False, 0, 0
        self.during_start = None
        self.fail_estop = False
        self.paused = False

    def take_faults(self):
        return []

    def healthy(self):
        return True

    def estop(self):
        self.estops += 1
        if self.fail_estop:
            raise AckTimeout("no reply to ESTOP")
        self.latched = True

    def start(self):
        self.starts += 1
        if self.during_start is not None:
            hook, self.during_start = self.during_start, None
            hook()
        self.latched = False  # the CLEAR reaches the firmware after the e-stop that came meanwhile

    def pause_heartbeat(self):
        self.paused = True

    def resume_heartbeat(self):
        self.paused = False


def _runtime(arm, tmp_path=None):
    rec = grasp_lift_series(1, 7, seed=0, n_trials=2)
    log = JsonLog(tmp_path / "run.jsonl") if tmp_path is not None else None
    return Runtime(GL, ReplaySource(rec, speed=0), arm, RuntimeConfig(budget_ms=1000), log)


def test_a_start_asked_for_before_an_estop_is_dropped_even_in_the_same_turn():
    arm = _LatchingArm()
    rt = _runtime(arm)
    rt.request_estop("first")
    rt._watch_link()
    assert arm.latched and "e-stopped" in rt._holds
    rt.request_start()      # a start ...
    rt.request_estop("b")   # ... then an e-stop, both before the loop's next turn
    rt._watch_link()
    assert arm.starts == 0 and arm.latched and "e-stopped" in rt._holds
    for _ in range(3):
        rt._watch_link()
    assert arm.starts == 0 and arm.latched, "the start asked for before the e-stop ran"
    rt.request_start()  # a start asked for after it: the deliberate start
    rt._watch_link()
    assert arm.starts == 1 and not arm.latched and "e-stopped" not in rt._holds


def test_an_estop_while_the_start_runs_is_latched_again_and_the_hold_stays():
    arm = _LatchingArm()
    rt = _runtime(arm)
    rt.request_estop("first")
    rt._watch_link()
    rt.request_start()
    arm.during_start = lambda: rt.request_estop("during")  # the view's thread, while the CLEAR is on its way
    rt._watch_link()
    assert arm.starts == 1 and arm.estops == 3  # the request's own, then latched again after the start
    assert arm.latched, "the start cleared the e-stop that came during it"
    rt._watch_link()
    assert "e-stopped" in rt._holds and rt._safe


def test_two_presses_in_one_turn_are_both_named(tmp_path):
    import json

    arm = _LatchingArm()
    rt = _runtime(arm, tmp_path)
    rt.request_estop("the live view (10.0.0.2)")
    rt.request_estop("the live view (10.0.0.3)")
    rt._watch_link()
    rt.json_log.close()
    by = [e["by"] for e in map(json.loads, (tmp_path / "run.jsonl").read_text().splitlines())
          if e["event"] == "estop"]
    assert by == ["the live view (10.0.0.2)", "the live view (10.0.0.3)"]


def test_an_estop_the_firmware_did_not_acknowledge_pauses_the_heartbeats_and_the_start_resumes_through_rest():
    from firmware_bridge.protocol import Action

    arm = _LatchingArm()
    rt = _runtime(arm)
    arm.fail_estop = True
    with pytest.raises(AckTimeout):
        rt.request_estop("the live view")
    assert arm.paused, "heartbeats still fed the watchdog after a failed e-stop"
    rt._watch_link()
    assert "e-stopped" in rt._holds  # held all the same
    arm.fail_estop = False
    rest_before = arm.rests
    rt.request_start()
    rt._watch_link()
    assert not arm.paused and "e-stopped" not in rt._holds
    assert arm.rests == rest_before + 1 and arm.sent[-1] is Action.REST  # resumed through REST
    assert rt._safe_reason == "arm rested by its firmware"  # (control back once valid data flow)
