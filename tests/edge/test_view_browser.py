"""The live view in a real browser: Debian's Chromium, headless, driven through its ChromeDriver by the W3C
WebDriver protocol (plain HTTP and JSON: the standard library is the client, no Selenium).

``run``: a real runtime on a replayed real recording (../shared/data) driving the simulated arm (the
firmware's host build behind a pty); the page shows live data, its plots and decisions change, the
e-stop without the token is refused with nothing sent, the e-stop with it is latched by the firmware
and reported by the runtime, and the deliberate start resumes.  ``record``: ``neurogrip record --view``
in its own process, and the cue on the page changes as the session goes.

Screenshots go to the test's tmp folder; with ``NEUROGRIP_VIEW_SCREENSHOTS=DIR`` also to DIR (the ones in
docs/ are made so: ``NEUROGRIP_VIEW_SCREENSHOTS=docs pytest tests/edge/test_view_browser.py``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, require_tool
from tests.edge.test_view_server import GL, LiveRun

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element key
REAL = "grasp_lift_segments/subj1_series1_data.csv.gz"


class Browser:
    """Headless Chromium through ChromeDriver (W3C WebDriver over HTTP)."""

    def __init__(self, width: int, height: int):
        chromium = require_tool("chromium")
        driver = require_tool("chromedriver")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.profile = tempfile.mkdtemp(prefix="ng-chromium-")
        self.proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        self.sid = None
        try:
            self._wait_ready()
            # the flags this machine's closed network needs (no background connections), as root (no sandbox)
            args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-quic", "--hide-scrollbars", f"--user-data-dir={self.profile}",
                    f"--window-size={width},{height}"]
            caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
                "binary": chromium, "args": args}}}}
            self.sid = self._call("POST", "/session", caps)["sessionId"]
            self._call("POST", f"/session/{self.sid}/timeouts", {"script": 20000, "pageLoad": 20000})
        except BaseException:
            self.close()
            raise

    def _wait_ready(self) -> None:
        t = time.monotonic() + 30
        while time.monotonic() < t:
            try:
                if self._call("GET", "/status").get("ready"):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("chromedriver did not start")

    def _call(self, method: str, path: str, body=None):
        req = urllib.request.Request(self.base + path, method=method, headers={"Content-Type": "application/json"},
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise AssertionError(f"WebDriver {method} {path}: HTTP {e.code}: {e.read()[:800]!r}") from None

    def _s(self, method: str, path: str, body=None):
        return self._call(method, f"/session/{self.sid}{path}", body)

    def open(self, url: str) -> None:
        self._s("POST", "/url", {"url": url})

    def js(self, script: str, *args):
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script: str, *args):
        """``script`` calls ``done(value)`` (its last argument) when finished."""
        return self._s("POST", "/execute/async", {"script": "const done = arguments[arguments.length - 1];\n" + script,
                                                  "args": list(args)})

    def click(self, css: str) -> None:
        eid = self._s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]
        self._s("POST", f"/element/{eid}/click", {})

    def text(self, css: str) -> str:
        return self.js("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._s("GET", "/screenshot")))
        keep = os.environ.get("NEUROGRIP_VIEW_SCREENSHOTS")
        if keep:
            shutil.copy(path, Path(keep) / path.name)
        return path

    def wait(self, cond, timeout: float = 20.0, what: str = ""):
        t = time.monotonic() + timeout
        while True:
            v = cond()
            if v:
                return v
            if time.monotonic() > t:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def close(self) -> None:
        if self.sid is not None:
            try:
                self._call("DELETE", f"/session/{self.sid}")
            except (OSError, AssertionError):
                pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def _png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


DRAWN = """return [document.getElementById('signal').toDataURL(), document.getElementById('outputs').toDataURL(),
                   document.querySelector('#decisions tbody').textContent, window.neurogrip.latest.seq];"""


def test_the_run_view_in_chromium_live_data_estop_and_start(shared_data, tmp_path):
    from edge.bundle import load_bundle
    from edge.recordings import read_recording
    from firmware_bridge.protocol import Fault

    path = shared_data / REAL
    if not path.is_file():
        pytest.skip(f"{path} not found")
    browser = Browser(1280, 1500)
    run = LiveRun(load_bundle(GL), read_recording(path), tmp_path)
    try:
        estops = []
        real = run.link.estop
        run.link.estop = lambda: (real(), estops.append(1))[0]
        browser.open(run.server.url)
        browser.wait(lambda: browser.js("return window.neurogrip && window.neurogrip.updates") >= 3, what="live data")
        assert browser.text("#conn") == "live" and "grasp-lift" in browser.text("#mode")
        # the token is read, then taken out of the address bar and the history (kept for this tab)
        assert run.token not in browser.js("return location.href")
        first = browser.js(DRAWN)
        browser.wait(lambda: browser.js(DRAWN)[3] > first[3] + 15, what="more updates")
        browser.wait(lambda: browser.js(DRAWN)[2] != first[2], timeout=20, what="the decisions to change")
        later = browser.js(DRAWN)
        assert later[0] != first[0], "the plotted signal did not change"
        assert later[1] != first[1], "the plotted outputs did not change"
        assert "sent" in later[2] and "fired" in later[2]
        assert browser.text("#safety") == "in control" and "p99" in browser.text("#latency-card")
        _png(browser.screenshot(tmp_path / "live-view.png"))
        # without the token, or with it only in the URL (what another site could send): refused, nothing sent
        codes = browser.js_async("""
            const t = arguments[0];
            Promise.all([fetch('/api/estop', {method: 'POST'}), fetch('/api/estop?token=' + t, {method: 'POST'}),
                         fetch('/state.json')]).then((rs) => done(rs.map((r) => r.status)));""", run.token)
        assert codes == [401, 401, 401]
        assert estops == [] and Fault.ESTOP not in run.link.status().faults
        assert not run.rt.safety_state()[2]
        # with it: the button
        browser.click("#estop")
        browser.wait(lambda: estops == [1], what="the e-stop to be sent")
        assert Fault.ESTOP in run.link.status().faults  # the simulated firmware latched it
        run.wait(lambda: "e-stopped" in run.rt.safety_state()[2], what="the runtime to hold")
        assert any(e["event"] == "estop" for e in run.events())  # ... and reported it
        browser.wait(lambda: "e-stopped" in (browser.text("#safety") or ""), what="the page to show the e-stop")
        browser.wait(lambda: "ESTOP" in (browser.text("#arm") or ""), what="the page to show the firmware's latch")
        assert "latched" in browser.text("#action-msg")
        _png(browser.screenshot(tmp_path / "live-view-estopped.png"))
        sent = run.rt.summary.commands_sent
        # the deliberate start: a button, then a confirmation
        browser.click("#start")
        assert browser.js("return !document.getElementById('confirm').classList.contains('hidden')")
        browser.click("#confirm-start")
        run.wait(lambda: not run.rt.safety_state()[2], what="control to resume")
        assert Fault.ESTOP not in run.link.status().faults
        browser.wait(lambda: browser.text("#safety") == "in control", what="the page to show control again")
        run.wait(lambda: run.rt.summary.commands_sent > sent, timeout=20, what="commands after the start")
    finally:
        browser.close()
        run.close()


def test_the_estop_is_on_the_page_and_works_when_the_event_stream_never_connects(tmp_path, monkeypatch):
    """Every event stream taken (503): the page has had no update, yet its E-STOP is there and latches the
    firmware, and the page says the stream is refused rather than pretending to be live."""
    from edge import config as C
    from edge.bundle import load_bundle
    from edge.recordings.synthetic import grasp_lift_series
    from firmware_bridge.protocol import Fault

    browser = Browser(1024, 900)
    monkeypatch.setattr(C, "VIEW_MAX_CLIENTS", 0)
    run = LiveRun(load_bundle(GL), grasp_lift_series(1, 7, seed=3, n_trials=8), tmp_path)
    try:
        estops = []
        real = run.link.estop
        run.link.estop = lambda: (real(), estops.append(1))[0]
        browser.open(run.server.url)
        browser.wait(lambda: browser.js("return !!window.neurogrip"), what="the page's script")
        time.sleep(1.0)  # (its stream is refused meanwhile)
        assert browser.js("return window.neurogrip.updates") == 0
        assert not browser.js("return document.getElementById('controls').classList.contains('hidden')"), \
            "no E-STOP on the page until an update arrives"
        assert not browser.js("return document.getElementById('start').disabled")  # the arm's state is unknown
        browser.click("#estop")
        browser.wait(lambda: estops == [1], what="the e-stop to be sent")
        assert Fault.ESTOP in run.link.status().faults
        browser.wait(lambda: "latched" in (browser.text("#action-msg") or ""), what="the page to say so")
        run.wait(lambda: "e-stopped" in run.rt.safety_state()[2], what="the runtime to hold")
        browser.wait(lambda: "retrying" in (browser.text("#conn") or ""), what="the page to say the stream is refused")
    finally:
        browser.close()
        run.close()


def test_the_record_cue_page_in_chromium_follows_the_session(shared_data, tmp_path):
    path = shared_data / REAL
    if not path.is_file():
        pytest.skip(f"{path} not found")
    browser = Browser(412, 915)  # a phone
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-m", "edge.cli", "record", "--source", f"replay:{path}?speed=1",
                          "--paradigm", "grasp-lift", "--out", str(tmp_path / "session.xdf"), "--view", "127.0.0.1:0"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = p.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[\w-]+)", line)
        assert m, f"no URL printed: {line!r}"
        browser.open(m.group(1))
        browser.wait(lambda: browser.js("return window.neurogrip && window.neurogrip.updates") >= 2, what="live data")
        assert browser.text("#mode").startswith("record")
        assert browser.js("return document.getElementById('controls').classList.contains('hidden')")  # no arm
        first = browser.text("#cue-text")
        assert first and first != "…"
        size = browser.js("return parseFloat(getComputedStyle(document.getElementById('cue-text')).fontSize)")
        assert size >= 40, f"the cue is {size}px: not readable at arm's length"
        left = browser.text("#cue-left")
        assert re.fullmatch(r"\d+\.\d s", left)
        browser.wait(lambda: browser.text("#cue-text") != first, timeout=10, what="the next cue")
        assert re.match(r"cue \d+ of 150", browser.text("#cue-progress"))
        assert float(browser.js("return parseFloat(document.getElementById('cue-bar').style.width)")) > 0
        _png(browser.screenshot(tmp_path / "live-view-record.png"))
    finally:
        browser.close()
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
