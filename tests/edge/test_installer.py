"""deploy/install.sh (issue 23), run for real into a directory (--root): the files a Pi gets, a unit that
'systemd-analyze verify' accepts, the device key, the bundle link, and a second run that changes nothing.
Then the Pi's day on that installation: a signed base installed, calibrated with the device key, and
the calibrated bundle installed and rolled back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.bundle import keys as bundle_keys
from edge.bundle import signing
from tests.conftest import FIXTURE_BUNDLES, REPO

INSTALL = REPO / "deploy" / "install.sh"


def _install(root: Path, *args, env=None):
    venv = Path(sys.executable).parent.parent
    return subprocess.run(["bash", str(INSTALL), "--root", str(root), "--venv", str(venv), *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})


def test_install_writes_what_the_pi_needs_and_a_second_run_changes_nothing(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    root = tmp_path / "pi"
    r = _install(root, "--bundle", str(FIXTURE_BUNDLES / "gesture"), "--source", "lsl:name=a&source_id=b&scope=machine")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "systemd-analyze verify" in r.stdout and "is valid" in r.stdout
    unit = (root / "etc/systemd/system/neurogrip.service").read_text()
    assert f"ExecStart={Path(sys.executable).parent}/neurogrip run" in unit
    rules = (root / "etc/udev/rules.d/99-neurogrip-arm.rules").read_text()
    assert 'SYMLINK+="neurogrip-arm"' in rules and 'GROUP="dialout"' in rules
    defaults = (root / "etc/default/neurogrip").read_text()
    assert "NEUROGRIP_ARM=/dev/neurogrip-arm" in defaults and "NEUROGRIP_SOURCE=lsl:name=a" in defaults
    key = root / "etc/neurogrip/device-key/device.pem"
    assert key.is_file() and oct(key.stat().st_mode & 0o777) == "0o600"
    assert (root / "etc/neurogrip/device-keys/device.pub").read_bytes() == key.with_suffix(".pub").read_bytes()
    link = root / "opt/neurogrip/bundle"
    assert link.is_symlink() and os.readlink(link).startswith(str(root / "opt/neurogrip/bundles/gesture-"))
    before = {p: p.read_bytes() for p in (key, root / "etc/default/neurogrip")}
    r = _install(root, "--bundle", str(FIXTURE_BUNDLES / "gesture"))
    assert r.returncode == 0 and "making this Pi's device key" not in r.stdout  # kept, not replaced
    assert all(p.read_bytes() == b for p, b in before.items())


def test_a_pis_day_on_the_installation_with_a_trust_store(tmp_path, shared_data, monkeypatch):
    root = tmp_path / "pi"
    ws_private, ws_public, _ = bundle_keys.generate_keypair(tmp_path / "workstation", "w")
    (root / "etc/neurogrip/trusted-keys").mkdir(parents=True)
    shutil.copy(ws_public, root / "etc/neurogrip/trusted-keys")
    r = _install(root, "--bundle", str(FIXTURE_BUNDLES / "gesture"))
    assert r.returncode != 0 and "unsigned" in r.stderr  # the service would refuse it: not installed
    base = shutil.copytree(FIXTURE_BUNDLES / "gesture", tmp_path / "base")
    signing.sign(base, ws_private)
    assert _install(root, "--bundle", str(base)).returncode == 0
    env = {"NEUROGRIP_TRUSTED_KEYS": str(root / "etc/neurogrip/trusted-keys"),
           "NEUROGRIP_DEVICE_KEYS": str(root / "etc/neurogrip/device-keys"),
           "NEUROGRIP_DEVICE_KEY": str(root / "etc/neurogrip/device-key/device.pem"),
           "NEUROGRIP_BUNDLE_LINK": str(root / "opt/neurogrip/bundle")}
    session = shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "training0"
    ng = [sys.executable, "-m", "edge.cli"]
    r = subprocess.run([*ng, "calibrate", "--bundle", str(root / "opt/neurogrip/bundle"), "--data", str(session),
                        "--out", str(tmp_path / "mine"), "--install"], capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from edge.bundle import load_bundle

    assert "head" in load_bundle(root / "opt/neurogrip/bundle").manifest  # device-signed, trusted via its root
    r = subprocess.run([*ng, "rollback"], capture_output=True, text=True, env={**os.environ, **env}, timeout=60,
                       check=False)
    assert r.returncode == 0 and "head" not in load_bundle(root / "opt/neurogrip/bundle").manifest
