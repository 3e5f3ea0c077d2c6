"""The signature file of a signed bundle: its format, the signed message, and its bounded parse.

The signature (:func:`edge.bundle.signing.sign`, ``neurogrip sign BUNDLE --key NAME.pem``)
    ``signature.json`` inside the bundle (a file of the directory, a member of the ``.zip``)::

        {"schema": "neurogrip-bundle-signature", "version": 1, "algorithm": "ed25519",
         "key_id": hex, "content_hash": "sha256:...", "manifest_sha256": hex, "signature": base64}

    The signed bytes are :func:`signed_message` of the bundle's content hash and the sha256 of the
    exact bytes of ``manifest.json``, both *recomputed* by the loader from the files it read; the
    two digests in the file only make the message of a refusal precise.  It is not part of the
    content hash, so signing changes neither the manifest nor the hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re

from edge.bundle.files import content_hash
from edge.bundle.keys import key_id
from edge.bundle.rules import clip
from edge.bundle.schema import SIGNATURE_FILE
from edge.errors import SignatureError

RESIGN = "sign the bundle again ('neurogrip sign BUNDLE --key KEY.pem') or copy the signed bundle again"

_HEX64 = re.compile(r"[0-9a-f]{64}")




SIGNATURE_SCHEMA = "neurogrip-bundle-signature"


SIGNATURE_VERSION = 1


ALGORITHM = "ed25519"


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


def digests(manifest: dict, model: bytes, raw_manifest: bytes) -> tuple[str, str]:
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
        raise SignatureError(path, f"{SIGNATURE_FILE} is malformed ({problem})", RESIGN)

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


def signature_file(raw_manifest: bytes, manifest: dict, model: bytes, private_key) -> bytes:
    """The bytes of ``signature.json`` for a bundle whose files are ``raw_manifest`` (parsed: ``manifest``)
    and ``model``, signed with ``private_key`` (an Ed25519 private key object)."""
    content_hash, manifest_sha256 = digests(manifest, model, raw_manifest)
    doc = {"schema": SIGNATURE_SCHEMA, "version": SIGNATURE_VERSION, "algorithm": ALGORITHM,
           "key_id": key_id(private_key.public_key()), "content_hash": content_hash,
           "manifest_sha256": manifest_sha256,
           "signature": base64.b64encode(private_key.sign(signed_message(content_hash, manifest_sha256))).decode()}
    return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
