"""The live view (issue 28, docs/live-view.md): a page served by the runtime itself, to any browser on
the network it is allowed on, behind a token.

* :mod:`edge.view.feed` — the loop's side: frames handed over without waiting (``run``), or the cue
  display's (``record``);
* :mod:`edge.view.state` — frames → the snapshot (histories, latency percentiles, quality marks);
* :mod:`edge.view.quality` — per-channel signal quality marks;
* :mod:`edge.view.server` — HTTP (standard library): the page (``static/``), ``/state.json``, ``/events``
  (server-sent events), the e-stop and start; the access rule.

``neurogrip run --view [ADDR:]PORT`` calls :func:`attach`; ``neurogrip record --view`` :func:`record_view`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from edge import config as C
from edge.view.feed import Frame, RecordFeed, RuntimeFeed
from edge.view.server import RuntimeActions, ViewServer, announce, parse_address
from edge.view.state import ViewState

__all__ = ["Frame", "RecordFeed", "RuntimeActions", "RuntimeFeed", "ViewServer", "ViewState", "attach",
           "parse_address", "record_view"]


def attach(runtime, address, *, say=print) -> ViewServer:
    """Serve ``runtime``'s view on ``address`` (``[ADDR:]PORT``) and print its URL; the caller closes it."""
    feed = RuntimeFeed(runtime)
    server = ViewServer(feed, address, RuntimeActions(runtime)).start()
    runtime.view = feed  # from now on the loop hands frames over
    announce(server, say)
    return server


@contextmanager
def record_view(address, source, paradigm, display, *, say=print):
    """``record --view``: yields the cue display to give the :class:`~edge.record.Recorder` (it wraps
    ``display``, the terminal's); the view is served until the block ends, its last update included."""
    feed = RecordFeed(display, source, paradigm)
    with ViewServer(feed, address) as server:
        announce(server, say)
        try:
            yield feed
        finally:
            server.flush()  # the session's end reaches the page
            time.sleep(C.VIEW_LAST_UPDATE_S)
