"""edge.bundle.trust: Ed25519-signed bundles, the trust store and its opt-out, with real keys and real bundles.

Every test runs with no trust store of the machine's own (the default directory patched to a missing
one, the two environment variables unset); a test that wants one sets ``NEUROGRIP_TRUSTED_KEYS``.
"""

import base64
import hashlib
import json
import logging
import os
import shutil
import stat
import zipfile

import pytest

from edge import config
from edge.bundle import content_hash, load_bundle, signing, trust, write_bundle
from edge.bundle import keys as bundle_keys
from edge.bundle.commands import keygen_main, sign_main, verify_main
from edge.bundle.schema import SIGNATURE_FILE
from edge.errors import BundleError, SignatureError
from tests.conftest import FIXTURE_BUNDLES

GL = FIXTURE_BUNDLES / "grasp-lift"


@pytest.fixture(autouse=True)
def _no_machine_trust_store(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "TRUSTED_KEYS_DIR", str(tmp_path / "no-trust-store"))
    monkeypatch.delenv(bundle_keys.TRUSTED_KEYS_ENV, raising=False)
    monkeypatch.delenv(bundle_keys.ALLOW_UNSIGNED_ENV, raising=False)
    monkeypatch.setattr(trust, "_WARNED_UNVERIFIED", False)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Two key pairs: "a" (trusted by ``store``) and "b" (trusted by nobody)."""
    root = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("a", "b"):
        private, public, kid = bundle_keys.generate_keypair(root / name, name)
        out[name] = {"private": private, "public": public, "id": kid}
    store = root / "store"
    store.mkdir()
    shutil.copy(out["a"]["public"], store / "workstation.pub")
    out["store"] = store
    return out


@pytest.fixture(params=["dir", "zip"])
def bundle(request, tmp_path):
    """An unsigned copy of the grasp-lift fixture, as a directory or a .zip."""
    if request.param == "dir":
        return shutil.copytree(GL, tmp_path / "bundle")
    z = tmp_path / "bundle.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        for name in ("manifest.json", "model.tflite"):
            f.write(GL / name, name)
    return z


def _files(path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in path.iterdir()}
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _rewrite(path, **files: bytes) -> None:
    """Replace some of a bundle's files (keyword: the file name with '.' as '_'), keeping the rest."""
    new = {**_files(path), **{k.replace("_", "."): v for k, v in files.items()}}
    if path.is_dir():
        for name, data in new.items():
            (path / name).write_bytes(data)
        return
    with zipfile.ZipFile(path, "w") as z:
        for name, data in new.items():
            z.writestr(name, data)


def _trust(monkeypatch, store) -> None:
    monkeypatch.setenv(bundle_keys.TRUSTED_KEYS_ENV, str(store))


def _reexport(manifest: dict, model: bytes) -> bytes:
    """What anyone can do without the key: recompute model.sha256 and the content hash."""
    manifest["model"]["sha256"] = hashlib.sha256(model).hexdigest()
    manifest["model"]["bytes"] = len(model)
    manifest["content_hash"] = content_hash(manifest, model)
    return json.dumps(manifest, indent=1, sort_keys=True).encode()


# --------------------------------------------------------------------------- keys


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path):
    old = os.umask(0)  # the mode is set explicitly, not left to the umask
    try:
        private, public, kid = bundle_keys.generate_keypair(tmp_path / "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    assert bundle_keys.load_private_key(private) is not None
    assert bundle_keys.load_public_key(public)[0] == kid
    assert len(public.read_bytes()) < 200 and public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(SignatureError, match="never overwritten"):
        bundle_keys.generate_keypair(tmp_path / "k")
    with pytest.raises(SignatureError, match="plain file name"):  # a BundleError: one line on the CLI
        bundle_keys.generate_keypair(tmp_path / "k", "../evil")



def test_keygen_with_a_path_in_the_name_is_a_one_line_error(tmp_path, capsys):
    from edge.cli import main

    assert main(["keygen", "--out", str(tmp_path / "k2"), "--name", "../../etc/evil"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a plain file name" in err and "Traceback" not in err
    assert not (tmp_path / "etc").exists() and not list(tmp_path.rglob("*.pem"))


def test_a_private_key_others_can_read_is_refused(tmp_path, keys):
    key = tmp_path / "k.pem"
    shutil.copy(keys["a"]["private"], key)
    key.chmod(0o644)
    with pytest.raises(SignatureError, match="readable by other users.*chmod 600"):
        bundle_keys.load_private_key(key)
    key.chmod(0o600)
    key.write_bytes(keys["a"]["public"].read_bytes())  # the wrong file of the pair
    with pytest.raises(SignatureError, match="not an unencrypted PEM private key"):
        bundle_keys.load_private_key(key)


# --------------------------------------------------------------------------- sign, verify, load


def test_sign_then_load_with_the_trust_store(bundle, keys, monkeypatch):
    before = load_bundle(bundle, check_model=False).content_hash
    assert signing.sign(bundle, keys["a"]["private"]) == keys["a"]["id"]
    assert SIGNATURE_FILE in _files(bundle)
    assert signing.verify(bundle, keys["store"]) == (keys["a"]["id"], keys["store"] / "workstation.pub")
    _trust(monkeypatch, keys["store"])
    b = load_bundle(bundle)
    assert b.content_hash == before  # the signature lies outside the content hash
    # Signing again replaces the signature (one member, not two), and it still verifies.
    signing.sign(bundle, keys["a"]["private"], check_model=False)
    if bundle.suffix == ".zip":
        with zipfile.ZipFile(bundle) as z:
            assert sorted(z.namelist()) == ["manifest.json", "model.tflite", "signature.json"]
    assert load_bundle(bundle, check_model=False).content_hash == before


def test_a_bundle_written_by_write_bundle_signs_as_a_zip(tmp_path, keys, monkeypatch):
    b = load_bundle(GL, check_model=False)
    body = {k: v for k, v in b.manifest.items() if k not in ("content_hash", "schema", "schema_version")}
    z = write_bundle(tmp_path / "out.zip", body, b.model_bytes)
    signing.sign(z, keys["a"]["private"], check_model=False)
    _trust(monkeypatch, keys["store"])
    assert load_bundle(z, check_model=False).content_hash == b.content_hash


def test_an_edited_manifest_with_recomputed_hashes_is_refused(bundle, keys, monkeypatch):
    signing.sign(bundle, keys["a"]["private"], check_model=False)
    m = json.loads(_files(bundle)["manifest.json"])
    m["decision"]["thresholds"] = [0.2] * len(m["decision"]["thresholds"])  # an arm that fires more easily
    model = _files(bundle)["model.tflite"]
    _rewrite(bundle, manifest_json=_reexport(m, model))
    assert load_bundle(bundle, check_model=False)  # the hashes alone cannot tell...
    _trust(monkeypatch, keys["store"])
    with pytest.raises(SignatureError, match="changed after it was signed.*manifest.json's bytes.*neurogrip sign"):
        load_bundle(bundle, check_model=False)  # ...the signature can


def test_a_reformatted_manifest_is_refused(bundle, keys, monkeypatch):
    # Same JSON, other spacing: the content hash (canonical form) is unchanged, the signed bytes are not.
    signing.sign(bundle, keys["a"]["private"], check_model=False)
    m = json.loads(_files(bundle)["manifest.json"])
    _rewrite(bundle, manifest_json=json.dumps(m).encode())
    _trust(monkeypatch, keys["store"])
    with pytest.raises(SignatureError, match="manifest.json's bytes differ"):
        load_bundle(bundle, check_model=False)


def test_a_replaced_model_with_recomputed_hashes_is_refused(bundle, keys, monkeypatch):
    signing.sign(bundle, keys["a"]["private"], check_model=False)
    files = _files(bundle)
    model = bytearray(files["model.tflite"])
    model[-100] ^= 0x01
    _rewrite(bundle, manifest_json=_reexport(json.loads(files["manifest.json"]), bytes(model)),
             model_tflite=bytes(model))
    _trust(monkeypatch, keys["store"])
    with pytest.raises(SignatureError, match="changed after it was signed.*content hash"):
        load_bundle(bundle, check_model=False)


def test_a_model_changed_without_the_hashes_is_refused_before_the_signature(bundle, keys, monkeypatch):
    signing.sign(bundle, keys["a"]["private"], check_model=False)
    model = bytearray(_files(bundle)["model.tflite"])
    model[-100] ^= 0x01
    _rewrite(bundle, model_tflite=bytes(model))
    _trust(monkeypatch, keys["store"])
    with pytest.raises(BundleError, match="does not match its sha256"):
        load_bundle(bundle, check_model=False)


def test_a_signature_by_an_untrusted_key_is_refused(bundle, keys, monkeypatch):
    signing.sign(bundle, keys["b"]["private"], check_model=False)
    _trust(monkeypatch, keys["store"])
    with pytest.raises(SignatureError, match=f"signed by key {keys['b']['id'][:16]}, which this machine does not "
                                             f"trust.*{keys['a']['id'][:16]}.*install the signer's public key"):
        load_bundle(bundle, check_model=False)
    with pytest.raises(SignatureError, match="does not trust"):
        signing.verify(bundle, keys["store"])


def test_a_forged_signature_is_refused(bundle, keys, monkeypatch):
    # The trusted key's id with a signature made by another key over the same message.
    signing.sign(bundle, keys["b"]["private"], check_model=False)
    doc = json.loads(_files(bundle)["signature.json"])
    doc["key_id"] = keys["a"]["id"]
    _rewrite(bundle, signature_json=json.dumps(doc).encode())
    _trust(monkeypatch, keys["store"])
    with pytest.raises(SignatureError, match="signature does not match the bundle"):
        load_bundle(bundle, check_model=False)


def test_an_unsigned_bundle_is_refused_with_a_trust_store(bundle, keys, monkeypatch):
    _trust(monkeypatch, keys["store"])
    with pytest.raises(SignatureError, match="unsigned.*neurogrip sign.*NEUROGRIP_ALLOW_UNSIGNED=1") as err:
        load_bundle(bundle, check_model=False)
    assert isinstance(err.value, BundleError)  # callers that catch BundleError keep working


def test_the_default_trust_store_applies_when_it_holds_a_key(keys, monkeypatch):
    monkeypatch.setattr(config, "TRUSTED_KEYS_DIR", str(keys["store"]))
    with pytest.raises(SignatureError, match="unsigned"):
        load_bundle(GL, check_model=False)


@pytest.mark.parametrize("problem", ["unsigned", "untrusted"])
def test_the_opt_out_loads_with_a_warning_at_every_load(bundle, keys, monkeypatch, caplog, problem):
    if problem == "untrusted":
        signing.sign(bundle, keys["b"]["private"], check_model=False)
    _trust(monkeypatch, keys["store"])
    monkeypatch.setenv(bundle_keys.ALLOW_UNSIGNED_ENV, "1")
    with caplog.at_level(logging.WARNING, logger="edge.bundle.trust"):
        load_bundle(bundle, check_model=False)
        load_bundle(bundle, check_model=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("loaded anyway because NEUROGRIP_ALLOW_UNSIGNED=1" in w for w in warnings)
    assert ("unsigned" if problem == "unsigned" else "does not trust") in warnings[0]


def test_an_opt_out_value_other_than_0_or_1_is_refused(monkeypatch):
    monkeypatch.setenv(bundle_keys.ALLOW_UNSIGNED_ENV, "yes")
    with pytest.raises(SignatureError, match="neither 1 nor 0"):
        load_bundle(GL, check_model=False)
    monkeypatch.setenv(bundle_keys.ALLOW_UNSIGNED_ENV, "0")
    assert load_bundle(GL, check_model=False)


def test_without_a_trust_store_a_bundle_loads_with_one_warning(caplog, tmp_path, monkeypatch):
    (tmp_path / "empty-store").mkdir()  # an empty default directory is no trust store either
    monkeypatch.setattr(config, "TRUSTED_KEYS_DIR", str(tmp_path / "empty-store"))
    with caplog.at_level(logging.WARNING, logger="edge.bundle.trust"):
        load_bundle(GL, check_model=False)
        load_bundle(FIXTURE_BUNDLES / "gesture", check_model=False)  # another bundle: still once per process
        load_bundle(GL, check_model=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "without a signature check" in warnings[0] and "neurogrip keygen" in warnings[0]
    assert "docs/bundle-signing.md" in warnings[0] and str(tmp_path / "empty-store") in warnings[0]
    # one line a terminal shows as one: no line break, short enough with the trust store's usual path
    short = warnings[0].replace(str(tmp_path / "empty-store"), "/etc/neurogrip/trusted-keys")
    assert "\n" not in warnings[0] and len(short) <= 140, short


def test_a_named_trust_store_must_exist_and_hold_a_valid_key(monkeypatch, tmp_path, keys):
    monkeypatch.setenv(bundle_keys.TRUSTED_KEYS_ENV, str(tmp_path / "typo"))
    with pytest.raises(SignatureError, match="no such trust store directory"):
        load_bundle(GL, check_model=False)
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "README").write_text("keys go here")
    monkeypatch.setenv(bundle_keys.TRUSTED_KEYS_ENV, str(tmp_path / "store"))
    with pytest.raises(SignatureError, match=r"holds no public key \(\*\.pub\)"):
        load_bundle(GL, check_model=False)
    shutil.copy(keys["a"]["public"], tmp_path / "store" / "good.pub")
    (tmp_path / "store" / "bad.pub").write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n")
    with pytest.raises(SignatureError, match="bad.pub: not a PEM public key"):  # fails closed
        load_bundle(GL, check_model=False)
    (tmp_path / "store" / "bad.pub").write_bytes(b"x" * (config.TRUSTED_KEY_MAX_BYTES + 1))
    with pytest.raises(SignatureError, match="over the .*-byte limit"):
        load_bundle(GL, check_model=False)


# --------------------------------------------------------------------------- hostile signature files


def _signed_doc(bundle, keys) -> dict:
    signing.sign(bundle, keys["a"]["private"], check_model=False)
    return json.loads(_files(bundle)["signature.json"])


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"", "not JSON"),
    (lambda d: b"\xff\xfe", "not JSON"),
    (lambda d: b"[" * 4000, "not JSON"),
    (lambda d: b'{"schema": 1, "schema": 2}', "twice"),
    (lambda d: json.dumps([d]).encode(), "not a neurogrip-bundle-signature"),
    (lambda d: json.dumps({**d, "version": 2}).encode(), "newer than this neurogrip.*upgrade"),
    (lambda d: json.dumps({**d, "version": True}).encode(), "no integer version"),
    (lambda d: json.dumps({**d, "algorithm": "rsa"}).encode(), "algorithm 'rsa'"),
    (lambda d: json.dumps({**d, "key_id": "A" * 64}).encode(), "key_id is not a sha256"),
    (lambda d: json.dumps({**d, "content_hash": d["content_hash"][7:]}).encode(), "content_hash is not"),
    (lambda d: json.dumps({**d, "signature": "!!!"}).encode(), "not 64 bytes"),
    (lambda d: json.dumps({**d, "signature": base64.b64encode(b"x" * 63).decode()}).encode(), "not 64 bytes"),
    (lambda d: json.dumps({**d, "signature": None}).encode(), "not 64 bytes"),
])
def test_a_malformed_signature_file_is_a_signature_error(bundle, keys, monkeypatch, mutate, message):
    _rewrite(bundle, signature_json=mutate(_signed_doc(bundle, keys)))
    _trust(monkeypatch, keys["store"])
    with pytest.raises(SignatureError, match=message):
        load_bundle(bundle, check_model=False)


def test_a_huge_or_linked_signature_is_refused_before_it_is_read(tmp_path, monkeypatch, keys):
    d = shutil.copytree(GL, tmp_path / "d")
    (d / "signature.json").write_bytes(b" " * (config.BUNDLE_MAX_SIGNATURE_BYTES + 1))
    with pytest.raises(BundleError, match="signature.json is .* bytes, over the 4096-byte limit"):
        load_bundle(d, check_model=False)  # refused even with no trust store: reads are bounded first
    (d / "signature.json").unlink()
    (d / "signature.json").symlink_to(GL / "manifest.json")
    with pytest.raises(BundleError, match="signature.json is a symbolic link"):
        load_bundle(d, check_model=False)
    z = tmp_path / "b.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:  # a small archive that inflates past the cap
        f.write(GL / "manifest.json", "manifest.json")
        f.write(GL / "model.tflite", "model.tflite")
        f.writestr("signature.json", b"0" * (1 << 20))
    assert z.stat().st_size < 200_000
    with pytest.raises(BundleError, match="signature.json is 1048576 bytes, over the 4096-byte limit"):
        load_bundle(z, check_model=False)


# --------------------------------------------------------------------------- the commands


def test_keygen_sign_and_verify_commands(tmp_path, capsys, monkeypatch):
    b = shutil.copytree(GL, tmp_path / "b")
    assert keygen_main(["--out", str(tmp_path / "keys"), "--name", "lab"]) == 0
    out = capsys.readouterr().out
    assert "lab.pem (mode 0600)" in out and f"{config.TRUSTED_KEYS_DIR}/lab.pub" in out
    assert sign_main([str(b), "--key", str(tmp_path / "keys" / "lab.pem"), "--no-check-model"]) == 0
    assert "signed" in capsys.readouterr().out
    with pytest.raises(SignatureError, match="no such trust store directory"):  # none configured, none named
        verify_main([str(b)])
    assert verify_main([str(b), "--trusted-keys", str(tmp_path / "keys")]) == 0
    assert capsys.readouterr().out.startswith(f"OK {b}: signed by trusted key")
    monkeypatch.setenv(bundle_keys.ALLOW_UNSIGNED_ENV, "1")  # verify ignores the opt-out
    with pytest.raises(SignatureError, match="unsigned"):
        verify_main([str(GL), "--trusted-keys", str(tmp_path / "keys")])


def test_an_empty_trust_store_variable_fails_closed(monkeypatch):
    """NEUROGRIP_TRUSTED_KEYS='' (a script's unset variable) must not fall back to no trust store, where an
    unsigned bundle would load."""
    monkeypatch.setenv(bundle_keys.TRUSTED_KEYS_ENV, "")
    with pytest.raises(SignatureError, match="set but empty"):
        load_bundle(FIXTURE_BUNDLES / "grasp-lift")
    monkeypatch.setenv(bundle_keys.TRUSTED_KEYS_ENV, "  ")
    with pytest.raises(SignatureError, match="unset"):
        trust.TrustPolicy.from_environment()
