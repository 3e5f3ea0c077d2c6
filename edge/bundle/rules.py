"""The rules a manifest's fields obey, and the walker that applies a table of them to a document.

A path names a field with dots; ``[]`` steps into every item of a list.  A rule says what the
value must be; ``optional`` fields may be absent, ``nullable`` ones null::

    "signal.fs":                  Num(gt=0, hi=MANIFEST_MAX_FS)     a finite number in (0, 1e6]
    "signal.channels":            List(of=Str(), max_len=MANIFEST_MAX_CHANNELS, unique=True)
    "window.channel_scale":       List(of=Num(gt=0), same_length_as="signal.channels")
    "window.clip":                Num(gt=0, optional=True, nullable=True)
    "signal.chain.filter.sections[].c":  List(of=Int(lo=-(2**30 - 1), hi=2**30 - 1), length=5)

The table itself is :func:`edge.bundle.schema.manifest_rules`.  :func:`check_document` checks every
value of a document (JSON types, nesting, int64 integers, bounded strings, finite floats).
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from dataclasses import dataclass

from edge import config
from edge.errors import BundleError

INT64 = 2**63 - 1


# --------------------------------------------------------------------------- quoting


REEXPORT = "re-export the bundle with 'neurogrip train'"

def fail(where, problem: str, fix: str = REEXPORT):
    raise BundleError(where, problem, fix)


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


def is_int(v) -> bool:
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
        return is_int(v) and (self.lo is None or v >= self.lo) and (self.hi is None or v <= self.hi)


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


def check_rules(doc: dict, where, rules: dict[str, Rule]) -> None:
    """Apply ``rules`` (field path → rule, e.g. :func:`edge.bundle.schema.manifest_rules`) to ``doc``;
    the first violation raises."""
    for path, rule in rules.items():
        for here, present, value in _instances(doc, path):
            if not present:
                if not rule.optional:
                    fail(where, f"manifest has no {here!r}")
                continue
            if value is None and rule.nullable:
                continue
            problem = rule.problem(value, here, doc)
            if problem:
                fail(where, problem)


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
                fail(where, f"{_path(link) or 'manifest'} is nested more than {max_depth} levels deep")
            if isinstance(v, dict):
                for k, item in v.items():
                    if not isinstance(k, str) or len(k) > max_str:
                        fail(where, f"{_path(link) or 'manifest'} has a key {quote(k)} that is not a string "
                                     f"of at most {max_str} characters")
                    stack.append((item, (link, k), depth + 1))
            else:
                stack.extend((item, (link, i), depth + 1) for i, item in enumerate(v))
        elif v is None or isinstance(v, bool):
            continue
        elif isinstance(v, str):
            if len(v) > max_str:
                fail(where, f"{_path(link)} must be a string of at most {max_str} characters, "
                             f"got {len(v)}: {quote(v)}")
        elif isinstance(v, int):
            if not -INT64 - 1 <= v <= INT64:
                fail(where, f"{_path(link)} must be an integer that fits in 64 bits, got {quote(v)}")
        elif isinstance(v, float):
            if non_finite is None and not math.isfinite(v):
                non_finite = f"{_path(link)} must be a finite number, got {quote(v)}"
        else:
            fail(where, f"{_path(link) or 'manifest'} is not a JSON value (a {type(v).__name__})")
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
