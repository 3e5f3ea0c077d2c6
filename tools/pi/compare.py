"""Compare the arrays two architectures wrote, byte for byte, and print a summary.

    compare.py [--title T] [--same-as NAME=REF ...] [--informational NAME ...] [--max-abs NAME=N ...]
               REF_DIR OTHER_DIR

Every ``*.npy`` in REF_DIR must exist in OTHER_DIR with the same dtype, shape and bytes
(and vice versa).  ``--same-as dsp_numpy.npy=dsp.npy`` also requires two files of one side
to be equal (e.g. the C and numpy DSP kernels).  ``--informational NAME`` reports NAME's
differences without failing.  ``info.json`` in each directory (written by
selfcheck.py) is printed as the environment table.  Exit status 0 only if all is identical.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

INFO_ROWS = [("machine", "platform"), ("python", "python"), ("numpy", "numpy"),
             ("tflite_runtime", "tflite-runtime"), ("pyserial", "pyserial"), ("pylsl", "pylsl"),
             ("dsp_backend", "dsp backend (auto)"), ("dsp_backends", "dsp backends available")]


def _load(path: Path):
    try:
        return np.load(path, allow_pickle=False), None
    except Exception as exc:  # noqa: BLE001 - report any unreadable file as a failure
        return None, f"cannot read {path}: {exc}"


def diff(a: np.ndarray, b: np.ndarray) -> str | None:
    """None if identical (dtype, shape, bytes), else a one-line description."""
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} vs {b.dtype}"
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    if a.tobytes() == b.tobytes():
        return None
    ne = a != b
    if a.dtype.kind == "f":
        ne &= ~(np.isnan(a) & np.isnan(b))
    n = int(ne.sum())
    first = np.unravel_index(int(np.argmax(ne.ravel())), a.shape) if n else "?"
    if n and a.dtype.kind in "iuf":
        big = np.abs(a[ne].astype(np.float64) - b[ne].astype(np.float64)).max()
        return f"{n} of {a.size} values differ (first at {first}, max |diff| {big:g})"
    return f"{n} of {a.size} values differ (first at {first})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref", type=Path)
    ap.add_argument("other", type=Path)
    ap.add_argument("--title", default="comparison")
    ap.add_argument("--same-as", action="append", default=[], metavar="NAME=REF")
    ap.add_argument("--informational", action="append", default=[], metavar="NAME")
    ap.add_argument("--max-abs", action="append", default=[], metavar="NAME=N",
                    help="NAME may differ, by at most N per value (reported, fails beyond N)")
    args = ap.parse_args()
    bounded = {k: float(v) for k, _, v in (spec.partition("=") for spec in args.max_abs)}

    infos = []
    for d in (args.ref, args.other):
        try:
            infos.append(json.loads((d / "info.json").read_text()))
        except (OSError, ValueError):
            infos.append({})
    names = [infos[0].get("machine", args.ref.name), infos[1].get("machine", args.other.name)]
    print(f"== {args.title}")
    width = max(len(label) for _, label in INFO_ROWS)
    for key, label in INFO_ROWS:
        if any(key in i for i in infos):
            vals = [i.get(key, "?") for i in infos]
            vals = [",".join(v) if isinstance(v, list) else str(v) for v in vals]
            print(f"  {label:<{width}}  {vals[0]:<22} | {vals[1]}")

    failures = 0
    ref_files = sorted(p.name for p in args.ref.glob("*.npy"))
    other_files = sorted(p.name for p in args.other.glob("*.npy"))
    if not ref_files:
        print(f"  FAILED: no .npy outputs in {args.ref}")
        return 1
    for name in sorted(set(ref_files) | set(other_files)):
        if name not in ref_files or name not in other_files:
            side = names[1] if name not in other_files else names[0]
            print(f"  {name:<22} MISSING on {side}")
            failures += 1
            continue
        (a, ea), (b, eb) = _load(args.ref / name), _load(args.other / name)
        if ea or eb:
            print(f"  {name:<22} FAILED: {ea or eb}")
            failures += 1
            continue
        d = diff(a, b)
        info_only = name in args.informational
        if d is not None and name in bounded and a.shape == b.shape and a.dtype == b.dtype:
            worst = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
            info_only = worst <= bounded[name]
            d += f" (allowed: max |diff| <= {bounded[name]:g})"
        verdict = "IDENTICAL" if d is None else f"DIFFERENT{' (within bound)' if info_only else ''}: {d}"
        print(f"  {name:<22} {a.dtype!s:<7} {a.shape!s:<15} {a.size:>7} values  "
              f"{names[0]} vs {names[1]}: {verdict}")
        failures += d is not None and not info_only
    for spec in args.same_as:
        name, _, ref = spec.partition("=")
        for side, d in zip(names, (args.ref, args.other)):
            if (d / name).exists() and (d / ref).exists():
                dd = diff(np.load(d / name), np.load(d / ref))
                print(f"  {name} == {ref} on {side}: {'IDENTICAL' if dd is None else 'DIFFERENT: ' + dd}")
                failures += dd is not None
    print(f"  => {'IDENTICAL' if not failures else f'{failures} DIFFERENCE(S)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
