"""A pty between a link and a simulated arm that can damage the traffic: tests and benchmarks subclass
:class:`PtyProxy` (``firmware_bridge.sim`` re-exports it)."""

from __future__ import annotations

import os
import select
import threading
import tty

__all__ = ["PtyProxy"]


class PtyProxy:
    """A pty (``path``, what a link opens) forwarding to the simulated arm's pty, for tests and
    benchmarks that damage the traffic in between.  Subclasses override :meth:`to_arm` and
    :meth:`to_host` (bytes in, bytes to write out); both pass data unchanged here.
    """

    def __init__(self, arm_pty: str, poll_s: float = 0.02):
        self._poll = poll_s
        self._m, self._s = os.openpty()
        tty.setraw(self._s)
        self.path = os.ttyname(self._s)
        self._a = os.open(arm_pty, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self._a)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PtyProxy:
        self._t.start()
        return self

    def to_arm(self, data: bytes) -> bytes:
        return data

    def to_host(self, data: bytes) -> bytes:
        return data

    def _run(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self._m, self._a], [], [], self._poll)
            try:
                if self._m in r:
                    os.write(self._a, self.to_arm(os.read(self._m, 4096)))
                if self._a in r:
                    os.write(self._m, self.to_host(os.read(self._a, 4096)))
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)
        for fd in (self._m, self._s, self._a):
            os.close(fd)
