"""edge.sources.arm: the arm's microcontroller as the EMG front end (issue 27, the Pi side).

Real parts: the firmware's host build behind a pty, its analog inputs driven by an ADC feed
(``firmware/host/adc_feed.h``, NGADC1), read through the real link.  Feed sample k holds
``_pattern(k, ch)`` counts on input ch, and scan k of a stream at the feed's rate reads feed sample k,
so every delivered value is checked, and a row's feed index can be read back from its values.  The
clock mapping and the scale are also checked alone, fed by hand (no threads, no port).
"""

from __future__ import annotations

import dataclasses
import io
import time

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.config import RuntimeConfig
from edge.decision import Decider
from edge.errors import RunError, SourceError, SourceSpecError
from edge.record.display import CueDisplay
from edge.record.paradigm import Cue, Paradigm
from edge.recordings import read_recording
from edge.recordings.synthetic import grasp_lift_series
from edge.runtime import Runtime, serve
from edge.sources import ArmSource, ReplaySource, open_source, parse_spec
from edge.sources.arm_clock import IndexClock
from edge.sources.arm_scale import adc_scale, unit_problem
from edge.sources.spec import shares_link
from firmware_bridge import protocol as P
from firmware_bridge import sim
from firmware_bridge.errors import Nacked
from firmware_bridge.link import ArmLink, FaultKind, LinkFault
from firmware_bridge.protocol import Action
from tests.conftest import FIXTURE_BUNDLES
from tests.edge.fake_arm import AckingArm

#: The firmware and the runtime in real time under CPU load: make test's exclusive phase (pyproject's markers).
pytestmark = pytest.mark.exclusive

GESTURE = FIXTURE_BUNDLES / "gesture"  # 8 channels emg1..emg8 at 200 Hz, in myo units
_INV7 = pow(7, -1, 1024)


def _pattern(k: int, ch: int) -> int:
    return (k * 7 + ch * 131) % 1024


def _write_feed(path, rate: int, seconds: int = 20) -> None:
    """NGADC1: the smallest millivolts the simulated ADC converts to the pattern's counts (mV x 1023 / 5000)."""
    sim.write_adc_feed(path, ([-(-_pattern(k, ch) * 5000 // 1023) for ch in range(8)]
                              for k in range(rate * seconds)), rate, 8)


@pytest.fixture
def start_arm(host_build, tmp_path):
    """``start_arm(rate, log_commands=False)``: the firmware's host build whose ADC feed runs at ``rate``."""
    arms = []

    def start(rate: int = 200, log_commands: bool = False) -> sim.ArmProcess:
        feed = tmp_path / f"feed{rate}.ngadc"
        if not feed.exists():
            _write_feed(feed, rate)
        arms.append(sim.start_arm_host(host_build, adc=feed, log_commands=log_commands))
        return arms[-1]

    yield start
    for arm in arms:
        arm.stop()


@pytest.fixture(scope="module")
def host_build():
    return sim.build_host()


def _read(src, seconds: float, until=None) -> list:
    chunks, t_end = [], time.monotonic() + seconds
    while time.monotonic() < t_end and not (until and until(chunks)):
        c = src.read(0.05)
        if c is not None:
            chunks.append(c.copy())
    return chunks


def _feed_rows(x_myo: np.ndarray, channels) -> np.ndarray:
    """The feed index (mod 1024) of each row of values in myo units at the defaults, checked on every input.

    A scan's inputs are converted one after the other: when it does not start with a feed sample (after an
    MCU reset the tick's phase is new, the feed's is not), its last inputs may read the next feed sample."""
    counts = x_myo * 4 + 512
    assert np.array_equal(counts, np.round(counts)), "values are not whole counts / 4 - 128"
    counts = counts.astype(np.int64)
    k = (counts[:, 0] - channels[0] * 131) * _INV7 % 1024
    ahead = np.zeros(len(k), bool)  # the row's inputs from here on read sample k + 1
    for j, ch in enumerate(channels):
        now, nxt = counts[:, j] == (k * 7 + ch * 131) % 1024, counts[:, j] == ((k + 1) * 7 + ch * 131) % 1024
        ahead |= nxt & ~now
        assert (np.where(ahead, nxt, now)).all(), "a row is no feed sample: corrupted"
    return k


# ------------------------------------------------------------------ the scale and the spec, alone
def test_the_default_scale_is_the_myos_units_exactly_and_voltages_follow_the_formula():
    m, q = adc_scale(5.0, 2.5, 1.0, "myo")
    assert (m, q) == (0.25, -128.0)  # one Myo unit = 4 counts; mid-supply 512 -> 0
    counts = np.arange(1024.0)
    assert (counts * m + q)[[0, 512, 1023]].tolist() == [-128.0, 0.0, 127.75]
    for unit, per_volt in (("V", 1.0), ("mV", 1e3), ("uV", 1e6)):
        m, q = adc_scale(3.3, 1.65, 500.0, unit)
        np.testing.assert_allclose(counts * m + q, (counts * 3.3 / 1024 - 1.65) / 500.0 * per_volt, rtol=1e-12)
    assert adc_scale(5.0, 0.0, 2.0, "myo") == (0.125, 0.0)  # an envelope sensor at twice the gain


def test_a_voltage_unit_is_checked_against_the_plausible_amplitudes():
    problem, fix = unit_problem("uV", "uV", 5.0, 2.5, 1.0)  # 4883 uV a count: no EMG spans ten counts
    assert "fewer than ten counts" in problem and fix == {"gain": 1000.0}
    assert unit_problem("uV", "mV", 5.0, 2.5, 1000.0) is None  # 4.9 uV a count; mV -> uV by units.py
    assert "range is" in unit_problem("uV", "uV", 5.0, 2.5, 1e6)[0]
    assert unit_problem("myo", "myo", 5.0, 2.5, 1.0) is None
    assert unit_problem("myo", "uV", 5.0, 2.5, 1000.0)[1] == {"unit": "myo", "gain": None}
    assert unit_problem("uV", "myo", 5.0, 2.5, 1.0)[1] == {"unit": "uV", "gain": "GAIN"}


@pytest.mark.parametrize("spec, fix", [
    ("arm:", "names no port; write arm:/dev/ttyACM0"),
    ("arm:/dev/null?channels=0-8", r"ADC inputs 0..7 \(A0-A7\) in ascending order"),
    ("arm:/dev/null?channels=3,1", "ascending order"),
    ("arm:/dev/null?channels=left", "channels=0-7, channels=0,2,5"),
    ("arm:/dev/null?rate=300", "must divide 1000"),
    ("arm:/dev/null?rate=0", "rate must be >= 1"),
    ("arm:/dev/null?unit=furlongs", "delivers myo .* or a voltage"),
    ("arm:/dev/null?unit=counts", "delivers myo"),
    ("arm:/dev/null?gain=0", "gain must be > 0"),
    ("arm:/dev/null?vref=0", "vref must be > 0"),
    ("arm:/dev/null?channels=0-1&names=a", "one distinct name per input"),
    ("arm:/dev/null?speed=1", "allowed: channels, rate, names"),
])
def test_bad_arm_specs_are_refused_before_any_port_opens_naming_the_fix(spec, fix):
    with pytest.raises(SourceSpecError, match=fix):
        open_source(spec)


def test_arm_spec_forms_and_which_ports_share_a_link(tmp_path):
    assert parse_spec("arm:/dev/ttyACM0?channels=0-3&rate=500") == (
        "arm", "/dev/ttyACM0", {"channels": "0-3", "rate": "500"})
    assert parse_spec("arm:spy:///dev/ttyACM0?file=t.txt?rate=200") == (
        "arm", "spy:///dev/ttyACM0?file=t.txt", {"rate": "200"})
    assert parse_spec("arm:socket://pi:7000?") == ("arm", "socket://pi:7000", {})
    link = tmp_path / "ttyARM"
    link.symlink_to("/dev/null")
    assert shares_link("arm:sim", "sim") and shares_link(f"arm:{link}", "/dev/null")
    assert shares_link("arm:/dev/ttyACM0?rate=500", "/dev/ttyACM0")
    assert not shares_link("arm:sim", "none") and not shares_link("arm:/dev/ttyACM0", "/dev/ttyACM1")
    assert not shares_link("arm:sim", "/dev/ttyACM0") and not shares_link("lsl:type=EMG", "sim")


# ------------------------------------------------------------------ the clock, fed by hand
def _arrivals(rate=500, seconds=30.0, ppm=3000.0, per_frame=2, seed=1):
    """Frames of an MCU ``ppm`` fast: (last index, true time of that scan, arrival) with a 0.8 ms floor,
    exponential jitter and 5 % spikes of 5-30 ms (a busy USB bus, this machine's scheduler)."""
    rng = np.random.default_rng(seed)
    period = 1.0 / rate / (1 + ppm * 1e-6)
    last = np.arange(per_frame - 1, int(rate * seconds), per_frame)
    t_true = 1000.0 + last * period
    lat = 0.8e-3 + rng.exponential(0.3e-3, len(last))
    spikes = rng.random(len(last)) < 0.05
    lat[spikes] += rng.uniform(5e-3, 30e-3, spikes.sum())
    return last, t_true, t_true + lat, period


def test_the_clock_follows_a_drifting_mcu_along_the_lowest_latency():
    rate, per_frame = 500, 2
    last, t_true, arrival, period = _arrivals(rate, per_frame=per_frame)
    clock = IndexClock(rate)
    stamps = []
    for i, t in zip(last, arrival):
        clock.add(int(i), float(t))
        stamps.append(clock.stamps(int(i) - per_frame + 1, per_frame, continuous=True))
    ts = np.concatenate(stamps)
    true = 1000.0 + np.arange(len(ts)) * period
    settled = slice(5 * rate, None)  # after the first seconds of the window
    err = (ts - true - 0.8e-3)[settled]  # the stamps say "taken + the smallest latency"
    raw = (arrival - t_true - 0.8e-3)
    print(f"\n[clock] MCU +3000 ppm, 5 % latency spikes up to 30 ms: fitted {clock.ppm:+.0f} ppm; stamps vs "
          f"truth + 0.8 ms: |err| p99 {np.percentile(abs(err), 99) * 1e3:.3f} ms max {abs(err).max() * 1e3:.3f} ms "
          f"(arrivals: p99 {np.percentile(raw, 99) * 1e3:.2f} ms, max {raw.max() * 1e3:.2f} ms)")
    assert abs(clock.ppm - 3000) < 100
    assert abs(err).max() < 0.5e-3
    steps = np.diff(ts) / period
    assert steps.min() > 0.85 and steps.max() < 1.15  # never back, never a step that looks like a loss


def test_stamps_move_by_slew_after_a_late_start_follow_a_gap_and_restart_after_a_reset():
    rate = 200
    clock = IndexClock(rate)
    period = 1.0 / rate
    out = []
    for i in range(400):  # one scan a frame; the first ten frames arrive 20 ms late (a start-up backlog)
        clock.add(i, 5.0 + i * period + (0.02 if i < 10 else 0.001))
        out.append(clock.stamps(i, 1, continuous=i > 0))
    ts = np.concatenate(out)
    steps = np.diff(ts) / period
    assert steps.min() >= 0.9 - 1e-9 and steps.max() <= 1.1 + 1e-9
    assert abs(ts[-1] - (5.0 + 399 * period + 0.001)) < 1e-6  # caught up with the lowest latency
    clock.add(419, 5.0 + 419 * period + 0.001)  # 10 scans lost: the stamps follow the line at once
    after_gap = clock.stamps(410, 10, continuous=False)
    assert abs(after_gap[0] - ts[-1] - 11 * period) < 1e-6
    clock.reanchor()  # an MCU reset: the new run's frames arrive 2 s later, its indices continue
    clock.add(429, 8.0)
    restarted = clock.stamps(420, 10, continuous=False)
    assert restarted[-1] == 8.0 and restarted[0] > after_gap[-1] and clock.reanchors == 1
    assert clock.period == pytest.approx(period, rel=1e-9)  # the slope, fitted, is kept across a restart


# ------------------------------------------------------------------ the real firmware behind a pty
@pytest.mark.parametrize("options, expected", [
    ("", lambda c: c / 4 - 128),
    ("&unit=mV&gain=1000", lambda c: (c * 5 / 1024 - 2.5) / 1000 * 1e3),
    ("&unit=V&bias=0&vref=5", lambda c: c * 5 / 1024),
], ids=["myo", "mV-gain-1000", "envelope-V"])
def test_values_arrive_scaled_exactly(start_arm, options, expected):
    arm = start_arm(200)
    with open_source(f"arm:{arm.pty}?rate=200{options}") as src:
        chunks = _read(src, 0.5)
    assert src.report()["lost_samples"] == 0 and not any(c.discontinuity for c in chunks[1:])
    x = np.concatenate([c.samples for c in chunks])
    counts = np.array([[_pattern(k, ch) for ch in range(8)] for k in range(len(x))], dtype=np.float64)
    np.testing.assert_allclose(x, expected(counts), rtol=1e-12, atol=1e-12)
    if not options:
        assert np.array_equal(x, counts / 4 - 128)  # the Myo's units: exact
    assert src.channels == [f"emg{k}" for k in range(1, 9)] and src.units == [src.unit_out] * 8


def test_timestamps_are_monotonic_at_the_rate_with_bounded_jitter_and_age(start_arm):
    rate = 500
    arm = start_arm(rate)
    with open_source(f"arm:{arm.pty}?channels=0-3&rate={rate}") as src:
        chunks = _read(src, 2.5)
        ppm = src.report()["clock_ppm"]
    ts = np.concatenate([c.timestamps for c in chunks])
    steps = np.diff(ts) * rate
    idx = np.arange(len(ts))
    fit = np.polyfit(idx, ts, 1)
    resid = ts - np.polyval(fit, idx)
    age = np.array([c.t_received - c.timestamps[-1] for c in chunks])
    print(f"\n[host build, 4 x {rate} Hz, {len(ts)} scans] stamp steps {steps.min():.3f}..{steps.max():.3f} periods, "
          f"rate from the stamps {1 / fit[0]:.2f} Hz, residual from a line max {abs(resid).max() * 1e3:.3f} ms; "
          f"age at read p50 {np.median(age) * 1e3:.2f} ms p99 {np.percentile(age, 99) * 1e3:.2f} ms "
          f"max {age.max() * 1e3:.2f} ms; fitted clock {ppm:+.1f} ppm")
    assert steps.min() >= 0.9 - 1e-9 and steps.max() <= 1.1 + 1e-9
    assert abs(1 / fit[0] - rate) < 0.01 * rate
    assert abs(resid).max() < 2e-3
    assert np.percentile(age, 99) < 0.05 and age.min() > -1e-3


def test_an_mcu_reset_mid_stream_is_a_discontinuity_and_streaming_resumes(start_arm):
    arm = start_arm(200)
    with open_source(f"arm:{arm.pty}") as src:
        chunks = _read(src, 0.4)
        arm.reset_mcu()
        chunks += _read(src, 3.0, until=lambda cs: any(c.discontinuity for c in cs))
        n_before = len(chunks)
        chunks += _read(src, 0.4)
        report = src.report()
    gaps = [i for i, c in enumerate(chunks) if c.discontinuity]
    assert len(gaps) == 1 and report["restarts"] == 1 and report["discontinuities"] == 1
    assert len(chunks) - n_before > 10  # streaming resumed
    ts = np.concatenate([c.timestamps for c in chunks])
    assert (np.diff(ts) > 0).all()
    k_prev = None  # every chunk not flagged continues the one before exactly (the feed went on meanwhile)
    for c in chunks:
        k = _feed_rows(c.samples, range(8))
        assert np.array_equal(np.diff(k) % 1024, np.ones(len(k) - 1))
        if k_prev is not None and not c.discontinuity:
            assert k[0] == (k_prev + 1) % 1024
        k_prev = k[-1]


class _MutingProxy(sim.PtyProxy):
    """Drops what the arm sends while muted: a cable glitch, frames lost on the wire."""

    muted_until = 0.0

    def to_host(self, data: bytes) -> bytes:
        return b"" if time.monotonic() < self.muted_until else data


def test_frames_lost_on_the_wire_are_discontinuities_and_no_chunk_bridges_them(start_arm):
    arm = start_arm(200)
    proxy = _MutingProxy(arm.pty).start()
    try:
        with open_source(f"arm:{proxy.path}") as src:
            chunks = _read(src, 0.3)
            for _ in range(2):
                proxy.muted_until = time.monotonic() + 0.04
                chunks += _read(src, 0.3)
            report = src.report()
    finally:
        proxy.close()
    flagged = sum(c.discontinuity for c in chunks)
    assert report["lost_samples"] > 0 and flagged >= 1 and report["discontinuities"] == flagged
    k_prev = None
    for c in chunks:
        k = _feed_rows(c.samples, range(8))
        assert np.array_equal(np.diff(k) % 1024, np.ones(len(k) - 1))
        if k_prev is not None:
            assert (k[0] == (k_prev + 1) % 1024) != c.discontinuity  # flagged exactly where scans are missing
        k_prev = k[-1]


@pytest.mark.parametrize("bundle, options, fix", [
    ("gesture", "rate=500", r"takes 200 Hz .*: use arm:\S+\?rate=200$"),
    ("gesture", "channels=0-3", r"reads 8 channels .*: use arm:\S+\?channels=0-7 "),
    ("gesture", "unit=mV&gain=1000", r"delivers mV: the bundle's signal is in 'myo', not mV; use arm:\S+\?unit=myo$"),
    ("emotion", "channels=0-3&rate=250", "divisors of 1000 Hz only .* use a bundle trained at one of those rates"),
    ("grasp-lift", "rate=500", "reads 32 channels but the arm's front end has 8 analog inputs"),
])
def test_a_bundle_the_front_end_cannot_serve_is_refused_at_start_with_the_fix(start_arm, bundle, options, fix):
    arm = start_arm(200)
    with open_source(f"arm:{arm.pty}?{options}") as src, pytest.raises(SourceError, match=fix) as info:
        Runtime(load_bundle(FIXTURE_BUNDLES / bundle), src, None)
    assert "\n" not in str(info.value)


def _forced(bundle):
    """Every label fires easily and moves the second joint: the command path runs with the fixture model on
    the feed's sawtooth, whichever class it prefers."""
    commands = {lab: Action.LIFT if i % 2 else Action.LOWER for i, lab in enumerate(bundle.labels)}
    return Decider(dataclasses.replace(bundle.decision_policy(), thresholds=0.01, reject_below=0.0, min_dwell_ms=0,
                                       refractory_ms=100, commands=commands))


def test_serve_runs_a_bundle_on_one_link_for_sensing_and_commanding(start_arm):
    arm = start_arm(200, log_commands=True)
    seen = {}

    def ready(rt):
        seen["rt"] = rt
        rt.pipeline.decider = _forced(rt.bundle)

    s = serve(GESTURE, f"arm:{arm.pty}", arm.pty, duration=3.0, install_signals=False, on_ready=ready)
    rt = seen["rt"]
    assert rt.source.link is rt.arm and rt.source.channels == list(rt.bundle.channels)
    assert s.commands_sent > 0 and s.commands_failed == 0 and s.windows > 20
    t_end = time.monotonic() + 1.0
    while len(arm.commands) < s.commands_sent and time.monotonic() < t_end:
        time.sleep(0.01)  # (the simulator's lines are read on a thread)
    assert len(arm.commands) >= s.commands_sent  # the firmware executed them (and the RESTs)
    assert s.source["kind"] == "arm" and s.source["samples"] >= 200 * 2 and s.source["lost_samples"] == 0
    assert s.source["discontinuities"] == 0
    print(f"\n[serve, one link] {s.commands_sent} commands ACKed while sampling {s.source['samples']} scans in "
          f"{s.wall_seconds:.1f} s; sample -> ACK p50 {s.latency_ms.get('p50', float('nan')):.2f} ms p99 "
          f"{s.latency_ms.get('p99', float('nan')):.2f} ms; faults {s.faults or 'none'}")


def test_arm_sim_with_arm_sim_starts_one_simulated_arm_for_both(monkeypatch):
    started = []
    real_start = sim.start

    def start_host(*args, **kw):  # the host build: fast, and where simavr is missing
        started.append(real_start("host"))
        return started[-1]

    monkeypatch.setattr(sim, "start", start_host)
    seen = {}
    s = serve(GESTURE, "arm:sim", "sim", duration=0.5, install_signals=False, on_ready=lambda rt: seen.update(rt=rt))
    assert len(started) == 1 and seen["rt"].source.link is seen["rt"].arm
    assert s.source["samples"] > 0 and started[0].proc.poll() is not None  # stopped at the end


def test_record_from_the_arm_writes_a_session_calibration_reads(start_arm, tmp_path):
    from edge.calibration.session_files import read_session
    from edge.record import record

    arm = start_arm(200)
    par = Paradigm("t", "gesture", (Cue("neutral", 0.5, "rest"), Cue("hand_close", 0.5, "close")))
    res = record(f"arm:{arm.pty}", par, tmp_path / "s.xdf", display=CueDisplay(io.StringIO()))
    assert not res.partial and res.gaps == 0 and res.samples >= 190
    rec = read_recording(tmp_path / "s.xdf")
    assert rec.channels == tuple(f"emg{k}" for k in range(1, 9)) and rec.fs == 200 and set(rec.units) == {"myo"}
    _feed_rows(rec.samples, range(8))  # the values as the arm sent them, in the Myo's units
    session, _, _ = read_session([tmp_path / "s.xdf"], load_bundle(GESTURE))  # calibrate's reader takes it
    assert session.n_samples == rec.n_samples and session.channels == rec.channels


# ------------------------------------------------------------------ a stream the firmware will not restart
def test_a_failed_stream_raises_on_its_own_link_and_stalls_on_a_shared_one(start_arm):
    arm = start_arm(200)
    refused = Nacked(P.MsgType.STREAM_START, P.Reason.BUDGET)
    with open_source(f"arm:{arm.pty}") as src:
        src.stream.fail(refused)  # as the link does when a restart is NACKed (a reflashed board)
        with pytest.raises(SourceError, match="refused to start it again.*flash"):
            for _ in range(100):  # the blocks queued before, then the error
                src.read(0.05)
    with ArmLink(arm.pty) as link, ArmSource(arm.pty, link=link) as src:
        src.stream.fail(refused)
        for _ in range(100):
            if src.read(0.05) is None:
                break
        assert all(src.read(0.05) is None for _ in range(3)) and src.stalled  # the link's owner stops the run


class _StreamFaultArm(AckingArm):
    """Acknowledges commands; reports ``faults`` on its third loop turn, as the link would."""

    def __init__(self, faults):
        super().__init__()
        self.faults, self.turns = list(faults), 0

    def take_faults(self):
        self.turns += 1
        out, self.faults = (self.faults, []) if self.turns == 3 else ([], self.faults)
        return out

    def healthy(self):
        return True


def test_the_runtime_logs_an_overrun_and_stops_at_rest_with_the_fix_on_a_failed_stream():
    gl = load_bundle(FIXTURE_BUNDLES / "grasp-lift")

    def run(kind):
        arm = _StreamFaultArm([LinkFault(kind, "test")])
        rt = Runtime(gl, ReplaySource(grasp_lift_series(1, 7, seed=0, n_trials=2), speed=0), arm,
                     RuntimeConfig(budget_ms=1000))
        return rt, arm

    rt, arm = run(FaultKind.STREAM_OVERRUN)
    s = rt.run()
    assert s.faults.get("source") == 1 and s.safe_state_entries == 1  # logged; the gap is the source's flag
    rt, arm = run(FaultKind.STREAM_FAILED)
    with pytest.raises(RunError, match="stream, this run's source, failed .*flash"):
        rt.run()
    assert rt.summary.faults.get("source") == 1 and arm.rests >= 2  # the hold's REST, then the final one
