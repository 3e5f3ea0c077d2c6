"""Calibration on the Pi without the workstation's key (issue 24): the Pi signs with its own device key,
and a bundle so signed is trusted only through the workstation-signed base it carries — whose model it
must be, byte for byte, with the same task, labels, signal chain and decision policy."""

from __future__ import annotations

import json
import shutil

import pytest

from edge import config
from edge.bundle import content_hash, load_bundle, signing, write_bundle
from edge.bundle import keys as bundle_keys
from edge.calibration import calibrate
from edge.cli import main
from edge.errors import CalibrationError, SignatureError
from tests.conftest import FIXTURE_BUNDLES


def trusted_pi(tmp_path, monkeypatch, session) -> dict:
    """A Pi with a trust store (the workstation's key W), its device key D installed, a W-signed gesture
    base, and ``session`` to calibrate on (also used by test_decision_accumulate_trust.py)."""
    ws_private, ws_public, ws_kid = bundle_keys.generate_keypair(tmp_path / "workstation", "w")
    store = tmp_path / "trusted-keys"
    store.mkdir()
    shutil.copy(ws_public, store)
    base = shutil.copytree(FIXTURE_BUNDLES / "gesture", tmp_path / "base")
    monkeypatch.setattr(config, "TRUSTED_KEYS_DIR", str(tmp_path / "none"))
    monkeypatch.delenv(bundle_keys.ALLOW_UNSIGNED_ENV, raising=False)
    signing.sign(base, ws_private)
    device_dir = tmp_path / "device-key"
    assert main(["keygen", "--device", "--out", str(device_dir)]) == 0
    devices = tmp_path / "device-keys"
    devices.mkdir()
    shutil.copy(device_dir / "device.pub", devices)
    monkeypatch.setenv(bundle_keys.TRUSTED_KEYS_ENV, str(store))
    monkeypatch.setenv(bundle_keys.DEVICE_KEYS_ENV, str(devices))
    monkeypatch.setenv(bundle_keys.DEVICE_KEY_ENV, str(device_dir / "device.pem"))
    return {"base": base, "session": session, "ws_private": ws_private, "ws_kid": ws_kid,
            "device": device_dir / "device.pem", "devices": devices, "tmp": tmp_path}


@pytest.fixture
def pi(tmp_path, monkeypatch, shared_data):
    return trusted_pi(tmp_path, monkeypatch, shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "training0")


def _resigned(pi, src, out, edit, key):
    """``src``'s manifest edited by ``edit(manifest)``, written to ``out`` and signed by ``key``."""
    b = load_bundle(src)
    m = json.loads(json.dumps(b.manifest))
    model = edit(m) or b.model_bytes
    write_bundle(out, m, model)
    signing.sign(out, key, check_model=False)
    return out


def test_a_bundle_calibrated_on_the_pi_is_signed_by_its_device_key_and_loads(pi):
    out = pi["tmp"] / "mine"
    calibrate(pi["base"], pi["session"], out)  # no --sign-key: the device key
    mine = load_bundle(out)
    assert mine.signature["key_id"] != pi["ws_kid"]
    prov = mine.manifest["provenance"]
    assert prov["workstation_signature"]["key_id"] == pi["ws_kid"]
    assert prov["workstation_manifest"]["content_hash"] == load_bundle(pi["base"]).content_hash
    # calibrated again from it: the root is carried forward
    again = pi["tmp"] / "again"
    calibrate(out, pi["session"], again, force=True)
    assert load_bundle(again).manifest["provenance"]["workstation_signature"]["key_id"] == pi["ws_kid"]


def test_a_device_key_vouches_for_nothing_but_a_recalibrated_workstation_model(pi, monkeypatch):
    out = pi["tmp"] / "mine"
    calibrate(pi["base"], pi["session"], out)

    def thresholds(m):
        m["decision"]["reject_below"] = 0.01
    with pytest.raises(SignatureError, match="decision differ from its workstation-signed root"):
        load_bundle(_resigned(pi, out, pi["tmp"] / "t", thresholds, pi["device"]))

    def other_model(m):
        model = bytearray(load_bundle(out).model_bytes)
        model[-1] ^= 1
        return bytes(model)
    with pytest.raises(SignatureError, match="model or its root's manifest"):
        load_bundle(_resigned(pi, out, pi["tmp"] / "m", other_model, pi["device"]))

    def no_root(m):
        del m["provenance"]["workstation_signature"]
    with pytest.raises(SignatureError, match="no workstation-signed root"):
        load_bundle(_resigned(pi, out, pi["tmp"] / "r", no_root, pi["device"]))

    stranger, _, _ = bundle_keys.generate_keypair(pi["tmp"] / "stranger", "s")  # a root signed by an untrusted key
    rogue = shutil.copytree(FIXTURE_BUNDLES / "gesture", pi["tmp"] / "rogue")
    signing.sign(rogue, stranger)
    monkeypatch.setenv(bundle_keys.ALLOW_UNSIGNED_ENV, "1")  # to calibrate from it at all
    calibrate(rogue, pi["session"], pi["tmp"] / "from-rogue")
    monkeypatch.delenv(bundle_keys.ALLOW_UNSIGNED_ENV)
    with pytest.raises(SignatureError, match="which this machine does not trust"):
        load_bundle(pi["tmp"] / "from-rogue")
    # the device's public key not installed: its bundles are from an unknown key
    for f in pi["devices"].iterdir():
        f.unlink()
    with pytest.raises(SignatureError, match="does not trust"):
        load_bundle(out)


def test_without_a_device_key_calibrate_says_how_to_make_one(pi, monkeypatch):
    monkeypatch.setenv(bundle_keys.DEVICE_KEY_ENV, str(pi["tmp"] / "nowhere.pem"))
    with pytest.raises(CalibrationError, match="keygen --device"):
        calibrate(pi["base"], pi["session"], pi["tmp"] / "x")
    assert not (pi["tmp"] / "x").exists()


def test_the_root_hash_binds_the_model(pi):
    """The evidence is the root manifest and its signature: the root manifest with the calibrated
    bundle's model bytes must hash to what the workstation signed."""
    base = load_bundle(pi["base"])
    assert content_hash(base.manifest, base.model_bytes) == base.signature["content_hash"]


def test_the_window_structure_is_pinned_only_its_normalisation_may_change(pi):
    """The review: a device-key holder must not change the window's stride or length (the decision
    cadence, the vote's span) — only what calibration re-estimates."""
    out = pi["tmp"] / "mine"
    calibrate(pi["base"], pi["session"], out)

    def stride(m):
        m["window"]["stride"] = 1
        m["window"]["stride_ms"] = 5.0
    with pytest.raises(SignatureError, match="window"):
        load_bundle(_resigned(pi, out, pi["tmp"] / "s", stride, pi["device"]))

    # the EMG calibration's own cadence and debouncing (config), and no other
    mine = load_bundle(out).manifest
    assert mine["window"]["stride_ms"] == config.CALIBRATION_EMG_STRIDE_MS
    for key, value in (("vote", 1), ("min_dwell_ms", 0.0), ("reject_below", 0.5)):
        def debounce(m, key=key, value=value):
            m["decision"][key] = value
        with pytest.raises(SignatureError, match="decision"):
            load_bundle(_resigned(pi, out, pi["tmp"] / f"d-{key}", debounce, pi["device"]))

    def root_cadence(m):  # the root's own stride and decision are allowed too
        root = m["provenance"]["workstation_manifest"]
        m["window"]["stride"], m["window"]["stride_ms"] = root["window"]["stride"], root["window"]["stride_ms"]
        m["decision"] = root["decision"]
    assert load_bundle(_resigned(pi, out, pi["tmp"] / "r", root_cadence, pi["device"])).task == "gesture"

    def mixed(m):  # but not the root's stride with the calibration's debouncing
        root = m["provenance"]["workstation_manifest"]
        m["window"]["stride"], m["window"]["stride_ms"] = root["window"]["stride"], root["window"]["stride_ms"]
    with pytest.raises(SignatureError, match="decision and window stride together"):
        load_bundle(_resigned(pi, out, pi["tmp"] / "x", mixed, pi["device"]))

    def scale(m):
        m["window"]["channel_scale"] = [v * 1.01 for v in m["window"]["channel_scale"]]
    assert load_bundle(_resigned(pi, out, pi["tmp"] / "c", scale, pi["device"])).task == "gesture"


def test_an_untrusted_device_key_is_refused_before_the_work(pi):
    for f in pi["devices"].iterdir():  # its .pub not installed: the calibrated bundle would not load
        f.unlink()
    with pytest.raises(CalibrationError, match="not trusted on this machine"):
        calibrate(pi["base"], pi["session"], pi["tmp"] / "x")
    assert not (pi["tmp"] / "x").exists()


def test_an_eeg_bundle_never_gets_the_emg_cadence(pi, tmp_path):
    """The EMG calibration's stride and debouncing are allowed only where calibration writes them: a
    device-signed EEG (or layer-only) bundle with them is refused."""
    from edge.bundle.device_trust import _calibration_cadences

    root = json.loads((FIXTURE_BUNDLES / "grasp-lift" / "manifest.json").read_text())
    assert len(_calibration_cadences(root, {"head": {"td": {"lengths": [52], "threshold": 1.0}}})) == 1
    gesture = json.loads((FIXTURE_BUNDLES / "gesture" / "manifest.json").read_text())
    assert len(_calibration_cadences(gesture, {"head": {"td": {"lengths": [52], "threshold": 1.0}}})) == 2
    assert len(_calibration_cadences(gesture, {"head": {"weights": [[0.0]]}})) == 1  # a layer-only head
