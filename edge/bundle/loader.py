"""The model bundle: the only thing that crosses from the workstation to the Pi.

A bundle is a directory (or a ``.zip`` of one) holding ``model.tflite`` and ``manifest.json``, and
``signature.json`` when it is signed (:mod:`edge.bundle.trust`: outside the content hash; whether an
unsigned bundle loads is this machine's trust policy).
The manifest (schema :data:`SCHEMA_VERSION`) carries everything the edge needs to run the
model without TensorFlow or scipy::

    schema, schema_version, task (a name registered in :mod:`edge.tasks`), created
    signal     {channels [names, in model order], fs, units, chain {fs, factor, fs_out,
                lowpass_hz, design, filter {format, coef/state/input frac bits, sections}}}
    window     {length, stride (output-rate samples), channel_scale [per channel],
                clip (bound of the normalised input), normalisation "demean-scale-clip",
                features (optional) {kind "bandpower", fs, bands, center, scale, clip}:
                the model then takes edge.model.inputs.window_features, standardised}
    model      {file, bytes, sha256, architecture, activation "sigmoid" | "softmax",
                input {shape, dtype "int8", scale, zero_point}, output {...}}
    labels     [names of the model's outputs]
    decision   the decision policy (edge.decision.DecisionPolicy.to_manifest())
    metrics    {protocol name: {...}} as evaluated when the bundle was made
    provenance {data, seed, code_version, ...}
    content_hash  "sha256:" + hex digest of the canonical manifest without this key
                  followed by the model bytes

:func:`load_bundle` refuses, with a :class:`BundleError` that says which check failed and
how to fix it, a bundle that is missing a file, truncated, tampered with (hash), of an
unknown schema version, or whose model's tensors disagree with the manifest.  The manifest's
schema (types, finiteness, ranges and sizes of every field) is :mod:`edge.bundle.schema`.

Every read is bounded (:mod:`edge.bundle.files`) and the model is probed in a child process
before this process loads it (:mod:`edge.bundle.probe`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.bundle.files import build_bundle, content_hash, read_files, write_files
from edge.bundle.probe import probe_model
from edge.bundle.rules import clip
from edge.bundle.schema import check_decision, parse_manifest, validate
from edge.bundle.signature import signature_file
from edge.bundle.trust import TrustPolicy, check_signature
from edge.errors import BundleError, InferenceError
from edge.model.inputs import model_inputs
from edge.tasks import get_task


@dataclass
class Bundle:
    """A loaded, validated bundle.  Build the runtime stages from it with the helpers below."""

    path: Path
    manifest: dict
    model_bytes: bytes = field(repr=False)
    #: its ``signature.json`` document (checked where a trust store is installed), or None: unsigned
    signature: dict | None = field(default=None, repr=False)

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def task_spec(self):
        """The task's registry entry (:class:`edge.tasks.Task`): mode, metric, default commands."""
        return get_task(self.task)

    @property
    def channels(self) -> list[str]:
        return list(self.manifest["signal"]["channels"])

    @property
    def fs(self) -> float:
        return float(self.manifest["signal"]["fs"])

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def window(self) -> dict:
        return self.manifest["window"]

    @property
    def input_quant(self) -> tuple[float, int]:
        q = self.manifest["model"]["input"]
        return float(q["scale"]), int(q["zero_point"])

    @property
    def output_quant(self) -> tuple[float, int]:
        q = self.manifest["model"]["output"]
        return float(q["scale"]), int(q["zero_point"])

    @property
    def content_hash(self) -> str:
        return self.manifest["content_hash"]

    def signal_chain(self, backend: str = "auto"):
        """A fresh :class:`edge.chain.signal_chain.SignalChain` (state zero)."""
        from edge.chain.signal_chain import SignalChain

        return SignalChain.from_manifest(self.manifest["signal"]["chain"], len(self.channels), backend)

    def window_buffer(self, max_chunk: int = 1024):
        from edge.chain.signal_chain import WindowBuffer

        w = self.window
        return WindowBuffer(int(w["length"]), len(self.channels), int(w["stride"]), max_chunk)

    def model_input(self, windows):
        """Windows (k, length, C) → the float model input the manifest defines (see
        :func:`edge.model.inputs.model_inputs`): normalised windows, or standardised features."""
        return model_inputs(windows, self.window)

    def model_input_stage(self):
        """A :class:`edge.model.inputs.ModelInput` stage: windows → this bundle's int8 model input
        (``quantise(model_input(windows), *input_quant)``, in one C call for raw-window bundles)."""
        from edge.model.inputs import ModelInput

        return ModelInput(self.window, self.input_quant)

    def model(self, num_threads: int = 1, backend: str | None = None, reference_kernels: bool = False):
        """An :class:`edge.model.inference.Int8Model` of the bundle's model, probed in a child process
        first (:func:`probe_model`; once per process and model)."""
        from edge.model.inference import Int8Model

        probe_model(self.model_bytes, self.path, backend)
        return Int8Model(self.model_bytes, num_threads=num_threads, backend=backend,
                         reference_kernels=reference_kernels, head=self.head)

    @property
    def head(self):
        """A calibrated bundle's float last layer (:class:`edge.model.head.Head`), else None."""
        return head_of(self.manifest)

    def decision_policy(self):
        from edge.decision import DecisionPolicy

        return DecisionPolicy.from_manifest(self.manifest["decision"], self.labels)


def head_of(manifest: dict):
    """The manifest's calibrated head (:class:`edge.model.head.Head`), or None."""
    if manifest.get("head") is None:
        return None
    from edge.model.head import Head

    return Head.from_manifest(manifest["head"])


def _fail(path, problem, fix="re-export the bundle with 'neurogrip train'"):
    raise BundleError(path, problem, fix)


def validate_manifest(m: dict, path=".") -> None:
    """Check a manifest against its schema (:func:`edge.bundle.schema.validate`: types, finite
    numbers, ranges, sizes, consistency, the decision section); raises :class:`BundleError`."""
    validate(m, path)


def _check_model(path: Path, m: dict, model_bytes: bytes) -> None:
    from edge.model.inference import Int8Model

    try:
        probe_model(model_bytes, path)
        model = Int8Model(model_bytes, head=head_of(m))
    except InferenceError as exc:
        raise BundleError(path, f"model.tflite does not load: {exc}", "re-export the bundle") from None
    for side, shape, dtype, quant in (("input", model.input_shape, model.input_dtype, model.input_quant),
                                      ("output", model.output_shape, model.output_dtype, model.output_quant)):
        t = m["model"][side]
        if list(shape) != list(t["shape"]) or dtype != np.int8:
            _fail(path, f"model.tflite {side} tensor is {dtype} {list(shape)} but the manifest says int8 "
                        f"{list(t['shape'])}")
        if not (np.isclose(quant[0], t["scale"], rtol=1e-6) and quant[1] == t["zero_point"]):
            _fail(path, f"model.tflite {side} quantisation (scale {quant[0]:.6g}, zero point {quant[1]}) "
                        f"differs from the manifest ({t['scale']:.6g}, {t['zero_point']})")


def load_bundle(path, *, check_model: bool = True, trust: TrustPolicy | None = None) -> Bundle:
    """Load and validate a bundle directory or archive.

    Parameters
    ----------
    path : str or Path
    check_model : bool
        Also load the model in the installed TFLite interpreter and compare its tensors with
        the manifest (needs ``tflite_runtime`` or ``ai_edge_litert``).
    trust : edge.bundle.trust.TrustPolicy or None
        Which signatures to require; None: this machine's trust store and opt-out, read from the
        environment at each call (:meth:`edge.bundle.trust.TrustPolicy.from_environment`).

    Raises
    ------
    BundleError
        Saying which check failed and how to fix it; :class:`edge.errors.SignatureError` for the
        signature (unsigned, untrusted key, changed after signing).
    """
    path = Path(path)
    raw_manifest, model_bytes, raw_signature = read_files(path)
    m = parse_manifest(raw_manifest, path)
    validate(m, path, decision=False)
    model = m["model"]
    if len(model_bytes) != model["bytes"]:
        _fail(path, f"model.tflite is {len(model_bytes)} bytes but the manifest says {model['bytes']}"
                    + (" (truncated copy)" if len(model_bytes) < model["bytes"] else ""),
              "copy the bundle again")
    if hashlib.sha256(model_bytes).hexdigest() != model["sha256"]:
        _fail(path, "model.tflite does not match its sha256 in the manifest (corrupted or replaced)",
              "copy the bundle again or re-export it")
    if content_hash(m, model_bytes) != m["content_hash"]:
        _fail(path, "content hash mismatch: the manifest was edited after export",
              "re-export the bundle instead of editing manifest.json")
    # The signature is checked over the hashes just recomputed, before anything is built from the
    # manifest and before the model runs, even in a child process.
    check_signature(path, raw_manifest, m, model_bytes, raw_signature, trust)
    check_decision(m, path)
    return _built(path, m, model_bytes, raw_signature, check_model)


def _built(path: Path, m: dict, model_bytes: bytes, raw_signature: bytes | None, check_model: bool) -> Bundle:
    """The last checks of a bundle whose manifest is valid and whose hashes and signature hold: the
    chain can be built, the model loads (``check_model``); then the :class:`Bundle`."""
    from edge.chain.signal_chain import SignalChain
    try:
        SignalChain.from_manifest(m["signal"]["chain"], len(m["signal"]["channels"]))
    except (TypeError, ValueError, OverflowError) as exc:
        _fail(path, f"signal.chain is not usable: {clip(str(exc), 400)}")
    if check_model:
        _check_model(path, m, model_bytes)
    signature = None
    if raw_signature is not None:
        try:
            signature = json.loads(raw_signature)
        except (ValueError, RecursionError):  # not verified here (no trust store): unreadable = none
            signature = None
    return Bundle(path, m, model_bytes, signature if isinstance(signature, dict) else None)


def seal(out, manifest: dict, model: bytes, *, sign_key=None, trust: TrustPolicy | None = None,
         check_model: bool = True, archive: bool | None = None) -> Bundle:
    """Write a bundle and return it as :func:`load_bundle` would, with the work done once.

    The manifest is completed, hashed and validated once (:func:`edge.bundle.files.build_bundle`),
    signed from those very bytes when ``sign_key`` (an Ed25519 private key object) is given, written,
    and then checked as the loader checks what it reads — this machine's ``trust`` policy over the
    bytes just written, the chain, the model (``check_model``) — without reading or hashing it again.
    What ``neurogrip train`` and ``neurogrip calibrate`` write goes through here.
    """
    out = Path(out)
    m, raw_manifest = build_bundle(manifest, model, out)
    raw_signature = None if sign_key is None else signature_file(raw_manifest, m, model, sign_key)
    path = write_files(out, raw_manifest, model, raw_signature, archive=archive)
    check_signature(path, raw_manifest, m, model, raw_signature, trust)
    return _built(path, m, model, raw_signature, check_model)
