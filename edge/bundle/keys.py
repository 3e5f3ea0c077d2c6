"""Signing keys: Ed25519 key pairs, their files and ids, and the trust store's public keys.

Signed bundles: Ed25519 signatures made on the workstation, checked by :func:`edge.bundle.loader.load_bundle`.

A bundle's ``content_hash`` shows that a copy is whole, not who made it: anyone who edits the
manifest or swaps the model can recompute it.  A signature can only be made with the private key,
which never leaves the workstation; the Pi holds the public keys it trusts (docs/bundle-signing.md).

Keys (:func:`generate_keypair`, ``neurogrip keygen --out DIR``)
    ``NAME.pem``, the private key (PKCS#8 PEM, unencrypted, mode 0600: :func:`load_private_key`
    refuses one that other users can read, as ssh does), and ``NAME.pub``, the public key
    (SubjectPublicKeyInfo PEM, three lines).  A key's id is the sha256 of its raw 32 bytes, in hex.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

from edge import config
from edge._checks import check_type
from edge.bundle.rules import clip
from edge.errors import SignatureError

TRUSTED_KEYS_ENV = "NEUROGRIP_TRUSTED_KEYS"


DEVICE_KEYS_ENV = "NEUROGRIP_DEVICE_KEYS"   # this Pi's own public keys (edge.bundle.device_trust)


DEVICE_KEY_ENV = "NEUROGRIP_DEVICE_KEY"     # this Pi's private key, for calibrate


DEVICE_KEY_NAME = "device"


ALLOW_UNSIGNED_ENV = "NEUROGRIP_ALLOW_UNSIGNED"


PUBLIC_SUFFIX, PRIVATE_SUFFIX = ".pub", ".pem"
DEFAULT_KEY_NAME = "neurogrip-signing"


DOCS = "docs/bundle-signing.md"


_FIX_CRYPTO = "install it: pip install 'neurogrip[edge]'"


def crypto():
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
    _, _, serialization, _ = crypto()
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
    _, unsupported, serialization, ed25519 = crypto()
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
    _, unsupported, serialization, ed25519 = crypto()
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
    _, _, serialization, ed25519 = crypto()
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
