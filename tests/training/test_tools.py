"""The Python scripts in tools/ import only names that exist (module-level and function-level imports).

They are run by hand (the development cross-validation, the design checks, the soak, the README's
tables), so nothing else would notice a name moved or renamed under them; a restructuring once left
``tools/gesture-dev-bases`` importing a function that no longer existed.  Runs in the training
environment, which has every package the tools use.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util

import pytest

from tests.conftest import REPO

OURS = ("edge", "training", "benchmarks", "firmware_bridge")
SCRIPTS = sorted(p for p in (REPO / "tools").iterdir()
                 if p.is_file() and p.read_text(errors="replace").startswith("#!/usr/bin/env python"))


def _our_imports(path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OURS:
            yield node.lineno, node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in OURS:
                    yield node.lineno, a.name, []


def test_there_are_python_tools():
    assert len(SCRIPTS) >= 5, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_tool_imports_only_what_exists(script):
    missing = []
    for line, module, names in _our_imports(script):
        mod = importlib.import_module(module)
        missing += [f"line {line}: from {module} import {n}" for n in names
                    if not hasattr(mod, n) and importlib.util.find_spec(f"{module}.{n}") is None]
    assert not missing, f"{script.relative_to(REPO)} imports names that do not exist: {missing}"
