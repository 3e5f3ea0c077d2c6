"""edge.commands.doctor: every check passing and failing (fake modules in sys.modules, tmp files, patched os/grp),
run_checks and main's exit code and one-line-per-check output."""

import grp
import json
import os
import sys
import types

import pytest

from edge.commands import doctor
from edge.commands.doctor import Check


def fake_module(monkeypatch, name, **attrs):
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    monkeypatch.setitem(sys.modules, name, mod)
    return mod


class _RaisingFinder:
    """A meta-path finder that makes ``import <name>`` raise, as pylsl does without liblsl."""

    def __init__(self, name, exc):
        self.name, self.exc = name, exc

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.name:
            raise self.exc


# ------------------------------------------------------------------ python, numpy, tflite


def test_python():
    assert doctor.check_python((3, 11, 2)).ok
    assert "ai-edge-litert" in doctor.check_python((3, 12, 1)).detail
    c = doctor.check_python((3, 9, 18))
    assert not c.ok and "3.10" in c.fix
    assert doctor.check_python().ok  # this interpreter


@pytest.mark.parametrize("version, tflite, ok", [
    ("1.26.4", True, True), ("2.1.0", False, True), ("2.0.1", True, False), ("1.21.0", False, False),
])
def test_numpy(version, tflite, ok):
    c = doctor.check_numpy(version, tflite)
    assert c.ok is ok
    if version.startswith("2") and not ok:
        assert "numpy<2" in c.fix
    assert doctor.check_numpy().ok  # the edge env pins numpy<2


def test_tflite_prefers_tflite_runtime(monkeypatch):
    fake_module(monkeypatch, "tflite_runtime", __version__="2.14.0")
    fake_module(monkeypatch, "tflite_runtime.interpreter", Interpreter=object)
    c = doctor.check_tflite()
    assert c.ok and c.detail == "tflite_runtime.interpreter 2.14.0"


def test_tflite_falls_back_to_ai_edge_litert(monkeypatch):
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    fake_module(monkeypatch, "ai_edge_litert", __version__="1.2.0")
    fake_module(monkeypatch, "ai_edge_litert.interpreter", Interpreter=object)
    c = doctor.check_tflite()
    assert c.ok and c.detail.startswith("ai_edge_litert.interpreter 1.2.0")


def test_tflite_missing(monkeypatch):
    for name in ("tflite_runtime", "tflite_runtime.interpreter", "ai_edge_litert", "ai_edge_litert.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)
    c = doctor.check_tflite()
    assert not c.ok and "neurogrip[edge]" in c.fix


# ------------------------------------------------------------------ liblsl, pyserial


def test_liblsl_found(monkeypatch):
    fake_module(monkeypatch, "pylsl", library_version=lambda: 116, __version__="1.16.2")
    c = doctor.check_liblsl()
    assert c.ok and c.detail == "liblsl 1.16 (pylsl 1.16.2)"


def test_liblsl_missing(monkeypatch):
    monkeypatch.delitem(sys.modules, "pylsl", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_RaisingFinder("pylsl", RuntimeError(
        "LSL binary library file was not found.\n Please make sure"))] + sys.meta_path)
    c = doctor.check_liblsl()
    assert not c.ok and "liblsl not found" in c.detail
    assert "PYLSL_LIB" in c.fix and "cmake" in c.fix and "sccn/liblsl/releases" in c.fix
    assert "\n" not in c.line()


def test_pylsl_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pylsl", None)
    c = doctor.check_liblsl()
    assert not c.ok and "neurogrip[edge]" in c.fix


def test_pyserial(monkeypatch):
    assert doctor.check_pyserial().ok
    monkeypatch.setitem(sys.modules, "serial", None)
    c = doctor.check_pyserial()
    assert not c.ok and "neurogrip[edge]" in c.fix
    fake_module(monkeypatch, "serial")  # the unrelated 'serial' package shadows pyserial
    assert "pyserial" in doctor.check_pyserial().fix


# ------------------------------------------------------------------ serial port / dialout


@pytest.fixture
def pty_path():
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def test_serial_port_ok(pty_path):
    c = doctor.check_serial_port(pty_path)
    assert c.ok and "not opened" in c.detail
    assert doctor.check_serial_port("loop://").ok


def test_serial_port_missing_or_not_a_device(tmp_path):
    c = doctor.check_serial_port(str(tmp_path / "ttyACM9"))
    assert not c.ok and "does not exist" in c.detail and "/dev/serial/by-id" in c.fix
    f = tmp_path / "plain"
    f.write_text("")
    assert "not a character device" in doctor.check_serial_port(str(f)).detail


def test_serial_port_not_accessible(monkeypatch, pty_path):
    monkeypatch.setattr(doctor.os, "access", lambda *a, **k: False)
    c = doctor.check_serial_port(pty_path)
    assert not c.ok and "usermod -aG" in c.fix


@pytest.fixture
def unprivileged(monkeypatch):
    group = grp.struct_group(("dialout", "x", 20, ["alice"]))
    monkeypatch.setattr(doctor.os, "getuid", lambda: 1000)
    monkeypatch.setattr(doctor.os, "getegid", lambda: 1000)
    monkeypatch.setattr(doctor, "_user", lambda: "bob")
    monkeypatch.setattr(grp, "getgrnam", lambda name: group)
    return monkeypatch


def test_dialout_member(unprivileged):
    unprivileged.setattr(doctor.os, "getgroups", lambda: [1000, 20])
    c = doctor.check_serial_port(None)
    assert c.ok and "dialout" in c.detail


def test_dialout_not_member(unprivileged):
    unprivileged.setattr(doctor.os, "getgroups", lambda: [1000])
    c = doctor.check_serial_port(None)
    assert not c.ok and c.fix == doctor.FIX_DIALOUT


def test_dialout_added_but_not_logged_in_again(unprivileged):
    unprivileged.setattr(doctor.os, "getgroups", lambda: [1000])
    unprivileged.setattr(doctor, "_user", lambda: "alice")
    c = doctor.check_serial_port(None)
    assert not c.ok and "log out and in" in c.fix


def test_dialout_group_missing(unprivileged):
    def no_group(name):
        raise KeyError(name)

    unprivileged.setattr(grp, "getgrnam", no_group)
    assert not doctor.check_dialout().ok


def test_root_is_fine(monkeypatch):
    monkeypatch.setattr(doctor.os, "getuid", lambda: 0)
    assert doctor.check_dialout().ok


# ------------------------------------------------------------------ governor, dsp kernel


def _governors(tmp_path, *values):
    for i, v in enumerate(values):
        d = tmp_path / f"cpu{i}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(v + "\n")
    return str(tmp_path / "cpu*" / "cpufreq" / "scaling_governor")


def test_governor_performance(tmp_path):
    c = doctor.check_governor(_governors(tmp_path, "performance", "performance"))
    assert c.ok and not c.warn and c.status == "OK"


def test_governor_ondemand_warns(tmp_path):
    c = doctor.check_governor(_governors(tmp_path, "ondemand", "ondemand"))
    assert c.ok and c.warn and c.status == "WARN"
    assert "echo performance | sudo tee" in c.line()


def test_governor_not_available(tmp_path):
    c = doctor.check_governor(str(tmp_path / "nope" / "scaling_governor"))
    assert c.ok and not c.warn and "not available" in c.detail


def test_dsp_kernel(monkeypatch):
    import edge.chain.dsp

    c = doctor.check_dsp_kernel()
    assert c.ok and ("c" in edge.chain.dsp.available_backends()) == (not c.warn)
    monkeypatch.setattr(edge.chain.dsp, "available_backends", lambda: ("numpy",))
    c = doctor.check_dsp_kernel()
    assert c.ok and c.warn and "build-essential" in c.fix


# ------------------------------------------------------------------ bundle


def test_bundle_support_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "edge.bundle", None)
    c = doctor.check_bundle("/opt/neurogrip/bundle")
    assert not c.ok and "bundle support missing" in c.detail


def test_bundle_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": "something else"}))
    c = doctor.check_bundle(str(tmp_path))
    assert not c.ok and str(tmp_path) in c.detail and c.fix


class _FakeBundle:
    def __init__(self, activation, mode):
        self.task, self.labels, self.content_hash = "emotion", ["NEGATIVE", "NEUTRAL", "POSITIVE"], "sha256:ab"
        self.manifest = {"model": {"activation": activation}, "decision": {"mode": mode}}

    def decision_policy(self):
        from edge.decision import DecisionPolicy

        return DecisionPolicy.from_manifest(self.manifest["decision"], self.labels)


def test_bundle_ok_and_mode_mismatch(monkeypatch):
    fake_module(monkeypatch, "edge.bundle", load_bundle=lambda p: _FakeBundle("softmax", "multiclass"))
    c = doctor.check_bundle("b")
    assert c.ok and "task emotion" in c.detail and "multiclass" in c.detail
    fake_module(monkeypatch, "edge.bundle", load_bundle=lambda p: _FakeBundle("softmax", "multilabel"))
    c = doctor.check_bundle("b")
    assert not c.ok and "multiclass" in c.fix


def test_bundle_bad_decision_policy(monkeypatch):
    fake_module(monkeypatch, "edge.bundle", load_bundle=lambda p: _FakeBundle("softmax", "multi"))
    c = doctor.check_bundle("b")
    assert not c.ok and "mode" in c.detail


# ------------------------------------------------------------------ run_checks, main


def test_run_checks_names_and_crash_guard(monkeypatch):
    names = [c.name for c in doctor.run_checks()]
    assert names == ["python", "numpy", "tflite", "liblsl", "brainflow", "pyserial", "serial", "cpu governor",
                     "dsp kernel", "lsl scope"]
    assert [c.name for c in doctor.run_checks(bundle="/nowhere")][-1] == "bundle"

    def boom():
        raise OSError("sysfs went away")

    monkeypatch.setattr(doctor, "check_governor", boom)
    c = next(c for c in doctor.run_checks() if c.name == "cpu governor")
    assert not c.ok and "sysfs went away" in c.detail


def test_main_exit_code_and_one_line_per_check(monkeypatch, capsys):
    good = [Check("a", True, "fine"), Check("b", True, "meh", "do x", warn=True)]
    monkeypatch.setattr(doctor, "run_checks", lambda bundle=None, port=None, source=None: good)
    assert doctor.main([]) == 0
    assert capsys.readouterr().out.splitlines() == ["OK   a: fine", "WARN b: meh -- fix: do x"]

    seen = {}

    def failing(bundle=None, port=None, source=None):
        seen.update(bundle=bundle, port=port)
        return good + [Check("c", False, "broken\nbadly", "fix it")]

    monkeypatch.setattr(doctor, "run_checks", failing)
    assert doctor.main(["--bundle", "B", "--port", "/dev/ttyACM0"]) == 1
    assert seen == {"bundle": "B", "port": "/dev/ttyACM0"}
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[2] == "FAIL c: broken badly -- fix: fix it"


def test_main_for_real(capsys):
    rc = doctor.main(["--port", "loop://"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10  # python ... dsp kernel, lsl scope
    assert all(line.split()[0] in ("OK", "WARN", "FAIL") for line in lines)
    assert rc == (0 if not any(line.startswith("FAIL") for line in lines) else 1)


def test_the_lsl_discovery_scope_is_reported(tmp_path, monkeypatch):
    """Issue 24: where the producer is on this machine, liblsl's scope should keep other hosts out; the
    doctor says which scope a new process would use and where it comes from."""
    from edge.commands.doctor import check_lsl_scope

    cfg = tmp_path / "lsl_api.cfg"
    cfg.write_text("[multicast]\nResolveScope = machine\n")
    monkeypatch.setenv("LSLAPICFG", str(cfg))
    c = check_lsl_scope()
    assert c.ok and not c.warn and "this machine only" in c.detail and str(cfg) in c.detail
    cfg.write_text("[lab]\nSessionID = x\n")
    c = check_lsl_scope()
    assert c.ok and c.warn and "ResolveScope = site" in c.detail and "scope=machine" in c.fix
    c = check_lsl_scope("lsl:name=a&source_id=b&scope=machine")
    assert not c.warn and "source spec" in c.detail
    assert not check_lsl_scope("lsl:name=a&scope=galaxy").ok
    assert "not an LSL source" in check_lsl_scope("synthetic:?kind=grasp-lift").detail
