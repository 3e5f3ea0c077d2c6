"""Both TFLite interpreters are first-class: `tflite_runtime` (Python <= 3.11, Raspberry Pi OS 12) and
`ai_edge_litert` (Python >= 3.12, Raspberry Pi OS 13) build the model the same way and give equal int8
outputs, and a bundle calibrated under one runs the same under the other.

`make test` runs this module in both edge environments (NEUROGRIP_BACKEND names the interpreter each
must have, so neither run can quietly test the other one), and the cross-interpreter tests start the
other environment's own `neurogrip`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.calibration import calibrate
from edge.model.head import find_head
from edge.model.inference import Int8Model, interpreter_backend, new_interpreter
from edge.runtime import replay_outputs
from tests.conftest import FIXTURE_BUNDLES, REPO, other_edge_python

sys.path.insert(0, str(REPO / "tests" / "fixtures" / "golden"))
from make_interpreter_golden import TASKS, inputs

GOLDEN = REPO / "tests" / "fixtures" / "golden" / "interpreters.npz"


def test_this_environment_tests_the_interpreter_it_is_meant_to():
    want = os.environ.get("NEUROGRIP_BACKEND")
    if want is None:
        pytest.skip("NEUROGRIP_BACKEND is not set (make test sets it for each edge environment)")
    assert interpreter_backend()[0] == want


@pytest.mark.parametrize("task", TASKS)
def test_no_delegate_replaces_the_graph_and_its_last_layer_is_found(task):
    interp, _, _ = new_interpreter((FIXTURE_BUNDLES / task / "model.tflite").read_bytes(), preserve_all_tensors=True)
    assert not [o for o in interp._get_ops_details() if o["op_name"] == "DELEGATE"]
    head = find_head(interp)
    assert head.weights.shape[1] == len(load_bundle(FIXTURE_BUNDLES / task).labels)


@pytest.mark.parametrize("task", TASKS)
def test_int8_outputs_equal_the_committed_ones_under_either_interpreter(task):
    model = load_bundle(FIXTURE_BUNDLES / task).model()
    got = model.run_batch_int8(inputs(model))
    want = np.load(GOLDEN)[task]
    assert got.dtype == np.int8 and np.array_equal(got, want), \
        f"{model.backend}: {int((got != want).sum())} of {want.size} int8 outputs differ"
    # the feature-preserving build (calibration's) runs the same graph
    keep = Int8Model((FIXTURE_BUNDLES / task / "model.tflite").read_bytes(), keep_features=True)
    assert np.array_equal(keep.run_features(inputs(keep))[1], want)


def test_a_delegated_graph_is_refused_with_the_fix():
    from edge.errors import InferenceError

    class Delegated:
        def _get_ops_details(self):
            return [{"op_name": "DELEGATE", "inputs": [0], "outputs": [1]}]

    with pytest.raises(InferenceError, match="new_interpreter"):
        find_head(Delegated())


@pytest.fixture(scope="module")
def myo(shared_data):
    return shared_data / "myo_armband" / "EvaluationDataset" / "Male3"


def _other_neurogrip(*args) -> subprocess.CompletedProcess:
    _, py = other_edge_python()
    return subprocess.run([str(Path(py).parent / "neurogrip"), *args], check=False, capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def test_a_bundle_calibrated_under_one_interpreter_runs_the_same_under_the_other(myo, tmp_path):
    other, _ = other_edge_python()
    mine = tmp_path / "mine"
    calibrate(FIXTURE_BUNDLES / "gesture", myo / "training0", mine)
    here, _ = replay_outputs(load_bundle(mine), myo / "Test0")
    there_file = tmp_path / "there.npy"
    r = _other_neurogrip("replay-outputs", "--bundle", str(mine), "--recording", str(myo / "Test0"),
                         "--out", str(there_file))
    assert r.returncode == 0, r.stderr
    assert other in r.stdout  # it really ran under the other interpreter
    there = np.load(there_file)
    assert len(here) > 1000 and np.array_equal(here, there)


@pytest.mark.once  # symmetric: it calibrates in both environments and compares; one pass suffices
def test_calibration_under_the_other_interpreter_gives_the_same_bundle_outputs(myo, tmp_path):
    """The trunk's int8 features are equal, and the head is fitted in numpy: the calibrated bundle the
    other interpreter writes decides as this one's does."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    calibrate(FIXTURE_BUNDLES / "gesture", myo / "training0", mine)
    r = _other_neurogrip("calibrate", "--bundle", str(FIXTURE_BUNDLES / "gesture"), "--data",
                         str(myo / "training0"), "--out", str(theirs))
    assert r.returncode == 0, r.stderr
    a, _ = replay_outputs(load_bundle(mine), myo / "Test0")
    b, _ = replay_outputs(load_bundle(theirs), myo / "Test0")
    assert np.array_equal(a, b)
