"""docs/wiring.md and its drawing agree with the firmware (issue #27, "Docs").

``tools/draw-wiring`` draws docs/wiring.svg from the pins it reads in the firmware
(``avr/hal.c``, ``core/ng_config.h``: :func:`firmware_facts`).  Checked here: the script runs and
writes exactly the committed SVG, which parses and has no overlapping labels; the pins it reads agree
with the Arduino sketch, a second statement of them written by hand; and every pin the page and the
drawing name is one of those pins, named for what the firmware does with it.  No pin is written down
in this file.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "draw-wiring"
SVG = REPO / "docs" / "wiring.svg"
DOC = REPO / "docs" / "wiring.md"
FIRMWARE = REPO / "firmware_bridge" / "firmware"
SKETCH = FIRMWARE / "arduino" / "neurogrip_arm" / "neurogrip_arm.ino"
NS = "{http://www.w3.org/2000/svg}"

D_PIN = re.compile(r"\bD\d+\b")
A_PIN = re.compile(r"\bA\d+\b")


def _load_script():
    name = "draw_wiring"
    loader = importlib.machinery.SourceFileLoader(name, str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    sys.modules[name] = module  # dataclasses look their module up
    try:
        loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.fixture(scope="module")
def facts():
    return _load_script().firmware_facts()


@pytest.fixture(scope="module")
def svg_texts() -> list[dict]:
    root = ET.parse(SVG).getroot()
    assert root.tag == f"{NS}svg"
    out = []
    for t in root.iter(f"{NS}text"):
        out.append({"x": float(t.get("x")), "y": float(t.get("y")), "size": float(t.get("font-size")),
                    "anchor": t.get("text-anchor", "start"), "s": "".join(t.itertext())})
    return out


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_the_script_writes_the_committed_drawing(tmp_path):
    runs = []
    for k in range(2):
        out = tmp_path / f"wiring-{k}.svg"
        proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path, check=False)
        assert proc.returncode == 0, proc.stderr
        runs.append(out.read_bytes())
    assert runs[0] == runs[1], "tools/draw-wiring is not deterministic"
    assert runs[0] == SVG.read_bytes(), "docs/wiring.svg is not what tools/draw-wiring draws: run it and commit"


def test_the_drawing_parses_and_no_label_overlaps_another(svg_texts):
    root = ET.parse(SVG).getroot()
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert "monospace" in root.get("font-family")  # the widths below assume 0.6 em a character
    boxes = []
    for t in svg_texts:
        w = 0.6 * t["size"] * len(t["s"])
        x0 = {"start": t["x"], "middle": t["x"] - w / 2, "end": t["x"] - w}[t["anchor"]]
        box = (x0, t["y"] - 0.8 * t["size"], x0 + w, t["y"] + 0.25 * t["size"])
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height, f"{t['s']!r} leaves the canvas"
        assert t["size"] >= 12, f"{t['s']!r} is too small to read at 100 %"
        boxes.append((t["s"], box))
    for i, (a, (x0, y0, x1, y1)) in enumerate(boxes):
        for b, (u0, v0, u1, v1) in boxes[i + 1:]:
            assert not (x0 < u1 and u0 < x1 and y0 < v1 and v0 < y1), f"labels {a!r} and {b!r} overlap"


def test_the_pins_read_from_the_hal_agree_with_the_arduino_sketch(facts):
    sketch = SKETCH.read_text()
    hal_h = (FIRMWARE / "avr" / "hal.h").read_text()
    servo_us = re.search(r"static void servo_us\(.*?\n\}", sketch, re.DOTALL).group(0)
    assert [s.joint for s in facts.servos] == [0, 1]
    for s in facts.servos:
        number = int(s.pin[1:])
        assert f"pinMode({number}, OUTPUT);" in sketch, f"the sketch does not drive {s.pin} for the {s.name} servo"
        assert f"{s.output} ({s.pin}, joint {s.joint})" in hal_h
        register = f"OCR1{s.output[-1]}"
        if s.joint == 0:
            assert re.search(rf"if \(joint == 0\) {register} =", servo_us), f"the sketch's joint 0 is not {register}"
        else:
            assert re.search(rf"else {register} =", servo_us), f"the sketch's joint {s.joint} is not {register}"
    estop = int(facts.estop_pin[1:])
    assert f"pinMode({estop}, INPUT_PULLUP);" in sketch and f"digitalRead({estop}) == HIGH" in sketch
    assert f"The e-stop switch on {facts.estop_pin} ({facts.estop_port})" in hal_h
    assert "Serial.begin(NG_LINK_BAUD)" in sketch and facts.baud == 500_000
    assert f"A0..A{facts.n_adc - 1}" in sketch and facts.adc_reference == "AVcc" and "_BV(REFS0) | ch" in sketch


def test_the_drawing_names_exactly_the_firmwares_pins(facts, svg_texts):
    texts = [t["s"] for t in svg_texts]
    joined = "\n".join(texts)
    assert set(D_PIN.findall(joined)) == facts.digital_pins
    assert {p.rstrip("*") for p in A_PIN.findall(joined)} == set(facts.analog_pins)
    for s in facts.servos:
        assert f"{s.pin} · {s.output}" in texts and f"servo {s.joint}: {s.name}" in texts
    assert f"{facts.estop_pin} · pull-up" in texts and f"no switch: jumper {facts.estop_pin}-GND" in texts
    for i, a in enumerate(facts.analog_pins):  # sensor i+1 on A(i), the Nano-only ones starred
        assert (f"{a}*" if i >= 6 else a) in texts and f"EMG {i + 1}" in texts
    assert "never the Uno's 5V pin" in texts and "USB bridge: 16U2 or CH340" in texts


def test_the_page_names_exactly_the_firmwares_pins(facts, doc):
    assert set(D_PIN.findall(doc)) == facts.digital_pins, "the page names a digital pin the firmware does not use"
    analog = set(A_PIN.findall(doc))
    assert analog <= set(facts.analog_pins) and {"A0", facts.analog_pins[-1]} <= analog
    pins = doc.split("\n## Pins\n", 1)[1].split("\n## ", 1)[0]
    rows = {r.split("|")[1].strip(): r for r in pins.splitlines() if r.startswith("| ") and "---" not in r}
    for s in facts.servos:
        row = rows[f"{s.pin} ({s.output})"]
        assert f"servo {s.joint}, the {s.name}" in row and "hal_servo_us" in row
    assert "e-stop switch, normally closed, to GND" in rows[facts.estop_pin]
    assert "hal_estop_pressed" in rows[facts.estop_pin]
    assert f"A0–A{min(facts.n_adc, 6) - 1}" in rows and "Nano and Pro Mini only" in rows["A6, A7"]
    assert "nothing" in rows["AREF"] and "never the servos" in rows["5V"]
    assert len([r for r in rows if D_PIN.search(r)]) == len(facts.digital_pins)


def test_the_page_states_the_firmwares_numbers_and_links_resolve(facts, doc):
    flat = " ".join(doc.split())  # phrases may wrap
    baud = f"{facts.baud:,}".replace(",", " ")
    assert f"**{baud} baud, 8N1**" in flat and f"at {baud} baud" in flat
    udev = re.search(r'SYMLINK\+="([\w-]+)"', (REPO / "deploy" / "install.sh").read_text()).group(1)
    assert f"**`/dev/{udev}`**" in flat
    assert f"**{5000 / 1024:.1f} mV per count**" in flat and "**10 bits**" in flat
    assert f"{facts.pulse_min_us}–{facts.pulse_max_us} µs" in flat
    assert f"safe pose within {facts.watchdog_ms} ms" in flat
    assert f"released again ({facts.estop_release_ms} ms of clean contact)" in flat
    assert "--source 'arm:/dev/neurogrip-arm?channels=0-7&rate=200'" in doc and "issue #27" in doc
    assert "](wiring.svg)" in doc
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc):
        if not target.startswith(("http://", "https://")):
            assert (DOC.parent / target).exists(), f"docs/wiring.md links to {target}, which does not exist"


def test_the_page_is_linked_from_both_readmes():
    index = (REPO / "docs" / "README.md").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert sum("(wiring.md)" in line for line in index.splitlines()) == 1
    assert sum("(docs/wiring.md)" in line for line in readme.splitlines()) == 1
    assert len(readme.splitlines()) <= 350
