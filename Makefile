# neurogrip — the two commands that matter are `make demo` (the main job) and `make test`.
#
# Two environments, like reality:
#   .venv-edge   Python 3.11 + tflite-runtime + numpy<2, NO TensorFlow (what a Raspberry Pi runs)
#   .venv-train  Python 3.12 + TensorFlow (numpy 2) + ai-edge-litert (the workstation)
# Each is built on first use and rebuilt only when pyproject.toml changes.

EDGE_PY  ?= python3.11
TRAIN_PY ?= python3.12
EDGE_VENV  := .venv-edge
TRAIN_VENV := .venv-train
PYTEST_ARGS ?= -q

.PHONY: test test-edge test-train env-edge env-train lint clean

test: test-edge test-train

env-edge:
	@tools/ensure-venv $(EDGE_VENV) $(EDGE_PY) edge,dev

env-train:
	@tools/ensure-venv $(TRAIN_VENV) $(TRAIN_PY) train,dev

# Everything except tests/training runs in the edge environment, which proves that
# nothing outside training/ needs TensorFlow.
test-edge: env-edge
	$(EDGE_VENV)/bin/python -m pytest tests --ignore=tests/training $(PYTEST_ARGS)

test-train: env-train
	NEUROGRIP_REQUIRE_TF=1 $(TRAIN_VENV)/bin/python -m pytest tests/training $(PYTEST_ARGS)

lint: env-edge
	$(EDGE_VENV)/bin/python -m ruff check edge firmware_bridge training benchmarks tests

clean:
	rm -rf $(EDGE_VENV) $(TRAIN_VENV) .pytest_cache .hypothesis
