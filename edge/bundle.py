"""The model bundle: the only thing that crosses from the workstation to the Pi.

A bundle is a directory (or a ``.zip`` of one) holding ``model.tflite`` and ``manifest.json``, and
``signature.json`` when it is signed (:mod:`edge.signing`: outside the content hash; whether an
unsigned bundle loads is this machine's trust policy).
The manifest (schema :data:`SCHEMA_VERSION`) carries everything the edge needs to run the
model without TensorFlow or scipy::

    schema, schema_version, task (a name registered in :mod:`edge.tasks`), created
    signal     {channels [names, in model order], fs, units, chain {fs, factor, fs_out,
                lowpass_hz, design, filter {format, coef/state/input frac bits, sections}}}
    window     {length, stride (output-rate samples), channel_scale [per channel],
                clip (bound of the normalised input), normalisation "demean-scale-clip",
                features (optional) {kind "bandpower", fs, bands, center, scale, clip}:
                the model then takes edge.model_input.window_features, standardised}
    model      {file, bytes, sha256, architecture, activation "sigmoid" | "softmax",
                input {shape, dtype "int8", scale, zero_point}, output {...}}
    labels     [names of the model's outputs]
    decision   the decision policy (edge.decision.DecisionPolicy.to_manifest())
    metrics    {protocol name: {...}} as evaluated when the bundle was made
    provenance {data, seed, code_version, ...}
    content_hash  "sha256:" + hex digest of the canonical manifest without this key
                  followed by the model bytes

:func:`load_bundle` refuses, with a :class:`BundleError` that says which check failed and
how to fix it, a bundle that is missing a file, truncated, tampered with (hash), of an
unknown schema version, or whose model's tensors disagree with the manifest.  The manifest's
schema (types, finiteness, ranges and sizes of every field) is :mod:`edge.manifest_schema`.

Untrusted input, bounded
------------------------
Every read is bounded before it is made, by the numbers of the ``bounds`` section of
:mod:`edge.config` (read at call time):

* a bundle directory holds two regular files (three when signed).  A symbolic link is refused,
  not followed (a bundle is copied with its files: ``cp -rL``), as is anything but a regular file
  (a FIFO would block the read); each file's size is checked with ``stat`` and the read stops at
  the bound;
* a ``.zip``: its own size, then its end-of-archive record (member count, central-directory
  size, no zip64) before :mod:`zipfile` parses anything; then no member twice, none outside the
  bundle (absolute or ``..``), none a link or encrypted, declared sizes (each and in total)
  within the bounds, and each member read in chunks that stop at its bound, so a zip bomb is
  refused after at most the bound has been inflated;
* the manifest is parsed by :func:`edge.manifest_schema.parse_manifest` (size, UTF-8, nesting, no
  key twice) and checked by :func:`edge.manifest_schema.validate`;
* the model is loaded and run once on zeros in a child process (:func:`probe_model`) before this
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
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge import config, manifest_schema, signing
from edge.errors import BundleError, InferenceError
from edge.manifest_schema import MANIFEST_FILE, MODEL_FILE, SCHEMA, SCHEMA_VERSION, clip
from edge.model_input import model_inputs
from edge.signing import SIGNATURE_FILE
from edge.tasks import get_task

__all__ = ["MANIFEST_FILE", "MODEL_FILE", "SCHEMA", "SCHEMA_VERSION", "Bundle", "BundleError", "canonical_json",
           "content_hash", "load_bundle", "probe_model", "validate_manifest", "write_bundle"]

def canonical_json(obj) -> bytes:
    """The byte form hashed for ``content_hash``: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(manifest: dict, model: bytes) -> str:
    body = {k: v for k, v in manifest.items() if k != "content_hash"}
    h = hashlib.sha256(canonical_json(body))
    h.update(model)
    return "sha256:" + h.hexdigest()


@dataclass
class Bundle:
    """A loaded, validated bundle.  Build the runtime stages from it with the helpers below."""

    path: Path
    manifest: dict
    model_bytes: bytes = field(repr=False)
    #: its ``signature.json`` document (checked where a trust store is installed), or None: unsigned
    signature: dict | None = field(default=None, repr=False)

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def task_spec(self):
        """The task's registry entry (:class:`edge.tasks.Task`): mode, metric, default commands."""
        return get_task(self.task)

    @property
    def channels(self) -> list[str]:
        return list(self.manifest["signal"]["channels"])

    @property
    def fs(self) -> float:
        return float(self.manifest["signal"]["fs"])

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def window(self) -> dict:
        return self.manifest["window"]

    @property
    def input_quant(self) -> tuple[float, int]:
        q = self.manifest["model"]["input"]
        return float(q["scale"]), int(q["zero_point"])

    @property
    def output_quant(self) -> tuple[float, int]:
        q = self.manifest["model"]["output"]
        return float(q["scale"]), int(q["zero_point"])

    @property
    def content_hash(self) -> str:
        return self.manifest["content_hash"]

    def signal_chain(self, backend: str = "auto"):
        """A fresh :class:`edge.chain.SignalChain` (state zero)."""
        from edge.chain import SignalChain

        return SignalChain.from_manifest(self.manifest["signal"]["chain"], len(self.channels), backend)

    def window_buffer(self, max_chunk: int = 1024):
        from edge.chain import WindowBuffer

        w = self.window
        return WindowBuffer(int(w["length"]), len(self.channels), int(w["stride"]), max_chunk)

    def model_input(self, windows):
        """Windows (k, length, C) → the float model input the manifest defines (see
        :func:`edge.model_input.model_inputs`): normalised windows, or standardised features."""
        return model_inputs(windows, self.window)

    def model_input_stage(self):
        """A :class:`edge.model_input.ModelInput` stage: windows → this bundle's int8 model input
        (``quantise(model_input(windows), *input_quant)``, in one C call for raw-window bundles)."""
        from edge.model_input import ModelInput

        return ModelInput(self.window, self.input_quant)

    def model(self, num_threads: int = 1, backend: str | None = None, reference_kernels: bool = False):
        """An :class:`edge.inference.Int8Model` of the bundle's model, probed in a child process
        first (:func:`probe_model`; once per process and model)."""
        from edge.inference import Int8Model

        probe_model(self.model_bytes, self.path, backend)
        return Int8Model(self.model_bytes, num_threads=num_threads, backend=backend,
                         reference_kernels=reference_kernels, head=self.head)

    @property
    def head(self):
        """A calibrated bundle's float last layer (:class:`edge.head.Head`), else None."""
        return head_of(self.manifest)

    def decision_policy(self):
        from edge.decision import DecisionPolicy

        return DecisionPolicy.from_manifest(self.manifest["decision"], self.labels)


def head_of(manifest: dict):
    """The manifest's calibrated head (:class:`edge.head.Head`), or None."""
    if manifest.get("head") is None:
        return None
    from edge.head import Head

    return Head.from_manifest(manifest["head"])


def write_bundle(out, manifest: dict, model: bytes, *, archive: bool | None = None) -> Path:
    """Write a bundle directory (or a ``.zip`` when ``out`` ends in .zip or ``archive``).

    Fills in ``schema``, ``schema_version``, ``model.file/bytes/sha256`` and ``content_hash``;
    returns the path written.  Refuses a manifest that :func:`validate_manifest` rejects.
    """
    out = Path(out)
    m = json.loads(json.dumps(manifest))  # a deep, JSON-clean copy
    m["schema"], m["schema_version"] = SCHEMA, SCHEMA_VERSION
    m.setdefault("model", {}).update(file=MODEL_FILE, bytes=len(model), sha256=hashlib.sha256(model).hexdigest())
    m["content_hash"] = content_hash(m, model)
    validate_manifest(m, out)
    text = json.dumps(m, indent=1, sort_keys=True).encode()
    if archive or (archive is None and out.suffix == ".zip"):
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(MANIFEST_FILE, text)
            z.writestr(MODEL_FILE, model)
        return out
    out.mkdir(parents=True, exist_ok=True)
    # a signature of what was there before no longer applies: the new bundle is plainly unsigned
    (out / signing.SIGNATURE_FILE).unlink(missing_ok=True)
    (out / MODEL_FILE).write_bytes(model)
    (out / MANIFEST_FILE).write_bytes(text)
    return out


def _too_big(where, what: str, size, limit: int, fix: str = "re-export the bundle") -> None:
    raise BundleError(where, f"{what} is {size} bytes, over the {limit}-byte limit", fix)


def _read_capped(fh, limit: int, where, what: str) -> bytes:
    """Read ``fh`` to its end in chunks, refusing it as soon as more than ``limit`` bytes came."""
    parts, n, chunk = [], 0, config.BUNDLE_READ_CHUNK_BYTES
    while True:
        part = fh.read(min(chunk, limit + 1 - n))
        if not part:
            return b"".join(parts)
        parts.append(part)
        n += len(part)
        if n > limit:
            _too_big(where, what, f"more than {limit}", limit)


_LIMITS = {MANIFEST_FILE: "BUNDLE_MAX_MANIFEST_BYTES", MODEL_FILE: "BUNDLE_MAX_MODEL_BYTES",
           SIGNATURE_FILE: "BUNDLE_MAX_SIGNATURE_BYTES"}


def _limit(name: str) -> int:
    return getattr(config, _LIMITS[name])


def _read_dir(path: Path) -> tuple[bytes, bytes, bytes | None]:
    out = []
    for name in (MANIFEST_FILE, MODEL_FILE, SIGNATURE_FILE):
        p, limit = path / name, _limit(name)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            if name == SIGNATURE_FILE:  # optional: edge.signing decides whether an unsigned bundle loads
                out.append(None)
                continue
            raise BundleError(path, f"{name} is missing", "copy the whole bundle directory again") from None
        except OSError as exc:
            raise BundleError(path, f"{name} cannot be read ({exc.strerror})", "check its permissions") from None
        if stat.S_ISLNK(st.st_mode):
            raise BundleError(path, f"{name} is a symbolic link; a bundle holds its own files",
                              "copy the bundle with its files, not links to them (cp -rL)")
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(path, f"{name} is not a regular file", "copy the whole bundle directory again")
        if st.st_size > limit:
            _too_big(path, name, st.st_size, limit)
        try:  # O_NOFOLLOW/O_NONBLOCK: no link or FIFO swapped in since lstat() is followed or waited on
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            raise BundleError(path, f"{name} cannot be read ({exc.strerror})", "copy the whole bundle again") from None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BundleError(path, f"{name} is not a regular file", "copy the whole bundle directory again")
            out.append(_read_capped(fh, limit, path, name))
    return out[0], out[1], out[2]


_EOCD = b"PK\x05\x06"          # end of central directory record (22 bytes + comment)
_ZIP64_LOCATOR = b"PK\x06\x07"  # zip64 end of central directory locator (20 bytes)


def _check_zip_directory(fh, size: int, path: Path) -> None:
    """Read the archive's end record the way zipfile finds it and bound what zipfile will read."""
    def refuse(problem):
        raise BundleError(path, f"not a readable bundle archive ({problem}); it may be truncated",
                          "copy it again and compare its size with the original")

    if size < 22:
        refuse("too short for a zip archive")
    tail_len = min(size, 22 + (1 << 16))
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    if tail[-22:-18] == _EOCD and tail[-2:] == b"\0\0":
        at = len(tail) - 22
    else:
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < 22:
            refuse("no end-of-archive record")
    _, _, _, _, n_members, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", tail[at:at + 22])
    if n_members == 0xFFFF or 0xFFFFFFFF in (cd_size, cd_offset) or tail[max(0, at - 20):at][:4] == _ZIP64_LOCATOR:
        raise BundleError(path, "the archive is a zip64 archive, which a bundle never is", "re-export the bundle")
    if n_members > config.BUNDLE_MAX_MEMBERS:
        raise BundleError(path, f"the archive has {n_members} members, over the limit of "
                                f"{config.BUNDLE_MAX_MEMBERS}", "re-export the bundle")
    if cd_size > config.BUNDLE_MAX_ZIP_DIRECTORY_BYTES:
        _too_big(path, "the archive's directory", cd_size, config.BUNDLE_MAX_ZIP_DIRECTORY_BYTES)
    fh.seek(0)


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
        return f"a member outside the bundle ({clip(repr(name))})"
    if stat.S_ISLNK(info.external_attr >> 16):
        return f"a symbolic link {clip(repr(name))}"
    if info.flag_bits & 0x1:
        return f"an encrypted member {clip(repr(name))}"
    return None


def _read_zip(path: Path, size: int) -> tuple[bytes, bytes, bytes | None]:
    if size > config.BUNDLE_MAX_ARCHIVE_BYTES:
        _too_big(path, "the archive", size, config.BUNDLE_MAX_ARCHIVE_BYTES)
    try:
        with open(path, "rb") as fh:
            _check_zip_directory(fh, size, path)
            with zipfile.ZipFile(fh) as z:
                infos = z.infolist()
                if len(infos) > config.BUNDLE_MAX_MEMBERS:
                    raise BundleError(path, f"the archive has {len(infos)} members, over the limit of "
                                            f"{config.BUNDLE_MAX_MEMBERS}", "re-export the bundle")
                by_name = {}
                for info in infos:
                    problem = _member_problem(info)
                    if problem is None and info.filename in by_name:
                        problem = f"the member {clip(repr(info.filename))} twice"
                    if problem:
                        raise BundleError(path, f"the archive has {problem}", "re-export the bundle")
                    by_name[info.filename] = info
                for name in (MANIFEST_FILE, MODEL_FILE):
                    info = by_name.get(name)
                    if info is None:
                        raise BundleError(path, f"the archive has no {name}", "re-export the bundle")
                    if info.file_size > _limit(name):
                        _too_big(path, name, info.file_size, _limit(name))
                signature = by_name.get(SIGNATURE_FILE)  # optional, like the directory's
                if signature is not None and signature.file_size > _limit(SIGNATURE_FILE):
                    _too_big(path, SIGNATURE_FILE, signature.file_size, _limit(SIGNATURE_FILE))
                total = sum(i.file_size for i in infos)
                total_limit = sum(_limit(name) for name in _LIMITS)
                if total > total_limit:
                    _too_big(path, "the archive's content", total, total_limit)
                out = []
                for name in (MANIFEST_FILE, MODEL_FILE, SIGNATURE_FILE):
                    if name not in by_name:  # only the signature may be missing here
                        out.append(None)
                        continue
                    with z.open(by_name[name]) as member:
                        out.append(_read_capped(member, _limit(name), path, name))
                return out[0], out[1], out[2]
    except BundleError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError, NotImplementedError,
            ValueError, zlib.error, struct.error) as exc:
        raise BundleError(path, f"not a readable bundle archive ({clip(str(exc))}); it may be truncated",
                          "copy it again and compare its size with the original") from None


def _read_files(path: Path) -> tuple[bytes, bytes, bytes | None]:
    """(manifest.json, model.tflite, signature.json or None), each read within its bound."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        raise BundleError(path, "no such bundle", "pass the directory or .zip written by 'neurogrip train --out'") \
            from None
    if stat.S_ISDIR(st.st_mode):
        return _read_dir(path)
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(path, "not a bundle directory or .zip file", "pass the directory or .zip written by "
                                                                      "'neurogrip train --out'")
    return _read_zip(path, st.st_size)


def _fail(path, problem, fix="re-export the bundle with 'neurogrip train'"):
    raise BundleError(path, problem, fix)


def validate_manifest(m: dict, path=".") -> None:
    """Check a manifest against its schema (:func:`edge.manifest_schema.validate`: types, finite
    numbers, ranges, sizes, consistency, the decision section); raises :class:`BundleError`."""
    manifest_schema.validate(m, path)


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
    # built as edge.inference.new_interpreter builds the runtime's: built-in kernels, no default delegate
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
    from edge.inference import interpreter_backend

    module = interpreter_backend(backend)[2].__module__
    key = (hashlib.sha256(model).hexdigest(), module)
    if key not in _PROBED:
        _PROBED[key] = _run_probe(model, module)
    if _PROBED[key]:
        raise BundleError(path, _PROBED[key], "re-export the bundle")


def _check_model(path: Path, m: dict, model_bytes: bytes) -> None:
    from edge.inference import Int8Model

    try:
        probe_model(model_bytes, path)
        model = Int8Model(model_bytes, head=head_of(m))
    except InferenceError as exc:
        raise BundleError(path, f"model.tflite does not load: {exc}", "re-export the bundle") from None
    for side, shape, dtype, quant in (("input", model.input_shape, model.input_dtype, model.input_quant),
                                      ("output", model.output_shape, model.output_dtype, model.output_quant)):
        t = m["model"][side]
        if list(shape) != list(t["shape"]) or dtype != np.int8:
            _fail(path, f"model.tflite {side} tensor is {dtype} {list(shape)} but the manifest says int8 "
                        f"{list(t['shape'])}")
        if not (np.isclose(quant[0], t["scale"], rtol=1e-6) and quant[1] == t["zero_point"]):
            _fail(path, f"model.tflite {side} quantisation (scale {quant[0]:.6g}, zero point {quant[1]}) "
                        f"differs from the manifest ({t['scale']:.6g}, {t['zero_point']})")


def load_bundle(path, *, check_model: bool = True, trust: signing.TrustPolicy | None = None) -> Bundle:
    """Load and validate a bundle directory or archive.

    Parameters
    ----------
    path : str or Path
    check_model : bool
        Also load the model in the installed TFLite interpreter and compare its tensors with
        the manifest (needs ``tflite_runtime`` or ``ai_edge_litert``).
    trust : edge.signing.TrustPolicy or None
        Which signatures to require; None: this machine's trust store and opt-out, read from the
        environment at each call (:meth:`edge.signing.TrustPolicy.from_environment`).

    Raises
    ------
    BundleError
        Saying which check failed and how to fix it; :class:`edge.errors.SignatureError` for the
        signature (unsigned, untrusted key, changed after signing).
    """
    path = Path(path)
    raw_manifest, model_bytes, raw_signature = _read_files(path)
    m = manifest_schema.parse_manifest(raw_manifest, path)
    manifest_schema.validate(m, path, decision=False)
    model = m["model"]
    if len(model_bytes) != model["bytes"]:
        _fail(path, f"model.tflite is {len(model_bytes)} bytes but the manifest says {model['bytes']}"
                    + (" (truncated copy)" if len(model_bytes) < model["bytes"] else ""),
              "copy the bundle again")
    if hashlib.sha256(model_bytes).hexdigest() != model["sha256"]:
        _fail(path, "model.tflite does not match its sha256 in the manifest (corrupted or replaced)",
              "copy the bundle again or re-export it")
    if content_hash(m, model_bytes) != m["content_hash"]:
        _fail(path, "content hash mismatch: the manifest was edited after export",
              "re-export the bundle instead of editing manifest.json")
    # The signature is checked over the hashes just recomputed, before anything is built from the
    # manifest and before the model runs, even in a child process.
    signing.check_signature(path, raw_manifest, m, model_bytes, raw_signature, trust)
    manifest_schema.check_decision(m, path)
    from edge.chain import SignalChain
    try:
        SignalChain.from_manifest(m["signal"]["chain"], len(m["signal"]["channels"]))
    except (TypeError, ValueError, OverflowError) as exc:
        _fail(path, f"signal.chain is not usable: {clip(str(exc), 400)}")
    if check_model:
        _check_model(path, m, model_bytes)
    signature = None
    if raw_signature is not None:
        try:
            signature = json.loads(raw_signature)
        except (ValueError, RecursionError):  # not verified here (no trust store): unreadable = none
            signature = None
    return Bundle(path, m, model_bytes, signature if isinstance(signature, dict) else None)

