"""A device-signed EMG bundle may carry the accumulate decision filter only as this installation's
calibration writes it (``CALIBRATION_EMG_DECISION``), never another filter or a lower threshold (one
calibration, of a development participant's session: it is the slow part)."""

from __future__ import annotations

import json

import pytest

from edge import config
from edge.bundle import load_bundle, signing, write_bundle
from edge.calibration import calibrate
from edge.errors import SignatureError
from tests.edge.test_device_trust import trusted_pi

ACCUMULATE = {"filter": "accumulate", "vote": 1, "min_dwell_ms": 0.0, "commit_nats": 10.0,
              "evidence_floor": 0.01, "leak_ms": 0.0, "reject_below": 0.5, "refractory_ms": 0.0}


@pytest.fixture
def pi(tmp_path, monkeypatch, shared_data):
    """The device-trust Pi (tests/edge/test_device_trust.py) with a development participant's session
    (never an evaluation participant's)."""
    return trusted_pi(tmp_path, monkeypatch, shared_data / "myo_armband" / "PreTrainingDataset" / "Male0" / "training0")


def _resigned(src, out, edit, key):
    b = load_bundle(src)
    m = json.loads(json.dumps(b.manifest))
    edit(m)
    write_bundle(out, m, b.model_bytes)
    signing.sign(out, key, check_model=False)
    return out


def test_the_accumulate_filter_is_trusted_exactly_as_calibration_writes_it(pi, monkeypatch):
    monkeypatch.setattr(config, "CALIBRATION_EMG_DECISION", dict(ACCUMULATE))
    out = pi["tmp"] / "mine"
    calibrate(pi["base"], pi["session"], out)
    mine = load_bundle(out)  # device-signed, accepted through its root
    pol = mine.decision_policy()
    assert (pol.filter, pol.commit_nats, pol.evidence_floor, pol.leak_ms) == ("accumulate", 10.0, 0.01, 0.0)

    for key, value in (("commit_nats", 5.0), ("evidence_floor", 0.001), ("leak_ms", 50.0), ("filter", "vote")):
        def edit(m, key=key, value=value):
            m["decision"][key] = value
            if value == "vote":  # a valid vote policy again, but not what calibration wrote
                for k in ("commit_nats", "evidence_floor", "leak_ms"):
                    del m["decision"][k]
        with pytest.raises(SignatureError, match="decision differ from its workstation-signed root"):
            load_bundle(_resigned(out, pi["tmp"] / f"e-{key}", edit, pi["device"]))

    # the root's own decision (the vote filter) and stride stay allowed
    def root_cadence(m):
        root = m["provenance"]["workstation_manifest"]
        m["window"]["stride"], m["window"]["stride_ms"] = root["window"]["stride"], root["window"]["stride_ms"]
        m["decision"] = root["decision"]
    assert load_bundle(_resigned(out, pi["tmp"] / "root", root_cadence, pi["device"])).decision_policy().filter == "vote"

    # an installation whose calibration writes the vote filter refuses the very same bundle
    monkeypatch.setattr(config, "CALIBRATION_EMG_DECISION", {"reject_below": 0.9, "vote": 2, "min_dwell_ms": 100.0,
                                                             "refractory_ms": 0.0})
    with pytest.raises(SignatureError, match="decision differ"):
        load_bundle(out)


def test_a_base_with_the_accumulate_filter_calibrates_to_the_vote_filter_calibration_writes(pi):
    """CALIBRATION_EMG_DECISION names the vote filter's parameters: over an accumulate base it means the
    vote filter (edge.decision.evidence.overlay_decision), not a vote-2 accumulate policy refused at the end."""
    acc_base = pi["tmp"] / "acc-base"
    ws_key = pi["tmp"] / "workstation" / "w.pem"
    _resigned(pi["base"], acc_base, lambda m: m["decision"].update(ACCUMULATE), ws_key)
    assert load_bundle(acc_base).decision_policy().filter == "accumulate"
    out = pi["tmp"] / "from-acc"
    calibrate(acc_base, pi["session"], out)
    pol = load_bundle(out).decision_policy()  # device-signed, accepted through its root
    assert (pol.filter, pol.vote, pol.min_dwell_ms) == ("vote", 2, 100.0) and pol.commit_nats is None
