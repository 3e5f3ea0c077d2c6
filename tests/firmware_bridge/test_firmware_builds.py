"""The firmware's own builds: C unit tests (plain and sanitised), the AVR image, the Arduino sketch."""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess

import pytest

from firmware_bridge.sim import FIRMWARE_DIR


def _make(target: str) -> subprocess.CompletedProcess:
    r = subprocess.run(["make", "-C", str(FIRMWARE_DIR), target], capture_output=True, text=True, timeout=600,
                       check=False)
    assert r.returncode == 0, f"make {target} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.parametrize("target", ["host-test", "asan"])
def test_c_unit_tests(target):
    out = _make(target).stdout
    m = re.search(r"^(\d+) passed, (\d+) failed$", out, re.MULTILINE)
    assert m, out
    assert int(m.group(1)) > 400 and m.group(2) == "0"


def test_avr_build_fits_an_uno():
    if shutil.which("avr-gcc") is None:
        pytest.skip("avr-gcc missing: run firmware_bridge/firmware/install-deps.sh")
    out = _make("avr").stdout
    m = re.search(r"flash (\d+) B of 32768 .*static RAM (\d+) B of 2048", out)
    assert m, out
    flash, ram = int(m.group(1)), int(m.group(2))
    assert flash <= 28672 and ram <= 1024
    assert (FIRMWARE_DIR / "build" / "avr" / "neurogrip_arm.hex").stat().st_size > 0


def test_arduino_sketch_has_the_current_core():
    sketch_src = FIRMWARE_DIR / "arduino" / "neurogrip_arm" / "src"
    core = FIRMWARE_DIR / "core"
    names = sorted(p.name for p in core.iterdir() if p.suffix in (".c", ".h"))
    assert sorted(p.name for p in sketch_src.iterdir()) == names
    _, mismatch, errors = filecmp.cmpfiles(core, sketch_src, names, shallow=False)
    assert not mismatch and not errors, (f"the sketch's copy of {mismatch + errors} is stale: "
                                         "run make -C firmware_bridge/firmware arduino")


def test_arduino_sketch_compiles():
    if shutil.which("avr-g++") is None:
        pytest.skip("avr-g++ missing: run firmware_bridge/firmware/install-deps.sh")
    _make("arduino-check")
