"""``neurogrip keygen``, ``neurogrip sign`` and ``neurogrip verify``: the command side of :mod:`edge.bundle.trust`;
``neurogrip install-bundle`` and ``neurogrip rollback``: the command side of :mod:`edge.bundle.installed`.

Each ``*_main(argv)`` parses its own arguments (``neurogrip keygen --help``) and returns the exit
status; an error of the key, the bundle or the trust store is raised as
:class:`edge.errors.SignatureError` / :class:`edge.errors.BundleError`, which ``neurogrip`` prints
as one line with its fix.  The walk-through is docs/bundle-signing.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge import config
from edge.bundle.keys import (
    ALLOW_UNSIGNED_ENV,
    DEFAULT_KEY_NAME,
    DEVICE_KEY_NAME,
    TRUSTED_KEYS_ENV,
    generate_keypair,
)
from edge.bundle.schema import SIGNATURE_FILE
from edge.bundle.signing import sign, verify


def keygen_main(argv=None) -> int:
    """``neurogrip keygen --out DIR [--name NAME]``: a new signing key pair."""
    p = argparse.ArgumentParser(prog="neurogrip keygen",
                                description="Make an Ed25519 key pair for signing bundles (docs/bundle-signing.md).")
    p.add_argument("--out", metavar="DIR", help="directory for NAME.pem (private) and NAME.pub")
    p.add_argument("--name", help=f"base name of the two files (default {DEFAULT_KEY_NAME}; "
                                  f"with --device, {DEVICE_KEY_NAME})")
    p.add_argument("--device", action="store_true",
                   help="this Pi's own key, for bundles calibrated here (default --out "
                        f"{Path(config.DEVICE_KEY_FILE).parent}); trusted only through their workstation-signed root")
    args = p.parse_args(argv)
    if args.out is None and not args.device:
        p.error("--out DIR is required (or --device, for this Pi's own key)")
    out = args.out or Path(config.DEVICE_KEY_FILE).parent
    name = args.name or (DEVICE_KEY_NAME if args.device else DEFAULT_KEY_NAME)
    private, public, kid = generate_keypair(out, name)
    if args.device:
        print(f"device key {private} (mode 0600): it never leaves this Pi; 'neurogrip calibrate' signs with it")
        print(f"its public key {public} (key id {kid[:16]}): trust it for calibrated bundles with")
        print(f"  sudo install -D -m 644 {public} {config.DEVICE_KEYS_DIR}/{public.name}")
        return 0
    print(f"private key {private} (mode 0600): keep it on this workstation; it signs bundles")
    print(f"public key  {public} (key id {kid[:16]}): install it on the Pi with")
    print(f"  sudo install -D -m 644 {public.name} {config.TRUSTED_KEYS_DIR}/{public.name}")
    return 0


def sign_main(argv=None) -> int:
    """``neurogrip sign BUNDLE --key PRIVATE.pem``: write the bundle's signature.json."""
    p = argparse.ArgumentParser(prog="neurogrip sign",
                                description="Sign a bundle directory or .zip in place (writes signature.json).")
    p.add_argument("bundle", help="the bundle directory or .zip")
    p.add_argument("--key", required=True, metavar="PRIVATE.pem", help="the private key from 'neurogrip keygen'")
    p.add_argument("--no-check-model", action="store_true",
                   help="do not load and run the model before signing (no TFLite interpreter here)")
    args = p.parse_args(argv)
    kid = sign(args.bundle, args.key, check_model=not args.no_check_model)
    print(f"signed {args.bundle} with key {kid[:16]} ({SIGNATURE_FILE})")
    return 0


def verify_main(argv=None) -> int:
    """``neurogrip verify BUNDLE [--trusted-keys DIR]``: exit 0 when a trusted key signed the bundle."""
    p = argparse.ArgumentParser(prog="neurogrip verify",
                                description="Check that a bundle is signed by a trusted key (ignores "
                                            f"{ALLOW_UNSIGNED_ENV}).")
    p.add_argument("bundle", help="the bundle directory or .zip")
    p.add_argument("--trusted-keys", metavar="DIR",
                   help=f"directory of trusted *.pub keys (default ${TRUSTED_KEYS_ENV}, else "
                        f"{config.TRUSTED_KEYS_DIR})")
    p.add_argument("--check-model", action="store_true", help="also load and run the model in a check process")
    args = p.parse_args(argv)
    kid, key_file = verify(args.bundle, args.trusted_keys, check_model=args.check_model)
    print(f"OK {args.bundle}: signed by trusted key {kid[:16]} ({key_file})")
    return 0


def install(bundle) -> None:
    """``neurogrip install-bundle B`` (and ``calibrate --install``): make ``bundle`` the one the service runs."""
    from edge.bundle.installed import bundle_link, install_bundle

    target, previous = install_bundle(bundle)
    print(f"installed: {bundle_link()} -> {target}" + (f" (previous: {previous}; 'neurogrip rollback' goes back)"
                                                       if previous else ""))
    print("the running service keeps its bundle until: sudo systemctl restart neurogrip")


def install_main(args) -> int:
    """``neurogrip install-bundle B``."""
    install(args.bundle)
    return 0


def rollback_main(args=None) -> int:
    """``neurogrip rollback``: back to the bundle the service ran before the last install."""
    from edge.bundle.installed import bundle_link, rollback

    now, before = rollback()
    print(f"rolled back: {bundle_link()} -> {now} (previous: {before}); start it: sudo systemctl restart neurogrip")
    return 0
