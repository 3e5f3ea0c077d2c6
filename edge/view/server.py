"""The live view's HTTP server: the page, ``/state.json``, the ``/events`` stream, the e-stop and start.

Standard library only (:mod:`http.server`, :mod:`threading`): nothing to install on the Pi, nothing the
page fetches from elsewhere.  Threads, all daemons, none of them the loop's:

* the *publisher* takes the frames the loop handed over (:mod:`edge.view.feed`) at most
  :data:`edge.config.VIEW_UPDATE_HZ` times a second, folds them into the :class:`~edge.view.state.ViewState`
  and encodes one snapshot (the same bytes for every client and for ``/state.json``);
* one thread per request (:class:`http.server.ThreadingHTTPServer`); an event stream's thread sends a
  client the newest snapshot whenever it is ready for one, so a slow client skips snapshots (counted in
  :attr:`Hub.skipped`) and one that takes nothing for :data:`edge.config.VIEW_SEND_TIMEOUT_S` is
  disconnected.  At most :data:`edge.config.VIEW_MAX_CLIENTS` streams at once.

Access (docs/live-view.md): every request needs the token printed with the URL at start-up — as
``?token=`` or in the ``X-Neurogrip-Token`` header — or gets 401, the page, the snapshot and the
stream included (the signal is health data).  The e-stop and start are POSTs that take the token from
the header only: a page on another site cannot set that header without a CORS grant (none is given),
so it cannot press the buttons even if it learnt the URL.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
import urllib.parse
from base64 import b64encode
from importlib import resources

from edge import config as C
from edge.errors import ViewError
from edge.view.state import ViewState

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Neurogrip-Token"
_LOOPBACK = ("127.", "::1", "localhost")


# --------------------------------------------------------------------------- address and token


def parse_address(spec) -> tuple[str, int]:
    """``PORT``, ``ADDR:PORT`` or ``[IPv6]:PORT`` → (host, port); the host is :data:`edge.config.VIEW_HOST`
    (loopback) unless one is named.  Port 0 takes a free one."""
    text = str(spec).strip()
    m = re.fullmatch(r"(?:\[([0-9A-Fa-f:.]+)\]:|([^:\[\]]+):)?(\d{1,5})", text)
    if m is None or int(m.group(3)) > 65535:
        raise ViewError(f"--view {text!r}: expected PORT, ADDR:PORT or [IPv6]:PORT (e.g. 8765, 0.0.0.0:8765 to "
                        "serve the whole network, [::1]:8765)")
    return (m.group(1) or m.group(2) or C.VIEW_HOST), int(m.group(3))


def make_token() -> str:
    """A random token (:data:`edge.config.VIEW_TOKEN_BYTES` bytes), or ``$NEUROGRIP_VIEW_TOKEN`` when set."""
    fixed = os.environ.get(C.VIEW_TOKEN_ENV)
    if fixed is not None:
        if len(fixed) < C.VIEW_TOKEN_MIN_CHARS or not re.fullmatch(r"[A-Za-z0-9_\-]+", fixed):
            raise ViewError(f"${C.VIEW_TOKEN_ENV} must be at least {C.VIEW_TOKEN_MIN_CHARS} characters of "
                            "A-Z a-z 0-9 _ - (python3 -c 'import secrets; print(secrets.token_urlsafe(16))' makes one)")
        return fixed
    return secrets.token_urlsafe(C.VIEW_TOKEN_BYTES)


# --------------------------------------------------------------------------- the page


def load_page() -> tuple[bytes, str]:
    """The page (package data ``edge/view/static/``) with its script and style inlined, and the
    Content-Security-Policy that allows exactly those two and nothing from anywhere else."""
    static = resources.files("edge.view") / "static"
    html = (static / "index.html").read_text(encoding="utf-8")
    css = (static / "view.css").read_text(encoding="utf-8")
    js = (static / "view.js").read_text(encoding="utf-8")

    def digest(text: str) -> str:
        return "'sha256-" + b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    page = html.replace("/*STYLE*/", css).replace("/*SCRIPT*/", js)
    csp = (f"default-src 'none'; script-src {digest(js)}; style-src {digest(css)}; connect-src 'self'; "
           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return page.encode(), csp


# --------------------------------------------------------------------------- the newest snapshot


class Hub:
    """The newest encoded snapshot, and the clients waiting for the next one (the view's threads only)."""

    def __init__(self, first: bytes):
        self._cond = threading.Condition()
        self.seq, self.data = 0, first
        self.clients = 0
        self.skipped = 0  # snapshots a slow client never got (it got a newer one)
        self.closed = False

    def publish(self, data: bytes) -> None:
        with self._cond:
            self.seq += 1
            self.data = data
            self._cond.notify_all()

    def wait(self, after: int, timeout: float) -> tuple[int, bytes]:
        with self._cond:
            self._cond.wait_for(lambda: self.seq != after or self.closed, timeout)
            return self.seq, self.data

    def enter(self) -> bool:
        with self._cond:
            if self.clients >= C.VIEW_MAX_CLIENTS or self.closed:
                return False
            self.clients += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self.clients -= 1

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


# --------------------------------------------------------------------------- requests


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "neurogrip-view"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = C.VIEW_REQUEST_TIMEOUT_S  # headers that never finish arriving do not hold a thread
    view: ViewServer  # set on the subclass made per server

    def log_message(self, format, *args):
        log.debug("%s %s", self.address_string(), format % args)

    # -- helpers
    def _query_token(self) -> str | None:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        return (q.get("token") or [None])[0]

    def _header_token(self) -> str | None:
        t = self.headers.get(TOKEN_HEADER)
        auth = self.headers.get("Authorization", "")
        if t is None and auth.startswith("Bearer "):
            t = auth[7:].strip()
        return t

    def _is(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.view.token.encode())

    def _send(self, code: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(code)
        for k, v in {"Content-Type": ctype, "Content-Length": str(len(body)), "Cache-Control": "no-store",
                     "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                     "X-Frame-Options": "DENY", **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj: dict) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json")

    def _refuse(self, why: str) -> None:
        self._send(401, (f"401 Unauthorized: {why}. Open the URL neurogrip printed when it started "
                         "(http://HOST:PORT/?token=...).\n").encode(), "text/plain; charset=utf-8",
                   {"WWW-Authenticate": 'Bearer realm="neurogrip"'})

    def _body(self) -> None:
        """Read (and ignore) a small request body, so the connection stays in step."""
        n = int(self.headers.get("Content-Length") or 0)
        if not 0 <= n <= 4096:
            self.close_connection = True
            raise ViewError("request body too large (the buttons take none)")
        if n:
            self.rfile.read(n)

    # -- GET: the page, the snapshot, the stream
    def do_GET(self):
        if not (self._is(self._query_token()) or self._is(self._header_token())):
            return self._refuse("this neurogrip view needs its access token")
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/", "/index.html"):
            return self._send(200, self.view.page, "text/html; charset=utf-8",
                              {"Content-Security-Policy": self.view.csp})
        if path == "/state.json":
            if self.view.failed:
                return self._json(500, {"error": f"the view failed: {self.view.failed}"})
            return self._send(200, self.view.latest(), "application/json")
        if path == "/events":
            return self._events()
        return self._send(404, b"404 Not Found\n", "text/plain; charset=utf-8")

    def do_HEAD(self):
        if urllib.parse.urlsplit(self.path).path == "/events":
            return self._other()
        return self.do_GET()

    def _other(self):
        """Any other method: 401 without the token (nothing answers anyone without it), else 405."""
        if not (self._is(self._query_token()) or self._is(self._header_token())):
            return self._refuse("this neurogrip view needs its access token")
        return self._send(405, b"405 Method Not Allowed\n", "text/plain; charset=utf-8", {"Allow": "GET, POST"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _other

    def _events(self) -> None:
        hub = self.view.hub
        if not hub.enter():
            return self._send(503, f"503: at most {C.VIEW_MAX_CLIENTS} live streams at once\n".encode(),
                              "text/plain; charset=utf-8", {"Retry-After": "5"})
        self.close_connection = True
        try:
            self.send_response(200)
            for k, v in (("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"),
                         ("X-Accel-Buffering", "no"), ("Connection", "close")):
                self.send_header(k, v)
            self.end_headers()
            self.connection.settimeout(C.VIEW_SEND_TIMEOUT_S)  # a client that reads nothing is dropped
            self.wfile.write(b"retry: 2000\n\n")
            self.view.latest()  # (nobody may have been streaming: the first update is fresh)
            seen = -1
            while True:
                seq, data = hub.wait(seen, C.VIEW_KEEPALIVE_S)
                if seq != seen:  # the newest only: what came between is skipped (a slow client)
                    if seen >= 0 and seq > seen + 1:
                        hub.skipped += seq - seen - 1
                    self.wfile.write(b"data: " + data + b"\n\n")
                    seen = seq
                elif hub.closed:  # (the last update was sent first)
                    break
                else:
                    self.wfile.write(b": keepalive\n\n")
        except OSError:  # gone, or took nothing for VIEW_SEND_TIMEOUT_S (socket.timeout is an OSError)
            pass
        finally:
            hub.leave()

    # -- POST: the e-stop and the start (token in the header only)
    def do_POST(self):
        if not self._is(self._header_token()):
            why = ("the e-stop and start take the token in the X-Neurogrip-Token header, not in the URL "
                   "(a page on another site could send the URL)") if self._is(self._query_token()) else \
                "this neurogrip view needs its access token"
            return self._refuse(why)
        origin = self.headers.get("Origin")
        if origin not in (None, "null") and urllib.parse.urlsplit(origin).netloc != self.headers.get("Host"):
            return self._json(403, {"ok": False, "error": f"cross-origin request from {origin} refused"})
        try:
            self._body()
        except (ViewError, ValueError) as exc:
            return self._json(400, {"ok": False, "error": str(exc)})
        path = urllib.parse.urlsplit(self.path).path
        action = {"/api/estop": "estop", "/api/start": "start"}.get(path)
        if action is None:
            return self._json(404, {"ok": False, "error": f"no action {path}"})
        actions = self.view.actions
        if actions is None:
            return self._json(409, {"ok": False, "error": f"no arm in '{self.view.mode}': nothing to {action}"})
        who = f"the live view ({self.client_address[0]})"
        try:
            detail = getattr(actions, action)(who)
        except ViewError as exc:
            return self._json(409, {"ok": False, "error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - a LinkError (not acknowledged): said; the loop holds all the same
            log.error("%s from %s failed: %s: %s", action, who, type(exc).__name__, exc)
            return self._json(502, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return self._json(200 if action == "estop" else 202, {"ok": True, "action": action, "detail": detail})


class _Server(http.server.ThreadingHTTPServer):
    """One thread per connection, at most VIEW_MAX_CONNECTIONS at once (more are closed unanswered)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, *args, **kwargs):
        self._slots = threading.BoundedSemaphore(C.VIEW_MAX_CONNECTIONS)
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class RuntimeActions:
    """What the view's buttons do to a running :class:`~edge.runtime.loop.Runtime` (from a request thread)."""

    def __init__(self, runtime):
        self.rt = runtime

    def estop(self, who: str) -> str:
        if self.rt.arm is None:
            raise ViewError("no arm is connected (--arm none): there is nothing to stop")
        log.warning("e-stop requested by %s", who)
        self.rt.request_estop(who)
        return "the firmware latched its e-stop: every joint froze where it is until a deliberate start"

    def start(self, who: str) -> str:
        if self.rt.arm is None:
            raise ViewError("no arm is connected (--arm none): there is nothing to start")
        log.warning("start requested by %s", who)
        self.rt.request_start()
        return ("start requested: the runtime clears the e-stop latch at its next turn if the arm's switch is "
                "released; the arm stays where it stopped until a new command")


# --------------------------------------------------------------------------- the server


class ViewServer:
    """Serves one feed's view (see the module docstring).  :meth:`start`, then :meth:`close`.

    Parameters
    ----------
    feed : RuntimeFeed or RecordFeed
    address : str
        ``PORT``, ``ADDR:PORT`` or ``[IPv6]:PORT`` (:func:`parse_address`).
    actions : RuntimeActions, optional
        What the e-stop and start buttons call; None (``record``): they answer 409.
    """

    def __init__(self, feed, address, actions=None, token: str | None = None):
        self.host, self.port = parse_address(address)
        self.feed, self.actions, self.mode = feed, actions, feed.mode
        self.token = token or make_token()
        self.state = ViewState(feed)
        self.hub = Hub(self.state.encode())
        self.page, self.csp = load_page()
        self.failed: str | None = None
        self._lock = threading.Lock()  # the state, between the publisher and /state.json (never the loop)
        self._dirty = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._httpd: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/?token={self.token}"

    @property
    def public(self) -> bool:
        return not self.host.startswith(_LOOPBACK)

    def start(self) -> ViewServer:
        handler = type("Handler", (_Handler,), {"view": self})
        server_cls = type("Server", (_Server,), {"address_family": socket.AF_INET6 if ":" in self.host
                                                 else socket.AF_INET})
        try:
            self._httpd = server_cls((self.host, self.port), handler)
        except OSError as exc:
            raise ViewError(f"--view {self.host}:{self.port}: cannot listen ({exc.strerror or exc}); choose another "
                            "port (0 takes a free one) or address") from None
        self.port = self._httpd.server_address[1]
        self.feed.url = self.url
        for name, target in (("neurogrip-view-http", self._serve), ("neurogrip-view-publisher", self._publish)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _serve(self) -> None:
        self._httpd.serve_forever(poll_interval=0.25)

    def _publish(self) -> None:
        """Frames → state → one encoded snapshot, at most VIEW_UPDATE_HZ times a second; encoded only
        while a stream is open (``/state.json`` encodes on demand).  The interpreter is shared with the
        loop: the work is cut into steps of a fraction of a millisecond, and given back between them."""
        period = 1.0 / min(C.VIEW_UPDATE_HZ, C.VIEW_MAX_UPDATE_HZ)
        while not self._stop.wait(period):
            try:
                if self._take() and self.hub.clients:
                    self._encode()
            except Exception as exc:  # a bug in the view: said once, the view stops, the arm's control goes on
                log.exception("the live view failed and stops (the runtime goes on)")
                self.failed = f"{type(exc).__name__}: {exc}"
                self.hub.close()
                return

    def _take(self) -> bool:
        """Fold the frames the loop handed over into the state; True if there were any."""
        frames = self.feed.frames
        if not frames:
            return False
        with self._lock:
            while frames:
                self.state.add(frames.popleft())
                time.sleep(0)
            self._dirty = True
        want = self.state.raw_wanted()
        if want and not self.feed.capture:
            self.feed.capture = want
        return True

    def _encode(self) -> None:
        with self._lock:
            if self._dirty:
                self._dirty = False
                self.hub.publish(self.state.encode())  # (~0.2 ms for 32 channels)

    def latest(self) -> bytes:
        """The newest snapshot (``/state.json``): encoded now if nobody streams it."""
        self._encode()
        return self.hub.data

    def flush(self) -> None:
        """Publish what the feed handed over now (a last update at the end of a run)."""
        if not self.failed and self._take():
            self._encode()

    def close(self) -> None:
        self._stop.set()
        self.hub.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=2.0)

    def __enter__(self):  # returns self, started
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def announce(server: ViewServer, say=print) -> None:
    """Print the URL (with its token) and, for an address beyond this machine, what that means."""
    say(f"[view] live view: {server.url}", flush=True)
    if server.public:
        say(f"[view] served to the network on {server.host}: anyone with this URL can watch the signal and stop or "
            "start the arm; keep it on a network you trust, behind TLS beyond it (docs/live-view.md)", flush=True)
    # the time is said so a person can match the URL to this start (the token changes at every start)
    log.info("live view on %s:%d since %s", server.host, server.port, time.strftime("%H:%M:%S"))
