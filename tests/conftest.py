"""Shared fixtures: where the real reference recordings live; the policy for missing tools.

A test that needs something this machine may lack (avr-gcc, simavr, the built C filter kernel)
asks for it through :func:`require_tool` or :func:`require_c_kernel`.  When it is missing the
test is skipped with a message naming the fix, unless the matching environment variable is set
to 1, in which case it fails with that message: ``make test`` installs the tools first and sets
``NEUROGRIP_REQUIRE_AVR=1 NEUROGRIP_REQUIRE_KERNEL=1``, so nothing skips silently there.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

REQUIRE_AVR = "NEUROGRIP_REQUIRE_AVR"
REQUIRE_KERNEL = "NEUROGRIP_REQUIRE_KERNEL"

_OR_MAKE = "or make system-deps"
# name -> (is it here?, how to install it).  Anything else is looked up on PATH.
_TOOLS = {
    "avr-gcc": (None, f"apt-get install gcc-avr avr-libc, {_OR_MAKE}"),
    "avr-g++": (None, f"apt-get install gcc-avr avr-libc, {_OR_MAKE}"),
    # firmware_bridge/firmware/sim/arm_sim.c links Debian's libsimavr (its headers are the test)
    "simavr": (lambda: Path("/usr/include/simavr/sim_avr.h").is_file()
               and Path("/usr/include/simavr/parts/uart_pty.h").is_file(),
               f"apt-get install simavr libsimavr-dev libelf-dev, {_OR_MAKE}"),
    # clang's libFuzzer runtime (make -C firmware_bridge/firmware fuzz)
    "libfuzzer": (lambda: shutil.which("clang") is not None
                  and bool(glob.glob("/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a")),
                  "apt-get install clang libclang-rt-14-dev, or firmware_bridge/firmware/install-deps.sh"),
}


def missing(message: str, env: str) -> None:
    """Skip the running test with ``message``, or fail it with ``message`` when ``$env`` is 1."""
    __tracebackhide__ = True  # report the caller's line
    if os.environ.get(env) == "1":
        pytest.fail(f"{message} ({env}=1: required here, not skipped)", pytrace=False)
    pytest.skip(f"{message} (set {env}=1 to fail instead of skipping)")


def require_tool(name: str, env: str = REQUIRE_AVR) -> str | None:
    """Skip (or, with ``$env`` = 1, fail) the running test when tool ``name`` is not installed.

    ``name`` is a program on PATH (``avr-gcc``, ``avr-g++``) or one of the probes above
    (``simavr``: the simavr library the simulated Uno links; ``libfuzzer``).  Returns the
    program's path (None for a probe) when it is there.
    """
    __tracebackhide__ = True  # report the caller's line
    probe, fix = _TOOLS.get(name, (None, f"install {name}, {_OR_MAKE}"))
    if probe is None:
        path = shutil.which(name)
        if path is None:
            missing(f"{name} not found: {fix}", env)
        return path
    if not probe():
        missing(f"{name} not found: {fix}", env)
    return None


KERNEL_FIX = ("build it: python setup.py build_ext --inplace (needs a C compiler: apt-get install gcc), "
              "or make env-edge")


def c_kernel_problem() -> str | None:
    """Why the C filter kernel (edge/_ng_sos) cannot be used here, or None when it can."""
    if os.environ.get("NEUROGRIP_DSP_BACKEND") == "numpy":
        return "NEUROGRIP_DSP_BACKEND=numpy turns the C filter kernel off"
    from edge.errors import NativeError

    try:
        from edge.chain.dsp import available_backends
    except NativeError as e:  # edge.native raises it at import under NEUROGRIP_REQUIRE_KERNEL=1
        return f"the C filter kernel could not be loaded ({e}): {KERNEL_FIX}"
    if "c" not in available_backends():
        return f"the C filter kernel edge/_ng_sos is not built or not usable: {KERNEL_FIX}"
    return None


def require_c_kernel() -> None:
    """Skip (or, with NEUROGRIP_REQUIRE_KERNEL=1, fail) the running test when the C kernel is missing.

    Also usable as a marker, ``@pytest.mark.c_kernel`` (or ``pytestmark = pytest.mark.c_kernel``),
    and a fixture, ``c_kernel``.  ``NEUROGRIP_DSP_BACKEND=numpy`` (the kernel turned off on purpose)
    always skips.
    """
    __tracebackhide__ = True  # report the caller's line
    problem = c_kernel_problem()
    if problem is None:
        return
    if os.environ.get("NEUROGRIP_DSP_BACKEND") == "numpy":
        pytest.skip(problem)
    missing(problem, REQUIRE_KERNEL)


def pytest_configure(config):
    config.addinivalue_line("markers", "c_kernel: needs the built C filter kernel (see tests/conftest.py)")


def pytest_runtest_setup(item):
    if item.get_closest_marker("c_kernel") is not None:
        require_c_kernel()


@pytest.fixture
def c_kernel() -> None:
    """Requests the C filter kernel: see :func:`require_c_kernel`."""
    require_c_kernel()


# Both TFLite interpreters are first-class (docs/pi-check.md): `make test` runs the edge suite once in
# each edge environment, and tells each run which interpreter it must be (NEUROGRIP_BACKEND) and that
# the other environment must be there for the cross-interpreter tests (NEUROGRIP_REQUIRE_BACKENDS=1).
REQUIRE_BACKENDS = "NEUROGRIP_REQUIRE_BACKENDS"
EDGE_VENVS = {"tflite_runtime": REPO / ".venv-edge", "ai_edge_litert": REPO / ".venv-edge-litert"}


def other_edge_python() -> tuple[str, Path]:
    """(name, python) of the edge environment with the *other* TFLite interpreter than this one; skips
    (fails under NEUROGRIP_REQUIRE_BACKENDS=1) when it has not been built."""
    __tracebackhide__ = True
    from edge.model.inference import interpreter_backend

    here = interpreter_backend()[0]
    other = next(name for name in EDGE_VENVS if name != here)
    py = EDGE_VENVS[other] / "bin" / "python"
    if not py.is_file():
        missing(f"the {other} edge environment {EDGE_VENVS[other].name} is not built: make env-edge env-edge-litert",
                REQUIRE_BACKENDS)
    return other, py


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real reference data not found at {SHARED_DATA}")
    return SHARED_DATA

FIXTURE_BUNDLES = REPO / "tests" / "fixtures" / "bundles"


def drain(src) -> list:
    """Every chunk of a replay source, copied (a chunk is only valid until the next read)."""
    chunks = []
    while not src.exhausted:
        chunk = src.read(0.0)
        if chunk is not None:
            chunks.append(chunk.copy())
    return chunks


def record_synthetic_grasp_lift(out: Path, repeat: int) -> Path:
    """``neurogrip record`` of a synthetic grasp-lift stream (as fast as possible) under a short
    grasp-lift paradigm (``repeat`` trials of HandStart 2 s, LiftOff 2 s, Replace 2 s, BothReleased
    1 s, pause 1 s): the XDF at ``out``."""
    from edge.cli import main

    par = out.with_suffix(".toml")
    par.write_text(f'name = "short"\ntask = "grasp-lift"\nrepeat = {int(repeat)}\n'
                   '[[cue]]\nlabel = "HandStart"\nseconds = 2\n[[cue]]\nlabel = "LiftOff"\nseconds = 2\n'
                   '[[cue]]\nlabel = "Replace"\nseconds = 2\n[[cue]]\nlabel = "BothReleased"\nseconds = 1\n'
                   '[[cue]]\nlabel = "pause"\nseconds = 1\n')
    if main(["record", "--source", "synthetic:?kind=grasp-lift&seed=3&speed=max", "--paradigm", str(par),
             "--out", str(out)]) != 0:
        raise AssertionError(f"neurogrip record failed for {out}")
    return out


def write_edf_plus(path: Path, samples, channels, fs: int, annotations, *, unit: str, physical, digital) -> int:
    """Write an EDF+ file with pyedflib (another library's writer, for format tests): ``samples``
    (n, k) cut to whole 1 s data records, one signal per channel with the given physical and digital
    ranges, and an annotation without duration per ``(onset_s, text)``.  Returns the rows written."""
    import numpy as np
    import pyedflib

    n = len(samples) - len(samples) % int(fs)
    heads = [{"label": c, "dimension": unit, "sample_frequency": int(fs), "physical_min": physical[0],
              "physical_max": physical[1], "digital_min": digital[0], "digital_max": digital[1]} for c in channels]
    with pyedflib.EdfWriter(str(path), len(heads), file_type=pyedflib.FILETYPE_EDFPLUS) as f:
        f.setSignalHeaders(heads)
        f.writeSamples([np.ascontiguousarray(samples[:n, k], dtype=np.float64) for k in range(len(heads))])
        for onset, text in annotations:
            f.writeAnnotation(onset, -1, text)
    return n


def serve_until(bundle, spec: str, done, *, timeout_s: float = 30.0, settle_s: float = 0.2):
    """``serve()`` a live source spec with no arm, deciding every window however LSL chunks the
    stream, and stop it once ``done(runtime)`` holds (or ``timeout_s`` passed) and ``settle_s`` more
    for the last chunk through the pipeline.  Returns (summary, runtime)."""
    import threading
    import time

    from edge.config import RuntimeConfig
    from edge.runtime import serve

    seen = {}

    def on_ready(rt):
        seen["rt"] = rt
        rt.pipeline.drop_stale = False

        def stop_when_done():
            deadline = time.monotonic() + timeout_s
            while not done(rt) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(settle_s)
            rt.stop()

        threading.Thread(target=stop_when_done, daemon=True).start()

    # stream_speed=0: the producers here publish as fast as they can, so their stamps run ahead of time;
    # the stream-time checks have tests of their own (test_signal_validity.py)
    summary = serve(bundle, spec, "none", duration=40, install_signals=False, on_ready=on_ready,
                    config=RuntimeConfig(budget_ms=60_000, safe_after_ms=60_000, stream_speed=0))
    return summary, seen["rt"]
