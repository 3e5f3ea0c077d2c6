"""The model probe: a bundle's model is loaded and run once on zeros in a child process first.

The model is loaded and run once on zeros in a child process (:func:`probe_model`) before this
process loads it: tflite-runtime does not verify a flatbuffer, and a malformed one can crash
the interpreter (a segfault) or make it allocate without end.  A crash, an error, more than
``MODEL_PROBE_MAX_MEMORY`` or more than ``MODEL_PROBE_TIMEOUT_S`` is a :class:`BundleError`.  The
verdict is cached per model sha256 and interpreter, so a process probes a model once (a forked
child, about 15 ms here; a fresh ``python -c`` when other Python threads run, about 0.2 s).
``load_bundle(path, check_model=False)`` does not probe; :meth:`Bundle.model` probes then.
What the probe cannot promise: a model that crashes only on other input than zeros, or only
sometimes (an out-of-bounds read of a damaged flatbuffer), may still pass it.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys

from edge import config
from edge.bundle.rules import clip
from edge.errors import BundleError

# --------------------------------------------------------------------------- the model probe

# The check itself, as source: executed in a forked child, or by ``python -c`` in a fresh one.
_PROBE_BODY = r"""
def probe(interpreter, model, budget):
    import importlib

    import numpy as np
    try:  # no core dump of a crash; the address-space bound counts from what is already in use
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        with open("/proc/self/statm") as fh:
            in_use = int(fh.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (in_use + budget, resource.getrlimit(resource.RLIMIT_AS)[1]))
    except (ImportError, OSError, ValueError):
        pass
    # built as edge.model.inference.new_interpreter builds the runtime's: built-in kernels, no default delegate
    resolver = importlib.import_module(interpreter.__module__).OpResolverType
    it = interpreter(model_content=model, num_threads=1,
                     experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
"""


_PROBE_MAIN = r"""
import importlib, sys
try:
    probe(importlib.import_module(sys.argv[1]).Interpreter, sys.stdin.buffer.read(), int(sys.argv[2]))
except BaseException as exc:
    sys.stdout.write(f"{type(exc).__name__}: {exc}"[:600])
    sys.exit(3)
"""


_PROBED: dict[tuple[str, str], str | None] = {}  # (model sha256, interpreter module) → problem or None


def _flatbuffer_problem(model: bytes) -> str | None:
    """The cheapest structural check: a TFLite flatbuffer's identifier and root offset."""
    if len(model) < 16 or model[4:8] != b"TFL3":
        return "it is not a TFLite flatbuffer (no 'TFL3' identifier)"
    root = int.from_bytes(model[:4], "little")
    if not 8 <= root <= len(model) - 4:
        return f"its root offset {root} lies outside the {len(model)}-byte file"
    return None


def _can_fork() -> bool:
    """Fork (no interpreter start-up, ~10 ms) only while this process runs one Python thread:
    a child forked beside other threads may inherit a lock one of them held."""
    import threading

    return hasattr(os, "fork") and threading.active_count() == 1


def _probe_forked(model: bytes, module: str, timeout: float) -> tuple[int, str] | None:
    """(exit code, message) of the check run in a forked child; None when it timed out."""
    import faulthandler
    import importlib
    import select
    import time

    interpreter = importlib.import_module(module).Interpreter
    scope: dict = {}
    exec(_PROBE_BODY, scope)  # noqa: S102 - our own constant source, shared with the subprocess path
    budget = int(config.MODEL_PROBE_MAX_MEMORY)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(r)
            faulthandler.disable()  # a crash here is reported by the parent, not dumped as this process's
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 1)
            os.dup2(quiet, 2)
            scope["probe"](interpreter, model, budget)
        except BaseException as exc:  # noqa: BLE001 - everything is reported, as text
            code = 3
            try:
                os.write(w, f"{type(exc).__name__}: {exc}"[:600].encode("utf-8", "replace"))
            except BaseException:  # noqa: BLE001, S110 - nothing left to report to
                pass
        finally:
            os._exit(code)
    os.close(w)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            data = os.read(r, 4096)
            if not data:  # the child closed its end: it has exited
                break
            out = (out + data)[:4096]
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(r)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def _probe_spawned(model: bytes, module: str, timeout: float) -> tuple[int, str] | None:
    """(exit code, message) of the check run by a fresh ``python -c``; None when it timed out."""
    if not sys.executable:
        return 4, "no Python executable to run the check process"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE_BODY + _PROBE_MAIN, module,
                               str(int(config.MODEL_PROBE_MAX_MEMORY))],
                              input=model, capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return None
    except OSError as exc:
        return 4, f"the check process did not start ({exc})"
    return done.returncode, (done.stdout.decode("utf-8", "replace").strip()
                             or done.stderr.decode("utf-8", "replace")[-300:])


def _run_probe(model: bytes, module: str) -> str | None:
    """None when the model loads and runs in a child process, else what went wrong."""
    problem = _flatbuffer_problem(model)
    if problem:
        return f"model.tflite does not load: {problem}"
    timeout = config.MODEL_PROBE_TIMEOUT_S
    result = _probe_forked(model, module, timeout) if _can_fork() else None
    if result is None:  # not forked, or timed out: a fresh interpreter decides (no inherited locks)
        result = _probe_spawned(model, module, timeout)
    if result is None:
        return f"model.tflite did not load and run within {timeout:g} s in a check process (a malformed model)"
    code, text = result
    if code == 0:
        return None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (f"model.tflite crashed the TFLite interpreter ({name}) when a check process loaded and ran "
                "it: the file is malformed")
    if code == 3:
        return f"model.tflite does not load: {clip(text, 400)}"
    return f"model.tflite cannot be checked (check process exit {code}): {clip(text, 400)}"


def probe_model(model: bytes, path=".", backend: str | None = None) -> None:
    """Load ``model`` and run it once on zeros in a child process; a crash, an error, a timeout or
    too much memory there raises :class:`BundleError` here.  Cached per sha256 and interpreter.

    The child is forked when this process runs a single Python thread (about 10 ms), else a fresh
    ``python -c`` (about 0.2 s here: Python, numpy and the interpreter start); a forked child that
    times out is retried as a fresh one before the model is refused.

    Raises :class:`edge.errors.InferenceError` when no interpreter is installed.
    """
    from edge.model.inference import interpreter_backend

    module = interpreter_backend(backend)[2].__module__
    key = (hashlib.sha256(model).hexdigest(), module)
    if key not in _PROBED:
        _PROBED[key] = _run_probe(model, module)
    if _PROBED[key]:
        raise BundleError(path, _PROBED[key], "re-export the bundle")
