"""One request of the live view, read by hand and answered: the header bounded in bytes, lines and
time, the token checked, the page, ``/state.json``, the ``/events`` stream and the e-stop/start POSTs.

The server that owns the connections, the snapshot hub and the actions is :mod:`edge.view.server`;
each server makes a subclass of :class:`RequestHandler` bound to itself (``view``).  Why the header
is read by hand, and the access rules, are in :mod:`edge.view.server` and docs/live-view.md.
"""

from __future__ import annotations

import hmac
import http.server
import json
import logging
import re
import socket
import time
import urllib.parse

from edge import config as C
from edge.errors import ViewError

log = logging.getLogger(__name__)


TOKEN_HEADER = "X-Neurogrip-Token"


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


class RequestHandler(http.server.BaseHTTPRequestHandler):
    """One request per connection, read by hand: the request line and header fields are read whole
    (at most :data:`~edge.config.VIEW_MAX_HEADER_BYTES` and :data:`~edge.config.VIEW_MAX_HEADER_LINES`,
    before :data:`~edge.config.VIEW_REQUEST_TIMEOUT_S` from the connection), then split in a few
    microseconds: nothing of :mod:`http.client` or :mod:`email` parses a stranger's bytes while the loop
    shares the interpreter."""

    server_version = "neurogrip-view"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    view = None  # the edge.view.server.ViewServer served: set on the subclass made per server

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
