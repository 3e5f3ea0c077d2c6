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
import http.server
import logging
import os
import re
import secrets
import socket
import threading
import time
from base64 import b64encode
from importlib import resources

from edge import config as C
from edge.errors import ViewError
from edge.view.handler import RequestHandler
from edge.view.state import ViewState

log = logging.getLogger(__name__)


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
        handler = type("Handler", (RequestHandler,), {"view": self})
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
