"""The house rules of the layout (docs/architecture.md), checked on the code itself.

* imports flow one way: nothing in edge/ or firmware_bridge/ imports training or benchmarks,
  except edge/cli.py, the top of the house;
* the runtime and the bundle loader reach no workstation-only module (scipy, TensorFlow,
  scikit-learn, matplotlib) even when those are installed;
* the runtime, sources and decision code stay in files a reader can hold (≤ 350 lines);
* every C struct the edge passes through ctypes matches its Python mirror.
"""

from __future__ import annotations

import ast
import ctypes
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge import native

REPO = Path(__file__).resolve().parents[2]
UPWARD = ("training", "benchmarks")
TOP_OF_THE_HOUSE = {REPO / "edge" / "cli.py"}
WORKSTATION_ONLY = ("scipy", "tensorflow", "sklearn", "matplotlib", "keras")
MAX_LINES = 350


def _imported_roots(path: Path) -> set[str]:
    """Top-level packages a module imports anywhere (module level or inside functions)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def _python_files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (REPO / d).rglob("*.py"))


def test_imports_flow_one_way():
    offenders = {str(p.relative_to(REPO)): sorted(_imported_roots(p) & set(UPWARD))
                 for p in _python_files("edge", "firmware_bridge") if p not in TOP_OF_THE_HOUSE}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"edge/firmware_bridge import the workstation side: {offenders}"


def test_firmware_bridge_does_not_import_edge():
    offenders = [str(p.relative_to(REPO)) for p in _python_files("firmware_bridge") if "edge" in _imported_roots(p)]
    assert not offenders, f"firmware_bridge is below edge and must not import it: {offenders}"


def test_the_runtime_reaches_no_workstation_module():
    # A fresh interpreter in which the workstation modules cannot be imported at all (they are
    # installed in some environments): the runtime's and the bundle loader's imports must not need them.
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {WORKSTATION_ONLY!r}:
                    raise ImportError("blocked by the test: " + name)
        sys.meta_path.insert(0, Block())
        import edge.runtime, edge.bundle, edge.sources, edge.decision, edge.tasks, edge.doctor, edge.player
        from edge.bundle import load_bundle
        b = load_bundle({str(REPO / "tests" / "fixtures" / "bundles" / "grasp-lift")!r})
        b.signal_chain(); b.model_input_stage(); b.decision_policy()
        print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in {WORKSTATION_ONLY!r})))
    """)
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("package", ["edge/runtime", "edge/sources", "edge/decision"])
def test_runtime_sources_and_decision_files_stay_small(package):
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in _python_files(package)}
    assert sizes, f"{package} is not a package"
    too_big = {k: v for k, v in sizes.items() if v > MAX_LINES}
    assert not too_big, f"files over {MAX_LINES} lines: {too_big}"


@pytest.mark.c_kernel
def test_every_ctypes_mirror_matches_the_c_layout():
    assert native.LIB is not None
    assert native.layout_mismatches(native.LIB) == []


@pytest.mark.c_kernel
def test_a_mirror_that_disagrees_with_c_is_refused(monkeypatch, caplog):
    class Wrong(ctypes.Structure):  # one field short: what a C edit without a Python edit gives
        _fields_ = native.ChainArgs._fields_[:-1]

    monkeypatch.setitem(native._MIRRORS, 0, ("ng_chain_args", native._ctypes_layout(Wrong)))
    with caplog.at_level(logging.ERROR, logger="edge.native"):
        assert native.load_library() is None
    assert "ng_chain_args" in caplog.text and "does not match" in caplog.text


def test_require_kernel_makes_a_missing_kernel_an_error(tmp_path):
    # A copy of the boundary module without any built library next to it.
    pkg = tmp_path / "edge"
    pkg.mkdir()
    for name in ("__init__.py", "errors.py", "native.py"):
        (pkg / name).write_text((REPO / "edge" / name).read_text())
    run = [sys.executable, "-c", "import edge.native as n; print(n.LIB)"]
    required = subprocess.run(run, check=False, capture_output=True, text=True, cwd=tmp_path,
                              env={"NEUROGRIP_REQUIRE_KERNEL": "1", "PATH": "/usr/bin:/bin"})
    assert required.returncode != 0 and "NativeError" in required.stderr
    assert "build_ext --inplace" in required.stderr  # the fix is named
    optional = subprocess.run(run, check=False, capture_output=True, text=True, cwd=tmp_path,
                              env={"PATH": "/usr/bin:/bin"})
    assert optional.returncode == 0 and optional.stdout.strip() == "None"
    assert "numpy kernel" in optional.stderr  # the fallback is said, not silent
