"""Training tests need TensorFlow; `make test` sets NEUROGRIP_REQUIRE_TF=1 so a broken
training environment fails loudly instead of skipping the whole directory."""

import importlib.util
import os

import pytest


def pytest_collection_modifyitems(config, items):
    if importlib.util.find_spec("tensorflow") is not None:
        return
    if os.environ.get("NEUROGRIP_REQUIRE_TF") == "1":
        raise pytest.UsageError("tests/training needs TensorFlow: run them in .venv-train (make test-train)")
    skip = pytest.mark.skip(reason="TensorFlow not installed (training environment only)")
    for item in items:
        if "tests/training" in str(item.fspath):
            item.add_marker(skip)
