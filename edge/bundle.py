"""The model bundle: the only thing that crosses from the workstation to the Pi.

A bundle is a directory (or a ``.zip`` of one) holding ``model.tflite`` and ``manifest.json``.
The manifest (schema :data:`SCHEMA_VERSION`) carries everything the edge needs to run the
model without TensorFlow or scipy::

    schema, schema_version, task (a name registered in :mod:`edge.tasks`), created
    signal     {channels [names, in model order], fs, units, chain {fs, factor, fs_out,
                lowpass_hz, design, filter {format, coef/state/input frac bits, sections}}}
    window     {length, stride (output-rate samples), channel_scale [per channel],
                clip (bound of the normalised input), normalisation "demean-scale-clip",
                features (optional) {kind "bandpower", fs, bands, center, scale, clip}:
                the model then takes edge.model_input.window_features, standardised}
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
unknown schema version, or whose model's tensors disagree with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.errors import BundleError
from edge.model_input import model_inputs, n_features
from edge.tasks import get_task, task_names

SCHEMA = "neurogrip-bundle"
SCHEMA_VERSION = 1
MODEL_FILE = "model.tflite"
MANIFEST_FILE = "manifest.json"

_REQUIRED = {
    "signal": ("channels", "fs", "chain"),
    "window": ("length", "stride", "channel_scale"),
    "model": ("file", "bytes", "sha256", "activation", "input", "output"),
}




def canonical_json(obj) -> bytes:
    """The byte form hashed for ``content_hash``: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(manifest: dict, model: bytes) -> str:
    body = {k: v for k, v in manifest.items() if k != "content_hash"}
    h = hashlib.sha256(canonical_json(body))
    h.update(model)
    return "sha256:" + h.hexdigest()


@dataclass
class Bundle:
    """A loaded, validated bundle.  Build the runtime stages from it with the helpers below."""

    path: Path
    manifest: dict
    model_bytes: bytes = field(repr=False)

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
        """A fresh :class:`edge.chain.SignalChain` (state zero)."""
        from edge.chain import SignalChain

        return SignalChain.from_manifest(self.manifest["signal"]["chain"], len(self.channels), backend)

    def window_buffer(self, max_chunk: int = 1024):
        from edge.chain import WindowBuffer

        w = self.window
        return WindowBuffer(int(w["length"]), len(self.channels), int(w["stride"]), max_chunk)

    def model_input(self, windows):
        """Windows (k, length, C) → the float model input the manifest defines (see
        :func:`edge.model_input.model_inputs`): normalised windows, or standardised features."""
        return model_inputs(windows, self.window)

    def model_input_stage(self):
        """A :class:`edge.model_input.ModelInput` stage: windows → this bundle's int8 model input
        (``quantise(model_input(windows), *input_quant)``, in one C call for raw-window bundles)."""
        from edge.model_input import ModelInput

        return ModelInput(self.window, self.input_quant)

    def model(self, num_threads: int = 1, backend: str | None = None, reference_kernels: bool = False):
        """An :class:`edge.inference.Int8Model` of the bundle's model."""
        from edge.inference import Int8Model

        return Int8Model(self.model_bytes, num_threads=num_threads, backend=backend,
                         reference_kernels=reference_kernels)

    def decision_policy(self):
        from edge.decision import DecisionPolicy

        return DecisionPolicy.from_manifest(self.manifest["decision"], self.labels)


def write_bundle(out, manifest: dict, model: bytes, *, archive: bool | None = None) -> Path:
    """Write a bundle directory (or a ``.zip`` when ``out`` ends in .zip or ``archive``).

    Fills in ``schema``, ``schema_version``, ``model.file/bytes/sha256`` and ``content_hash``;
    returns the path written.  Refuses a manifest that :func:`validate_manifest` rejects.
    """
    out = Path(out)
    m = json.loads(json.dumps(manifest))  # a deep, JSON-clean copy
    m["schema"], m["schema_version"] = SCHEMA, SCHEMA_VERSION
    m.setdefault("model", {}).update(file=MODEL_FILE, bytes=len(model), sha256=hashlib.sha256(model).hexdigest())
    m["content_hash"] = content_hash(m, model)
    validate_manifest(m, out)
    text = json.dumps(m, indent=1, sort_keys=True).encode()
    if archive or (archive is None and out.suffix == ".zip"):
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(MANIFEST_FILE, text)
            z.writestr(MODEL_FILE, model)
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_bytes(model)
    (out / MANIFEST_FILE).write_bytes(text)
    return out


def _read_files(path: Path) -> tuple[bytes, bytes]:
    if path.is_dir():
        for name in (MANIFEST_FILE, MODEL_FILE):
            if not (path / name).is_file():
                raise BundleError(path, f"{name} is missing", "copy the whole bundle directory again")
        return (path / MANIFEST_FILE).read_bytes(), (path / MODEL_FILE).read_bytes()
    if not path.exists():
        raise BundleError(path, "no such bundle", "pass the directory or .zip written by 'neurogrip train --out'")
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            for name in (MANIFEST_FILE, MODEL_FILE):
                if name not in names:
                    raise BundleError(path, f"the archive has no {name}", "re-export the bundle")
            return z.read(MANIFEST_FILE), z.read(MODEL_FILE)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise BundleError(path, f"not a readable bundle archive ({exc}); it may be truncated",
                          "copy it again and compare its size with the original") from None


def _fail(path, problem, fix="re-export the bundle with 'neurogrip train'"):
    raise BundleError(path, problem, fix)


def validate_manifest(m: dict, path=".") -> None:
    """Structural checks of a manifest (types, lengths, known schema); raises :class:`BundleError`."""
    if not isinstance(m, dict):
        _fail(path, "manifest.json is not a JSON object")
    if m.get("schema") != SCHEMA:
        _fail(path, f"manifest schema is {m.get('schema')!r}, not {SCHEMA!r}")
    version = m.get("schema_version")
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        _fail(path, f"unknown manifest schema_version {version!r} (this neurogrip reads {SCHEMA_VERSION})",
              "upgrade neurogrip on this machine" if newer else "re-export the bundle with this neurogrip version")
    if m.get("task") not in task_names():
        _fail(path, f"task {m.get('task')!r} is not one of {task_names()}",
              "use a bundle made for a task this version of neurogrip knows, or upgrade neurogrip")
    for section, keys in _REQUIRED.items():
        if not isinstance(m.get(section), dict):
            _fail(path, f"manifest has no {section!r} section")
        missing = [k for k in keys if k not in m[section]]
        if missing:
            _fail(path, f"manifest section {section!r} lacks {missing}")
    for key in ("labels", "decision", "content_hash"):
        if key not in m:
            _fail(path, f"manifest has no {key!r}")
    ch = m["signal"]["channels"]
    if not (isinstance(ch, list) and ch and all(isinstance(c, str) for c in ch)) or len(set(ch)) != len(ch):
        _fail(path, "signal.channels must be a non-empty list of distinct names")
    w, model = m["window"], m["model"]
    if len(w["channel_scale"]) != len(ch) or not all(isinstance(v, (int, float)) and v > 0
                                                      for v in w["channel_scale"]):
        _fail(path, f"window.channel_scale must be {len(ch)} positive numbers")
    if w.get("clip") is not None and not (isinstance(w["clip"], (int, float)) and w["clip"] > 0):
        _fail(path, f"window.clip must be a positive number or absent, got {w['clip']!r}")
    for k in ("length", "stride"):
        if not (isinstance(w[k], int) and w[k] >= 1):
            _fail(path, f"window.{k} must be a positive int, got {w[k]!r}")
    if model["activation"] not in ("sigmoid", "softmax"):
        _fail(path, f"model.activation {model['activation']!r} is not 'sigmoid' or 'softmax'")
    feats = w.get("features")
    if feats is not None:
        try:
            n_feat = n_features(w["length"], len(ch), float(feats["fs"]), tuple(tuple(b) for b in feats["bands"]))
            ok = len(feats["center"]) == len(feats["scale"]) == n_feat and all(v > 0 for v in feats["scale"])
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            _fail(path, "window.features must give fs, bands, and center/scale for every feature")
    labels = m["labels"]
    mode = m["decision"].get("mode") if isinstance(m["decision"], dict) else None
    if (model["activation"], mode) not in (("sigmoid", "multilabel"), ("softmax", "multiclass")):
        _fail(path, f"model.activation {model['activation']!r} does not fit decision mode {mode!r} "
                    "(sigmoid goes with multilabel, softmax with multiclass)")
    task = get_task(m["task"])
    if mode != task.mode:
        _fail(path, f"decision mode {mode!r} does not fit task {task.name!r} ({task.mode})")
    if isinstance(m["decision"], dict) and m["decision"].get("moves_arm") and not task.moves_arm:
        _fail(path, f"decision.moves_arm is set but task {task.name!r} never moves the arm "
                    "(docs/design.md §2: its output is published, it may gate behaviour, never command)",
              "remove moves_arm and the commands from the bundle's decision section")
    expect_in = [1, n_feat] if feats is not None else [1, w["length"], len(ch)]
    expect_out = [1, len(labels)]
    for side, expect in (("input", expect_in), ("output", expect_out)):
        t = model[side]
        if not isinstance(t, dict) or t.get("dtype") != "int8" or list(t.get("shape", [])) != expect:
            _fail(path, f"model.{side} must be int8 of shape {expect} (window × channels / labels), got {t!r}")
        if not (isinstance(t.get("scale"), (int, float)) and t["scale"] > 0 and isinstance(t.get("zero_point"), int)):
            _fail(path, f"model.{side} needs a positive scale and an int zero_point")


def _check_model(path: Path, m: dict, model_bytes: bytes) -> None:
    from edge.inference import InferenceError, Int8Model

    try:
        model = Int8Model(model_bytes)
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


def load_bundle(path, *, check_model: bool = True) -> Bundle:
    """Load and validate a bundle directory or archive.

    Parameters
    ----------
    path : str or Path
    check_model : bool
        Also load the model in the installed TFLite interpreter and compare its tensors with
        the manifest (needs ``tflite_runtime`` or ``ai_edge_litert``).

    Raises
    ------
    BundleError
        Saying which check failed and how to fix it.
    """
    path = Path(path)
    raw_manifest, model_bytes = _read_files(path)
    try:
        m = json.loads(raw_manifest)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(path, f"manifest.json is not valid JSON ({exc}); it may be truncated",
                          "copy the bundle again") from None
    validate_manifest(m, path)
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
    from edge.chain import SignalChain
    try:
        SignalChain.from_manifest(m["signal"]["chain"], len(m["signal"]["channels"]))
    except (TypeError, ValueError) as exc:
        _fail(path, f"signal.chain is not usable: {exc}")
    if check_model:
        _check_model(path, m, model_bytes)
    return Bundle(path, m, model_bytes)

