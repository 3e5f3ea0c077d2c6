"""`neurogrip bench`: run every benchmark section that exists, write JSON and Markdown.

Each section is a module with ``run(quick) -> dict`` and ``markdown(dict) -> str``.
Timings are medians over repeats; peers are measured in the same run.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

from benchmarks.machine import describe

SECTIONS = ("readers", "filter")
SCHEMA_VERSION = 1


def run(quick: bool = False, sections=SECTIONS) -> dict:
    report = {"schema_version": SCHEMA_VERSION, "quick": quick, "machine": describe(), "sections": {}}
    for name in sections:
        mod = importlib.import_module(f"benchmarks.{name}")
        t0 = time.perf_counter()
        result = mod.run(quick=quick)
        result["wall_s"] = time.perf_counter() - t0
        report["sections"][name] = result
    return report


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}"
             + ("" if not report["quick"] else " (quick run: figures are indicative only)"), ""]
    for name, result in report["sections"].items():
        mod = importlib.import_module(f"benchmarks.{name}")
        lines += [f"### {name}", "", mod.markdown(result), ""]
    return "\n".join(lines)


def main(quick: bool, json_path: str | None, markdown_path: str | None) -> int:
    report = run(quick=quick)
    text = to_markdown(report)
    print(text)
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2))
    if markdown_path:
        Path(markdown_path).write_text(text)
    return 0
