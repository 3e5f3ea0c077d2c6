"""``neurogrip doctor``: check that this machine can run the edge, one line per check with its fix.

Usage: ``neurogrip doctor [--bundle DIR] [--port /dev/ttyACM0] [--source SPEC]``; exit status 0 when
every check passed, 1 otherwise.  Lines read ``OK``, ``WARN`` (works, but not as recommended) or
``FAIL`` followed by what was found and, unless OK, the fix.  ``--source`` opens the source (e.g.
``lsl:type=EEG``) and shows what it declares (name, type, source_id, host, rate, each channel's
label, type and unit) and what ``neurogrip run`` will do with it: the bundle channel each stream
channel feeds (with ``--bundle``), the unit conversion factor, or why it would be refused.

Only the standard library is imported at module level: numpy, pylsl, brainflow, pyserial, the TFLite
interpreter and the bundle reader are imported inside their checks, so a broken install of one of
them is reported instead of crashing the doctor.  The serial port is never opened (opening can
reset an Arduino, see ``firmware_bridge/link.py``): its permissions are checked instead.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import importlib.metadata
import importlib.util
import os
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

GOVERNOR_GLOB = "/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"
MIN_PYTHON = (3, 10)

FIX_EDGE_EXTRA = ("pip install 'neurogrip[edge]' (tflite-runtime on Python <= 3.11, ai-edge-litert on newer "
                  "Pythons; see docs/deploy-pi.md)")
FIX_LIBLSL = ("install liblsl (pip's pylsl may ship none for this platform, e.g. 64-bit Raspberry Pi OS): "
              "'sudo apt install ./liblsl-<version>-<os>_arm64.deb' with a .deb for your OS from "
              "https://github.com/sccn/liblsl/releases, or build it: 'git clone https://github.com/sccn/liblsl "
              "&& cd liblsl && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build "
              "&& sudo cmake --install build && sudo ldconfig', or set PYLSL_LIB=/path/to/liblsl.so")
FIX_BRAINFLOW = ("only for brainflow: sources (OpenBCI, Muse over BrainFlow): build BrainFlow for this machine and "
                 "install its python_package into neurogrip's environment (docs/deploy-pi.md, BrainFlow)")
FIX_DIALOUT = "sudo usermod -aG dialout $USER, then log out and in again"
FIX_GOVERNOR = ("for steady latency: echo performance | sudo tee " + GOVERNOR_GLOB +
                " (persistent: see docs/deploy-pi.md, CPU governor)")


@dataclass
class Check:
    """The result of one check.

    ``ok`` False fails the doctor; ``warn`` marks a passing check that is not as recommended
    (printed as WARN, with its fix, without failing).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    warn: bool = False

    @property
    def status(self) -> str:
        return "FAIL" if not self.ok else ("WARN" if self.warn else "OK")

    def line(self) -> str:
        """One line: status, name, detail and (unless OK) the fix."""
        text = f"{self.name}: {self.detail}"
        if self.fix and (not self.ok or self.warn):
            text += f" -- fix: {self.fix}"
        return f"{self.status:<4} " + " ".join(text.split())  # exception messages may span lines


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- checks
def check_python(version_info: tuple | None = None) -> Check:
    v = tuple(sys.version_info[:3] if version_info is None else version_info[:3])
    text = ".".join(map(str, v))
    if v[:2] < MIN_PYTHON:
        return Check("python", False, f"Python {text} is too old",
                     f"use Python >= {'.'.join(map(str, MIN_PYTHON))} (Raspberry Pi OS Bookworm ships 3.11)")
    note = "" if v[:2] <= (3, 11) else " (tflite-runtime has no wheels for it: the edge extra uses ai-edge-litert)"
    return Check("python", True, f"Python {text}{note}")


def _tflite_installed() -> bool:
    try:
        return importlib.util.find_spec("tflite_runtime") is not None
    except (ValueError, ImportError):
        return "tflite_runtime" in sys.modules and sys.modules["tflite_runtime"] is not None


def check_numpy(numpy_version: str | None = None, tflite_installed: bool | None = None) -> Check:
    if numpy_version is None:
        try:
            import numpy
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return Check("numpy", False, f"cannot import numpy ({_one_line(exc)})", FIX_EDGE_EXTRA)
        numpy_version = numpy.__version__
    tfl = _tflite_installed() if tflite_installed is None else tflite_installed
    try:
        major, minor = (int(x) for x in numpy_version.split(".")[:2])
    except ValueError:
        return Check("numpy", True, f"numpy {numpy_version} (version not parsed)", warn=True)
    if (major, minor) < (1, 24):
        return Check("numpy", False, f"numpy {numpy_version} is older than 1.24", "pip install 'numpy>=1.24,<2'")
    if major >= 2 and tfl:
        return Check("numpy", False, f"numpy {numpy_version} with tflite-runtime installed: tflite-runtime 2.14 "
                     "is built against numpy 1.x and fails to load", "pip install 'numpy<2'")
    return Check("numpy", True, f"numpy {numpy_version}")


_TFLITE_BACKENDS = (("tflite_runtime.interpreter", "tflite-runtime"),
                    ("ai_edge_litert.interpreter", "ai-edge-litert"))


def check_tflite() -> Check:
    errors = []
    for module, dist in _TFLITE_BACKENDS:
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - ImportError, or numpy ABI errors from the extension
            errors.append(f"{module}: {_one_line(exc)}")
            continue
        if not hasattr(mod, "Interpreter"):
            errors.append(f"{module}: has no Interpreter")
            continue
        top = sys.modules.get(module.split(".")[0])
        version = getattr(top, "__version__", None) or _dist_version(dist) or "unknown version"
        return Check("tflite", True, f"{module} {version}")
    text = "; ".join(errors)
    fix = "pip install 'numpy<2'" if "numpy" in text.lower() and "no module named" not in text.lower() \
        else FIX_EDGE_EXTRA
    return Check("tflite", False, f"no TFLite interpreter importable ({text})", fix)


def check_liblsl() -> Check:
    from edge.sources.lsl_config import use_bundled_liblsl

    use_bundled_liblsl()  # where the runtime finds it (deploy/install.sh's copy), doctor looks too
    try:
        import pylsl
    except ModuleNotFoundError as exc:
        if exc.name == "pylsl":
            return Check("liblsl", False, "pylsl is not installed", FIX_EDGE_EXTRA)
        return Check("liblsl", False, f"cannot import pylsl ({_one_line(exc)})", FIX_LIBLSL)
    except Exception as exc:  # noqa: BLE001 - pylsl raises RuntimeError when liblsl is missing
        return Check("liblsl", False, f"liblsl not found ({_one_line(exc)})", FIX_LIBLSL)
    try:
        v = int(pylsl.library_version())
    except Exception as exc:  # noqa: BLE001
        return Check("liblsl", False, f"liblsl not usable ({_one_line(exc)})", FIX_LIBLSL)
    return Check("liblsl", True, f"liblsl {v // 100}.{v % 100} (pylsl {getattr(pylsl, '__version__', '?')})")


def check_brainflow() -> Check:
    """BrainFlow's native library loads (pip's brainflow carries x86-64 Linux libraries only).

    A WARN, not a FAIL: only ``brainflow:`` sources need it; ``--source brainflow:...`` fails on it."""
    if importlib.util.find_spec("brainflow") is None:
        return Check("brainflow", True, "brainflow is not installed: no brainflow: sources", FIX_EDGE_EXTRA, warn=True)
    from edge.sources.boards import load_brainflow

    board_shim, problem, _ = load_brainflow()
    if problem:
        return Check("brainflow", True, f"{problem}: brainflow: sources cannot open", FIX_BRAINFLOW, warn=True)
    return Check("brainflow", True, f"BrainFlow {board_shim.BoardShim.get_version()} (native library loaded)")


def check_pyserial() -> Check:
    try:
        import serial
    except Exception as exc:  # noqa: BLE001
        return Check("pyserial", False, f"cannot import serial ({_one_line(exc)})", FIX_EDGE_EXTRA)
    if not hasattr(serial, "serial_for_url"):
        return Check("pyserial", False, "the 'serial' module is not pyserial (another package named serial?)",
                     "pip uninstall serial && pip install pyserial")
    return Check("pyserial", True, f"pyserial {getattr(serial, '__version__', '?')}")


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return os.environ.get("USER", "this user")


def check_dialout() -> Check:
    name = "serial"
    if not hasattr(os, "getuid"):
        return Check(name, True, "not a POSIX system: serial permissions not checked")
    if os.getuid() == 0:
        return Check(name, True, "running as root: serial ports are accessible")
    import grp

    try:
        group = grp.getgrnam("dialout")
    except KeyError:
        return Check(name, False, "this system has no group 'dialout'",
                     "add the user to the group that owns the port (ls -l /dev/ttyACM0) or pass --port")
    user = _user()
    if group.gr_gid in os.getgroups() or group.gr_gid == os.getegid():
        return Check(name, True, f"user {user} is in group dialout")
    if user in group.gr_mem:
        return Check(name, False, f"user {user} was added to group dialout but this login session predates it",
                     "log out and in again (or reboot)")
    return Check(name, False, f"user {user} is not in group dialout: serial ports are not accessible",
                 FIX_DIALOUT)


def check_serial_port(port: str | None = None) -> Check:
    """Without ``port``: group membership; with it: the device exists and is readable and writable."""
    if port is None:
        return check_dialout()
    name = "serial"
    if "://" in port:
        return Check(name, True, f"{port} is a pyserial URL: no device node to check")
    p = Path(port)
    if not p.exists():
        return Check(name, False, f"{port} does not exist",
                     "plug in the arm's controller; 'ls /dev/ttyACM* /dev/ttyUSB* /dev/serial/by-id/' lists ports")
    st = p.stat()
    if not stat.S_ISCHR(st.st_mode):
        return Check(name, False, f"{port} is not a character device (not a serial port)",
                     "pass the serial device, e.g. /dev/ttyACM0 or /dev/serial/by-id/...")
    if not os.access(p, os.R_OK | os.W_OK):
        try:
            import grp

            owner = grp.getgrgid(st.st_gid).gr_name
        except (ImportError, KeyError):
            owner = str(st.st_gid)
        fix = FIX_DIALOUT if owner == "dialout" else f"sudo usermod -aG {owner} $USER, then log out and in again"
        return Check(name, False, f"{port} is not readable and writable by {_user()} (group {owner})", fix)
    return Check(name, True, f"{port} is readable and writable (not opened)")


def check_governor(pattern: str = GOVERNOR_GLOB) -> Check:
    files = sorted(glob.glob(pattern))
    govs = []
    for f in files:
        try:
            govs.append(Path(f).read_text().strip())
        except OSError:
            pass
    if not govs:
        return Check("cpu governor", True, "not available (no cpufreq on this system)")
    kinds = sorted(set(govs))
    if kinds == ["performance"]:
        return Check("cpu governor", True, f"performance on {len(govs)} core(s)")
    return Check("cpu governor", True, f"{', '.join(kinds)} on {len(govs)} core(s); performance recommended",
                 FIX_GOVERNOR, warn=True)


def check_dsp_kernel() -> Check:
    try:
        from edge.chain.dsp import available_backends
    except Exception as exc:  # noqa: BLE001
        return Check("dsp kernel", False, f"cannot import edge.chain.dsp ({_one_line(exc)})", FIX_EDGE_EXTRA)
    backends = available_backends()
    if "c" in backends:
        return Check("dsp kernel", True, f"fixed-point C kernel loaded (backends: {', '.join(backends)})")
    return Check("dsp kernel", True, "C kernel not built: using the bit-identical but slower numpy kernel",
                 "install a C compiler (sudo apt install build-essential python3-dev) and reinstall neurogrip "
                 "from source so setup.py builds edge/_ng_sos", warn=True)


def check_bundle(path: str) -> Check:
    name = "bundle"
    try:
        from edge.bundle import load_bundle
    except ImportError as exc:
        return Check(name, False, f"bundle support missing ({_one_line(exc)})",
                     "update neurogrip: this version cannot read model bundles")
    from edge.errors import EdgeError

    fix = ("copy a complete bundle (model.tflite + manifest.json) exported by this neurogrip version: "
           "scp -r bundle pi@host:/opt/neurogrip/bundle")
    try:
        bundle = load_bundle(path)
        policy = bundle.decision_policy() if hasattr(bundle, "decision_policy") else None
    except (EdgeError, OSError) as exc:
        problem = getattr(exc, "problem", None)
        detail = f"{path}: {problem}" if problem else (str(exc) if str(path) in str(exc) else f"{path}: {exc}")
        return Check(name, False, detail, getattr(exc, "fix", None) or fix)
    manifest = getattr(bundle, "manifest", {})
    activation = manifest.get("model", {}).get("activation") if isinstance(manifest, Mapping) else None
    if policy is not None and activation == "softmax" and policy.mode != "multiclass":
        return Check(name, False, f"{path}: a softmax (multi-class) model with decision mode {policy.mode!r}",
                     "re-export the bundle with decision mode 'multiclass'")
    parts = [f"task {getattr(bundle, 'task', '?')}", f"labels {','.join(getattr(bundle, 'labels', []))}"]
    if policy is not None:
        parts.append(f"decision {policy.mode}")
    h = getattr(bundle, "content_hash", None)
    if h:
        parts.append(f"{str(h)[:19]}")
    return Check(name, True, f"{path} loaded ({'; '.join(parts)})")


def _guarded(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a doctor must report, not crash
        return Check(name, False, f"check crashed ({_one_line(exc)})", "report this as a neurogrip bug")


def _source_line(source) -> str:
    if getattr(source, "kind", "") != "lsl":
        return repr(source)
    return (f"LSL stream {source.name!r}, type {source.type!r}, source_id {source.source_id!r}, host "
            f"{source.hostname!r}, {len(source.channels)} ch @ {source.fs:g} Hz")


def _unit_text(unit, target: str) -> str:
    """A channel's declared unit and its factor to ``target``."""
    from edge.errors import SourceError
    from edge.signals.units import is_declared, parse_unit

    if not is_declared(unit):
        return "unit not declared"
    try:
        u, t = parse_unit(unit), parse_unit(target)
    except SourceError:
        return f"unit {unit!r} (unknown)"
    if u is None or t is None:
        return f"unit {unit!r}" + ("" if (u is None) == (t is None) else f" (no conversion to {target})")
    mne = f"MNE exponent: 1e{int(unit)} V, " if str(unit).strip().lstrip("+-").isdigit() else ""
    return f"unit {unit!r} ({mne}x{u / t:g} to {target})"


def check_source(spec: str, bundle_path: str | None = None) -> list[Check]:
    """What the source of ``spec`` declares and what neurogrip will do with it, one line per finding."""
    from types import SimpleNamespace

    from edge.errors import EdgeError
    from edge.signals.channels import is_non_signal
    from edge.signals.units import (
        amplitude_problem,
        bundle_unit,
        describe,
        is_declared,
        parse_unit,
        plan_units,
    )
    from edge.sources import open_source

    try:
        source = open_source(spec)
    except (EdgeError, OSError) as exc:
        return [Check("source", False, f"{spec}: {exc}")]
    try:
        checks = [Check("source", True, _source_line(source))]
        target = None
        if bundle_path is not None:
            try:
                from edge.bundle import load_bundle

                target = load_bundle(bundle_path)
            except (EdgeError, OSError):
                pass  # the bundle check says why
        if target is None:  # what a uV bundle reading every signal channel would get (or, for a source whose
            # channels all declare one unit of the device's own, such as the arm's myo, a bundle in that unit)
            own, units = {str(u).strip() for u in source.units if is_declared(u)}, "uV"
            try:
                units = own.pop() if len(own) == 1 and parse_unit(next(iter(own))) is None else units
            except EdgeError:
                pass  # an unknown unit: the uV bundle's check below says so
            target = SimpleNamespace(channels=[c for c, t in zip(source.channels, source.channel_types)
                                               if not is_non_signal(t)], manifest={"signal": {"units": units}},
                                     fs=source.fs)
        unit = bundle_unit(target)
        try:
            if bundle_path is not None:  # the source's own start-up check (the arm's front end: rate, inputs)
                source.check_bundle(target)
            plan, problem = plan_units(source, target), None
        except EdgeError as exc:
            plan, problem = None, str(exc)
        feeds = {} if plan is None else {int(j): target.channels[k] for k, j in enumerate(plan.idx)}
        for j, label in enumerate(source.channels):
            text = (f"label {label!r}, type {source.channel_types[j] or 'not declared'}, "
                    f"{_unit_text(source.units[j], unit)}")
            if bundle_path is not None and plan is not None:
                text += f" → bundle channel {feeds[j]}" if j in feeds else ", not used by the bundle"
            checks.append(Check(f"channel {j + 1}", True, text))
        if plan is None:
            checks.append(Check("input", False, problem))
            return checks
        if abs(float(source.fs) - float(target.fs)) > 1e-6 * float(target.fs):
            checks.append(Check("input", False, f"the stream runs at {source.fs:g} Hz but the bundle expects "
                                f"{float(target.fs):g} Hz", "use a bundle trained for this headset"))
            return checks
        aliased = sum(source.channels[j] != name for j, name in feeds.items())
        factors = sorted({f"x{f:g}" for f in plan.factor})
        conv = "values unchanged" if plan.factors is None else f"values {', '.join(factors)} to {unit}"
        who = f"the bundle's {len(plan.idx)} channel(s)" if bundle_path else f"{len(plan.idx)} signal channel(s)"
        checks.append(Check("input", True, f"{who} found by name" + (f" ({aliased} by alias)" if aliased else "")
                            + f"; {conv}" + ("; scale= given" if source.scale is not None else "")))
        if plan.unchecked:
            try:
                x = source.first_second()
            except EdgeError as exc:
                checks.append(Check("amplitude", False, str(exc)))
                return checks
            if x is not None:
                mad, why = amplitude_problem(x[:, plan.idx[plan.unchecked]], unit, describe(source), source)
                checks.append(Check("amplitude", why is None, why or f"no unit declared for {len(plan.unchecked)} "
                                    f"channel(s); median absolute deviation {mad:.3g} over the first second is "
                                    f"plausible for {unit}"))
        return checks
    finally:
        source.close()


def check_lsl_scope(source_spec: str | None = None) -> Check:
    """How far liblsl looks for streams (its ``ResolveScope``): ``machine`` keeps every other host's
    streams out of sight, which is what a producer on this Pi (a local bridge, the arm's own front
    end) needs; wider scopes are reported with the fix (docs/security.md)."""
    from edge.errors import SourceSpecError
    from edge.sources.lsl_config import scope_in_force
    from edge.sources.spec import parse_spec

    try:
        scope = None
        if source_spec is not None:
            scheme, _, params = parse_spec(source_spec)
            if scheme != "lsl":
                return Check("lsl scope", True, f"not an LSL source ({scheme}:): no stream discovery")
            scope = params.get("scope")
        value, where = scope_in_force(scope)
    except (SourceSpecError, TypeError) as exc:
        return Check("lsl scope", False, f"the source spec cannot be read ({_one_line(exc)})")
    if value == "machine":
        return Check("lsl scope", True, f"liblsl looks for streams on this machine only (ResolveScope = machine, "
                                        f"from {where}): no other host's stream can be found")
    return Check("lsl scope", True, f"liblsl looks for streams beyond this machine (ResolveScope = {value}, from "
                                    f"{where}): any host on the network can publish a matching stream",
                 "if the producer runs on this Pi, add scope=machine to the lsl: spec (or ResolveScope = machine "
                 "in /etc/lsl_api/lsl_api.cfg; docs/security.md)", warn=True)


def run_checks(bundle: str | None = None, port: str | None = None, source: str | None = None) -> list[Check]:
    """Run every check; ``bundle`` and ``port`` add the bundle check and a device check; ``source``
    (a spec) is the one whose LSL discovery scope is reported."""
    checks = [
        ("python", check_python), ("numpy", check_numpy), ("tflite", check_tflite),
        ("liblsl", check_liblsl), ("brainflow", check_brainflow), ("pyserial", check_pyserial),
        ("serial", lambda: check_serial_port(port)), ("cpu governor", check_governor),
        ("dsp kernel", check_dsp_kernel), ("lsl scope", lambda: check_lsl_scope(source)),
    ]
    if bundle is not None:
        checks.append(("bundle", lambda: check_bundle(bundle)))
    return [_guarded(n, f) for n, f in checks]


def main(argv: list[str] | None = None) -> int:
    """``neurogrip doctor``: print one line per check; 0 if all passed, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="neurogrip doctor",
                                     description="Check that this machine can run the neurogrip edge.")
    parser.add_argument("--bundle", help="model bundle directory to load and validate")
    parser.add_argument("--port", help="serial device of the arm (default: check group dialout)")
    parser.add_argument("--source", help="a source spec (e.g. lsl:type=EEG): show what the stream declares "
                        "and what neurogrip will do with it (with --bundle: which bundle channel each feeds)")
    args = parser.parse_args(argv)
    checks = run_checks(bundle=args.bundle, port=args.port, source=args.source)
    if args.source:
        try:
            checks += check_source(args.source, args.bundle)
        except Exception as exc:  # noqa: BLE001 - a doctor must report, not crash
            checks.append(Check("source", False, f"check crashed ({_one_line(exc)})", "report this as a neurogrip bug"))
    for c in checks:
        print(c.line())
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
