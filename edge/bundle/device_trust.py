"""Bundles calibrated on the Pi: signed by the Pi's own *device key*, trusted through their root.

The workstation's private key never leaves the workstation (docs/bundle-signing.md), yet a Pi with a
trust store loads only signed bundles, and ``neurogrip calibrate`` makes new ones there.  So the Pi has
its own key pair, made at install (``neurogrip keygen --device``; the private half never leaves the
Pi), whose public half is in the *device keys* directory (:data:`edge.config.DEVICE_KEYS_DIR`, or
``$NEUROGRIP_DEVICE_KEYS``).

A device key alone vouches for nothing.  A bundle it signed is trusted only through its **root**, the
workstation-signed bundle it was calibrated from, which calibration copies into the new manifest's
``provenance`` (:func:`root_evidence`):

* ``workstation_signature`` — the root's ``signature.json`` document, by a key of the trust store;
* ``workstation_manifest`` — the root's manifest.

:func:`check_device_signed` requires that signature to verify, the root manifest with *this*
bundle's model bytes to hash to the content hash it signed (so the model is the workstation's, byte
for byte), and the sections that define what the arm does — task, labels, signal chain, model
tensors, what each class or event commands (the decision's commands, targets, arm-state rules,
mode), the window's length, clip and bands — to be the root's.  What the device may change is what
calibration changes: the normalisation (``window.channel_scale``, the band-power
``center``/``scale``), the last layer (``head``), ``metrics`` and ``provenance`` — and, where an
EMG calibration sets them, the window ``stride`` and the debouncing :data:`DEVICE_TUNABLE_DECISION`,
but only to the very values this installation's calibration writes
(``edge.config.CALIBRATION_EMG_STRIDE_MS`` / ``CALIBRATION_EMG_DECISION``, docs/design.md § 7), never
to others.  A stolen device key can therefore re-fit a workstation-signed model, and nothing more:
not which command a gesture sends, where the joints go or how fast, nor a shorter debounce (nor another
decision filter, or a lower evidence threshold, than calibration writes).
"""

from __future__ import annotations

import json

from edge.errors import SignatureError

ROOT_SIGNATURE = "workstation_signature"
ROOT_MANIFEST = "workstation_manifest"
#: Manifest sections a device-signed bundle must share with its workstation-signed root.
FIXED_SECTIONS = ("task", "labels", "signal", "model", "schema", "schema_version")
#: Decision parameters an EMG calibration sets (how long a class must persist, not what it does): the
#: vote filter's, and the accumulate filter's (edge/decision/evidence.py) where the calibration writes it.
DEVICE_TUNABLE_DECISION = ("reject_below", "vote", "min_dwell_ms", "refractory_ms", "filter", "commit_nats",
                           "evidence_floor", "leak_ms")
_RECALIBRATE = "calibrate it again on this Pi from a bundle signed on the workstation"


def root_evidence(manifest: dict, signature: dict | None) -> dict | None:
    """What a bundle calibrated from this base carries in its ``provenance``: the base's own root when
    it was itself calibrated on a device, else the base and its workstation signature; None when the
    base is unsigned (its calibrated bundle can then only load where no trust store is installed)."""
    prov = manifest.get("provenance") or {}
    if isinstance(prov.get(ROOT_SIGNATURE), dict) and isinstance(prov.get(ROOT_MANIFEST), dict):
        return {ROOT_SIGNATURE: prov[ROOT_SIGNATURE], ROOT_MANIFEST: prov[ROOT_MANIFEST]}
    if signature is None:
        return None
    return {ROOT_SIGNATURE: signature, ROOT_MANIFEST: manifest}


def _stride(window):
    return (window.get("stride"), window.get("stride_ms")) if isinstance(window, dict) else None


def _emg_calibrated(root: dict, manifest: dict) -> bool:
    """Whether calibration would have written the EMG cadence: an EMG raw-window multi-class root
    (:func:`edge.calibration.calibrate._td_lengths`) and a head that reads the time-domain features."""
    from edge.errors import TaskError
    from edge.tasks import get_task

    try:
        task = get_task(root.get("task"))
    except TaskError:  # an unknown task fails the fixed sections anyway
        return False
    from edge import config

    shape = ((root.get("model") or {}).get("input") or {}).get("shape")
    head = manifest.get("head")
    return (task.modality == "emg" and task.mode == "multiclass" and isinstance(shape, list) and len(shape) == 3
            and bool(config.CALIBRATION_TD_TAILS_MS) and isinstance(head, dict) and isinstance(head.get("td"), dict))


def _calibration_cadences(root: dict, manifest: dict) -> list:
    """(decision, stride) pairs a device-signed bundle may have: its root's, and what an EMG calibration
    on this installation writes from that root (:func:`edge.calibration.calibrate._emg_decision`)."""
    decision, window = root.get("decision"), root.get("window")
    out = [(decision, _stride(window))]
    if not isinstance(decision, dict) or not isinstance(window, dict) or not _emg_calibrated(root, manifest):
        return out
    from edge import config
    from edge.decision.evidence import overlay_decision

    emg = overlay_decision(decision, config.CALIBRATION_EMG_DECISION)
    stride = _stride(window)
    chain = (root.get("signal") or {}).get("chain") or {}
    fs = chain.get("fs_out")
    if not isinstance(fs, (int, float)) and isinstance(chain.get("fs"), (int, float)) \
            and isinstance(chain.get("factor"), int) and chain["factor"] > 0:
        fs = chain["fs"] / chain["factor"]  # as edge.chain.signal_chain.SignalChain.fs_out
    if config.CALIBRATION_EMG_STRIDE_MS is not None and isinstance(fs, (int, float)) and fs > 0:
        n = max(1, round(config.CALIBRATION_EMG_STRIDE_MS * fs / 1000.0))
        stride = (n, n * 1000.0 / fs)
    out.append((emg, stride))
    return out


def _structure(window) -> dict | None:
    """A ``window`` section without what calibration re-estimates (the per-channel scale, the band-power
    standardisation, the stride): its length, clip, bands and everything else must be the root's."""
    if not isinstance(window, dict):
        return window
    w = {k: v for k, v in window.items() if k not in ("channel_scale", "stride", "stride_ms")}
    if isinstance(w.get("features"), dict):
        w["features"] = {k: v for k, v in w["features"].items() if k not in ("center", "scale")}
    return w


def check_device_signed(path, manifest: dict, model: bytes, device_kid: str, policy) -> str:
    """Accept a bundle whose (already verified) signature is by device key ``device_kid`` only through a
    workstation-signed root (module docstring); returns the root's workstation key id.

    Raises
    ------
    SignatureError
        No root, a root signed by a key the trust store does not hold, a root that is not this model,
        or a section the device may not change.
    """
    from edge.bundle.files import canonical_json, content_hash
    from edge.bundle.keys import crypto
    from edge.bundle.signature import parse_signature, signed_message

    prov = manifest.get("provenance") or {}
    doc, root = prov.get(ROOT_SIGNATURE), prov.get(ROOT_MANIFEST)
    who = f"signed by this Pi's device key {device_kid[:16]}"
    if not isinstance(doc, dict) or not isinstance(root, dict):
        raise SignatureError(path, f"{who}, but it carries no workstation-signed root (provenance."
                                   f"{ROOT_SIGNATURE} and {ROOT_MANIFEST})", _RECALIBRATE)
    sig = parse_signature(json.dumps(doc).encode(), path)
    kid = sig["key_id"]
    if kid not in policy.keys:
        raise SignatureError(path, f"{who}; its root was signed by key {kid[:16]}, which this machine does not "
                                   f"trust ({policy.describe()})", _RECALIBRATE)
    if content_hash(root, model) != sig["content_hash"]:
        raise SignatureError(path, f"{who}, but its model or its root's manifest is not what the workstation "
                                   "signed", _RECALIBRATE)
    invalid, _, _, _ = crypto()
    try:
        policy.keys[kid][0].verify(sig["signature"], signed_message(sig["content_hash"], sig["manifest_sha256"]))
    except invalid:
        raise SignatureError(path, f"{who}; the workstation signature of its root does not verify",
                             _RECALIBRATE) from None
    changed = [s for s in FIXED_SECTIONS if canonical_json(manifest.get(s)) != canonical_json(root.get(s))]
    allowed = _calibration_cadences(root, manifest)
    decision, stride = canonical_json(manifest.get("decision")), _stride(manifest.get("window"))
    decision_ok = any(decision == canonical_json(d) for d, _ in allowed)
    window_ok = (canonical_json(_structure(manifest.get("window"))) == canonical_json(_structure(root.get("window")))
                 and any(stride == st for _, st in allowed))
    if not decision_ok:
        changed.append("decision")
    if not window_ok:
        changed.append("window (beyond its normalisation)")
    if decision_ok and window_ok and not any((decision, stride) == (canonical_json(d), st) for d, st in allowed):
        changed.append("decision and window stride together")  # each allowed, but not with the other
    if changed:
        raise SignatureError(path, f"{who}, but its {', '.join(changed)} differ from its workstation-signed root "
                                   "(a device may re-fit only the normalisation and the last layer)", _RECALIBRATE)
    return kid
