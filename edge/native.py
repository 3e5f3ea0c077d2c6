"""The one native boundary of the edge: the C library ``edge/_ng_sos*.so`` and its layouts.

Everything that crosses into C lives here: finding and loading the library (built by
``setup.py`` from ``firmware_bridge/firmware/dsp/ng_sos.c`` and ``edge/_ng_chain.c``), the
argument and return types of every function, the ctypes Structures that mirror the C argument
structs, and the numpy dtype of a filter section.  At load, each mirror is checked against the
layout the C compiler produced (``ng_layout``: sizeof and every field offset); a library that
does not match, lacks a function, or cannot be loaded is not used, and the bit-identical numpy
kernels run instead (slower), with a warning saying how to rebuild.

Set ``NEUROGRIP_DSP_BACKEND=numpy`` to never load the library, and ``NEUROGRIP_REQUIRE_KERNEL=1``
to make a missing or unusable library an error at import (``make test`` sets it, so CI cannot
go green without testing the C path).
"""

from __future__ import annotations

import ctypes
import glob
import importlib.machinery
import logging
import os
from pathlib import Path

import numpy as np

from edge.errors import NativeError

log = logging.getLogger(__name__)

REBUILD_FIX = ("rebuild it with `python setup.py build_ext --inplace` (needs a C compiler) or reinstall "
               "neurogrip")

# ng_sos_section of ng_sos.h: int32 c[5], int8 pre_shift, int8 fb_shift (padded to 24 bytes).
SECTION_DTYPE = np.dtype([("c", "<i4", (5,)), ("pre_shift", "i1"), ("fb_shift", "i1")], align=True)


class ChainArgs(ctypes.Structure):
    """``ng_chain_args`` of edge/_ng_chain.c, field for field (checked at load)."""

    _fields_ = [("sections", ctypes.c_void_p), ("state", ctypes.c_void_p), ("inp", ctypes.c_void_p),
                ("out", ctypes.c_void_p), ("scratch_in", ctypes.c_void_p), ("scratch_out", ctypes.c_void_p),
                ("limit", ctypes.c_double), ("factor", ctypes.c_uint32), ("phase", ctypes.c_uint32),
                ("block", ctypes.c_uint32), ("saturations", ctypes.c_uint32), ("n_sections", ctypes.c_uint16),
                ("n_channels", ctypes.c_uint16), ("input_frac", ctypes.c_uint8)]


class WindowArgs(ctypes.Structure):
    """``ng_window_args`` of edge/_ng_chain.c, field for field (checked at load)."""

    _fields_ = [("win", ctypes.c_void_p), ("out", ctypes.c_void_p), ("channel_scale", ctypes.c_void_p),
                ("mean", ctypes.c_void_p), ("clip", ctypes.c_float), ("in_scale", ctypes.c_float),
                ("zero_point", ctypes.c_int32), ("length", ctypes.c_uint32), ("n_channels", ctypes.c_uint16)]


def _ctypes_layout(struct: type[ctypes.Structure]) -> list[int]:
    return [ctypes.sizeof(struct)] + [getattr(struct, name).offset for name, _ in struct._fields_]


def _dtype_layout(dtype: np.dtype) -> list[int]:
    return [dtype.itemsize] + [dtype.fields[name][1] for name in dtype.names]


# which (the argument of ng_layout) → what Python believes the layout is
_MIRRORS = {0: ("ng_chain_args", _ctypes_layout(ChainArgs)), 1: ("ng_window_args", _ctypes_layout(WindowArgs)),
            2: ("ng_sos_section", _dtype_layout(SECTION_DTYPE))}


def layout_mismatches(lib) -> list[str]:
    """Structs whose C layout differs from the Python mirror (empty when all match)."""
    bad = []
    for which, (name, mine) in _MIRRORS.items():
        buf = (ctypes.c_uint32 * 32)()
        n = lib.ng_layout(which, buf, len(buf))
        theirs = list(buf[:n])
        if theirs != mine:
            bad.append(f"{name}: C has size/offsets {theirs}, Python {mine}")
    return bad


def _declare(lib) -> None:
    p = ctypes.c_void_p
    lib.ng_sos_run.argtypes = [p, ctypes.c_uint16, p, p, p, ctypes.c_uint32, ctypes.c_uint16, ctypes.c_uint8]
    lib.ng_sos_run.restype = ctypes.c_uint32
    lib.ng_sos_run64.argtypes = [p, ctypes.c_uint16, p, p, p, ctypes.c_uint32, ctypes.c_uint16]
    lib.ng_sos_run64.restype = ctypes.c_uint32
    # The hot-path calls take one argument struct (ChainArgs, WindowArgs) and a count.
    lib.ng_chain_run.argtypes = [p, ctypes.c_uint32]
    lib.ng_chain_run.restype = ctypes.c_int32
    lib.ng_windows_int8.argtypes = [p, ctypes.c_uint32]
    lib.ng_windows_int8.restype = None
    lib.ng_layout.argtypes = [ctypes.c_uint32, p, ctypes.c_uint32]
    lib.ng_layout.restype = ctypes.c_uint32


_REQUIRED = ("ng_sos_run", "ng_sos_run64", "ng_chain_run", "ng_windows_int8", "ng_layout")


def load_library(here: Path | None = None):
    """The C library built as ``edge/_ng_sos*.so`` (or in ``here``), declared and checked; None if unusable.

    This interpreter's own build is tried first: an in-place build for another Python (two
    virtual environments share one work tree) may be older.
    """
    if os.environ.get("NEUROGRIP_DSP_BACKEND") == "numpy":
        return None
    here = Path(__file__).resolve().parent if here is None else Path(here)
    own = [str(here / f"_ng_sos{suffix}") for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    found = sorted(glob.glob(str(here / "_ng_sos*.so")) + glob.glob(str(here / "_ng_sos*.pyd")))
    for path in [p for p in own if p in found] + [p for p in found if p not in own]:
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            log.warning("cannot load the C filter kernel %s (%s); using the slower numpy kernel", path, exc)
            return None
        missing = [name for name in _REQUIRED if not hasattr(lib, name)]
        if missing:
            log.warning("the C filter kernel %s is a stale build (no %s); using the slower numpy kernel: %s",
                        path, ", ".join(missing), REBUILD_FIX)
            return None
        _declare(lib)
        bad = layout_mismatches(lib)
        if bad:
            log.error("the C filter kernel %s does not match edge/native.py (%s); using the slower numpy "
                      "kernel: %s", path, "; ".join(bad), REBUILD_FIX)
            return None
        return lib
    log.warning("the C filter kernel edge/_ng_sos is not built (no C compiler at install?); "
                "using the numpy kernel, ~100x slower: %s", REBUILD_FIX)
    return None


def _load_default():
    lib = load_library()
    if lib is None and os.environ.get("NEUROGRIP_REQUIRE_KERNEL") == "1" \
            and os.environ.get("NEUROGRIP_DSP_BACKEND") != "numpy":
        raise NativeError(f"NEUROGRIP_REQUIRE_KERNEL=1 but the C filter kernel could not be used (see the log "
                          f"above); {REBUILD_FIX}")
    return lib


LIB = _load_default()
"""The loaded library, or None: the numpy kernels run (bit-identical, slower)."""


def available() -> bool:
    """Whether the C library is loaded."""
    return LIB is not None
