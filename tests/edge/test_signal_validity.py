"""Inputs that must neither stop nor fool the loop: time that goes back or repeats, flat channels."""

import time

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.config import RuntimeConfig
from edge.runtime import Pipeline, Runtime
from edge.sources import Chunk, ReplaySource
from edge.synthetic import grasp_lift_series
from tests.conftest import FIXTURE_BUNDLES

GL = load_bundle(FIXTURE_BUNDLES / "grasp-lift")


def _chunks(rec, size=10):
    src = ReplaySource(rec, speed=0, chunk=size)
    while (c := src.read()) is not None:
        yield c.copy()


def test_timestamps_that_go_back_or_repeat_are_a_counted_fault_not_a_crash():
    rec = grasp_lift_series(1, 7, seed=0, n_trials=3)
    pipe = Pipeline(GL, rec.channels, rec.fs, drop_stale=False)
    chunks = list(_chunks(rec))
    good = sum(len(pipe.process(c)) for c in chunks[:400])
    assert good > 0 and pipe.faults["timestamps"] == 0
    back = chunks[400]
    back = Chunk(back.samples, back.timestamps - 100.0, back.t_received, back.first_index)  # the clock jumped back
    assert pipe.process(back) == [] and pipe.faults["timestamps"] == 1
    # the new time base is then followed: later chunks (also shifted) decide again, the Decider does not raise
    later = [Chunk(c.samples, c.timestamps - 100.0, c.t_received, c.first_index) for c in chunks[401:600]]
    assert sum(len(pipe.process(c)) for c in later) > 0
    same = chunks[600]
    repeated = Chunk(same.samples, np.full(same.n, same.timestamps[0] - 100.0), same.t_received, same.first_index)
    assert pipe.process(repeated) == [] and pipe.faults["timestamps"] == 2


def test_a_stream_of_repeated_timestamps_rests_the_arm_and_says_why():
    rec = grasp_lift_series(1, 7, seed=0, n_trials=3)
    rec.sample_index[:] = 0  # every timestamp the same
    rt = Runtime(GL, ReplaySource(rec, speed=1.0, chunk=10), None, RuntimeConfig(budget_ms=1000))
    s = rt.run(max_seconds=1.0)
    assert s.faults.get("timestamps", 0) > 10 and s.windows == 0 and s.decisions_fired == 0
    assert s.safe_state_entries >= 1


def test_a_flat_channel_gives_no_decision():
    rec = grasp_lift_series(1, 7, seed=0, n_trials=3)
    rec.samples[:, 5] = 42.0  # one electrode off: a constant
    src = ReplaySource(rec, speed=0)
    pipe = Pipeline(GL, src.channels, src.fs, drop_stale=False)
    out = []
    while (c := src.read()) is not None:
        out += pipe.process(c)
    # the first windows hold the filter's step response to the constant (it settles in ~150 ms here);
    # after that every window is refused
    assert len(out) <= 3 and all(r.index_end < 500 for r in out) and pipe.faults["flat"] > 100
    rec2 = grasp_lift_series(1, 7, seed=0, n_trials=3)
    src = ReplaySource(rec2, speed=0)
    pipe = Pipeline(GL, src.channels, src.fs, drop_stale=False)
    n = 0
    while (c := src.read()) is not None:
        n += len(pipe.process(c))
    assert n > 100 and pipe.faults["flat"] == 0  # real-looking EEG is never flat


def test_time_going_back_inside_a_chunk_with_several_windows_is_a_fault_not_a_crash():
    rec = grasp_lift_series(1, 7, seed=0, n_trials=3)
    pipe = Pipeline(GL, rec.channels, rec.fs, drop_stale=False)
    chunks = list(_chunks(rec, size=200))  # ~8 windows a chunk
    for c in chunks[:20]:
        pipe.process(c)
    c = chunks[20]
    ts = c.timestamps.copy()
    ts[100:] -= 0.3  # backwards in the middle, the last still after the first
    assert ts[-1] > ts[0]
    assert pipe.process(Chunk(c.samples, ts, c.t_received, c.first_index)) == []
    assert pipe.faults["timestamps"] == 1
    assert sum(len(pipe.process(x)) for x in chunks[21:60]) > 0  # and it goes on


# --------------------------------------------------------------------------- a stream that lies about its rate


def test_rate_monitor_spans_warmup_and_pauses():
    from edge.runtime.rate import RateMonitor

    m = RateMonitor(1.0, span_s=2.0, warmup_s=1.0, max_gap_s=0.5)
    t, ratios = 0.0, []
    for k in range(60):  # 25 samples every 0.1 s stamped 1/500 s apart: the stream clock runs at half speed
        ratios.append(m.update(t, (k + 1) * 25 / 500))
        t += 0.1
    got = [r for r in ratios if r is not None]
    assert len(got) == 2 and all(r == pytest.approx(0.5, abs=1e-9) for r in got)
    assert all(r is None for r in ratios[:30])  # 1 s of warm-up, then a whole span first
    m2 = RateMonitor(2.0, span_s=2.0, warmup_s=0.0, max_gap_s=0.5)  # a recording played 2x faster
    m2.update(0.0, 0.0)
    assert m2.update(0.1, 0.2) is None and m2.update(5.0, 0.4) is None  # a pause restarts the span
    vals = [m2.update(5.0 + 0.1 * k, 0.4 + 0.2 * k) for k in range(1, 25)]
    assert [v for v in vals if v is not None] == [pytest.approx(1.0)]
    # a 3 s stall of a 500 Hz stream, then its backlog in chunks of 1024 samples (LSL_MAX_CHUNK) as
    # fast as the loop reads them, then live chunks again: warm-up after the stall, no false fault
    m4 = RateMonitor(1.0, span_s=2.0, warmup_s=1.0, max_gap_s=0.5)
    t, ts, got = 0.0, 0.0, []
    for _ in range(40):  # 4 s live
        t, ts = t + 0.1, ts + 0.1
        got.append(m4.update(t, ts))
    t += 3.0  # the stall: 1500 samples pile up
    backlog = 1500
    while backlog > 0:
        n = min(1024, backlog)
        backlog -= n
        t, ts = t + 0.01, ts + n / 500
        got.append(m4.update(t, ts))
    for _ in range(60):  # live again
        t, ts = t + 0.1, ts + 0.1
        got.append(m4.update(t, ts))
    assert all(r == pytest.approx(1.0, abs=0.05) for r in got if r is not None) and any(r is not None for r in got)
    # lost samples (a jump in the timestamps that matches the time that passed) are no rate fault
    m3 = RateMonitor(1.0, span_s=2.0, warmup_s=0.0, max_gap_s=0.5)
    m3.update(0.0, 0.0)
    vals = [m3.update(0.1 * k, 0.1 * k) for k in range(1, 45)]
    assert [v for v in vals if v is not None] == [pytest.approx(1.0), pytest.approx(1.0)]


def _lying_outlet_run(monkeypatch, delivered_hz: float, seconds: float, stamps: str = "producer",
                      stream_speed: float = 1.0):
    """A real LSL outlet that declares 500 Hz and pushes ``delivered_hz`` samples a second, run
    through the runtime.  ``stamps="producer"``: the producer stamps sample *i* ``t0 + i/500`` (a
    device clock that believes its declared rate: no gap anywhere, the dangerous case);
    ``"liblsl"``: liblsl stamps each chunk's samples 1/500 s back from its arrival (gaps between
    chunks)."""
    import threading
    import uuid

    pylsl = pytest.importorskip("pylsl")
    from edge import config as C
    from edge.sources import open_source

    monkeypatch.setattr(C, "RATE_WARMUP_S", 0.5)
    monkeypatch.setattr(C, "RATE_CHECK_S", 1.5)
    name = f"ng-rate-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo(name, "EEG", 32, 500.0, "float32", name)
    info.set_channel_labels(list(GL.channels))
    info.set_channel_units("microvolts")
    outlet = pylsl.StreamOutlet(info)
    x = grasp_lift_series(1, 7, seed=0, n_trials=4).samples.astype(np.float32)
    stop = threading.Event()

    def push():
        k, per, t0, t0_lsl = 0, int(delivered_hz / 10), time.monotonic(), pylsl.local_clock()
        while not stop.is_set() and (k + 1) * per <= len(x):
            if stamps == "producer":  # the timestamp of the chunk's last sample on the declared clock
                outlet.push_chunk(x[k * per:(k + 1) * per], t0_lsl + ((k + 1) * per - 1) / 500.0)
            else:
                outlet.push_chunk(x[k * per:(k + 1) * per])
            k += 1
            time.sleep(max(0.0, t0 + k * 0.1 - time.monotonic()))

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    rt = Runtime(GL, open_source(f"lsl:name={name}&timeout=5"), None,
                 RuntimeConfig(budget_ms=1000, stream_speed=stream_speed))
    fired_at_fault = []
    fault = rt.fault

    def spy(kind, detail):
        if kind == "rate" and not fired_at_fault:
            fired_at_fault.append(rt.summary.decisions_fired)
        fault(kind, detail)

    rt.fault = spy
    try:
        s = rt.run(max_seconds=seconds)
    finally:
        stop.set()
        pusher.join(2)
    return s, fired_at_fault


def test_a_stream_delivering_half_its_declared_rate_rests_the_arm(monkeypatch):
    s, fired_at_fault = _lying_outlet_run(monkeypatch, 250.0, 6.0)
    assert s.faults.get("rate", 0) >= 2 and s.safe_state_entries >= 1
    assert s.windows > 20  # continuous timestamps: windows flow, only the rate says something is wrong
    assert s.decisions_fired == fired_at_fault[0]  # nothing decided once it was seen


def test_half_rate_stamped_by_liblsl_never_completes_a_window(monkeypatch):
    """liblsl stamps each chunk back from its arrival: the clocks agree, but 50 ms of samples per
    100 ms leave a gap before every chunk, so the chain restarts and nothing is ever decided."""
    s, _ = _lying_outlet_run(monkeypatch, 250.0, 5.0, stamps="liblsl")
    assert s.windows == 0 and s.decisions_fired == 0


def test_a_stream_at_its_declared_rate_is_no_rate_fault(monkeypatch):
    s, _ = _lying_outlet_run(monkeypatch, 500.0, 6.0)
    assert "rate" not in s.faults and s.windows + s.dropped_windows > 100  # 100 ms chunks: stale windows dropped


def test_a_recording_played_faster_is_checked_against_its_speed(monkeypatch):
    """``neurogrip stream --speed 2`` pushes 1000 samples/s of a 500 Hz recording: expected with
    --stream-speed 2, a rate fault without."""
    s, _ = _lying_outlet_run(monkeypatch, 1000.0, 5.0, stream_speed=2.0)
    assert "rate" not in s.faults and s.windows + s.dropped_windows > 100
    s, _ = _lying_outlet_run(monkeypatch, 1000.0, 5.0, stream_speed=1.0)
    assert s.faults.get("rate", 0) >= 1
