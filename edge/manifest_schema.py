"""The bundle manifest's schema, written as data: field path → rule, applied by one walker.

:func:`validate` is what :func:`edge.bundle.validate_manifest` runs, before anything is built from
a manifest; :func:`parse_manifest` is the bounded JSON parse in front of it.  Every violation is a
:class:`~edge.errors.BundleError` naming the field, e.g. ``signal.fs must be a finite number > 0
and <= 1e+06, got nan``.

A path names a field with dots; ``[]`` steps into every item of a list.  A rule says what the
value must be; ``optional`` fields may be absent, ``nullable`` ones null::

    "signal.fs":                  Num(gt=0, hi=MANIFEST_MAX_FS)     a finite number in (0, 1e6]
    "signal.channels":            List(of=Str(), max_len=MANIFEST_MAX_CHANNELS, unique=True)
    "window.channel_scale":       List(of=Num(gt=0), same_length_as="signal.channels")
    "window.clip":                Num(gt=0, optional=True, nullable=True)
    "signal.chain.filter.sections[].c":  List(of=Int(lo=-(2**30 - 1), hi=2**30 - 1), length=5)

:func:`manifest_rules` is the whole table, the numbers read from the ``bounds`` section of
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
import math
import re
import reprlib
from dataclasses import dataclass

from edge import config
from edge.dsp import FB_SHIFT_RANGE, STATE_FRAC_BITS
from edge.errors import BundleError, DecisionError
from edge.tasks import get_task, task_names

SCHEMA = "neurogrip-bundle"
SCHEMA_VERSION = 1
MODEL_FILE = "model.tflite"
MANIFEST_FILE = "manifest.json"
NORMALISATION = "demean-scale-clip"
FEATURE_KINDS = ("bandpower",)
ACTIVATIONS = {"sigmoid": "multilabel", "softmax": "multiclass"}

_REEXPORT = "re-export the bundle with 'neurogrip train'"
_INT64 = 2**63 - 1
_COEF_LIMIT = 2**30 - 1  # |c| < 2**30: the kernel's coefficient format (edge.dsp)
_PRE_SHIFT = 60          # |pre_shift| <= 60 (edge.dsp.FixedPointSOS.from_manifest)


# --------------------------------------------------------------------------- quoting


def quote(value, limit: int | None = None) -> str:
    """A bounded repr of (possibly huge, possibly hostile) input for an error message."""
    limit = config.ERROR_QUOTE_CHARS if limit is None else limit
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<an integer of {value.bit_length()} bits>"
    r = reprlib.Repr()
    r.maxstring = r.maxother = r.maxlong = limit
    r.maxlist = r.maxdict = 8
    r.maxlevel = 3
    return clip(r.repr(value), limit)


def clip(text: str, limit: int | None = None) -> str:
    """``text`` cut to ``limit`` characters (default ``ERROR_QUOTE_CHARS``), "..." marking a cut."""
    limit = config.ERROR_QUOTE_CHARS if limit is None else limit
    return text if len(text) <= limit else text[:max(0, limit - 3)] + "..."


def _fail(where, problem: str, fix: str = _REEXPORT):
    raise BundleError(where, problem, fix)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, kw_only=True)
class Rule:
    """What a field must be.  ``optional``: may be absent; ``nullable``: may be JSON null."""

    optional: bool = False
    nullable: bool = False

    def describe(self) -> str:  # "a finite number > 0"
        raise NotImplementedError

    def problem(self, value, path: str, doc: dict) -> str | None:
        """None when ``value`` obeys the rule, else the message (naming ``path``)."""
        return None if self.accepts(value) else f"{path} must be {self.describe()}, got {quote(value)}"

    def accepts(self, value) -> bool:
        raise NotImplementedError


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _range_text(lo, hi, gt) -> str:
    parts = []
    if gt is not None:
        parts.append(f"> {gt:g}")
    if lo is not None:
        parts.append(f">= {lo:g}")
    if hi is not None:
        parts.append(f"<= {hi:g}")
    return (" " + " and ".join(parts)) if parts else ""


@dataclass(frozen=True, kw_only=True)
class Num(Rule):
    """A finite number (int or float, never a bool) with optional bounds; ``gt`` is exclusive."""

    lo: float | None = None
    hi: float | None = None
    gt: float | None = None

    def describe(self) -> str:
        return "a finite number" + _range_text(self.lo, self.hi, self.gt)

    def accepts(self, v) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if isinstance(v, float) and not math.isfinite(v):
            return False
        # int and float compare exactly in Python: no float() of a huge int (OverflowError).
        return not ((self.gt is not None and v <= self.gt) or (self.lo is not None and v < self.lo)
                    or (self.hi is not None and v > self.hi))


@dataclass(frozen=True, kw_only=True)
class Int(Rule):
    """An integer (never a bool; 3.0 is not an int) in ``lo..hi``."""

    lo: int | None = None
    hi: int | None = None

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"an int in {self.lo}..{self.hi}" if self.lo != self.hi else f"the int {self.lo}"
        return "an int" + _range_text(self.lo, self.hi, None)

    def accepts(self, v) -> bool:
        return _is_int(v) and (self.lo is None or v >= self.lo) and (self.hi is None or v <= self.hi)


@dataclass(frozen=True, kw_only=True)
class Str(Rule):
    """A string of at most ``max_len`` characters (``None``: ``MANIFEST_MAX_STRING``), optionally
    non-empty, one of ``choices`` or matching ``pattern`` (whole string)."""

    max_len: int | None = None
    nonempty: bool = False
    choices: tuple | None = None
    pattern: str | None = None

    def _max(self) -> int:
        return config.MANIFEST_MAX_STRING if self.max_len is None else self.max_len

    def describe(self) -> str:
        if self.choices is not None:
            return ("one of " if len(self.choices) > 1 else "") + ", ".join(repr(c) for c in self.choices)
        what = f"a {'non-empty ' if self.nonempty else ''}string of at most {self._max()} characters"
        return what + (f" matching {self.pattern}" if self.pattern else "")

    def accepts(self, v) -> bool:
        if not isinstance(v, str) or len(v) > self._max() or (self.nonempty and not v):
            return False
        if self.choices is not None and v not in self.choices:
            return False
        return self.pattern is None or re.fullmatch(self.pattern, v) is not None


@dataclass(frozen=True, kw_only=True)
class Obj(Rule):
    """A JSON object; with ``max_bytes``, at most that many bytes as canonical JSON (free-form)."""

    max_bytes: int | None = None

    def describe(self) -> str:
        return "an object" + (f" of at most {self.max_bytes} bytes as JSON" if self.max_bytes else "")

    def accepts(self, v) -> bool:
        return isinstance(v, dict)

    def problem(self, value, path, doc):
        if not isinstance(value, dict):
            return f"{path} must be {self.describe()}, got {quote(value)}"
        if self.max_bytes is not None:
            size = _json_size(value)
            if size > self.max_bytes:
                return f"{path} is {size} bytes as JSON, over the {self.max_bytes}-byte limit"
        return None


@dataclass(frozen=True, kw_only=True)
class Free(Rule):
    """Any JSON value of at most ``max_bytes`` as canonical JSON (informative fields)."""

    max_bytes: int = 0

    def describe(self) -> str:
        return f"a JSON value of at most {self.max_bytes} bytes"

    def accepts(self, v) -> bool:
        return True

    def problem(self, value, path, doc):
        size = _json_size(value)
        return None if size <= self.max_bytes else \
            f"{path} is {size} bytes as JSON, over the {self.max_bytes}-byte limit"


@dataclass(frozen=True, kw_only=True)
class List(Rule):
    """A JSON array of ``min_len..max_len`` items (or exactly ``length``, or as many as the list
    at ``same_length_as``), each obeying ``of``; ``unique``: no item twice."""

    of: Rule | None = None
    min_len: int = 0
    max_len: int | None = None
    length: int | None = None
    same_length_as: str | None = None
    unique: bool = False

    def describe(self) -> str:
        if self.length is not None:
            n = f"{self.length}"
        elif self.max_len is not None:
            n = f"{self.min_len}..{self.max_len}"
        else:
            n = f"at least {self.min_len}" if self.min_len else "any number of"
        items = f" {'distinct ' if self.unique else ''}items" if self.of is None else \
            f"{' distinct' if self.unique else ''} items, each {self.of.describe()}"
        return f"a list of {n}{items}"

    def accepts(self, v) -> bool:
        return isinstance(v, list)

    def problem(self, value, path, doc):
        if not isinstance(value, list):
            return f"{path} must be {self.describe()}, got {quote(value)}"
        n = len(value)
        if self.same_length_as is not None:
            other = _get(doc, self.same_length_as)
            if isinstance(other, list) and n != len(other):
                return (f"{path} has {n} items but {self.same_length_as} has {len(other)}: "
                        f"it must be {self.describe()}, one per item of {self.same_length_as}")
        if (self.length is not None and n != self.length) or n < self.min_len or \
                (self.max_len is not None and n > self.max_len):
            return f"{path} must be {self.describe()}, got {n} items: {quote(value)}"
        if self.of is not None:
            for i, item in enumerate(value):
                if item is None and self.of.nullable:
                    continue
                problem = self.of.problem(item, f"{path}[{i}]", doc)
                if problem:
                    return problem
        if self.unique:
            seen = set()
            for item in value:
                key = json.dumps(item, sort_keys=True)
                if key in seen:
                    return f"{path} must be distinct names, got {quote(item)} twice"
                seen.add(key)
        return None


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
        "signal.chain.filter.state_limit": Int(lo=1, hi=_INT64, optional=True),
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
        # a calibrated bundle's float last layer (edge.head; fitted by edge.calibration.head)
        "head": Obj(optional=True),
        "head.tensor": Int(lo=0, hi=1 << 20),
        "head.tensor_name": Str(),
        "head.activation": Str(choices=tuple(ACTIVATIONS)),
        "head.weights": List(of=List(of=Num(lo=-1e6, hi=1e6), min_len=1, max_len=b.MANIFEST_MAX_LABELS),
                             min_len=1, max_len=b.MANIFEST_MAX_WINDOW_VALUES),
        "head.bias": List(of=Num(lo=-1e6, hi=1e6), same_length_as="labels"),
        # the int8 window's log time-domain features the head also reads (edge.model_input.log_td_features)
        "head.td": Obj(optional=True),
        "head.td.lengths": List(of=Int(lo=3, hi=b.MANIFEST_MAX_WINDOW_VALUES), min_len=1, max_len=4, unique=True),
        "head.td.threshold": Num(lo=0, hi=255),
        "decision": Obj(max_bytes=b.MANIFEST_MAX_FREE_BYTES),
        "metrics": Obj(optional=True, max_bytes=b.MANIFEST_MAX_FREE_BYTES),
        "provenance": Obj(optional=True, max_bytes=b.MANIFEST_MAX_FREE_BYTES),
        "content_hash": Str(pattern="sha256:[0-9a-f]{64}"),
    }


# --------------------------------------------------------------------------- the walker


def _json_size(value) -> int:
    return len(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())


def _get(doc, path: str):
    """The value at a path without ``[]`` (None when absent)."""
    v = doc
    for key in path.split("."):
        if not isinstance(v, dict) or key not in v:
            return None
        v = v[key]
    return v


def _instances(doc: dict, path: str):
    """Yield ``(concrete path, present, value)`` for every place ``path`` names in ``doc``.

    An absent or null parent yields nothing (its own rule already allowed that); so does a parent
    of the wrong type, which its own rule, earlier in the table, has already refused.
    """
    todo = [("", doc)]
    steps = path.split(".")
    for depth, step in enumerate(steps):
        each = step.endswith("[]")
        key = step[:-2] if each else step
        last = depth == len(steps) - 1
        nxt = []
        for where, v in todo:
            here = f"{where}.{key}" if where else key
            if not isinstance(v, dict):
                continue
            if key not in v:
                if last:
                    yield here, False, None
                continue
            if each:
                if isinstance(v[key], list):
                    nxt.extend((f"{here}[{i}]", item) for i, item in enumerate(v[key]))
            elif last:
                yield here, True, v[key]
            elif v[key] is not None:
                nxt.append((here, v[key]))
        todo = nxt


def check_rules(doc: dict, where, rules: dict[str, Rule] | None = None) -> None:
    """Apply ``rules`` (default :func:`manifest_rules`) to ``doc``; the first violation raises."""
    for path, rule in (manifest_rules() if rules is None else rules).items():
        for here, present, value in _instances(doc, path):
            if not present:
                if not rule.optional:
                    _fail(where, f"manifest has no {here!r}")
                continue
            if value is None and rule.nullable:
                continue
            problem = rule.problem(value, here, doc)
            if problem:
                _fail(where, problem)


def check_document(doc, where) -> str | None:
    """Every value: JSON types, bounded nesting, int64 integers, bounded strings; returns the message
    for the first non-finite float, if any (raised after the rules, which name such a field better).

    Iterative, so a deep document costs no recursion; paths are built only for the message.
    """
    max_depth, max_str = config.MANIFEST_MAX_DEPTH, config.MANIFEST_MAX_FREE_STRING
    non_finite = None
    stack = [(doc, None, 1)]  # (value, (parent link, key) or None, depth)
    while stack:
        v, link, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > max_depth:
                _fail(where, f"{_path(link) or 'manifest'} is nested more than {max_depth} levels deep")
            if isinstance(v, dict):
                for k, item in v.items():
                    if not isinstance(k, str) or len(k) > max_str:
                        _fail(where, f"{_path(link) or 'manifest'} has a key {quote(k)} that is not a string "
                                     f"of at most {max_str} characters")
                    stack.append((item, (link, k), depth + 1))
            else:
                stack.extend((item, (link, i), depth + 1) for i, item in enumerate(v))
        elif v is None or isinstance(v, bool):
            continue
        elif isinstance(v, str):
            if len(v) > max_str:
                _fail(where, f"{_path(link)} must be a string of at most {max_str} characters, "
                             f"got {len(v)}: {quote(v)}")
        elif isinstance(v, int):
            if not -_INT64 - 1 <= v <= _INT64:
                _fail(where, f"{_path(link)} must be an integer that fits in 64 bits, got {quote(v)}")
        elif isinstance(v, float):
            if non_finite is None and not math.isfinite(v):
                non_finite = f"{_path(link)} must be a finite number, got {quote(v)}"
        else:
            _fail(where, f"{_path(link) or 'manifest'} is not a JSON value (a {type(v).__name__})")
    return non_finite


def _path(link) -> str:
    keys = []
    while link is not None:
        link, key = link
        keys.append(key)
    out = ""
    for key in reversed(keys):
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


# --------------------------------------------------------------------------- the whole check


def _gates(m, where) -> None:
    """schema, schema_version and task, each with its own remedy, before any other field."""
    if not isinstance(m, dict):
        _fail(where, f"manifest.json is not a JSON object (got {type(m).__name__})")
    if m.get("schema") != SCHEMA:
        _fail(where, f"manifest schema is {quote(m.get('schema'))}, not {SCHEMA!r}")
    version = m.get("schema_version")
    if not (_is_int(version) and version == SCHEMA_VERSION):
        newer = _is_int(version) and version > SCHEMA_VERSION
        _fail(where, f"unknown manifest schema_version {quote(version)} (this neurogrip reads {SCHEMA_VERSION})",
              "upgrade neurogrip on this machine" if newer else "re-export the bundle with this neurogrip version")
    task = m.get("task")
    if not isinstance(task, str) or task not in task_names():
        _fail(where, f"task {quote(task)} is not one of {list(task_names())}",
              "use a bundle made for a task this version of neurogrip knows, or upgrade neurogrip")


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def check_consistency(m: dict, where) -> None:
    """What one field says about another (run after the rules, so every field has its type)."""
    from edge.model_input import n_features

    signal, chain, w, model = m["signal"], m["signal"]["chain"], m["window"], m["model"]
    n_ch = len(signal["channels"])
    if not _close(chain["fs"], signal["fs"]):
        _fail(where, f"signal.chain.fs {chain['fs']:g} differs from signal.fs {signal['fs']:g}: the chain "
                     "would filter a stream of another rate")
    fs_out = chain["fs"] / chain["factor"]
    if "fs_out" in chain and not _close(chain["fs_out"], fs_out):
        _fail(where, f"signal.chain.fs_out {chain['fs_out']:g} is not fs / factor = {fs_out:g}")
    if w["length"] * n_ch > config.MANIFEST_MAX_WINDOW_VALUES:
        _fail(where, f"window.length x channels = {w['length'] * n_ch}, over the "
                     f"{config.MANIFEST_MAX_WINDOW_VALUES} limit")
    feats = w.get("features")
    n_feat = None
    if feats is not None:
        if not _close(feats["fs"], fs_out):
            _fail(where, f"window.features.fs {feats['fs']:g} is not the chain's output rate {fs_out:g}")
        bad = [b for b in feats["bands"] if not b[0] < b[1]]
        if bad:
            _fail(where, f"window.features.bands must be [low, high] with low < high, got {quote(bad[0])}")
        n_feat = n_features(w["length"], n_ch, float(feats["fs"]), tuple(tuple(b) for b in feats["bands"]))
        if len(feats["center"]) != n_feat:
            _fail(where, f"window.features must give fs, bands, and center/scale for every feature: "
                         f"{n_feat} features, {len(feats['center'])} center/scale values")
    decision = m["decision"]
    mode = decision.get("mode")
    if ACTIVATIONS[model["activation"]] != mode:
        _fail(where, f"model.activation {model['activation']!r} does not fit decision mode {quote(mode)} "
                     "(sigmoid goes with multilabel, softmax with multiclass)")
    task = get_task(m["task"])
    if mode != task.mode:
        _fail(where, f"decision mode {quote(mode)} does not fit task {task.name!r} ({task.mode})")
    if decision.get("moves_arm") and not task.moves_arm:
        _fail(where, f"decision.moves_arm is set but task {task.name!r} never moves the arm "
                     "(docs/design.md §2: its output is published, it may gate behaviour, never command)",
              "remove moves_arm and the commands from the bundle's decision section")
    head = m.get("head")
    if head is not None:
        if head["activation"] != model["activation"]:
            _fail(where, f"head.activation {head['activation']!r} differs from model.activation "
                         f"{model['activation']!r}", "calibrate again from the base bundle")
        if any(len(row) != len(m["labels"]) for row in head["weights"]):
            _fail(where, f"head.weights must have one column per label ({len(m['labels'])})",
                  "calibrate again from the base bundle")
    expect_in = [1, n_feat] if n_feat is not None else [1, w["length"], n_ch]
    for side, expect, what in (("input", expect_in, "window x channels, or features"),
                               ("output", [1, len(m["labels"])], "one per label")):
        if model[side]["shape"] != expect:
            _fail(where, f"model.{side} must be int8 of shape {expect} ({what}), got {quote(model[side])}")


def check_decision(m: dict, where) -> None:
    """Build the decision policy; any refusal becomes a BundleError naming the key."""
    from edge.decision import DecisionPolicy

    try:
        DecisionPolicy.from_manifest(m["decision"], m["labels"])
    except DecisionError as exc:
        _fail(where, f"the decision section is not valid: {clip(str(exc), 400)}")
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a policy check that is missing
        _fail(where, f"the decision section is not usable ({type(exc).__name__}: {clip(str(exc), 300)})")


def validate(m, where=".", rules: dict[str, Rule] | None = None, *, decision: bool = True) -> None:
    """The whole manifest check (steps 1-6 of the module docstring); raises :class:`BundleError`.

    ``decision=False`` leaves out step 6: :func:`edge.bundle.load_bundle` checks the content hash
    first (an edited manifest is best told as such) and the decision section after it.
    """
    _gates(m, where)
    non_finite = check_document(m, where)
    check_rules(m, where, rules)
    if non_finite:
        _fail(where, non_finite)
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
        _fail(where, f"manifest.json is {len(raw)} bytes, over the {limit}-byte limit", _REEXPORT)
    try:
        m = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_pairs)  # UTF-8 only, as write_bundle writes
    except RecursionError:
        _fail(where, "manifest.json is nested too deeply to parse", _REEXPORT)
    except _DuplicateKey as exc:
        _fail(where, f"manifest.json has the key {quote(exc.args[0])} twice in one object", _REEXPORT)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of > 4300 digits
        _fail(where, f"manifest.json is not valid JSON ({clip(str(exc))}); it may be truncated", fix)
    return m

