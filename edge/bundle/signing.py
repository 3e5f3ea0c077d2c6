"""Signing a bundle and verifying one against a set of keys (``neurogrip sign`` / ``verify``).

The signature is written into the bundle (a file of the directory, a member of the ``.zip``)
without changing its manifest or content hash (:mod:`edge.bundle.signature`); :func:`verify` is
the check :func:`edge.bundle.loader.load_bundle` runs, with keys given explicitly.
"""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
from pathlib import Path

from edge import config
from edge.bundle.files import read_files
from edge.bundle.keys import TRUSTED_KEYS_ENV, key_id, load_private_key
from edge.bundle.loader import load_bundle
from edge.bundle.schema import parse_manifest
from edge.bundle.signature import (
    SIGNATURE_FILE,
    parse_signature,
    signature_file,
)
from edge.bundle.trust import TrustPolicy

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
    path = Path(bundle)
    key = load_private_key(private_key)
    load_bundle(path, check_model=check_model, trust=TrustPolicy())
    raw_manifest, model, _ = read_files(path)
    data = signature_file(raw_manifest, parse_manifest(raw_manifest, path), model, key)
    kid = key_id(key.public_key())
    (_replace_in_directory if path.is_dir() else _replace_in_zip)(path, data)
    load_bundle(path, check_model=False, trust=TrustPolicy({kid: (key.public_key(), Path(private_key))}, path))
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
    path = Path(bundle)
    store = Path(trusted_keys if trusted_keys is not None
                 else (os.environ.get(TRUSTED_KEYS_ENV) or config.TRUSTED_KEYS_DIR))
    policy = TrustPolicy.from_directory(store)
    load_bundle(path, check_model=check_model, trust=policy)
    kid = parse_signature(read_files(path)[2], path)["key_id"]  # verified by load_bundle just now
    return kid, policy.keys[kid][1]
