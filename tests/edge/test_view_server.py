"""The live view's server against a real runtime: a real bundle on a paced replay, the firmware's host build
behind a pty as the arm, real HTTP over loopback.  The access rule (401 without the token on every route,
the e-stop and start only with the token in a header), the e-stop reaching the firmware and the runtime
(and winning over a start), the snapshot and the stream, a client that reads nothing slowing nothing,
and a stranger without the token unable to keep the e-stop out (slow or oversized headers, many
connections).
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import statistics
import sys
import threading
import time
import urllib.parse

import pytest

from benchmarks.common import forced_decider
from edge import config as C
from edge.bundle import load_bundle
from edge.recordings.synthetic import grasp_lift_series
from edge.runtime import JsonLog, Runtime, RuntimeConfig
from edge.sources import ReplaySource
from edge.view import attach
from tests.conftest import FIXTURE_BUNDLES

GL = FIXTURE_BUNDLES / "grasp-lift"
#: Replay throughput with three stalled clients (and one reading) over without the view, median of three
#: alternated runs each: measured 0.92-0.95 on the shared 2-core test machine, but single runs spread
#: 0.73-1.28 (one undisturbed run without the view at 346x realtime against 271-274x for the others made a
#: best-of-three at 0.8 fail in CI).  A loop that waited for a stalled client would stop for
#: VIEW_SEND_TIMEOUT_S (two minutes here) in a run of well under a second: a ratio below 0.01.  The bound
#: keeps a wide margin from both that and the noise; the bench measures the real figure (goal 5 %).
BOUND = 0.5


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


def _raw(run, data: bytes, *, source: str = "127.0.0.1", wait: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data`` on a fresh connection; (what came back, whether the server closed the connection)."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(wait)
    s.connect((run.host, run.port))
    got, closed = b"", False
    try:
        s.sendall(data)
        t_end = time.monotonic() + wait
        while time.monotonic() < t_end:
            chunk = s.recv(1 << 16)
            if not chunk:
                closed = True
                break
            got += chunk
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        pass
    finally:
        s.close()
    return got, closed


def test_a_refused_request_closes_its_connection(live):
    # HTTP/1.1 keeps a connection open by default: after a 401 (or 403, 400, 431) this one is closed
    got, closed = _raw(live, b"GET /state.json HTTP/1.1\r\nHost: x\r\n\r\n", wait=3.0)
    assert got.startswith(b"HTTP/1.1 401") and closed, got[:200]
    got, closed = _raw(live, (f"POST /api/estop HTTP/1.1\r\nHost: x\r\nOrigin: null\r\n"
                              f"X-Neurogrip-Token: {live.token}\r\n\r\n").encode(), wait=3.0)
    assert got.startswith(b"HTTP/1.1 403") and closed, got[:200]  # Origin: null (a sandboxed frame) refused
    # what is not HTTP, and methods this server does not know, are refused before the token is looked at
    got, closed = _raw(live, b"hello there\r\n\r\n", wait=3.0)
    assert got.startswith(b"HTTP/1.1 400") and closed
    got, closed = _raw(live, b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", wait=3.0)
    assert got.startswith(b"HTTP/1.1 501") and closed and b"channels" not in got
    assert not live.rt.safety_state()[2]


@pytest.mark.parametrize("how", ["lines", "bytes"])
def test_an_oversized_header_gets_431_and_the_connection_closed(live, how):
    if how == "lines":  # many short fields
        fields = "".join(f"X-Pad-{i}: {i}\r\n" for i in range(C.VIEW_MAX_HEADER_LINES + 8))
    else:  # one long field
        fields = "X-Pad: " + "a" * (C.VIEW_MAX_HEADER_BYTES + 1024) + "\r\n"
    request = f"GET /state.json?token={live.token} HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode()
    got, closed = _raw(live, request)
    assert got.startswith(b"HTTP/1.1 431") and closed, got[:200]
    assert b"channels" not in got  # even with the token: nothing is served


def test_a_header_at_the_limits_is_served(live):
    fields = "".join(f"X-Pad-{i}: {i}\r\n" for i in range(C.VIEW_MAX_HEADER_LINES - 2))  # + request line, Host
    request = f"GET /state.json?token={live.token} HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode()
    got, closed = _raw(live, request)
    assert got.startswith(b"HTTP/1.1 200") and b"channels" in got and closed  # (one request per connection)


def test_the_header_has_a_deadline_however_slowly_it_trickles(live, monkeypatch):
    monkeypatch.setattr(C, "VIEW_REQUEST_TIMEOUT_S", 1.0)
    s = socket.create_connection((live.host, live.port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\n")
    t0, closed = time.monotonic(), False
    try:
        while time.monotonic() - t0 < 6:  # a byte every 0.2 s: no single read ever waits 1 s
            s.sendall(b"X-Slow: 1\r\n"[:1])
            time.sleep(0.2)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    if not closed:
        s.settimeout(0.5)
        try:
            closed = s.recv(100) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            pass
    s.close()
    assert closed and time.monotonic() - t0 < 4, "a header that never ends held its connection"


def test_a_client_holding_many_slow_connections_cannot_keep_the_estop_out(live):
    """Another address (127.0.0.2) opens more connections than the server takes and feeds each a header
    byte now and then: the e-stop from this address is still answered at once, and latched."""
    from firmware_bridge.protocol import Fault

    assert live.server._httpd.request_queue_size >= C.VIEW_MAX_CONNECTIONS
    socks, stop = [], threading.Event()
    for _ in range(C.VIEW_MAX_CONNECTIONS + 8):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.settimeout(2)
        try:
            s.connect((live.host, live.port))
            s.sendall(b"GET / HTTP/1.1\r\n")
        except OSError:
            pass
        socks.append(s)

    def trickle():
        while not stop.wait(0.3):
            for s in socks:
                try:
                    s.send(b"X")
                except OSError:
                    pass

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    try:
        time.sleep(1.0)  # every connection is taken, or refused
        t0 = time.monotonic()
        status, _, body = live.request("POST", "/api/estop", token="header", timeout=5)
        assert status == 200 and time.monotonic() - t0 < 3, (status, body)
        assert Fault.ESTOP in live.link.status().faults
    finally:
        stop.set()
        feeder.join(timeout=5)
        for s in socks:
            s.close()


def test_request_lines_are_logged_without_the_token(live, caplog):
    with caplog.at_level("DEBUG", logger="edge.view.handler"):
        assert live.request("GET", "/state.json")[0] == 200
        assert live.request("GET", "/nothing?x=1")[0] == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "edge.view.handler"]
    assert any("/state.json" in m for m in lines) and not any(live.token in m for m in lines), lines


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
    for origin in ("http://evil.example", "null"):
        status, _, body = live.request("POST", "/api/estop", token="header", headers={"Origin": origin})
        assert status == 403, origin
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


def test_a_start_then_an_estop_leaves_the_firmware_latched(live):
    """A stop always wins: a start asked for just before an e-stop (each answered before the next is sent)
    must not clear the e-stop's latch when the loop gets to both in one turn."""
    from firmware_bridge.protocol import Fault

    for attempt in range(5):
        assert live.request("POST", "/api/start", token="header")[0] == 202
        assert live.request("POST", "/api/estop", token="header")[0] == 200
        time.sleep(0.5)  # several turns of the loop
        assert Fault.ESTOP in live.link.status().faults, f"attempt {attempt}: the arm runs after its e-stop"
        assert "e-stopped" in live.rt.safety_state()[2], f"attempt {attempt}: the runtime does not hold"
        # the deliberate start, alone: released
        assert live.request("POST", "/api/start", token="header")[0] == 202
        live.wait(lambda: not live.rt.safety_state()[2], what="the release")
        assert Fault.ESTOP not in live.link.status().faults


def test_an_estop_the_firmware_does_not_acknowledge_is_502_and_the_watchdog_rests_the_arm(live):
    """The link fails the e-stop: 502 says so, the runtime holds, and the heartbeats stop so the
    firmware's own watchdog rests the arm; the deliberate start then resumes control through REST."""
    from firmware_bridge.errors import AckTimeout
    from firmware_bridge.protocol import Fault

    real = live.link.estop

    def lost():
        raise AckTimeout("no reply to ESTOP (test)")

    live.link.estop = lost
    status, _, body = live.request("POST", "/api/estop", token="header")
    reply = json.loads(body)
    assert status == 502 and reply["ok"] is False and "AckTimeout" in reply["error"] and "watchdog" in reply["detail"]
    live.wait(lambda: "e-stopped" in live.rt.safety_state()[2], what="the runtime to hold")
    live.wait(lambda: Fault.WATCHDOG in live.link.status().faults, what="the firmware's watchdog to rest the arm")
    held = live.rt.summary.commands_sent
    live.link.estop = real
    assert live.request("POST", "/api/start", token="header")[0] == 202
    live.wait(lambda: not live.rt.safety_state()[0], timeout=15, what="control to resume")
    assert Fault.WATCHDOG not in live.link.status().faults  # its REST path cleared the watchdog's latch
    live.wait(lambda: live.rt.summary.commands_sent > held, timeout=15, what="commands after the start")


def test_without_an_arm_the_buttons_say_so(gl, rec, tmp_path):
    run = LiveRun(gl, rec, tmp_path, arm=False)
    try:
        status, _, body = run.request("POST", "/api/estop", token="header")
        assert status == 409 and "no arm" in json.loads(body)["error"]
        assert run.state()["arm"] is None
        assert b'data-controls="0"' in run.request("GET", "/")[2]  # the page shows no buttons
    finally:
        run.close()


def test_the_page_shows_the_buttons_from_the_start_when_there_is_an_arm(live):
    page = live.request("GET", "/")[2]
    assert b'data-controls="1"' in page and f'data-stale-ms="{round(C.VIEW_STALE_S * 1e3)}"'.encode() in page


def test_skipped_updates_are_counted_under_the_hubs_lock():
    from edge.view.server import Hub

    hub = Hub(b"{}")
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can
    try:
        threads = [threading.Thread(target=lambda: [hub.skip(1) for _ in range(20000)]) for _ in range(4)]
        for x in threads:
            x.start()
        for x in threads:
            x.join()
    finally:
        sys.setswitchinterval(before)
    assert hub.skipped == 80000


def test_limits_of_a_request_come_from_the_config(live, monkeypatch):
    status, _, body = live.request("POST", "/api/estop", token="header", body=b"x" * (C.VIEW_MAX_BODY_BYTES + 1))
    assert status == 400 and str(C.VIEW_MAX_BODY_BYTES) in json.loads(body)["error"]
    s = socket.create_connection((live.host, live.port), timeout=5)
    s.sendall(f"GET /events?token={live.token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b"retry:" not in head or not head.endswith(b"\n\n"):
        head += s.recv(4096)
    s.close()
    assert f"retry: {C.VIEW_SSE_RETRY_MS}\n".encode() in head
    monkeypatch.setattr(C, "VIEW_MAX_CLIENTS", 0)
    status, headers, body = live.request("GET", "/events", timeout=5)
    assert status == 503 and headers["Retry-After"] == str(C.VIEW_RETRY_AFTER_S)


def test_after_the_view_failed_a_stream_is_refused_with_the_failure_not_a_full_house(live):
    live.server.failed = "RuntimeError: test"
    live.server.hub.close()
    s = socket.create_connection((live.host, live.port), timeout=5)
    s.sendall(f"GET /events?token={live.token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    s.close()
    assert got.startswith(b"HTTP/1.1 503") and b"RuntimeError: test" in got and b"live streams" not in got


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


def _threads_blocked_in_send() -> int:
    """Event-stream threads of the view blocked writing to their client (its buffers full)."""
    n = 0
    for frame in sys._current_frames().values():
        names = []
        while frame is not None:
            names.append(frame.f_code.co_name)
            frame = frame.f_back
        n += names[0] in ("write", "sendall") and "_events" in names
    return n


def _replay_rate(gl, rec, view_clients: int | None, stalled: int = 0) -> float:
    """Realtime factor of a fast replay through the runtime: no view (None), or the view with
    ``view_clients`` reading clients and ``stalled`` clients that read nothing, their threads blocked
    in a send for the whole run (checked before and after it)."""
    rt = Runtime(gl, ReplaySource(rec, speed=0), None, RuntimeConfig(budget_ms=1000))
    server, socks, readers = None, [], []
    if view_clients is not None:
        server = attach(rt, "127.0.0.1:0", say=quiet)
        run = type("R", (), {"host": "127.0.0.1", "port": server.port, "token": server.token})
        socks = [_stalled_client(run) for _ in range(stalled)]
        t = time.monotonic() + 10
        while server.hub.clients < stalled and time.monotonic() < t:
            time.sleep(0.01)
        # No frame exists before the run: an update far larger than any socket buffer fills theirs now, and
        # their threads stay blocked in its send (VIEW_SEND_TIMEOUT_S is long here) while the loop runs.
        server.hub.publish(b'"' + b"x" * (16 << 20) + b'"')
        while _threads_blocked_in_send() < stalled and time.monotonic() < t:
            time.sleep(0.01)
        assert _threads_blocked_in_send() == stalled, "the stalled clients' threads are not blocked in a send"
        server.hub.publish(server.state.encode())  # the readers start from a real snapshot
        readers = [threading.Thread(target=stream_reader, args=(run, 30.0), daemon=True) for _ in range(view_clients)]
        for t in readers:
            t.start()
    try:
        s = rt.run()
        if stalled:
            assert _threads_blocked_in_send() == stalled, "a stalled client was dropped before the run ended"
    finally:
        for x in socks:
            x.close()
        if server is not None:
            server.close()
    return s.realtime_factor


@pytest.mark.exclusive  # a throughput ratio: the other edge pass must not share the cores
def test_clients_that_read_nothing_do_not_slow_the_loop(gl, monkeypatch):
    monkeypatch.setattr(C, "VIEW_SEND_TIMEOUT_S", 120.0)  # stalled for the whole run, not dropped
    rec = grasp_lift_series(1, 8, seed=0, n_trials=20)
    without, stalled = [], []
    for _ in range(3):  # alternated, so that a disturbance of the machine falls on both
        without.append(_replay_rate(gl, rec, None))
        stalled.append(_replay_rate(gl, rec, 1, stalled=3))
    # The bench measures the figure (benchmarks/view.py, goal 5 %); this checks the mechanism only.
    assert statistics.median(stalled) >= BOUND * statistics.median(without), (without, stalled)
