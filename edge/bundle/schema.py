"""The bundle manifest's schema, written as data: field path → rule, applied by one walker.

:func:`validate` is what :func:`edge.bundle.loader.validate_manifest` runs, before anything is built from
a manifest; :func:`parse_manifest` is the bounded JSON parse in front of it.  Every violation is a
:class:`~edge.errors.BundleError` naming the field, e.g. ``signal.fs must be a finite number > 0
and <= 1e+06, got nan``.

The rules and their walker are :mod:`edge.bundle.rules`.  :func:`manifest_rules` is the whole table, the numbers read from the ``bounds`` section of
:mod:`edge.config` when it is called (so a test can patch a bound down).  The checks run in order:

1. gates with their own remedy: ``schema``, ``schema_version`` (a newer one says "upgrade
   neurogrip", an older one "re-export") and ``task``;
2. every value of the document, the free-form ``metrics`` and ``provenance`` included: JSON types
   only, nesting at most ``MANIFEST_MAX_DEPTH``, integers within int64, strings of bounded length;
3. the rules, in table order (a parent before its fields);
4. finite floats everywhere (Python's json reads ``NaN``, ``Infinity`` and ``1e400``; a field
   with a rule has already been refused by step 3 with its range);
5. what one field says about another: lengths, shapes, the activation against the decision mode
   and the task, the rates of the signal, the chain and the features;
6. the decision section, built by :meth:`edge.decision.DecisionPolicy.from_manifest`: its
   ``DecisionError`` (naming the key) becomes a ``BundleError``.

Keys the edge does not know are allowed (a change of meaning bumps ``schema_version``) and pass
the document checks of steps 2 and 4.
"""

from __future__ import annotations

import json

from edge import config
from edge.bundle.rules import (
    INT64,
    REEXPORT,
    Free,
    Int,
    List,
    Num,
    Obj,
    Rule,
    Str,
    check_document,
    check_rules,
    clip,
    fail,
    is_int,
    quote,
)
from edge.chain.dsp import FB_SHIFT_RANGE, STATE_FRAC_BITS
from edge.errors import DecisionError
from edge.tasks import get_task, task_names

SCHEMA = "neurogrip-bundle"


SCHEMA_VERSION = 1


MODEL_FILE = "model.tflite"


MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "signature.json"  # present when signed (edge.bundle.signature), outside the content hash


NORMALISATION = "demean-scale-clip"


FEATURE_KINDS = ("bandpower",)


ACTIVATIONS = {"sigmoid": "multilabel", "softmax": "multiclass"}




_COEF_LIMIT = 2**30 - 1  # |c| < 2**30: the kernel's coefficient format (edge.chain.dsp)


_PRE_SHIFT = 60          # |pre_shift| <= 60 (edge.chain.dsp.FixedPointSOS.from_manifest)




def manifest_rules() -> dict[str, Rule]:
    """The schema: every field the edge uses, path → rule, parents before their fields."""
    b = config
    name = Str(nonempty=True)
    free = Free(optional=True, max_bytes=b.MANIFEST_MAX_FREE_BYTES)
    fs = Num(gt=0, hi=b.MANIFEST_MAX_FS)
    window = Int(lo=1, hi=b.MANIFEST_MAX_WINDOW)

    def tensor(side: str) -> dict[str, Rule]:
        return {
            f"model.{side}": Obj(),
            f"model.{side}.shape": List(of=Int(lo=1, hi=b.MANIFEST_MAX_WINDOW_VALUES), min_len=2, max_len=3),
            f"model.{side}.dtype": Str(choices=("int8",)),
            f"model.{side}.scale": Num(gt=0, hi=1e9),
            f"model.{side}.zero_point": Int(lo=-128, hi=127),
        }

    return {
        "schema": Str(choices=(SCHEMA,)),
        "schema_version": Int(lo=SCHEMA_VERSION, hi=SCHEMA_VERSION),
        "task": Str(choices=tuple(task_names())),
        "created": Str(optional=True),
        "signal": Obj(),
        "signal.channels": List(of=name, min_len=1, max_len=b.MANIFEST_MAX_CHANNELS, unique=True),
        "signal.fs": fs,
        "signal.units": Str(optional=True),
        "signal.chain": Obj(),
        "signal.chain.fs": fs,
        "signal.chain.factor": Int(lo=1, hi=b.MANIFEST_MAX_FACTOR),
        "signal.chain.fs_out": Num(gt=0, hi=b.MANIFEST_MAX_FS, optional=True),
        "signal.chain.lowpass_hz": Num(gt=0, hi=b.MANIFEST_MAX_FS, optional=True, nullable=True),
        "signal.chain.design": free,
        "signal.chain.filter": Obj(),
        "signal.chain.filter.format": Str(),
        "signal.chain.filter.coef_frac_bits": Int(lo=0, hi=64),
        "signal.chain.filter.state_frac_bits": Int(lo=0, hi=64),
        "signal.chain.filter.input_frac_bits": Int(lo=0, hi=STATE_FRAC_BITS, optional=True),
        "signal.chain.filter.state_limit": Int(lo=1, hi=INT64, optional=True),
        "signal.chain.filter.sections": List(of=Obj(), min_len=1, max_len=b.MANIFEST_MAX_SECTIONS),
        "signal.chain.filter.sections[].c": List(of=Int(lo=-_COEF_LIMIT, hi=_COEF_LIMIT), length=5),
        "signal.chain.filter.sections[].pre_shift": Int(lo=-_PRE_SHIFT, hi=_PRE_SHIFT),
        "signal.chain.filter.sections[].fb_shift": Int(lo=FB_SHIFT_RANGE[0], hi=FB_SHIFT_RANGE[1]),
        "window": Obj(),
        "window.length": window,
        "window.stride": window,
        "window.length_ms": Num(lo=0, hi=1e9, optional=True),
        "window.stride_ms": Num(lo=0, hi=1e9, optional=True),
        "window.channel_scale": List(of=Num(gt=0, hi=1e12), same_length_as="signal.channels"),
        "window.clip": Num(gt=0, hi=1e12, optional=True, nullable=True),
        "window.normalisation": Str(choices=(NORMALISATION,), optional=True),
        "window.features": Obj(optional=True, nullable=True),
        "window.features.kind": Str(choices=FEATURE_KINDS),
        "window.features.fs": fs,
        "window.features.bands": List(of=List(of=Num(lo=0, hi=b.MANIFEST_MAX_FS), length=2), min_len=1,
                                      max_len=b.MANIFEST_MAX_SECTIONS),
        "window.features.center": List(of=Num(lo=-1e12, hi=1e12), max_len=b.MANIFEST_MAX_WINDOW_VALUES),
        "window.features.scale": List(of=Num(gt=0, hi=1e12), same_length_as="window.features.center"),
        "window.features.clip": Num(gt=0, hi=1e12, optional=True, nullable=True),
        "model": Obj(),
        "model.file": Str(choices=(MODEL_FILE,)),
        "model.bytes": Int(lo=1, hi=b.BUNDLE_MAX_MODEL_BYTES),
        "model.sha256": Str(pattern="[0-9a-f]{64}"),
        "model.architecture": Str(optional=True),
        "model.activation": Str(choices=tuple(ACTIVATIONS)),
        "model.ops": List(of=name, max_len=1024, optional=True),
        **tensor("input"),
        **tensor("output"),
        "labels": List(of=name, min_len=1, max_len=b.MANIFEST_MAX_LABELS, unique=True),
        # a calibrated bundle's float last layer (edge.model.head; fitted by edge.calibration.head)
        "head": Obj(optional=True),
        "head.tensor": Int(lo=0, hi=1 << 20),
        "head.tensor_name": Str(),
        "head.activation": Str(choices=tuple(ACTIVATIONS)),
        "head.weights": List(of=List(of=Num(lo=-1e6, hi=1e6), min_len=1, max_len=b.MANIFEST_MAX_LABELS),
                             min_len=1, max_len=b.MANIFEST_MAX_WINDOW_VALUES),
        "head.bias": List(of=Num(lo=-1e6, hi=1e6), same_length_as="labels"),
        # the int8 window's log time-domain features the head also reads (edge.model.inputs.log_td_features)
        "head.td": Obj(optional=True),
        "head.td.lengths": List(of=Int(lo=3, hi=b.MANIFEST_MAX_WINDOW_VALUES), min_len=1, max_len=4, unique=True),
        "head.td.threshold": Num(lo=0, hi=255),
        "decision": Obj(max_bytes=b.MANIFEST_MAX_FREE_BYTES),
        "metrics": Obj(optional=True, max_bytes=b.MANIFEST_MAX_FREE_BYTES),
        "provenance": Obj(optional=True, max_bytes=b.MANIFEST_MAX_FREE_BYTES),
        "content_hash": Str(pattern="sha256:[0-9a-f]{64}"),
    }


# --------------------------------------------------------------------------- the whole check


def _gates(m, where) -> None:
    """schema, schema_version and task, each with its own remedy, before any other field."""
    if not isinstance(m, dict):
        fail(where, f"manifest.json is not a JSON object (got {type(m).__name__})")
    if m.get("schema") != SCHEMA:
        fail(where, f"manifest schema is {quote(m.get('schema'))}, not {SCHEMA!r}")
    version = m.get("schema_version")
    if not (is_int(version) and version == SCHEMA_VERSION):
        newer = is_int(version) and version > SCHEMA_VERSION
        fail(where, f"unknown manifest schema_version {quote(version)} (this neurogrip reads {SCHEMA_VERSION})",
              "upgrade neurogrip on this machine" if newer else "re-export the bundle with this neurogrip version")
    task = m.get("task")
    if not isinstance(task, str) or task not in task_names():
        fail(where, f"task {quote(task)} is not one of {list(task_names())}",
              "use a bundle made for a task this version of neurogrip knows, or upgrade neurogrip")


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def check_consistency(m: dict, where) -> None:
    """What one field says about another (run after the rules, so every field has its type)."""
    from edge.model.inputs import n_features

    signal, chain, w, model = m["signal"], m["signal"]["chain"], m["window"], m["model"]
    n_ch = len(signal["channels"])
    if not _close(chain["fs"], signal["fs"]):
        fail(where, f"signal.chain.fs {chain['fs']:g} differs from signal.fs {signal['fs']:g}: the chain "
                     "would filter a stream of another rate")
    fs_out = chain["fs"] / chain["factor"]
    if "fs_out" in chain and not _close(chain["fs_out"], fs_out):
        fail(where, f"signal.chain.fs_out {chain['fs_out']:g} is not fs / factor = {fs_out:g}")
    if w["length"] * n_ch > config.MANIFEST_MAX_WINDOW_VALUES:
        fail(where, f"window.length x channels = {w['length'] * n_ch}, over the "
                     f"{config.MANIFEST_MAX_WINDOW_VALUES} limit")
    feats = w.get("features")
    n_feat = None
    if feats is not None:
        if not _close(feats["fs"], fs_out):
            fail(where, f"window.features.fs {feats['fs']:g} is not the chain's output rate {fs_out:g}")
        bad = [b for b in feats["bands"] if not b[0] < b[1]]
        if bad:
            fail(where, f"window.features.bands must be [low, high] with low < high, got {quote(bad[0])}")
        n_feat = n_features(w["length"], n_ch, float(feats["fs"]), tuple(tuple(b) for b in feats["bands"]))
        if len(feats["center"]) != n_feat:
            fail(where, f"window.features must give fs, bands, and center/scale for every feature: "
                         f"{n_feat} features, {len(feats['center'])} center/scale values")
    decision = m["decision"]
    mode = decision.get("mode")
    if ACTIVATIONS[model["activation"]] != mode:
        fail(where, f"model.activation {model['activation']!r} does not fit decision mode {quote(mode)} "
                     "(sigmoid goes with multilabel, softmax with multiclass)")
    task = get_task(m["task"])
    if mode != task.mode:
        fail(where, f"decision mode {quote(mode)} does not fit task {task.name!r} ({task.mode})")
    if decision.get("moves_arm") and not task.moves_arm:
        fail(where, f"decision.moves_arm is set but task {task.name!r} never moves the arm "
                     "(docs/design.md §2: its output is published, it may gate behaviour, never command)",
              "remove moves_arm and the commands from the bundle's decision section")
    head = m.get("head")
    if head is not None:
        if head["activation"] != model["activation"]:
            fail(where, f"head.activation {head['activation']!r} differs from model.activation "
                         f"{model['activation']!r}", "calibrate again from the base bundle")
        if any(len(row) != len(m["labels"]) for row in head["weights"]):
            fail(where, f"head.weights must have one column per label ({len(m['labels'])})",
                  "calibrate again from the base bundle")
    expect_in = [1, n_feat] if n_feat is not None else [1, w["length"], n_ch]
    for side, expect, what in (("input", expect_in, "window x channels, or features"),
                               ("output", [1, len(m["labels"])], "one per label")):
        if model[side]["shape"] != expect:
            fail(where, f"model.{side} must be int8 of shape {expect} ({what}), got {quote(model[side])}")


def check_decision(m: dict, where) -> None:
    """Build the decision policy; any refusal becomes a BundleError naming the key."""
    from edge.decision import DecisionPolicy

    try:
        DecisionPolicy.from_manifest(m["decision"], m["labels"])
    except DecisionError as exc:
        fail(where, f"the decision section is not valid: {clip(str(exc), 400)}")
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a policy check that is missing
        fail(where, f"the decision section is not usable ({type(exc).__name__}: {clip(str(exc), 300)})")


def validate(m, where=".", rules: dict[str, Rule] | None = None, *, decision: bool = True) -> None:
    """The whole manifest check (steps 1-6 of the module docstring); raises :class:`BundleError`.

    ``decision=False`` leaves out step 6: :func:`edge.bundle.load_bundle` checks the content hash
    first (an edited manifest is best told as such) and the decision section after it.
    """
    _gates(m, where)
    non_finite = check_document(m, where)
    check_rules(m, where, manifest_rules() if rules is None else rules)
    if non_finite:
        fail(where, non_finite)
    check_consistency(m, where)
    if decision:
        check_decision(m, where)


# --------------------------------------------------------------------------- parsing


class _DuplicateKey(ValueError):
    pass


def _pairs(pairs):
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise _DuplicateKey(k)
            seen.add(k)
    return out


def parse_manifest(raw: bytes, where, *, fix: str = "copy the bundle again") -> dict:
    """manifest.json bytes → dict: at most ``BUNDLE_MAX_MANIFEST_BYTES``, UTF-8 JSON, no key
    twice in an object, nesting bounded (a RecursionError is a BundleError)."""
    limit = config.BUNDLE_MAX_MANIFEST_BYTES
    if len(raw) > limit:
        fail(where, f"manifest.json is {len(raw)} bytes, over the {limit}-byte limit", REEXPORT)
    try:
        m = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_pairs)  # UTF-8 only, as write_bundle writes
    except RecursionError:
        fail(where, "manifest.json is nested too deeply to parse", REEXPORT)
    except _DuplicateKey as exc:
        fail(where, f"manifest.json has the key {quote(exc.args[0])} twice in one object", REEXPORT)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of > 4300 digits
        fail(where, f"manifest.json is not valid JSON ({clip(str(exc))}); it may be truncated", fix)
    return m
