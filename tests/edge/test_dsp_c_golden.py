"""The firmware's C kernel, compiled standalone for the host, is bit-exact with edge/chain/dsp.py's numpy
reference on golden vectors; and it builds warning-free for the ATmega328P."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge.chain.dsp import FixedPointSOS
from tests.conftest import require_tool
from training.filter_design import FilterSpec, decimation_filter, design_chain

DSP = Path(__file__).resolve().parents[2] / "firmware_bridge" / "firmware" / "dsp"
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _cases():
    rng = np.random.default_rng(7)
    eeg = rng.normal(0, 30, (600, 4)).cumsum(axis=0) * 0.1 + rng.normal(400, 200, 4)
    yield "bp+notch 500 Hz", design_chain([FilterSpec("bandpass", (0.5, 30.0)), FilterSpec("notch", (50.0,))],
                                          500.0), eeg, 14, 7
    yield "hp 0.1 o4", design_chain([FilterSpec("highpass", (0.1,), 4)], 500.0), eeg, 14, 600
    yield "lp 5 o4 Muse", design_chain([FilterSpec("lowpass", (5.0,), 4)], 256.0), eeg[:, :2], 12, 1
    yield "decimation AA", decimation_filter(4, 500.0), eeg, 20, 33
    yield "saturating", design_chain([FilterSpec("lowpass", (40.0,), 2)], 500.0), eeg * 1e3, 14, 50


def _write_golden(path: Path) -> int:
    lines = []
    n = 0
    for _, sos, x, frac, chunk in _cases():
        f = FixedPointSOS(sos, x.shape[1], input_frac_bits=frac, backend="numpy")
        xi = f.quantise_input(x)
        sat_in = f.saturations  # input clipping happens in Python, before the kernel
        y = f.process_int(xi)
        lines.append(f"{f.n_sections} {x.shape[1]} {x.shape[0]} {frac} {chunk}")
        for c, p, q in zip(f.coeffs, f.pre_shift, f.fb_shift):
            lines.append(" ".join(str(int(v)) for v in c) + f" {int(p)} {int(q)}")
        lines.append(" ".join(map(str, xi.ravel().tolist())))
        lines.append(" ".join(map(str, y.ravel().tolist())))
        lines.append(str(f.saturations - sat_in))
        n += 1
    path.write_text(f"{n}\n" + "\n".join(lines) + "\n")
    return n


def test_host_c_kernel_matches_python_golden_vectors(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler on PATH: install gcc (make test installs it on Debian)")
    exe = tmp_path / "test_ng_sos"
    subprocess.run([cc, *CFLAGS, f"-I{DSP}", str(DSP / "ng_sos.c"), str(DSP / "test_ng_sos.c"), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    golden = tmp_path / "golden.txt"
    n = _write_golden(golden)
    out = subprocess.run([str(exe), str(golden)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.strip() == f"{n} passed, 0 failed"


def test_saturating_case_really_saturates():
    *_, (_, sos, x, frac, _) = list(_cases())
    f = FixedPointSOS(sos, x.shape[1], input_frac_bits=frac)
    f.process_int(f.quantise_input(x))
    assert f.saturations > 0


def test_kernel_builds_for_atmega328p_without_warnings(tmp_path):
    avr = require_tool("avr-gcc")
    subprocess.run([avr, "-mmcu=atmega328p", "-Os", *CFLAGS, "-c", str(DSP / "ng_sos.c"),
                    "-o", str(tmp_path / "ng_sos.o")], check=True, capture_output=True, text=True)
