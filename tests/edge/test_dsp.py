"""edge.chain.dsp: fixed point vs float64 sosfilt, bit-exactness across chunkings and backends, frequency response."""

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from edge.chain.dsp import FixedPointSOS, quantise_sos
from edge.chain.signal_chain import SignalChain
from edge.recordings import read_grasp_lift, read_muse
from tests.conftest import require_c_kernel
from training.filter_design import FilterSpec, chain_manifest, decimation_filter, design_chain, design_sos

SNR_GOAL_DB = 90.0

CHAINS = {
    "bandpass 0.5-30 o4": [FilterSpec("bandpass", (0.5, 30.0), 4)],
    "highpass 0.1 o2": [FilterSpec("highpass", (0.1,), 2)],
    "highpass 0.1 o4": [FilterSpec("highpass", (0.1,), 4)],
    "lowpass 5 o4": [FilterSpec("lowpass", (5.0,), 4)],
    "notch 50": [FilterSpec("notch", (50.0,), q=30)],
    "hp 0.5 + notch 50 + lp 40": [FilterSpec("highpass", (0.5,), 2), FilterSpec("notch", (50.0,)),
                                  FilterSpec("lowpass", (40.0,), 4)],
}


@pytest.fixture(scope="module", params=["c", "numpy"])
def backend(request):
    """Both kernels; the C one is required where make test runs (tests/conftest.py's policy)."""
    if request.param == "c":
        require_c_kernel()
    return request.param


def snr_db(ref, test):
    return 10 * np.log10(np.sum(ref**2) / np.sum((test - ref) ** 2))


@pytest.fixture(scope="module")
def real_grasp_lift(shared_data):
    """Longest contiguous stretch of real 32-channel EEG, raw (DC offsets of hundreds of µV)."""
    rec = read_grasp_lift(shared_data / "grasp_lift_segments" / "subj1_series1_data.csv.gz")
    # Several real segments back to back give a long enough record for 0.1 Hz poles; the
    # reference sees exactly the same input, so the comparison stays exact.
    return np.concatenate([rec.samples[a:b] for a, b in rec.segments[:40]]), 500.0


@pytest.fixture(scope="module")
def real_muse(shared_data):
    rec = read_muse(shared_data / "muse_mental_state" / "subjectb-relaxed-1.csv")
    return rec.samples[:, :4], 256.0


@pytest.mark.parametrize("name", list(CHAINS))
def test_snr_against_float64_on_real_grasp_lift(real_grasp_lift, name, backend):
    x, fs = real_grasp_lift
    sos = design_chain(CHAINS[name], fs)
    ours = FixedPointSOS(sos, x.shape[1], backend=backend).process(x)
    ref = signal.sosfilt(sos, x, axis=0)
    assert snr_db(ref, ours) >= SNR_GOAL_DB


@pytest.mark.parametrize("name", ["bandpass 0.5-30 o4", "highpass 0.1 o4", "lowpass 5 o4"])
def test_snr_against_float64_on_real_muse(real_muse, name):
    x, fs = real_muse
    specs = CHAINS[name]
    sos = design_chain(specs, fs)
    ours = FixedPointSOS(sos, x.shape[1]).process(x)
    assert snr_db(signal.sosfilt(sos, x, axis=0), ours) >= SNR_GOAL_DB


def test_notch_at_muse_rate(real_muse):
    x, fs = real_muse
    sos = design_chain([FilterSpec("notch", (50.0,))], fs)
    assert snr_db(signal.sosfilt(sos, x, axis=0), FixedPointSOS(sos, 4).process(x)) >= SNR_GOAL_DB


@pytest.mark.c_kernel
def test_c_and_numpy_kernels_are_bit_exact(real_grasp_lift):
    x = real_grasp_lift[0][:3000]
    sos = design_chain(CHAINS["hp 0.5 + notch 50 + lp 40"], 500.0)
    c = FixedPointSOS(sos, 32, backend="c")
    py = FixedPointSOS(sos, 32, backend="numpy")
    xi = c.quantise_input(x)
    assert np.array_equal(c.process_int(xi), py.process_int(xi))
    assert np.array_equal(c._state, py._state)


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_bit_exact_whatever_the_chunking(cuts, backend):
    rng = np.random.default_rng(1)
    x = rng.normal(300, 80, (400, 3)).cumsum(axis=0) * 0.05 + rng.normal(0, 20, (400, 3))
    sos = design_chain(CHAINS["bandpass 0.5-30 o4"] + [FilterSpec("notch", (50.0,))], 500.0)
    whole = FixedPointSOS(sos, 3, backend=backend)
    expected = whole.process_int(whole.quantise_input(x))
    pieces = FixedPointSOS(sos, 3, backend=backend)
    bounds = [0, *sorted(cuts), 400]
    got = np.concatenate([pieces.process_int(pieces.quantise_input(x[a:b])) for a, b in itertools.pairwise(bounds)])
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("kind,freqs,order,passes,stops", [
    ("bandpass", (0.5, 30.0), 4, [5.0, 10.0, 20.0], [0.05, 80.0, 150.0]),
    ("lowpass", (5.0,), 4, [0.5, 2.0], [20.0, 50.0]),
    ("highpass", (0.1,), 2, [2.0, 30.0], [0.005]),
])
def test_pass_and_stop_bands_with_sinusoids(kind, freqs, order, passes, stops):
    fs = 500.0
    sos = design_sos(FilterSpec(kind, freqs, order), fs)
    n = 200_000 if min(stops + passes) < 0.1 else 40_000
    t = np.arange(n) / fs
    for f0, want_pass in [(f, True) for f in passes] + [(f, False) for f in stops]:
        x = 100 * np.sin(2 * np.pi * f0 * t)[:, None]
        y = FixedPointSOS(sos, 1).process(x)[n // 2:, 0]  # steady state
        gain = np.sqrt(2) * y.std() / 100
        expected = abs(signal.sosfreqz(sos, worN=[f0], fs=fs)[1][0])
        if want_pass:
            assert gain == pytest.approx(1.0, abs=0.03), (f0, gain)
        else:
            assert gain < 0.02, (f0, gain)
        assert gain == pytest.approx(expected, rel=1e-3, abs=1e-5)


def test_notch_removes_mains_and_keeps_eeg_band():
    fs = 500.0
    sos = design_sos(FilterSpec("notch", (50.0,), q=30), fs)
    t = np.arange(20_000) / fs
    x = np.column_stack([100 * np.sin(2 * np.pi * 50 * t), 100 * np.sin(2 * np.pi * 10 * t)])
    y = FixedPointSOS(sos, 2).process(x)[10_000:]
    assert np.sqrt(2) * y[:, 0].std() < 1.0 and np.sqrt(2) * y[:, 1].std() == pytest.approx(100, rel=0.01)


def test_reset_restores_the_initial_state():
    sos = design_sos(FilterSpec("highpass", (0.5,), 2), 500.0)
    f = FixedPointSOS(sos, 2)
    x = np.random.default_rng(0).normal(0, 50, (100, 2))
    first = f.process(x)
    f.reset()
    assert np.array_equal(f.process(x), first)


def test_saturation_is_counted_not_silent():
    sos = design_sos(FilterSpec("lowpass", (40.0,), 2), 500.0)
    f = FixedPointSOS(sos, 1)
    f.process(np.full((5, 1), 1e7))  # far outside the declared ±131 072 µV input range
    assert f.saturations == 5
    f.reset()
    f.process(np.full((5, 1), 1e3))
    assert f.saturations == 0


def test_headroom_proof_for_the_default_chain():
    m = chain_manifest(CHAINS["hp 0.5 + notch 50 + lp 40"], 500.0, 32)
    assert m["headroom"]["worst_state"] < m["headroom"]["state_limit"]
    assert m["headroom"]["bits_to_spare"] > 1
    json.dumps(m)  # the manifest entry is JSON


def test_manifest_round_trip_is_bit_exact():
    sos = design_chain(CHAINS["bandpass 0.5-30 o4"], 500.0)
    a = FixedPointSOS(sos, 4)
    b = FixedPointSOS.from_manifest(json.loads(json.dumps(a.to_manifest())), 4)
    x = np.random.default_rng(2).normal(0, 30, (500, 4))
    assert np.array_equal(a.process(x), b.process(x))


def test_manifest_refuses_unknown_formats():
    spec = FixedPointSOS(design_sos(FilterSpec("lowpass", (5.0,)), 500.0), 1).to_manifest()
    with pytest.raises(ValueError, match="format"):
        FixedPointSOS.from_manifest(dict(spec, format="other"), 1)
    with pytest.raises(ValueError, match="safe range"):
        bad = json.loads(json.dumps(spec))
        bad["sections"][0]["c"][0] = 1 << 31
        FixedPointSOS.from_manifest(bad, 1)


def test_decimation_keeps_phase_across_chunks_and_rejects_aliases():
    # Decimation is the signal chain's (edge.chain.signal_chain.SignalChain, the one decimating stage).
    fs, q = 500.0, 4
    aa = decimation_filter(q, fs)
    t = np.arange(8000) / fs
    x = np.column_stack([50 * np.sin(2 * np.pi * 10 * t), 50 * np.sin(2 * np.pi * 110 * t)])
    corner = 0.8 * fs / (2 * q)
    whole = SignalChain(FixedPointSOS(aa, 2), fs, q, corner)
    y = whole.process(x)
    assert y.shape == (2000, 2)
    chunked = SignalChain(FixedPointSOS(aa, 2), fs, q, corner)
    bounds = [0, 3, 10, 11, 999, 4001, 8000]
    y2 = np.concatenate([chunked.process(x[a:b]) for a, b in itertools.pairwise(bounds)])
    assert np.array_equal(y, y2)
    out = y[500:]
    assert np.sqrt(2) * out[:, 0].std() == pytest.approx(50, rel=0.02)  # 10 Hz passes
    assert np.sqrt(2) * out[:, 1].std() < 0.5  # 110 Hz would alias to 15 Hz: removed


@pytest.mark.parametrize("bad,exc,match", [
    ("sos", TypeError, "sos"),
    (np.zeros((2, 5)), ValueError, "shape"),
    (np.array([[1, 0, 0, 0, 0, 0.0]]), ValueError, "a0"),
    (np.array([[1, 0, 0, 1, 0, 1.5]]), ValueError, "not stable"),
    (np.array([[np.nan, 0, 0, 1, 0, 0]]), ValueError, "NaN"),
])
def test_invalid_sos(bad, exc, match):
    with pytest.raises(exc, match=match):
        quantise_sos(bad)


def test_invalid_arguments_name_the_argument():
    sos = design_sos(FilterSpec("lowpass", (5.0,)), 500.0)
    with pytest.raises(TypeError, match="n_channels"):
        FixedPointSOS(sos, 2.0)
    with pytest.raises(ValueError, match="n_channels"):
        FixedPointSOS(sos, 0)
    with pytest.raises(ValueError, match="input_frac_bits"):
        FixedPointSOS(sos, 1, input_frac_bits=40)
    with pytest.raises(ValueError, match="backend"):
        FixedPointSOS(sos, 1, backend="gpu")
    f = FixedPointSOS(sos, 2)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 2\)"):
        f.process(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="NaN"):
        f.process(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="freqs"):
        design_sos(FilterSpec("lowpass", (300.0,)), 500.0)
    with pytest.raises(TypeError, match="factor"):
        SignalChain(f, 500.0, 2.5)
