"""The house rules of the layout (docs/architecture.md), checked on the code itself.

* layers: every module of edge/, firmware_bridge/, training/ and benchmarks/ belongs to one layer of
  :data:`LAYERS` (docs/architecture.md draws the same list) and imports nothing from a layer above
  its own; in particular nothing in edge/ or firmware_bridge/ imports training or benchmarks,
  except edge/cli.py, the top of the house;
* no import circle, between modules of one package or of several (imports inside functions count);
* no module imports another module's private name (``from x import _y``);
* the runtime and the bundle loader reach no workstation-only module (scipy, TensorFlow,
  scikit-learn, matplotlib) even when those are installed;
* every module stays in a file a reader can hold: ≤ 500 lines, and ≤ 350 for the live path's
  runtime, sources and decision code;
* every C struct the edge passes through ctypes matches its Python mirror.
"""

from __future__ import annotations

import ast
import ctypes
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge import native

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("edge", "firmware_bridge", "training", "benchmarks")
WORKSTATION_ONLY = ("scipy", "tensorflow", "sklearn", "matplotlib", "keras")
MAX_LINES = 500
MAX_LINES_LIVE_PATH = 350

# The layers of the house, from the ground up (docs/architecture.md, "Layers").  A module belongs
# to the first entry whose name is its own or one of its parents; it may import its own layer
# and those below.
LAYERS = (
    ("firmware_bridge.errors", "firmware_bridge.config", "firmware_bridge.wire"),
    ("firmware_bridge.protocol",),
    ("firmware_bridge.link",),
    ("firmware_bridge.sim", "firmware_bridge"),
    ("edge.errors", "edge._checks", "edge.config", "edge.native", "edge.progress", "edge.stats", "edge"),
    ("edge.signals",),
    ("edge.chain",),
    ("edge.model",),
    ("edge.decision",),
    ("edge.tasks",),
    ("edge.recordings",),
    ("edge.sources",),
    ("edge.bundle",),
    ("edge.view",),
    ("edge.runtime",),
    ("edge.evaluation",),
    ("edge.record",),
    ("edge.calibration",),
    ("edge.commands",),
    ("training",),
    ("benchmarks",),
    ("edge.cli",),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for d in PACKAGES for p in sorted((REPO / d).rglob("*.py"))}


def _imports(path: Path, name: str, known) -> list[tuple[str, list[str]]]:
    """(module, names taken from it) for every import of one of ``known`` in a module, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for a in node.names:  # "from package import module" imports the module
                full = f"{base}.{a.name}"
                out.append((full, []) if full in known else (base, [a.name]))
    return [(m, names) for m, names in out if m.split(".")[0] in PACKAGES]


def _layer(module: str) -> int:
    best = None
    for i, names in enumerate(LAYERS):
        for n in names:
            if (module == n or module.startswith(n + ".")) and (best is None or len(n) > best[1]):
                best = (i, len(n))
    assert best is not None, f"{module} belongs to no layer of LAYERS: add it (and to docs/architecture.md)"
    return best[0]


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        for m, _ in _imports(path, name, mods):
            while m not in mods and "." in m:
                m = m.rpartition(".")[0]
            if m in mods and m != name:
                deps.add(m)
        graph[name] = deps
    return graph


def test_every_module_belongs_to_a_layer_and_imports_none_above_it():
    offenders = []
    for name, deps in _graph().items():
        offenders += [f"{name} (layer {_layer(name)}) imports {d} (layer {_layer(d)})"
                      for d in sorted(deps) if _layer(d) > _layer(name)]
    assert not offenders, "imports that run up the house:\n" + "\n".join(offenders)


def test_no_import_circle():
    graph, state, stack, circles = _graph(), {}, [], []

    def visit(n):  # depth-first; a back edge closes a circle
        state[n] = "open"
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == "open":
                circles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n)
    # a package's face (__init__) that hands on its modules' names is not a circle with them
    circles = [c for c in circles if not any(c.startswith(p + " -> " + p + ".") for p in graph)]
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_no_module_takes_another_modules_private_name():
    mods = _modules()
    offenders = [f"{name} takes {m}.{n}" for name, path in mods.items() for m, names in _imports(path, name, mods)
                 for n in names if n.startswith("_") and not n.startswith("__")]
    assert not offenders, "\n".join(offenders)


def test_every_module_stays_small():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in _modules().values()}
    live = ("edge/runtime/", "edge/sources/", "edge/decision/")
    too_big = {k: v for k, v in sizes.items()
               if v > (MAX_LINES_LIVE_PATH if k.startswith(live) else MAX_LINES)}
    assert not too_big, f"modules over {MAX_LINES} lines ({MAX_LINES_LIVE_PATH} on the live path): {too_big}"


def test_docs_architecture_names_every_module():
    """A newcomer finds each module in docs/architecture.md's map (its file name, or its name in a package's list)."""
    doc = (REPO / "docs" / "architecture.md").read_text()

    def named(p: Path) -> bool:  # "run.py", or the name as an item of a list ("xdf, edf;", "(schema)")
        return bool(re.search(rf"(?<![\w]){re.escape(p.name)}(?![\w])", doc)
                    or re.search(rf"(?<![\w/]){re.escape(p.stem)}(?=[,;)`]| \(|\s*$)", doc, re.MULTILINE))

    unnamed = [str(p.relative_to(REPO)) for p in _modules().values()
               if p.name not in ("__init__.py", "__main__.py") and not named(p)]
    assert not unnamed, f"modules docs/architecture.md does not name: {unnamed}"


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
        import edge.runtime, edge.bundle, edge.sources, edge.decision, edge.tasks, edge.commands.doctor, edge.sources.player
        from edge.bundle import load_bundle
        b = load_bundle({str(REPO / "tests" / "fixtures" / "bundles" / "grasp-lift")!r})
        b.signal_chain(); b.model_input_stage(); b.decision_policy()
        print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in {WORKSTATION_ONLY!r})))
    """)
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""


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
