"""neurogrip train / evaluate for the gesture task (EMG) on the real Myo armband data, quick path."""

import json

import pytest

from edge.bundle import load_bundle
from edge.evaluation.gesture import evaluate_gesture
from edge.tasks import get_task
from training.gesture import CALIBRATED, CONTINUOUS, NO_CALIBRATION, OBJECTIVE
from training.train import train


@pytest.fixture(scope="module")
def run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("gesture") / "bundle"
    return train("gesture", shared_data / "myo_armband", out, quick=True, seed=1, progress=None)


def test_every_protocol_is_reported_and_named(run):
    protocols = run.report["protocols"]
    for name in (CALIBRATED, NO_CALIBRATION, CONTINUOUS):
        assert name in protocols
    cal = protocols[CALIBRATED]
    assert cal["participants"] == 2 and set(cal["per_participant"]) == {"Female0", "Male0"}
    for kind in ("float", "int8", "baseline"):
        assert 0.0 <= cal[kind]["accuracy"] <= 1.0
    cont = protocols[CONTINUOUS]
    assert cont["replays"] == 4 and cont["gestures"] > 0 and "false_activations_per_min" in cont
    saved = json.loads((run.report_dir / "report.json").read_text())
    assert saved["protocols"][CALIBRATED]["int8"]["accuracy"] == cal["int8"]["accuracy"]
    assert "Côté-Allard" in (run.report_dir / "report.md").read_text()


def test_pretraining_copies_of_test_sessions_are_excluded(run):
    # The shared copy's PreTrainingDataset/Female7..9 are EvaluationDataset/Female0's sessions.
    excluded = load_bundle(run.bundle).manifest["provenance"]["excluded_as_copies_of_test_data"]
    assert set(excluded) == {"Female7", "Female8", "Female9"}
    assert excluded["Female8"] == ["EvaluationDataset/Female0/Test0"]


def test_int8_follows_float(run):
    for name, r in run.report["protocols"][CALIBRATED]["per_participant"].items():
        assert abs(r["int8"] - r["float"]) <= 0.03, name


def test_bundles_drive_the_arm_by_class_and_record_their_parent(run):
    base = load_bundle(run.bundle)
    assert base.task == "gesture" and base.fs == 200.0 and base.window["length"] == 52
    policy = base.decision_policy()
    assert policy.moves_arm and policy.mode == "multiclass"
    spec = get_task("gesture")
    assert {lab: (a.name if a else None) for lab, a in policy.commands.items()} == dict(spec.commands)
    for name in ("Female0", "Male0"):
        cal = load_bundle(run.report_dir / "calibrated" / name)
        assert cal.manifest["provenance"]["participant"] == name
        assert cal.manifest["provenance"]["parent"].startswith("sha256:")
        # the objective with the delay in it (issue #25): the bounds of design § 3
        assert cal.decision_policy().objective["subject_to"] == OBJECTIVE["subject_to"]
        assert OBJECTIVE["minimise"].startswith("p50 delay")


def test_evaluate_a_session_folder_through_the_edge_path(run, shared_data):
    res = evaluate_gesture(run.bundle, shared_data / "myo_armband" / "EvaluationDataset" / "Male1" / "Test0",
                           progress=None)
    assert res["n_windows"] > 500 and 0.0 <= res["int8"]["accuracy"] <= 1.0
    assert res["continuous"]["replays"] == 1 and list(res["sessions"]) == ["Male1/Test0"]
