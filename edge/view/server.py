"""The live view's HTTP server: the page, ``/state.json``, the ``/events`` stream, the e-stop and start.

Standard library only (:mod:`http.server`, :mod:`threading`): nothing to install on the Pi, nothing the
page fetches from elsewhere.  Threads, all daemons, none of them the loop's:

* the *publisher* takes the frames the loop handed over (:mod:`edge.view.feed`) at most
  :data:`edge.config.VIEW_UPDATE_HZ` times a second, folds them into the :class:`~edge.view.state.ViewState`
  and encodes one snapshot (the same bytes for every client and for ``/state.json``);
* one thread per connection (:class:`http.server.ThreadingHTTPServer`), one request per connection;
  an event stream's thread sends a client the newest snapshot whenever it is ready for one, so a slow
  client skips snapshots (counted in :attr:`Hub.skipped`) and one that takes nothing for
  :data:`edge.config.VIEW_SEND_TIMEOUT_S` is disconnected.  At most :data:`edge.config.VIEW_MAX_CLIENTS`
  streams at once.

Access (docs/live-view.md): every request needs the token printed with the URL at start-up — as
``?token=`` or in the ``X-Neurogrip-Token`` header — or gets 401, the page, the snapshot and the
stream included (the signal is health data).  The e-stop and start are POSTs that take the token from
the header only: a page on another site cannot set that header without a CORS grant (none is given),
so it cannot press the buttons even if it learnt the URL.

What a stranger without the token can cost (it shares the loop's interpreter and the e-stop's port): a
request's header is read whole, bounded in bytes, lines and time (a deadline for all of it, not per
read), before a few microseconds of splitting — no :mod:`http.client`/:mod:`email` parsing; every
answer closes its connection; one address holds at most :data:`edge.config.VIEW_MAX_PER_CLIENT`
connections (its token-holding event streams aside), so one client cannot take the slots the e-stop
needs.
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


def load_page(controls: bool = False) -> tuple[bytes, str]:
    """The page (package data ``edge/view/static/``) with its script and style inlined, and the
    Content-Security-Policy that allows exactly those two and nothing from anywhere else.  ``controls``:
    the page shows the e-stop and start from the start, whether or not its event stream connects."""
    static = resources.files("edge.view") / "static"
    html = (static / "index.html").read_text(encoding="utf-8")
    css = (static / "view.css").read_text(encoding="utf-8")
    js = (static / "view.js").read_text(encoding="utf-8")

    def digest(text: str) -> str:
        return "'sha256-" + b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    page = (html.replace("/*STYLE*/", css).replace("/*SCRIPT*/", js)
            .replace("/*CONTROLS*/", "1" if controls else "0")
            .replace("/*STALE_MS*/", str(round(C.VIEW_STALE_S * 1e3))))
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

    def skip(self, n: int) -> None:
        with self._cond:
            self.skipped += n

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


class _Refused(Exception):
    """A request refused before it is parsed further: (status, why); the connection is closed."""

    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status = status


class _Headers:
    """A request's header fields by name (any case); a field given twice keeps its first value."""

    def __init__(self, fields: dict[str, str]):
        self._fields = fields

    def get(self, name: str, default=None):
        return self._fields.get(name.lower(), default)


_TOKEN_CHARS = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")
_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT")


class _Handler(http.server.BaseHTTPRequestHandler):
    """One request per connection, read by hand: the request line and header fields are read whole
    (at most :data:`~edge.config.VIEW_MAX_HEADER_BYTES` and :data:`~edge.config.VIEW_MAX_HEADER_LINES`,
    before :data:`~edge.config.VIEW_REQUEST_TIMEOUT_S` from the connection), then split in a few
    microseconds: nothing of :mod:`http.client` or :mod:`email` parses a stranger's bytes while the loop
    shares the interpreter."""

    server_version = "neurogrip-view"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    view: ViewServer  # set on the subclass made per server

    def setup(self):
        super().setup()
        self.deadline = time.monotonic() + C.VIEW_REQUEST_TIMEOUT_S
        self._buf = b""
        self.command, self.path, self.request_version, self.requestline = "", "", "HTTP/1.1", ""
        self.headers = _Headers({})

    # -- reading the request
    def _recv(self) -> bytes:
        left = self.deadline - time.monotonic()  # the time left for the whole request, before every read
        if left <= 0:
            raise TimeoutError
        self.connection.settimeout(left)
        return self.connection.recv(4096)

    def _read_head(self) -> bytes | None:
        buf = self._buf
        while True:
            buf = buf.lstrip(b"\r\n")  # (empty lines before a request line are ignored)
            end = _HEAD_END.search(buf)
            if end:  # its lines: the newlines within it, and one
                size, lines = end.start(), buf.count(b"\n", 0, end.start()) + 1
            else:  # (still arriving: what it holds already, its end aside)
                size, lines = len(buf) - 4, buf.count(b"\n")
            if size > C.VIEW_MAX_HEADER_BYTES or lines > C.VIEW_MAX_HEADER_LINES:
                raise _Refused(431, f"request header too large (at most {C.VIEW_MAX_HEADER_BYTES} bytes and "
                                    f"{C.VIEW_MAX_HEADER_LINES} lines)")
            if end:
                self._buf = buf[end.end():]
                return buf[:end.start()]
            got = self._recv()
            if not got:
                return None  # closed before a whole header
            buf += got

    def _parse(self, head: bytes) -> None:
        lines = _LINE_END.split(head)
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not _TOKEN_CHARS.fullmatch(parts[0]) or not parts[1].startswith(b"/"):
            raise _Refused(400, "not an HTTP request line")
        if parts[2] not in (b"HTTP/1.0", b"HTTP/1.1"):
            raise _Refused(400, "HTTP/1.0 or HTTP/1.1 only")
        try:
            self.command, self.path, self.request_version = (x.decode("ascii") for x in parts)
        except UnicodeDecodeError:
            raise _Refused(400, "a request line in ASCII only") from None
        # what is logged never holds the query (the token may be in it)
        self.requestline = f"{self.command} {self.path.split('?', 1)[0]} {self.request_version}"
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN_CHARS.fullmatch(name):
                raise _Refused(400, "a malformed header field")
            fields.setdefault(name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1"))
        if "transfer-encoding" in fields:
            raise _Refused(400, "no chunked bodies (the buttons take none)")
        self.headers = _Headers(fields)

    def _body(self) -> None:
        """Read (and ignore) a small request body."""
        text = self.headers.get("Content-Length") or "0"
        if not text.isdigit() or int(text) > C.VIEW_MAX_BODY_BYTES:
            raise _Refused(400, f"a request body of at most {C.VIEW_MAX_BODY_BYTES} bytes (the buttons take none)")
        n = int(text)
        while len(self._buf) < n:
            got = self._recv()
            if not got:
                raise _Refused(400, "the request body ended early")
            self._buf += got
        self._buf = self._buf[n:]

    def handle_one_request(self):
        self.close_connection = True  # one request per connection
        try:
            try:
                head = self._read_head()
                if head is None:
                    return
                self._parse(head)
                if self.command not in _METHODS:
                    raise _Refused(501, f"method {self.command} not implemented")
            except _Refused as r:
                return self._error(r.status, str(r))
            self.connection.settimeout(C.VIEW_SEND_TIMEOUT_S)
            getattr(self, "do_" + self.command)()
        except OSError:  # the deadline passed (socket.timeout is an OSError), or the client went away
            return

    # -- helpers
    def log_request(self, code="-", size="-"):
        log.debug("%s %s %s", self.client_address[0], self.requestline, code)

    def log_message(self, format, *args):
        log.debug("%s %s", self.client_address[0], format % args)

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
                     "X-Frame-Options": "DENY", "Connection": "close", **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj: dict) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json")

    def _error(self, code: int, why: str) -> None:
        """A request refused before it was understood (400, 431, 501): said, and the connection closed."""
        try:
            self.connection.settimeout(C.VIEW_SEND_TIMEOUT_S)
            self._send(code, f"{code} {http.HTTPStatus(code).phrase}: {why}\n".encode(), "text/plain; charset=utf-8")
            self.connection.shutdown(socket.SHUT_WR)
            # a little of what the client still sends is read and dropped, so the close does not reset the
            # connection before a client that sent a few bytes too many has read this answer (no more: a
            # client sending megabytes is not worth the interpreter's time)
            linger, drained = time.monotonic() + 0.2, 0
            while (left := linger - time.monotonic()) > 0 and drained < 1 << 16:
                self.connection.settimeout(left)
                got = self.connection.recv(1 << 16)
                if not got:
                    break
                drained += len(got)
        except OSError:
            pass

    def _refuse(self, why: str) -> None:
        self._send(401, (f"401 Unauthorized: {why}. Open the URL neurogrip printed when it started "
                         "(http://HOST:PORT/?token=...).\n").encode(), "text/plain; charset=utf-8",
                   {"WWW-Authenticate": 'Bearer realm="neurogrip"'})

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
            why = (f"the live view stopped ({self.view.failed})" if self.view.failed
                   else "the live view is closing" if hub.closed
                   else f"every one of the {C.VIEW_MAX_CLIENTS} live streams is taken; try again shortly")
            return self._send(503, f"503: {why}\n".encode(), "text/plain; charset=utf-8",
                              {"Retry-After": str(C.VIEW_RETRY_AFTER_S)})
        self.server.uncount(self.request)  # a token holder's stream: no longer one of its address's few
        try:
            self.send_response(200)
            for k, v in (("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"),
                         ("X-Accel-Buffering", "no"), ("Connection", "close")):
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(f"retry: {C.VIEW_SSE_RETRY_MS}\n\n".encode())
            self.view.latest()  # (nobody may have been streaming: the first update is fresh)
            seen = -1
            while True:
                seq, data = hub.wait(seen, C.VIEW_KEEPALIVE_S)
                if seq != seen:  # the newest only: what came between is skipped (a slow client)
                    if seen >= 0 and seq > seen + 1:
                        hub.skip(seq - seen - 1)
                    self.wfile.write(b"data: " + data + b"\n\n")  # blocks at most VIEW_SEND_TIMEOUT_S
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
        if origin is not None and (origin == "null" or urllib.parse.urlsplit(origin).netloc != self.headers.get("Host")):
            return self._json(403, {"ok": False, "error": f"request from origin {origin} refused (not this page's)"})
        try:
            self._body()
        except _Refused as r:
            return self._json(r.status, {"ok": False, "error": str(r)})
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
            return self._json(502, {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                                    "detail": "not acknowledged by the firmware: the runtime holds the arm and has "
                                              "stopped feeding its watchdog, which rests it" if action == "estop"
                                              else None})
        return self._json(200 if action == "estop" else 202, {"ok": True, "action": action, "detail": detail})


class _Server(http.server.ThreadingHTTPServer):
    """One thread per connection: at most VIEW_MAX_CONNECTIONS at once, and VIEW_MAX_PER_CLIENT of them from
    one address (its event streams aside); more are closed unanswered."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = C.VIEW_MAX_CONNECTIONS

    def __init__(self, *args, **kwargs):
        self._slots = threading.BoundedSemaphore(C.VIEW_MAX_CONNECTIONS)
        self._count_lock = threading.Lock()
        self._per_client: dict[str, int] = {}
        self._counted: dict[socket.socket, str] = {}  # request -> its address, while it counts against it
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        host = client_address[0]
        with self._count_lock:
            if self._per_client.get(host, 0) >= C.VIEW_MAX_PER_CLIENT or not self._slots.acquire(blocking=False):
                self.shutdown_request(request)
                return
            self._per_client[host] = self._per_client.get(host, 0) + 1
            self._counted[request] = host
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.uncount(request)
            self._slots.release()
            raise

    def uncount(self, request) -> None:
        """``request`` no longer counts against its address's VIEW_MAX_PER_CLIENT."""
        with self._count_lock:
            host = self._counted.pop(request, None)
            if host is not None:
                n = self._per_client[host] - 1
                if n:
                    self._per_client[host] = n
                else:
                    del self._per_client[host]

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.uncount(request)
            self._slots.release()


class RuntimeActions:
    """What the view's buttons do to a running :class:`~edge.runtime.loop.Runtime` (from a request thread)."""

    def __init__(self, runtime):
        self.rt = runtime

    @property
    def available(self) -> bool:
        """There is an arm to stop and start (the page shows its buttons)."""
        return self.rt.arm is not None

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
                "released (and no e-stop came after it); the arm stays where it stopped until a new command")


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
        self.token_fixed = token is None and os.environ.get(C.VIEW_TOKEN_ENV) is not None
        self.state = ViewState(feed)
        self.hub = Hub(self.state.encode())
        self.page, self.csp = load_page(controls=bool(getattr(actions, "available", False)))
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
    def shown_url(self) -> str:
        """The URL as printed: a fixed token (``$NEUROGRIP_VIEW_TOKEN``) is not, a random one is."""
        if self.token_fixed:
            return self.url.replace(self.token, "$" + C.VIEW_TOKEN_ENV)
        return self.url

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
                dropped = getattr(self.feed, "failed", None)  # the loop dropped its feed (edge/runtime/loop.py)
                if dropped:
                    raise ViewError(f"the feed failed on the loop's thread: {dropped}")
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
    """Print the URL (with its token, unless it is the fixed one of the environment: that one stays out of
    journals and terminals) and, for an address beyond this machine, what that means."""
    say(f"[view] live view: {server.shown_url}", flush=True)
    if server.token_fixed:
        say(f"[view] the token is ${C.VIEW_TOKEN_ENV} from neurogrip's environment (the unit's environment "
            "file); put it in place of the placeholder", flush=True)
    if server.public:
        say(f"[view] served to the network on {server.host}: anyone with this URL can watch the signal and stop or "
            "start the arm; keep it on a network you trust, behind TLS beyond it (docs/live-view.md)", flush=True)
    # the time is said so a person can match the URL to this start (the token changes at every start)
    log.info("live view on %s:%d since %s", server.host, server.port, time.strftime("%H:%M:%S"))
