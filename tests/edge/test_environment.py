"""The edge environments are what a Raspberry Pi has: no TensorFlow; numpy < 2 with tflite-runtime on
Python <= 3.11 (Raspberry Pi OS 12), ai-edge-litert on Python >= 3.12 (Raspberry Pi OS 13)."""

import importlib.util
import subprocess
import sys

import pytest


def test_tensorflow_is_not_installed_in_the_edge_environment():
    assert importlib.util.find_spec("tensorflow") is None, (
        "TensorFlow is importable: the edge tests must run in .venv-edge (make test-edge)")


def test_edge_modules_import_without_tensorflow_or_scipy():
    # A fresh interpreter, so modules imported by other tests cannot hide a stray import.
    code = ("import sys, edge, edge.recordings, edge.recordings.synthetic, edge.cli, edge.errors;"
            "bad = [m for m in ('tensorflow', 'scipy', 'sklearn', 'matplotlib') if m in sys.modules];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"edge imported workstation-only modules: {out.stdout}"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="tflite-runtime has no wheel for Python >= 3.12")
def test_tflite_runtime_and_numpy1_are_installed():
    import numpy as np

    assert int(np.__version__.split(".")[0]) < 2, "tflite-runtime 2.14 needs numpy < 2"
    assert importlib.util.find_spec("tflite_runtime") is not None


@pytest.mark.skipif(sys.version_info < (3, 12), reason="ai-edge-litert is the interpreter of Python >= 3.12")
def test_ai_edge_litert_is_the_interpreter_on_newer_pythons():
    from edge.model.inference import interpreter_backend

    assert importlib.util.find_spec("tflite_runtime") is None
    assert interpreter_backend()[0] == "ai_edge_litert"
