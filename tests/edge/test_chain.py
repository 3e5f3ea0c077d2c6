"""edge.chain.signal_chain: decimating chain and ring-buffer windows — chunking never changes a window."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.chain.signal_chain import SignalChain, WindowBuffer, window_ends
from edge.model.inputs import normalise_windows
from training.filter_design import FilterSpec, design_signal_chain


def _chain(n_ch=3, factor=2):
    return design_signal_chain([FilterSpec("lowpass", (30.0,), 4)], 500.0, n_ch, factor)


def _signal(n=1200, n_ch=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 20, (n, n_ch)) + 300.0  # EEG-like, with an electrode offset


def _offline(chain, x, length, stride):
    chain.reset()
    y = chain.process(x).astype(np.float32)
    ends = window_ends(len(y), length, stride)
    return np.stack([y[e - length + 1:e + 1] for e in ends]), ends


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 97), min_size=1, max_size=40), st.integers(1, 7), st.integers(1, 3))
def test_streamed_windows_equal_offline_windows_for_any_chunking(sizes, stride, factor):
    x = _signal()
    length = 20
    ref, ref_ends = _offline(_chain(factor=factor), x, length, stride)
    chain, buf = _chain(factor=factor), WindowBuffer(length, 3, stride, max_chunk=32)
    got, got_ends, pos = [], [], 0
    bounds = np.cumsum(sizes)
    for stop in [b for b in bounds if b < len(x)] + [len(x)]:
        w, e = buf.process(chain.process(x[pos:stop]).astype(np.float32))
        got.append(w)
        got_ends.append(e)
        pos = stop
    got = np.concatenate(got)
    np.testing.assert_array_equal(np.concatenate(got_ends), ref_ends)
    np.testing.assert_array_equal(got, ref)


def test_decimated_sample_k_is_filtered_input_k_times_factor_plus_factor_minus_one():
    x = _signal(400)
    full = _chain(factor=1).process(x)
    dec = _chain(factor=4).process(x)
    np.testing.assert_array_equal(dec, full[3::4])


def test_decimation_without_antialiasing_lowpass_is_refused():
    with pytest.raises(ValueError, match="anti-aliasing"):
        design_signal_chain([FilterSpec("highpass", (0.5,), 2)], 500.0, 2, factor=5)
    with pytest.raises(ValueError, match="anti-aliasing"):
        design_signal_chain([FilterSpec("lowpass", (45.0,), 4)], 500.0, 2, factor=5)


def test_manifest_round_trip_gives_identical_output():
    chain = _chain()
    again = SignalChain.from_manifest(chain.to_manifest(), 3)
    x = _signal()
    np.testing.assert_array_equal(chain.process(x), again.process(x))
    assert again.fs_out == 250.0


def test_window_does_not_depend_on_future_samples():
    x = _signal()
    y = x.copy()
    y[700:] = np.random.default_rng(5).normal(0, 500, (len(x) - 700, 3))
    wa, ea = _offline(_chain(), x, 20, 5)
    wb, _eb = _offline(_chain(), y, 20, 5)
    last_input = ea * 2 + 1  # input row of each window's last sample
    past = last_input < 700
    np.testing.assert_array_equal(wa[past], wb[past])
    assert not np.array_equal(wa[~past], wb[~past])


def test_reset_restarts_windows_after_a_gap():
    buf = WindowBuffer(10, 2, 5)
    _w, e = buf.process(np.ones((12, 2), np.float32))
    assert list(e) == [9]
    buf.reset()
    _w, e = buf.process(np.ones((9, 2), np.float32))
    assert len(e) == 0


def test_windows_are_copies_not_views_of_the_buffer():
    buf = WindowBuffer(4, 1, 2, max_chunk=3)
    w1, _ = buf.process(np.arange(4, dtype=np.float32)[:, None])
    keep = w1.copy()
    for i in range(10):  # wraps the buffer several times
        buf.process(np.full((3, 1), 100.0 + i, np.float32))
    np.testing.assert_array_equal(w1, keep)
    w1[:] = -1  # and writing to a window does not change later ones
    buf.process(np.zeros((1, 1), np.float32))
    assert buf._buf.min() >= 0


def test_window_buffer_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        WindowBuffer(10, 2, 5).process(np.ones((4, 3)))
    with pytest.raises(ValueError, match="stride"):
        WindowBuffer(10, 2, 0)


def test_normalise_removes_window_mean_and_scales():
    w = np.random.default_rng(0).normal(5, 2, (4, 30, 3)).astype(np.float32)
    n = normalise_windows(w, [2.0, 2.0, 4.0])
    np.testing.assert_allclose(n.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(n[..., 2] * 4, w[..., 2] - w[..., 2].mean(axis=1, keepdims=True), atol=1e-5)


def test_normalise_clips_artefacts_to_the_declared_bound():
    w = np.zeros((1, 10, 2), np.float32)
    w[0, 3, 0] = 1000.0  # a movement artefact on channel 0
    n = normalise_windows(w, [1.0, 1.0], clip=8.0)
    assert n.max() == 8.0 and n.min() >= -8.0
    np.testing.assert_array_equal(n[..., 1], 0.0)
