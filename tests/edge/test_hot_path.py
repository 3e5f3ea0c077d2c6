"""The runtime's C hot path (edge/_ng_chain.c) gives the very bits of its numpy reference.

One call per chunk (:meth:`SignalChain.process_valid`: validate, quantise, filter, decimate) and
one per window (:class:`edge.model.inputs.ModelInput`: normalise, quantise); a Pipeline running them
must produce exactly the outputs of one running the numpy functions.
"""

import dataclasses
import importlib.machinery
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import native
from edge.chain.dsp import FixedPointSOS
from edge.chain.signal_chain import SignalChain
from edge.model.inputs import ModelInput, model_inputs, quantise
from training.filter_design import FilterSpec, design_chain

REPO = Path(__file__).resolve().parents[2]
DSP = REPO / "firmware_bridge" / "firmware" / "dsp"
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]

pytestmark = pytest.mark.c_kernel


@pytest.fixture(scope="module")
def bundles():
    from edge.bundle import load_bundle

    return {name: load_bundle(REPO / "tests" / "fixtures" / "bundles" / name) for name in ("grasp-lift", "emotion")}


def _chains(n_ch=4, factor=2):
    specs = [FilterSpec("bandpass", (0.5, 40.0)), FilterSpec("notch", (50.0,))]
    sos = design_chain(specs, 500.0)
    fast = SignalChain(FixedPointSOS(sos, n_ch, backend="c"), 500.0, factor, 40.0)
    ref = SignalChain(FixedPointSOS(sos, n_ch, backend="numpy"), 500.0, factor, 40.0)
    assert fast._fast and not ref._fast
    return fast, ref


def _eeg(n, n_ch=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 30, (n, n_ch)).cumsum(axis=0) * 0.1 + rng.normal(0, 3000, n_ch)


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=6), st.integers(1, 4))
def test_chain_in_one_call_equals_numpy_for_any_chunking(sizes, factor):
    fast, ref = _chains(n_ch=2, factor=factor)
    _, fallback = _chains(n_ch=2, factor=factor)
    x = _eeg(int(sum(sizes)), n_ch=2)
    pos = 0
    for n in sizes:  # chunks longer than the C call's 256-row scratch block too
        got = fast.process_valid(x[pos:pos + n])
        np.testing.assert_array_equal(got, ref.process(x[pos:pos + n]).astype(np.float32))
        assert fallback.process_valid(x[pos:pos + n]).tobytes() == got.tobytes()  # without the C kernel
        assert fast._phase == ref._phase
        pos += n
    np.testing.assert_array_equal(fast.filt._state, ref.filt._state)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 131072.0, -2e6])
def test_a_bad_sample_returns_none_and_changes_nothing(bad):
    fast, ref = _chains()
    x = _eeg(40)
    fast.process_valid(x[:13])
    state, phase = fast.filt._state.copy(), fast._phase
    chunk = x[13:30].copy()
    chunk[9, 2] = bad
    assert fast.process_valid(chunk) is None
    assert ref.process_valid(chunk) is None
    np.testing.assert_array_equal(fast.filt._state, state)
    assert fast._phase == phase
    # Just inside the int32 input range is valid.
    edge = x[30:32].copy()
    edge[0, 0] = np.nextafter(fast.input_limit, 0)
    assert fast.process_valid(edge) is not None


def test_chain_rejects_a_wrong_shape():
    fast, _ = _chains()
    with pytest.raises(ValueError, match=r"shape \(n_samples, 4\)"):
        fast.process_valid(np.zeros((5, 3)))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3), st.integers(1, 70), st.integers(1, 33), st.sampled_from([None, 8.0, 3.3]),
       st.integers(0, 2**32 - 1))
def test_window_input_in_one_call_equals_numpy(k, length, n_ch, clip, seed):
    rng = np.random.default_rng(seed)
    w = (rng.normal(0, rng.uniform(0.1, 300), (k, length, n_ch)) + rng.normal(0, 500, n_ch)).astype(np.float32)
    spec = {"channel_scale": rng.uniform(0.5, 60, n_ch).tolist(), "clip": clip}
    q = (float(rng.uniform(0.003, 0.3)), int(rng.integers(-128, 128)))
    stage = ModelInput(spec, q)
    assert stage._fast
    np.testing.assert_array_equal(stage.process(w), quantise(model_inputs(w, spec), *q))
    # float64 and non-contiguous windows are converted the same way
    w64 = np.asfortranarray(w.astype(np.float64))
    np.testing.assert_array_equal(stage.process(w64), quantise(model_inputs(w64, spec), *q))


@pytest.mark.parametrize("zero_point", [-128, -3, 0, 5, 127])
def test_window_input_rounds_half_to_even_and_saturates_like_numpy(zero_point):
    # Windows [x, -x] have mean exactly 0, so the value quantised is x itself: exact halves
    # (ties go to even), values near and far beyond the int8 range, and beyond 2^22 (where the
    # C path clamps before rounding).
    xs = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.5, -128.5, -127.5, 3e6, 4194304.5, 5e6, 1e30,
                   -1e30, 2.0**22, -(2.0**22) - 1, 1e-30], np.float32)
    w = np.stack([np.stack([xs, -xs]), np.stack([-xs, xs])]).astype(np.float32)  # (2, 2, len(xs))
    spec = {"channel_scale": [1.0] * len(xs), "clip": None}
    for scale in (1.0, 0.5):
        want = quantise(model_inputs(w, spec), scale, zero_point)
        np.testing.assert_array_equal(ModelInput(spec, (scale, zero_point)).process(w), want)


def test_window_mean_is_the_sequential_sum_even_for_one_channel():
    # numpy's w.mean(axis=1) sums a single channel pairwise (the axis is contiguous); the
    # definition, shared with the C path, is the sequential float32 sum.
    w = (np.random.default_rng(4).normal(0, 1, (64, 100, 1)) * np.logspace(-3, 3, 100)[None, :, None])
    w = w.astype(np.float32)
    spec = {"channel_scale": [1.0], "clip": None}
    acc = w[:, 0].copy()
    for r in range(1, w.shape[1]):
        acc += w[:, r]
    want = quantise((w - (acc / np.float32(w.shape[1]))[:, None]) / np.float32(1.0), 0.01, 0)
    np.testing.assert_array_equal(quantise(model_inputs(w, spec), 0.01, 0), want)
    np.testing.assert_array_equal(ModelInput(spec, (0.01, 0)).process(w), want)


def test_feature_bundles_take_the_numpy_path(bundles):
    b = bundles["emotion"]
    assert b.window.get("features")
    stage = b.model_input_stage()
    assert not stage._fast
    w = np.random.default_rng(0).normal(0, 20, (3, b.window["length"], len(b.channels))).astype(np.float32)
    np.testing.assert_array_equal(stage.process(w), quantise(b.model_input(w), *b.input_quant))


def test_pipeline_outputs_do_not_depend_on_the_c_path(bundles):
    """A Pipeline on the C path and one on the numpy kernel and functions: the same windows,
    outputs and decisions, through gaps, NaN and out-of-range samples."""
    from edge.recordings.synthetic import grasp_lift_series
    from edge.runtime import Pipeline
    from edge.sources import ReplaySource

    b = bundles["grasp-lift"]
    rec = grasp_lift_series(1, 1, seed=3, n_trials=2)
    x = rec.samples.copy()
    x[700:703, 5] = np.nan
    x[2100, 0] = 1e9
    rec = dataclasses.replace(rec, samples=x)
    runs = []
    for fast in (True, False):
        src = ReplaySource(rec, speed=0, chunk=17)
        pipe = Pipeline(b, src.channels, src.fs, drop_stale=False)
        if not fast:
            pipe.chain = b.signal_chain(backend="numpy")
            pipe.model_input._fast = False
        assert pipe.chain._fast == fast and pipe.model_input._fast == fast
        got = []
        while (c := src.read()) is not None:
            got += [(r.index_end, r.outputs.tobytes(), r.decision.reason) for r in pipe.process(c)]
        runs.append((got, dict(pipe.faults)))
    assert runs[0] == runs[1]
    assert runs[0][1].get("nan") and runs[0][1].get("saturated")
    assert len(runs[0][0]) > 100


GOLDEN = REPO / "tests" / "fixtures" / "golden" / "pipeline-grasp-lift.npz"


@pytest.mark.parametrize("chunk", [7, 10, 333])
def test_pipeline_reproduces_the_code_before_the_hot_path(bundles, chunk):
    """Every window, output and decision of a replay with a gap, NaNs and a saturated sample, as
    the runtime before the C hot path computed them (tests/fixtures/golden, written by commit
    57c77a5's code with make_pipeline_golden.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN.with_name("make_pipeline_golden.py"))
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    golden = np.load(GOLDEN)
    want = {k.rsplit("_", 1)[0]: golden[k] for k in golden.files if k.endswith(f"_{chunk}")}
    if str(want["content_hash"]) != bundles["grasp-lift"].content_hash:
        pytest.fail("the grasp-lift fixture bundle changed: regenerate the golden file with "
                    "tests/fixtures/golden/make_pipeline_golden.py (and check why its outputs moved)")
    got = make.replay(chunk)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert (want["action"] != "").sum() > 50 and len(set(want["reason"].tolist())) >= 5


def test_copies_get_their_own_buffers_and_state():
    import copy
    import pickle

    fast, _ = _chains()
    x = _eeg(300)
    fast.process_valid(x[:100])
    for twin in (copy.deepcopy(fast), pickle.loads(pickle.dumps(fast))):
        state = fast.filt._state.copy()
        assert twin.filt._c_args[2] == twin.filt._state.ctypes.data != fast.filt._state.ctypes.data
        got = twin.process_valid(x[100:])
        np.testing.assert_array_equal(fast.filt._state, state)  # the original is untouched
        np.testing.assert_array_equal(got, copy.deepcopy(fast).process_valid(x[100:]))
    stage = ModelInput({"channel_scale": [1.0] * 4, "clip": 8.0}, (0.05, 0))
    w = _eeg(50)[None].astype(np.float32)
    np.testing.assert_array_equal(copy.deepcopy(stage).process(w), stage.process(w))


def test_empty_and_oversized_chunks():
    fast, _ = _chains()
    assert fast.process_valid(np.zeros((0, 4))).shape == (0, 4)  # also as the very first call
    huge = np.broadcast_to(np.zeros(4), (2**31 // 4, 4))  # no memory: a zero-stride view
    with pytest.raises(ValueError, match="too large"):
        fast.process_valid(huge)


# --------------------------------------------------------------------------- building and loading


def test_hot_path_c_compiles_warning_free(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler on PATH: install gcc (make test installs it on Debian)")
    subprocess.run([cc, *CFLAGS, f"-I{DSP}", "-c", str(REPO / "edge" / "_ng_chain.c"), "-o", str(tmp_path / "c.o")],
                   check=True, capture_output=True, text=True)


def _build(tmp_path, name, sources):
    cc = shutil.which("cc") or shutil.which("gcc")
    out = tmp_path / name
    subprocess.run([cc, "-std=c99", "-O1", "-shared", "-fPIC", f"-I{DSP}", *map(str, sources), "-o", str(out), "-lm"],
                   check=True, capture_output=True, text=True)
    return out


def test_a_stale_build_without_the_hot_path_falls_back_with_a_warning(tmp_path, caplog):
    _build(tmp_path, f"_ng_sos{importlib.machinery.EXTENSION_SUFFIXES[0]}", [DSP / "ng_sos.c"])
    with caplog.at_level(logging.WARNING, logger="edge.native"):
        assert native.load_library(tmp_path) is None
    assert "stale build" in caplog.text and "build_ext --inplace" in caplog.text


def test_this_interpreters_build_is_preferred(tmp_path):
    # Another Python's build sorts first but is stale; this interpreter's own build is complete.
    _build(tmp_path, "_ng_sos.cpython-00-stale.so", [DSP / "ng_sos.c"])
    own = _build(tmp_path, f"_ng_sos{importlib.machinery.EXTENSION_SUFFIXES[0]}",
                 [DSP / "ng_sos.c", REPO / "edge" / "_ng_chain.c"])
    lib = native.load_library(tmp_path)
    assert lib is not None and Path(lib._name) == own
