"""The bundle the Pi's service runs (issue 23): a symlink switched in one rename, the previous one
kept for rollback, and nothing installed that the service would refuse."""

from __future__ import annotations

import os
import shutil

import pytest

from edge import config
from edge.bundle import keys as bundle_keys
from edge.bundle import load_bundle, signing
from edge.bundle.installed import install_bundle, rollback
from edge.cli import main
from edge.errors import BundleError, SignatureError
from tests.conftest import FIXTURE_BUNDLES


@pytest.fixture
def link(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "TRUSTED_KEYS_DIR", str(tmp_path / "no-trust-store"))
    monkeypatch.delenv(bundle_keys.TRUSTED_KEYS_ENV, raising=False)
    (tmp_path / "opt").mkdir()
    return tmp_path / "opt" / "bundle"


def test_install_switches_the_link_and_keeps_the_previous_for_rollback(link):
    first, prev = install_bundle(FIXTURE_BUNDLES / "gesture", link)
    assert prev is None and link.is_symlink() and load_bundle(link).task == "gesture"
    assert first.parent == link.with_name("bundles")  # a copy in the store: the source may go away
    second, prev = install_bundle(FIXTURE_BUNDLES / "emotion", link)
    assert prev == first and load_bundle(link).task == "emotion"
    assert os.readlink(link.with_name("bundle.previous")) == str(first)
    assert install_bundle(FIXTURE_BUNDLES / "emotion", link)[0] == second  # again: nothing changes
    now, before = rollback(link)
    assert now == first and before == second and load_bundle(link).task == "gesture"
    assert rollback(link)[0] == second  # and forth
    assert not [p for p in link.parent.rglob(".*tmp")]  # no temporary left behind


def test_nothing_is_installed_that_the_service_would_refuse(link, tmp_path, monkeypatch):
    install_bundle(FIXTURE_BUNDLES / "gesture", link)
    bundle_keys.generate_keypair(tmp_path / "keys", "w")
    monkeypatch.setenv(bundle_keys.TRUSTED_KEYS_ENV, str(tmp_path / "keys"))
    with pytest.raises(SignatureError, match="unsigned"):
        install_bundle(FIXTURE_BUNDLES / "emotion", link)
    assert "gesture" in os.readlink(link) and not link.with_name("bundle.previous").exists()  # unchanged


def test_no_rollback_without_a_previous_and_no_install_over_a_real_directory(link):
    with pytest.raises(BundleError, match="no previous bundle"):
        rollback(link)
    shutil.copytree(FIXTURE_BUNDLES / "gesture", link)
    with pytest.raises(BundleError, match="not the link this command manages"):
        install_bundle(FIXTURE_BUNDLES / "emotion", link)
    assert not link.is_symlink() and load_bundle(link).task == "gesture"


def test_calibrate_install_and_rollback_from_the_command_line(link, shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEUROGRIP_BUNDLE_LINK", str(link))
    assert main(["install-bundle", str(FIXTURE_BUNDLES / "gesture")]) == 0
    session = shared_data / "myo_armband" / "EvaluationDataset" / "Male3" / "training0"
    assert main(["calibrate", "--bundle", str(FIXTURE_BUNDLES / "gesture"), "--data", str(session),
                 "--out", str(tmp_path / "mine"), "--install"]) == 0
    out = capsys.readouterr().out
    assert "installed:" in out and "rollback" in out and "systemctl restart neurogrip" in out
    assert "head" in load_bundle(link).manifest  # the calibrated one runs
    assert main(["rollback"]) == 0 and "head" not in load_bundle(link).manifest


def test_a_resigned_bundle_is_copied_again_not_the_stale_copy_reused(link, tmp_path, monkeypatch):
    """The store's names cover the content hash, not the signature: after a key rotation the re-signed
    bundle must replace the copy signed with the retired key."""
    base = shutil.copytree(FIXTURE_BUNDLES / "gesture", tmp_path / "gesture")
    old_key, _, _ = bundle_keys.generate_keypair(tmp_path / "old", "old")
    new_key, new_pub, _ = bundle_keys.generate_keypair(tmp_path / "new", "new")
    signing.sign(base, old_key)
    first, _ = install_bundle(base, link)
    signing.sign(base, new_key)  # the key rotated: the same content, another signature
    monkeypatch.setenv(bundle_keys.TRUSTED_KEYS_ENV, str(tmp_path / "new"))
    second, _ = install_bundle(base, link)
    assert second == first and load_bundle(link).signature["key_id"] == bundle_keys.load_public_key(new_pub)[0]
