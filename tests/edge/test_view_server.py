"""The live view's server against a real runtime: a real bundle on a paced replay, the firmware's host build
behind a pty as the arm, real HTTP over loopback.  The access rule (401 without the token on every route,
the e-stop and start only with the token in a header), the e-stop reaching the firmware and the runtime,
the snapshot and the stream, and a client that reads nothing slowing nothing.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
import urllib.parse

import pytest

from benchmarks.common import forced_decider
from edge import config as C
from edge.bundle import load_bundle
from edge.runtime import JsonLog, Runtime, RuntimeConfig
from edge.sources import ReplaySource
from edge.synthetic import grasp_lift_series
from edge.view import attach
from tests.conftest import FIXTURE_BUNDLES

GL = FIXTURE_BUNDLES / "grasp-lift"


def quiet(*args, **kwargs) -> None:
    pass


class LiveRun:
    """A :class:`Runtime` on a paced replay of ``recording`` driving the simulated arm (the firmware's host
    build behind a pty, :func:`firmware_bridge.sim.start`), commands flowing (the bench's forced policy),
    its live view served on a free loopback port, the loop on its own thread."""

    def __init__(self, bundle, recording, tmp_path, *, speed: float = 1.0, arm: bool = True):
        from firmware_bridge.link import ArmLink
        from firmware_bridge.sim import start

        self.sim = start("host") if arm else None
        self.link = None
        if arm:
            self.link = ArmLink(self.sim.pty)
            self.link.open()
        self.log_path = tmp_path / "run.jsonl"
        self.log = JsonLog(self.log_path)
        self.rt = Runtime(bundle, ReplaySource(recording, speed=speed), self.link, RuntimeConfig(budget_ms=1000),
                          self.log)
        self.rt.pipeline.decider = forced_decider(bundle, recording)
        self.server = attach(self.rt, "127.0.0.1:0", say=quiet)
        u = urllib.parse.urlsplit(self.server.url)
        self.host, self.port, self.token = u.hostname, u.port, self.server.token
        self.thread = threading.Thread(target=self.rt.run, kwargs={"max_seconds": 300}, daemon=True)
        self.thread.start()

    def request(self, method: str, path: str, headers=None, token: str | None = "query", body: bytes | None = None,
                timeout: float = 10.0):
        """(status, headers, body); ``token``: "query" (in the URL), "header", or None."""
        headers = dict(headers or {})
        if token == "query":
            path += ("&" if "?" in path else "?") + "token=" + self.token
        elif token == "header":
            headers["X-Neurogrip-Token"] = self.token
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read() if path.split("?")[0] != "/events" else b""
        finally:
            c.close()

    def state(self) -> dict:
        status, _, body = self.request("GET", "/state.json")
        assert status == 200
        return json.loads(body)

    def wait(self, cond, timeout: float = 10.0, what: str = "") -> None:
        t = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > t:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def close(self) -> None:
        self.rt.stop()
        self.thread.join(timeout=30)
        self.server.close()
        self.log.close()
        if self.link is not None:
            self.link.close()
            self.sim.stop()


def stream_reader(run: LiveRun, seconds: float) -> list[dict]:
    """Read ``/events`` for ``seconds``: the snapshots received, in order."""
    s = socket.create_connection((run.host, run.port), timeout=5)
    s.sendall(f"GET /events?token={run.token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf, out, t_end = b"", [], time.monotonic() + seconds
    while time.monotonic() < t_end:
        try:
            got = s.recv(1 << 16)
        except TimeoutError:
            break
        if not got:
            break
        buf += got
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b"data: "):
                    out.append(json.loads(line[6:]))
    s.close()
    return out


@pytest.fixture(scope="module")
def gl():
    return load_bundle(GL)


@pytest.fixture(scope="module")
def rec():
    return grasp_lift_series(1, 7, seed=3, n_trials=8)


@pytest.fixture
def live(gl, rec, tmp_path):
    run = LiveRun(gl, rec, tmp_path)
    try:
        run.wait(lambda: run.server.state.frames > 2, what="the first frames")
        yield run
    finally:
        run.close()


# --------------------------------------------------------------------------- the access rule


ROUTES = [("GET", "/"), ("GET", "/index.html"), ("GET", "/state.json"), ("GET", "/events"), ("GET", "/favicon.ico"),
          ("GET", "/nothing"), ("HEAD", "/"), ("POST", "/api/estop"), ("POST", "/api/start"), ("POST", "/"),
          ("PUT", "/"), ("DELETE", "/state.json"), ("OPTIONS", "/api/estop"), ("PATCH", "/")]


def test_every_request_without_the_token_gets_401_and_nothing_else(live):
    estops = []
    real = live.link.estop
    live.link.estop = lambda: (real(), estops.append(1))[0]
    wrong = "x" * len(live.token)
    for method, path in ROUTES:
        for how in ({"token": None}, {"token": None, "headers": {"X-Neurogrip-Token": wrong}},
                    {"token": None, "headers": {"Authorization": f"Bearer {wrong}"}}):
            status, headers, body = live.request(method, path + ("?token=" + wrong if "headers" not in how else ""),
                                                 **how)
            assert status == 401, (method, path, how, status)
            assert headers.get("WWW-Authenticate", "").startswith("Bearer")
            assert b"channels" not in body and b"<script" not in body
    assert estops == [] and not live.rt.safety_state()[2]
    from firmware_bridge.protocol import Fault

    assert Fault.ESTOP not in live.link.status().faults  # nothing reached the firmware


def test_with_the_token_the_page_is_served_whole_and_fetches_nothing_from_elsewhere(live):
    status, headers, page = live.request("GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    text = page.decode()
    assert not re.search(r"https?://", text), "the page names another server"
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(?!data:)", text), "the page loads a file"
    assert "/*SCRIPT*/" not in text and "EventSource" in text  # its script and style are inlined
    assert live.request("GET", "/", token="header")[0] == 200  # the header works too
    assert live.request("GET", "/nothing")[0] == 404
    assert live.request("PUT", "/")[0] == 405


def test_state_json_is_the_latest_update_of_the_stream_at_a_bounded_rate(live):
    got = stream_reader(live, 2.5)
    snap = live.state()
    assert len(got) >= 5, "the stream did not update"
    assert len(got) <= 2.5 * C.VIEW_MAX_UPDATE_HZ + 2  # never over 20 updates a second
    seqs = [g["seq"] for g in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert snap["seq"] >= seqs[-1] and set(snap) == set(got[-1])
    assert snap["mode"] == "run" and snap["task"] == "grasp-lift" and len(snap["channels"]) == 32
    assert snap["runtime"]["windows"] > 0 and snap["arm"]["connected"] and "position_deg" in snap["arm"]
    assert snap["latency"]["n"] > 0 and snap["latency"]["stages"]["infer"]["p99"] > 0
    assert snap["signal"]["n"] > 10 and snap["outputs"]["n"] > 5
    assert any(d["reason"] == "fired" and d["sent"] for d in snap["decisions"])


# --------------------------------------------------------------------------- e-stop and start


def test_estop_needs_the_token_in_a_header_then_the_firmware_latches_it_and_start_resumes(live):
    from firmware_bridge.protocol import Fault

    estops = []
    real = live.link.estop
    live.link.estop = lambda: (real(), estops.append(1))[0]
    # the token in the URL only (what another site's form could send), or from another origin: refused
    status, _, body = live.request("POST", "/api/estop")
    assert status == 401 and b"header" in body
    status, _, body = live.request("POST", "/api/estop", token="header", headers={"Origin": "http://evil.example"})
    assert status == 403
    assert estops == [] and Fault.ESTOP not in live.link.status().faults
    sent_before = live.rt.summary.commands_sent
    assert sent_before > 0
    # with the header: sent now, latched by the firmware, held by the runtime, reported
    status, _, body = live.request("POST", "/api/estop", token="header")
    assert status == 200 and json.loads(body)["ok"] is True and estops == [1]
    assert Fault.ESTOP in live.link.status().faults
    live.wait(lambda: "e-stopped" in live.rt.safety_state()[2], what="the runtime to hold the e-stop")
    live.wait(lambda: "ESTOP" in (live.state()["arm"].get("faults") or []), what="the view to show the latch")
    snap = live.state()
    assert snap["runtime"]["safe"] and "e-stopped" in snap["runtime"]["holds"]
    held = live.rt.summary.commands_sent
    time.sleep(1.0)
    assert live.rt.summary.commands_sent == held, "a command was sent while e-stopped"
    assert any(e["event"] == "estop" and "live view" in e["by"] for e in live.events())
    assert live.rt.summary.faults.get("arm", 0) >= 1
    # the deliberate start: the latch cleared, control resumes
    status, _, body = live.request("POST", "/api/start", token="header")
    assert status == 202 and json.loads(body)["ok"] is True
    live.wait(lambda: not live.rt.safety_state()[2], what="the hold to be released")
    assert Fault.ESTOP not in live.link.status().faults
    live.wait(lambda: live.rt.summary.commands_sent > held, timeout=15, what="commands after the start")


def test_without_an_arm_the_buttons_say_so(gl, rec, tmp_path):
    run = LiveRun(gl, rec, tmp_path, arm=False)
    try:
        status, _, body = run.request("POST", "/api/estop", token="header")
        assert status == 409 and "no arm" in json.loads(body)["error"]
        assert run.state()["arm"] is None
    finally:
        run.close()


# --------------------------------------------------------------------------- slow clients


def _stalled_client(run: LiveRun) -> socket.socket:
    """Asks for the stream and never reads a byte (a receive buffer as small as the kernel allows)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect((run.host, run.port))
    s.sendall(f"GET /events?token={run.token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def test_a_client_that_reads_nothing_is_dropped_and_the_others_go_on(live, monkeypatch):
    monkeypatch.setattr(C, "VIEW_SEND_TIMEOUT_S", 1.0)
    stalled = [_stalled_client(live) for _ in range(3)]
    try:
        live.wait(lambda: live.server.hub.clients == 3, what="the stalled clients to connect")
        got = stream_reader(live, 2.0)  # a reading client meanwhile gets every update
        assert len(got) >= 5
        live.wait(lambda: live.server.hub.clients == 0, timeout=60, what="the stalled clients to be dropped")
        windows = live.rt.pipeline.windows
        live.wait(lambda: live.rt.pipeline.windows > windows + 10, what="the loop to go on")
    finally:
        for s in stalled:
            s.close()


def _replay_rate(gl, rec, view_clients: int | None, stalled: int = 0) -> float:
    """Realtime factor of a fast replay through the runtime: no view (None), or the view with
    ``view_clients`` reading clients and ``stalled`` clients that read nothing."""
    rt = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000))
    server, socks, readers = None, [], []
    if view_clients is not None:
        server = attach(rt, "127.0.0.1:0", say=quiet)
        run = type("R", (), {"host": "127.0.0.1", "port": server.port, "token": server.token})
        socks = [_stalled_client(run) for _ in range(stalled)]
        readers = [threading.Thread(target=stream_reader, args=(run, 30.0), daemon=True) for _ in range(view_clients)]
        for t in readers:
            t.start()
        time.sleep(1.5)  # the stalled clients' buffers fill: their threads block in send
    try:
        s = rt.run()
    finally:
        for x in socks:
            x.close()
        if server is not None:
            server.close()
    return s.realtime_factor


def test_clients_that_read_nothing_do_not_slow_the_loop(gl):
    rec = grasp_lift_series(1, 8, seed=0, n_trials=20)
    without, stalled = [], []
    for _ in range(3):  # alternated; the best of each (the run least disturbed by the rest of the machine)
        without.append(_replay_rate(gl, rec, None))
        stalled.append(_replay_rate(gl, rec, 1, stalled=3))
    # A loop that waited for a stalled client would stop for VIEW_SEND_TIMEOUT_S; this bound only leaves
    # room for a shared test machine's noise.  The bench measures the figure (benchmarks/view.py, goal 5 %).
    assert max(stalled) >= 0.7 * max(without), (without, stalled)
