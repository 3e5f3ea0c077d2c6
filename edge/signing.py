"""Signed bundles: Ed25519 signatures made on the workstation, checked by :func:`edge.bundle.load_bundle`.

A bundle's ``content_hash`` shows that a copy is whole, not who made it: anyone who edits the
manifest or swaps the model can recompute it.  A signature can only be made with the private key,
which never leaves the workstation; the Pi holds the public keys it trusts (docs/bundle-signing.md).

Keys (:func:`generate_keypair`, ``neurogrip keygen --out DIR``)
    ``NAME.pem``, the private key (PKCS#8 PEM, unencrypted, mode 0600: :func:`load_private_key`
    refuses one that other users can read, as ssh does), and ``NAME.pub``, the public key
    (SubjectPublicKeyInfo PEM, three lines).  A key's id is the sha256 of its raw 32 bytes, in hex.

The signature (:func:`sign`, ``neurogrip sign BUNDLE --key NAME.pem``)
    ``signature.json`` inside the bundle (a file of the directory, a member of the ``.zip``)::

        {"schema": "neurogrip-bundle-signature", "version": 1, "algorithm": "ed25519",
         "key_id": hex, "content_hash": "sha256:...", "manifest_sha256": hex, "signature": base64}

    The signed bytes are :func:`signed_message` of the bundle's content hash and the sha256 of the
    exact bytes of ``manifest.json``, both *recomputed* by the loader from the files it read; the
    two digests in the file only make the message of a refusal precise.  It is not part of the
    content hash, so signing changes neither the manifest nor the hash.

Trust (:class:`TrustPolicy`, read from the environment at every load)
    The trust store is the directory ``$NEUROGRIP_TRUSTED_KEYS``, else :data:`edge.config.TRUSTED_KEYS_DIR`
    (``/etc/neurogrip/trusted-keys``); its keys are its ``*.pub`` files.

    * it holds a key: a bundle loads only when signed by one of them, else :class:`SignatureError`
      (unsigned, malformed signature, another key, changed after signing);
    * ``NEUROGRIP_ALLOW_UNSIGNED=1`` (development only) loads such a bundle anyway, with a warning
      naming what was wrong at *every* load, so the opt-out is never silent;
    * the default directory is missing or holds no key: no trust store, every bundle loads, and the
      first load of the process logs one warning saying how to enable signing.  A directory named
      by ``NEUROGRIP_TRUSTED_KEYS`` must exist and hold a key (a typo must not turn checks off), and
      a key file that does not parse is an error, not skipped: a trust store fails closed.

Device keys (:mod:`edge.device_trust`)
    A bundle calibrated on the Pi is signed by the Pi's own key and trusted only through the
    workstation-signed bundle it was calibrated from, which its manifest carries.

What a signature does not cover: an older bundle signed by the same key still verifies (replace
the key to retire all its bundles), and the private key is only as safe as the workstation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from edge import config
from edge._checks import check_type
from edge.errors import SignatureError
from edge.manifest_schema import MANIFEST_FILE, clip

log = logging.getLogger(__name__)

__all__ = ["ALLOW_UNSIGNED_ENV", "SIGNATURE_FILE", "TRUSTED_KEYS_ENV", "TrustPolicy", "check_signature",
           "generate_keypair", "key_id", "load_private_key", "load_public_key", "load_trusted_keys", "sign",
           "signed_message", "verify"]

SIGNATURE_FILE = "signature.json"
SIGNATURE_SCHEMA = "neurogrip-bundle-signature"
SIGNATURE_VERSION = 1
ALGORITHM = "ed25519"
TRUSTED_KEYS_ENV = "NEUROGRIP_TRUSTED_KEYS"
DEVICE_KEYS_ENV = "NEUROGRIP_DEVICE_KEYS"   # this Pi's own public keys (edge.device_trust)
DEVICE_KEY_ENV = "NEUROGRIP_DEVICE_KEY"     # this Pi's private key, for calibrate
DEVICE_KEY_NAME = "device"
ALLOW_UNSIGNED_ENV = "NEUROGRIP_ALLOW_UNSIGNED"
PUBLIC_SUFFIX, PRIVATE_SUFFIX = ".pub", ".pem"
DEFAULT_KEY_NAME = "neurogrip-signing"
DOCS = "docs/bundle-signing.md"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_RESIGN = "sign the bundle again ('neurogrip sign BUNDLE --key KEY.pem') or copy the signed bundle again"
_FIX_CRYPTO = "install it: pip install 'neurogrip[edge]'"


def _crypto():
    """cryptography's pieces, imported on first use: a machine without a trust store never needs them."""
    try:
        from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise SignatureError(".", "the Python package 'cryptography' is not installed: no signature can be made "
                                  "or checked", _FIX_CRYPTO) from None
    return InvalidSignature, UnsupportedAlgorithm, serialization, ed25519


# --------------------------------------------------------------------------- keys


def key_id(public_key) -> str:
    """The id of an Ed25519 public key: sha256 of its raw 32 bytes, in hex."""
    _, _, serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _read_key_file(path: Path, what: str) -> tuple[bytes, os.stat_result]:
    """A key file's bytes, its size checked before it is read (it may come from anywhere)."""
    limit = config.TRUSTED_KEY_MAX_BYTES
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise SignatureError(path, f"the {what} is not a regular file", f"pass the {what} file itself")
        if st.st_size > limit:
            raise SignatureError(path, f"the {what} is {st.st_size} bytes, over the {limit}-byte limit of a key "
                                       "file", f"pass the {what} written by 'neurogrip keygen'")
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise SignatureError(path, f"no such {what}", "check the path") from None
    except OSError as exc:
        raise SignatureError(path, f"the {what} cannot be read ({exc.strerror})", "check its permissions") from None
    if len(data) > limit:
        raise SignatureError(path, f"the {what} grew over the {limit}-byte limit while it was read", "check the file")
    return data, st


def load_private_key(path):
    """The Ed25519 private key of a ``.pem`` written by :func:`generate_keypair`.

    Raises
    ------
    SignatureError
        No such file, readable by other users (``chmod 600``), or not an unencrypted Ed25519 key.
    """
    path = Path(path)
    data, st = _read_key_file(path, "private key")
    if st.st_mode & 0o077:
        raise SignatureError(path, f"the private key is readable by other users (mode {stat.S_IMODE(st.st_mode):04o})",
                             f"chmod 600 {path}")
    _, unsupported, serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, unsupported) as exc:  # TypeError: an encrypted key
        raise SignatureError(path, f"not an unencrypted PEM private key ({clip(str(exc), 120)})",
                             f"pass the {PRIVATE_SUFFIX} written by 'neurogrip keygen'") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError(path, f"a {type(key).__name__}, not an Ed25519 key",
                             "make a key with 'neurogrip keygen'")
    return key


def load_public_key(path):
    """(key id, Ed25519 public key) of a ``.pub`` written by :func:`generate_keypair`; :class:`SignatureError`
    when it is anything else."""
    path = Path(path)
    data, _ = _read_key_file(path, "public key")
    _, unsupported, serialization, ed25519 = _crypto()
    fix = f"install the {PUBLIC_SUFFIX} written by 'neurogrip keygen', or remove this file"
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, unsupported) as exc:
        raise SignatureError(path, f"not a PEM public key ({clip(str(exc), 120)})", fix) from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SignatureError(path, f"a {type(key).__name__}, not an Ed25519 key", fix)
    return key_id(key), key


def _create(path: Path, data: bytes, mode: int) -> None:
    """Write a new file with ``mode`` from the start (never a moment with wider permissions); never
    overwrite or follow a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), mode)  # the umask may have narrowed it; never widened
        fh.write(data)


def generate_keypair(out_dir, name: str = DEFAULT_KEY_NAME) -> tuple[Path, Path, str]:
    """Make a new Ed25519 key pair: ``out_dir/NAME.pem`` (private, mode 0600) and ``NAME.pub``.

    Parameters
    ----------
    out_dir : str or Path
        Created (mode 0700) when missing.
    name : str
        The files' base name, a plain file name.

    Returns
    -------
    (private key path, public key path, key id)

    Raises
    ------
    SignatureError
        When either file exists already: a key is never overwritten (every bundle signed with it
        would stop verifying).
    """
    check_type(name, str, "name")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise SignatureError(out_dir, f"the key name {clip(repr(name))} is not a plain file name",
                             "name it with letters, digits, '.', '_' and '-' only (no path: --out says where)")
    out = Path(out_dir)
    private, public = out / f"{name}{PRIVATE_SUFFIX}", out / f"{name}{PUBLIC_SUFFIX}"
    for p in (private, public):
        if os.path.lexists(p):
            raise SignatureError(p, "exists already; a key is never overwritten",
                                 "choose another --out or --name (bundles signed with the old key verify only "
                                 "with it)")
    _, _, serialization, ed25519 = _crypto()
    key = ed25519.Ed25519PrivateKey.generate()
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    _create(private, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), 0o600)
    _create(public, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return private, public, key_id(key.public_key())


# --------------------------------------------------------------------------- the trust store


def load_trusted_keys(directory, *, required: bool = True) -> dict[str, tuple[object, Path]]:
    """The trust store: key id → (public key, file) of every ``*.pub`` in ``directory``.

    ``required``: a missing directory, or one without a key, is a :class:`SignatureError` (else an
    empty dict).  A directory that cannot be listed, or a ``.pub`` that is not an Ed25519 public key,
    is an error either way: the store fails closed.
    """
    directory = Path(directory)
    fix = f"install the workstation's public key there ({DOCS})"
    try:
        if not stat.S_ISDIR(os.stat(directory).st_mode):
            raise SignatureError(directory, "the trust store is not a directory", fix)
        with os.scandir(directory) as it:
            entries = []
            for entry in it:
                entries.append(entry.name)
                if len(entries) > config.TRUST_STORE_MAX_ENTRIES:
                    raise SignatureError(directory, f"the trust store has more than {config.TRUST_STORE_MAX_ENTRIES} "
                                                    "entries", "keep only the trusted *.pub files there")
    except FileNotFoundError:
        if required:
            raise SignatureError(directory, "no such trust store directory", fix) from None
        return {}
    except OSError as exc:
        raise SignatureError(directory, f"the trust store cannot be read ({exc.strerror})",
                             "make it readable by the user that loads bundles") from None
    keys: dict[str, tuple[object, Path]] = {}
    for name in sorted(entries):
        if name.endswith(PUBLIC_SUFFIX) and not name.startswith("."):
            kid, key = load_public_key(directory / name)
            keys.setdefault(kid, (key, directory / name))
    if required and not keys:
        raise SignatureError(directory, f"the trust store holds no public key (*{PUBLIC_SUFFIX})", fix)
    return keys


def _allow_unsigned(where) -> bool:
    value = os.environ.get(ALLOW_UNSIGNED_ENV, "")
    if value not in ("", "0", "1"):  # "yes", "true": a guess is refused, not read as either
        raise SignatureError(where, f"{ALLOW_UNSIGNED_ENV}={clip(repr(value), 40)} is neither 1 nor 0",
                             "set it to 1 to load bundles the trust store refuses (development only), or unset it")
    return value == "1"


@dataclass(frozen=True)
class TrustPolicy:
    """What :func:`edge.bundle.load_bundle` accepts.

    Attributes
    ----------
    keys : dict
        key id → (Ed25519 public key, file).  Empty: no trust store, nothing is verified.
    store : Path or None
        Where the keys came from, for messages.  None with no keys: the caller chose not to check
        (e.g. :func:`sign` validating before it signs), and no warning is logged.
    allow_unsigned : bool
        The development opt-out: a refusal becomes a warning, logged at every load.
    """

    keys: dict = field(default_factory=dict)
    store: Path | None = None
    allow_unsigned: bool = False
    #: This Pi's own keys (:mod:`edge.device_trust`): a bundle one of them signed is trusted only
    #: through its workstation-signed root.
    device_keys: dict = field(default_factory=dict)

    @property
    def enforced(self) -> bool:
        return bool(self.keys)

    @classmethod
    def from_directory(cls, directory, *, allow_unsigned: bool = False) -> TrustPolicy:
        """Only bundles signed by a key of ``directory``, which must hold one."""
        return cls(load_trusted_keys(directory, required=True), Path(directory), allow_unsigned)

    @classmethod
    def from_environment(cls, where=".") -> TrustPolicy:
        """The policy of this machine: ``$NEUROGRIP_TRUSTED_KEYS`` (must exist and hold a key), else
        :data:`edge.config.TRUSTED_KEYS_DIR` (may be missing or empty: no trust store), and the opt-out
        ``$NEUROGRIP_ALLOW_UNSIGNED``.  ``where`` (the bundle) names a bad opt-out value."""
        allow = _allow_unsigned(where)
        named = os.environ.get(TRUSTED_KEYS_ENV)
        if named is not None and not named.strip():
            # set but empty: a script's unset variable, not a wish to check nothing; fail closed
            raise SignatureError(where, f"{TRUSTED_KEYS_ENV} is set but empty", f"name the trust store directory "
                                 f"(e.g. {config.TRUSTED_KEYS_DIR}), or unset {TRUSTED_KEYS_ENV} to use that default")
        device_dir = os.environ.get(DEVICE_KEYS_ENV) or config.DEVICE_KEYS_DIR
        if named:
            policy = cls.from_directory(named, allow_unsigned=allow)
        else:
            store = Path(config.TRUSTED_KEYS_DIR)
            policy = cls(load_trusted_keys(store, required=False), store, allow)
        if not policy.enforced:
            return policy
        return cls(policy.keys, policy.store, allow, load_trusted_keys(device_dir, required=False))

    def describe(self, shown: int = 4) -> str:
        """The trust store for a message: its directory and the first ``shown`` key ids with their files."""
        ids = [f"{kid[:16]} ({f.name})" for kid, (_, f) in self.keys.items()]
        more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
        return f"trusted keys in {self.store}: {', '.join(ids[:shown])}{more}"


# --------------------------------------------------------------------------- the signature


def signed_message(content_hash: str, manifest_sha256: str) -> bytes:
    """The bytes an Ed25519 signature of a bundle is made over.

    ``content_hash`` already covers the manifest and the model, but as a field of the manifest it is
    self-declared: only its recomputation from the files says anything, so what is signed is the
    loader's recomputed hash.  The manifest's exact bytes are signed as well, so the Pi parses the
    very bytes that were signed: nothing the canonical form of the hash leaves out (spacing, key
    order, number spelling, a key the edge ignores) can differ from what the signer saw.  The first
    line binds the signature to this purpose and format version.
    """
    return (f"{SIGNATURE_SCHEMA} {SIGNATURE_VERSION}\ncontent_hash {content_hash}\n"
            f"manifest_sha256 {manifest_sha256}\n").encode()


def _digests(manifest: dict, model: bytes, raw_manifest: bytes) -> tuple[str, str]:
    from edge.bundle import content_hash  # edge.bundle imports this module

    return content_hash(manifest, model), hashlib.sha256(raw_manifest).hexdigest()


def _no_duplicate_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the key {clip(repr(k), 40)} twice")
        out[k] = v
    return out


def parse_signature(raw: bytes, path) -> dict:
    """The fields of ``signature.json`` (already read within ``BUNDLE_MAX_SIGNATURE_BYTES``), checked;
    ``signature`` decoded to its 64 bytes."""
    def bad(problem):
        raise SignatureError(path, f"{SIGNATURE_FILE} is malformed ({problem})", _RESIGN)

    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: "[[[[..."
        bad(f"not JSON: {clip(str(exc), 80)}")
    if not isinstance(doc, dict) or doc.get("schema") != SIGNATURE_SCHEMA:
        bad(f"not a {SIGNATURE_SCHEMA} document")
    version = doc.get("version")
    if type(version) is not int:
        bad("no integer version")
    if version > SIGNATURE_VERSION:
        raise SignatureError(path, f"{SIGNATURE_FILE} has format version {version}, newer than this neurogrip's "
                                   f"{SIGNATURE_VERSION}", "upgrade neurogrip on this machine")
    if version != SIGNATURE_VERSION:
        bad(f"unknown version {version}")
    if doc.get("algorithm") != ALGORITHM:
        bad(f"algorithm {clip(repr(doc.get('algorithm')), 40)}, not {ALGORITHM!r}")
    for name, prefix in (("key_id", ""), ("manifest_sha256", ""), ("content_hash", "sha256:")):
        value = doc.get(name)
        if not (isinstance(value, str) and value.startswith(prefix) and _HEX64.fullmatch(value[len(prefix):])):
            bad(f"{name} is not a {prefix}sha256 digest")
    try:
        signature = base64.b64decode(doc.get("signature"), validate=True) if isinstance(doc.get("signature"), str) \
            else b""
    except binascii.Error:
        signature = b""
    if len(signature) != 64:
        bad("signature is not 64 bytes of base64")
    return {**doc, "signature": signature}


def _verify(path, raw_manifest: bytes, manifest: dict, model: bytes, raw_signature: bytes | None,
            policy: TrustPolicy) -> str:
    if raw_signature is None:
        raise SignatureError(path, f"the bundle is unsigned and this machine loads only signed bundles "
                                   f"({policy.describe()})",
                             "sign it on the workstation ('neurogrip sign BUNDLE --key KEY.pem') and copy it with "
                             f"its {SIGNATURE_FILE}; for development only, {ALLOW_UNSIGNED_ENV}=1 loads it anyway")
    sig = parse_signature(raw_signature, path)
    kid = sig["key_id"]
    key = policy.keys.get(kid) or policy.device_keys.get(kid)
    if key is None:
        raise SignatureError(path, f"signed by key {kid[:16]}, which this machine does not trust "
                                   f"({policy.describe()})",
                             f"sign it with a trusted key, or install the signer's public key in {policy.store}")
    content_hash, manifest_sha256 = _digests(manifest, model, raw_manifest)
    # The digests written in signature.json only choose the message: the signature is checked over
    # the recomputed ones below, whatever the file says.
    changed = [f for f, now, then in ((f"{MANIFEST_FILE}'s bytes", manifest_sha256, sig["manifest_sha256"]),
                                      ("the content hash", content_hash, sig["content_hash"])) if now != then]
    if changed:
        raise SignatureError(path, f"the bundle changed after it was signed ({' and '.join(changed)} differ from "
                                   "what was signed)", _RESIGN)
    invalid, _, _, _ = _crypto()
    try:
        key[0].verify(sig["signature"], signed_message(content_hash, manifest_sha256))
    except invalid:
        raise SignatureError(path, f"the signature does not match the bundle and key {kid[:16]} (altered after "
                                   f"signing, or a forged or damaged {SIGNATURE_FILE})", _RESIGN) from None
    if kid not in policy.keys:  # this Pi's own key: trusted only through the workstation-signed root
        from edge.device_trust import check_device_signed

        check_device_signed(path, manifest, model, kid, policy)
    return kid


_WARNED_UNVERIFIED = False  # the "no trust store" warning: once per process


def check_signature(path, raw_manifest: bytes, manifest: dict, model: bytes, raw_signature: bytes | None,
                    policy: TrustPolicy | None = None) -> str | None:
    """Apply ``policy`` (None: :meth:`TrustPolicy.from_environment`) to a bundle's files as read.

    Called by :func:`edge.bundle.load_bundle` once it has read the files within their bounds and
    checked the manifest's schema, the model's sha256 and the content hash.

    Returns
    -------
    str or None
        The id of the trusted key whose signature was verified; None when nothing was verified (no
        trust store, or the opt-out let a refused bundle through: both logged).

    Raises
    ------
    SignatureError
        With a trust store: the bundle is unsigned, its signature malformed, made by an untrusted
        key, or over other content.  A bad trust store or opt-out value, always.
    """
    global _WARNED_UNVERIFIED
    path = Path(path)
    policy = TrustPolicy.from_environment(path) if policy is None else policy
    if not policy.enforced:
        if policy.store is not None and not _WARNED_UNVERIFIED:
            _WARNED_UNVERIFIED = True
            log.warning("%s: %s, loaded without a signature check: no trusted key is installed (%s holds no "
                        "*%s). To load only bundles you signed: 'neurogrip keygen' and 'neurogrip sign' on the "
                        "workstation, then copy the .pub into %s (see %s)", path,
                        "signed" if raw_signature is not None else "unsigned", policy.store, PUBLIC_SUFFIX,
                        policy.store, DOCS)
        return None
    try:
        kid = _verify(path, raw_manifest, manifest, model, raw_signature, policy)
    except SignatureError as exc:
        if not policy.allow_unsigned:
            raise
        log.warning("%s: %s; loaded anyway because %s=1 (development only: unset it to enforce %s)",
                    path, exc.problem, ALLOW_UNSIGNED_ENV, policy.store)
        return None
    log.info("%s: signature verified (key %s, %s)", path, kid[:16], (policy.keys.get(kid) or policy.device_keys[kid])[1])
    return kid


# --------------------------------------------------------------------------- signing and verifying


def _replace_in_directory(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path, prefix=".signature.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path / SIGNATURE_FILE)  # replaces a link, never writes through it
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _replace_in_zip(path: Path, data: bytes) -> None:
    """Rewrite the archive with every member but an old signature, then the new one (zipfile cannot
    replace a member in place); the new archive replaces the old one atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(path) as src, zipfile.ZipFile(fh, "w") as dst:
            for info in src.infolist():  # sizes already bounded: load_bundle read this archive first
                if info.filename != SIGNATURE_FILE:
                    dst.writestr(info, src.read(info))
            dst.writestr(SIGNATURE_FILE, data, compress_type=zipfile.ZIP_DEFLATED)
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sign(bundle, private_key, *, check_model: bool = True) -> str:
    """Sign a bundle directory or ``.zip`` in place: write its ``signature.json`` (replacing one).

    The bundle is first loaded with every check the Pi makes (``check_model``: the model is probed
    too), so a bundle the Pi would refuse is never vouched for; afterwards it is loaded again trusting
    only this key, so the signature is known to verify.

    Returns
    -------
    str
        The signing key's id.
    """
    from edge.bundle import _read_files, load_bundle
    from edge.manifest_schema import parse_manifest

    path = Path(bundle)
    key = load_private_key(private_key)
    load_bundle(path, check_model=check_model, trust=TrustPolicy())
    raw_manifest, model, _ = _read_files(path)
    content_hash, manifest_sha256 = _digests(parse_manifest(raw_manifest, path), model, raw_manifest)
    public = key.public_key()
    kid = key_id(public)
    doc = {"schema": SIGNATURE_SCHEMA, "version": SIGNATURE_VERSION, "algorithm": ALGORITHM, "key_id": kid,
           "content_hash": content_hash, "manifest_sha256": manifest_sha256,
           "signature": base64.b64encode(key.sign(signed_message(content_hash, manifest_sha256))).decode()}
    data = json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
    (_replace_in_directory if path.is_dir() else _replace_in_zip)(path, data)
    load_bundle(path, check_model=False, trust=TrustPolicy({kid: (public, Path(private_key))}, path))
    return kid


def verify(bundle, trusted_keys=None, *, check_model: bool = False) -> tuple[str, Path]:
    """Check that a bundle is signed by a key of ``trusted_keys`` (a directory of ``*.pub``; default
    ``$NEUROGRIP_TRUSTED_KEYS``, else :data:`edge.config.TRUSTED_KEYS_DIR`), with every check of
    :func:`edge.bundle.load_bundle`.  ``NEUROGRIP_ALLOW_UNSIGNED`` does not apply here.

    Returns
    -------
    (key id, the trusted key's file)

    Raises
    ------
    SignatureError
        No trust store or no key in it, or the bundle is not signed by one of its keys.
    """
    from edge.bundle import _read_files, load_bundle

    path = Path(bundle)
    store = Path(trusted_keys if trusted_keys is not None
                 else (os.environ.get(TRUSTED_KEYS_ENV) or config.TRUSTED_KEYS_DIR))
    policy = TrustPolicy.from_directory(store)
    load_bundle(path, check_model=check_model, trust=policy)
    kid = parse_signature(_read_files(path)[2], path)["key_id"]  # verified by load_bundle just now
    return kid, policy.keys[kid][1]
