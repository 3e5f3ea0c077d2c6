"""`neurogrip bench`: run the benchmark sections, write JSON, Markdown and plots.

Each section is a module ``benchmarks.<name>`` with ``run(quick, ctx) -> dict`` and
``markdown(dict) -> str``, optionally ``targets(dict) -> list`` (its docs/design.md §3 goals and the
measured figure).  ``ctx`` is a :class:`benchmarks.common.Context`: the bundles to measure, the
plots directory, the shared data, the training environment.  Timings are medians/percentiles
over repeats; peers are measured in the same run.  See benchmarks/README.md for the JSON layout.
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
import sys
import time
import traceback
from pathlib import Path

from benchmarks.common import Context
from benchmarks.machine import describe
from edge.progress import Progress

SECTIONS = ("readers", "filter", "inference", "e2e", "decoding", "gesture", "calibration", "link", "frontend",
            "robustness", "view")
SCHEMA_VERSION = 1


def _met(t: dict):
    m, g = t["measured"], t["goal"]
    if m is None or (isinstance(m, float) and not math.isfinite(m)):
        return None
    return {">=": m >= g, ">": m > g, "<=": m <= g, "==": m == g}[t["op"]]


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def clean(obj):
    """JSON-safe copy: non-finite floats become None (the JSON is strict)."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def run(quick: bool = False, sections=SECTIONS, bundles=None, plots_dir=None, progress=_progress) -> dict:
    ctx = Context.create(quick=quick, bundles=bundles, plots_dir=plots_dir)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown benchmark section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    t_all = time.perf_counter()
    report = {"schema_version": SCHEMA_VERSION, "quick": quick,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": describe(),
              "bundles": [b.info() for b in ctx.bundles], "sections": {}, "targets": [], "plots": []}
    bar = Progress(len(sections), "bench", progress)
    try:
        for name in sections:
            mod = importlib.import_module(f"benchmarks.{name}")
            bar.start(f"[bench] {name} ...")
            t0 = time.perf_counter()
            try:
                result = mod.run(quick=quick, ctx=ctx)
            except Exception as exc:  # noqa: BLE001 - one failing section must not hide the others
                result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            result["wall_s"] = time.perf_counter() - t0
            if "error" in result:
                bar.note(f"[bench] {name}: ERROR {result['error']}")
            bar.step(f"[bench] {name}: {result['wall_s']:.1f} s")
            report["sections"][name] = result
            if "error" not in result and hasattr(mod, "targets"):
                for t in mod.targets(result):
                    report["targets"].append({"section": name, **t, "met": _met(t)})
        if ctx.plots_dir is not None:
            from benchmarks.plots import write_plots

            report["plots"] = [str(p) for p in write_plots(report, ctx.plots_dir)]
    finally:
        bar.close()
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    report["wall_s"] = time.perf_counter() - t_all
    return clean(report)


def _measured(t: dict) -> str:
    m = t["measured"]
    if isinstance(m, bool):
        return "yes" if m else "no"
    if m is None:
        return "n/a"
    if isinstance(m, int):
        return f"{m:,} {t['unit']}".strip()
    if t["unit"] in ("AUC", "|ΔAUC|", "accuracy"):
        return f"{m:.4f}"
    return f"{m:,.3g} {t['unit']}".replace(" ×", "×").strip() if abs(m) < 1000 else f"{m:,.0f} {t['unit']}"


def targets_markdown(report: dict) -> str:
    lines = ["| area | target | measured | status | how |", "|---|---|---|---|---|"]
    for t in report["targets"]:
        status = {True: "MET", False: "**MISSED**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['area']} | {t['target']} | {_measured(t)} | {status} | {t['note']} |")
    return "\n".join(lines)


def to_markdown(report: dict) -> str:
    m = report["machine"]
    libs = ", ".join(f"{k} {v}" for k, v in m.get("libraries", {}).items())
    lines = ["## neurogrip benchmark", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m.get('platform', '')}, Python {m['python']} ({libs}); "
             f"{report.get('created', '')}, {report.get('wall_s', 0):.0f} s"
             + (" — **quick run: figures are indicative only**" if report["quick"] else ""), ""]
    if report.get("bundles"):
        lines += ["Bundles: " + "; ".join(f"{b['name']} ({b['task']}, {b['origin']}, {b['bundle_bytes']:,} bytes, "
                                          f"{b['content_hash'][:19]})" for b in report["bundles"]), ""]
    if report.get("targets"):
        lines += ["### targets (docs/design.md §3)", "", targets_markdown(report), ""]
    for name, result in report["sections"].items():
        lines += [f"### {name}", ""]
        if "error" in result:
            lines += [f"**section failed**: {result['error']}", ""]
            continue
        mod = importlib.import_module(f"benchmarks.{name}")
        lines += [mod.markdown(result), "", f"_{name}: {result['wall_s']:.1f} s_", ""]
    if report.get("plots"):
        lines += ["### plots", ""] + [f"- {p}" for p in report["plots"]]
    return "\n".join(lines)


def main(quick: bool, json_path: str | None, markdown_path: str | None, plots_dir=None, bundles=None,
         sections=None) -> int:
    try:
        report = run(quick=quick, sections=tuple(sections) if sections else SECTIONS, bundles=bundles,
                     plots_dir=plots_dir)
    except ValueError as exc:  # unknown section; a bundle that does not load says so itself
        print(f"neurogrip bench: error: {exc}", file=sys.stderr)
        return 2
    text = to_markdown(report)
    print(text)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(clean(report), indent=1, allow_nan=False))
    if markdown_path:
        Path(markdown_path).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown_path).write_text(text + "\n")
    failed = [n for n, r in report["sections"].items() if "error" in r]
    return 1 if failed else 0
