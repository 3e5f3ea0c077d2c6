"""Argument checks shared by the whole edge package (as mne-lsl's ``utils/_checks.py``).

Each check raises an exception that names the argument, what it must be and what it got:
``TypeError`` for a value of the wrong type, ``ValueError`` for one out of range.  Callers pass
``exc`` to raise their own package error instead, for both (a :class:`edge.errors.EdgeError`
subclass that is also a ``TypeError``/``ValueError``) and ``fix`` to add the remedy.  Checks
return the value converted to a plain Python type, so ``self.x = check_int(x, "x", lo=1)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable


def _suffix(fix: str) -> str:
    return f"; {fix}" if fix else ""


def is_number(value) -> bool:
    """A real number that is not a bool (numpy scalars included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def is_int(value) -> bool:
    """An integer that is not a bool (numpy integers included)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def check_type(value, types, name: str, *, exc: type[Exception] = TypeError, fix: str = ""):
    """``value`` if it is an instance of ``types``, else ``exc`` naming ``name``."""
    if not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise exc(f"{name} must be {names}, got {type(value).__name__}{_suffix(fix)}")
    return value


def check_int(value, name: str, *, lo: int | None = None, hi: int | None = None,
              exc: type[Exception] | None = None, fix: str = "") -> int:
    """An int (not a bool) in ``lo..hi`` (either bound optional), as a Python int."""
    if not is_int(value):
        raise (exc or TypeError)(f"{name} must be an int{_range_text(lo, hi)}, got {value!r}{_suffix(fix)}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise (exc or ValueError)(f"{name} must be an int{_range_text(lo, hi)}, got {v}{_suffix(fix)}")
    return v


def _range_text(lo, hi, lo_open: bool = False) -> str:
    if lo is not None and hi is not None and not lo_open:
        return f" in {lo:g}..{hi:g}"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"<= {hi:g}")
    return (" " + " and ".join(parts)) if parts else ""


def check_number(value, name: str, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                 exc: type[Exception] | None = None, fix: str = "") -> float:
    """A finite real number (not a bool) in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``), as a float.

    A non-number is a ``TypeError``; NaN, infinities and values out of range a ``ValueError``.
    """
    if not is_number(value):
        raise (exc or TypeError)(f"{name} must be a finite number{_range_text(lo, hi, lo_open)}, "
                                 f"got {value!r}{_suffix(fix)}")
    if not math.isfinite(float(value)):
        raise (exc or ValueError)(f"{name} must be a finite number{_range_text(lo, hi, lo_open)}, got {value!r}{_suffix(fix)}")
    v = float(value)
    if (lo is not None and (v < lo or (lo_open and v == lo))) or (hi is not None and v > hi):
        raise (exc or ValueError)(f"{name} must be a number{_range_text(lo, hi, lo_open)}, got {v:g}{_suffix(fix)}")
    return v


def check_positive(value, name: str, *, exc: type[Exception] | None = None, fix: str = "") -> float:
    """A finite number > 0, as a float."""
    return check_number(value, name, lo=0.0, lo_open=True, exc=exc, fix=fix)


def check_option(value, name: str, allowed: Iterable, *, exc: type[Exception] | None = None, fix: str = ""):
    """``value`` if it is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise (exc or ValueError)(f"{name} must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}{_suffix(fix)}")
    return value
