"""Who may have made a bundle: this machine's trust policy and the signature check the loader runs.

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

Device keys (:mod:`edge.bundle.device_trust`)
    A bundle calibrated on the Pi is signed by the Pi's own key and trusted only through the
    workstation-signed bundle it was calibrated from, which its manifest carries.

What a signature does not cover: an older bundle signed by the same key still verifies (replace
the key to retire all its bundles), and the private key is only as safe as the workstation.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from edge import config
from edge.bundle.keys import (
    ALLOW_UNSIGNED_ENV,
    DEVICE_KEYS_ENV,
    DOCS,
    TRUSTED_KEYS_ENV,
    crypto,
    load_trusted_keys,
)
from edge.bundle.rules import clip
from edge.bundle.schema import MANIFEST_FILE, SIGNATURE_FILE
from edge.bundle.signature import RESIGN, digests, parse_signature, signed_message
from edge.errors import SignatureError

log = logging.getLogger(__name__)




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
    #: This Pi's own keys (:mod:`edge.bundle.device_trust`): a bundle one of them signed is trusted only
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
    content_hash, manifest_sha256 = digests(manifest, model, raw_manifest)
    # The digests written in signature.json only choose the message: the signature is checked over
    # the recomputed ones below, whatever the file says.
    changed = [f for f, now, then in ((f"{MANIFEST_FILE}'s bytes", manifest_sha256, sig["manifest_sha256"]),
                                      ("the content hash", content_hash, sig["content_hash"])) if now != then]
    if changed:
        raise SignatureError(path, f"the bundle changed after it was signed ({' and '.join(changed)} differ from "
                                   "what was signed)", RESIGN)
    invalid, _, _, _ = crypto()
    try:
        key[0].verify(sig["signature"], signed_message(content_hash, manifest_sha256))
    except invalid:
        raise SignatureError(path, f"the signature does not match the bundle and key {kid[:16]} (altered after "
                                   f"signing, or a forged or damaged {SIGNATURE_FILE})", RESIGN) from None
    if kid not in policy.keys:  # this Pi's own key: trusted only through the workstation-signed root
        from edge.bundle.device_trust import check_device_signed

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
            # one line, once per process: the same holds for every bundle it loads
            log.warning("bundles load without a signature check: no trusted key in %s ('neurogrip keygen', %s)",
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
