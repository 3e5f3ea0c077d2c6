"""Inputs that must neither stop nor fool the loop: time that goes back or repeats, flat channels."""

import numpy as np

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
