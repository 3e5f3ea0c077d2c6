"""Wiring: load the bundle, open the source and the arm, run until stopped (the CLI's ``run``)."""

from __future__ import annotations

import signal
import threading
import time

from edge.bundle import load_bundle
from edge.config import MALLOC_ARENAS, RuntimeConfig
from edge.errors import RunError
from edge.runtime.console import LinkLinesOnce
from edge.runtime.loop import Runtime
from edge.runtime.outputs import JsonLog, MarkerOutlet
from edge.runtime.report import RunSummary
from edge.sources import open_source
from edge.sources.spec import shares_link
from firmware_bridge.errors import LinkError
from firmware_bridge.link import ArmLink


def open_arm(spec: str | None):
    """``none`` → (None, None); ``sim`` → start the simulated arm (simavr Uno, else the host build)
    and open a link to its pty; anything else is a pyserial URL (``/dev/ttyACM0``, ``loop://``...).

    Returns ``(link, simulator_process_or_None)``.
    """
    if spec in (None, "", "none"):
        return None, None
    sim = None
    url = spec
    if spec == "sim":
        from firmware_bridge.sim import start

        sim = start()
        url = sim.pty
    link = ArmLink(url)
    try:
        link.open()
    except LinkError as exc:
        if sim is not None:
            sim.stop()
        raise RunError(f"cannot talk to the arm at {url}: {exc}; check the cable and the port, "
                       "'neurogrip doctor --port PORT' checks permissions") from None
    return link, sim


def limit_malloc_arenas() -> bool:
    """Cap glibc's malloc arenas for this process (``mallopt(M_ARENA_MAX)``), as a long-running
    service needs: see :data:`edge.config.MALLOC_ARENAS`.  Returns False where it does not apply
    (not glibc); threads started before keep the arenas they have."""
    import ctypes

    try:  # the process's own symbols hold libc's (find_library would run ldconfig at every start-up)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    M_ARENA_MAX = -8  # glibc's malloc.h
    return bool(mallopt(M_ARENA_MAX, MALLOC_ARENAS))


def serve(bundle_path, source_spec: str, arm_spec: str | None = "none", *, config: RuntimeConfig | None = None,
          log_path=None, markers: bool = False, duration: float | None = None, install_signals: bool = True,
          on_ready=None, log_max_bytes: int | None = None, log_backups: int | None = None,
          view: str | None = None) -> RunSummary:
    """Load, validate, connect and run until the end, ``duration``, Ctrl-C, SIGTERM or SIGHUP.

    The arm is sent to REST before the function returns, whatever stopped the run.
    It first caps glibc's malloc arenas for the whole calling process (:func:`limit_malloc_arenas`).
    ``on_ready(runtime)`` is called once everything is connected (tests and the demo use it).
    ``log_max_bytes``, ``log_backups``: the JSON log's rotation (:class:`~edge.runtime.outputs.JsonLog`).
    ``view``: ``[ADDR:]PORT`` of the live view (:mod:`edge.view`; its URL and token are printed).
    ``--source arm:PORT`` with ``--arm PORT`` (or ``arm:sim`` with ``sim``) reads the arm's analog inputs over
    the runtime's own link, opened once (:mod:`edge.sources.arm`).
    While it runs, the link's own fault lines stay off the console: the runtime reports each fault it
    takes from the link itself (:class:`~edge.runtime.console.LinkLinesOnce`), so each is printed once.
    """
    t0 = time.monotonic()
    usr1 = None  # SIGUSR1's handler before the run: restored after it
    if install_signals and threading.current_thread() is threading.main_thread():
        # a start request (SIGUSR1) while the bundle loads or the arm connects means nothing yet, and
        # must not kill the process (SIGUSR1's default action)
        usr1 = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    if view is not None:
        from edge.view import parse_address

        parse_address(view)  # a malformed address is refused before anything opens
    limit_malloc_arenas()  # before liblsl and the link start their threads
    bundle = load_bundle(bundle_path)
    # the log's settings are checked before the source is opened: a bad one leaves nothing open
    json_log = JsonLog(log_path, log_max_bytes, log_backups) if log_path else None
    source = arm = sim = rt = viewer = None
    link_lines = LinkLinesOnce().install()
    try:
        if shares_link(source_spec, arm_spec):  # the arm's own inputs on the --arm port: one link for both
            arm, sim = open_arm(arm_spec)
            source = open_source(source_spec, link=arm)
        else:
            source = open_source(source_spec)
            arm, sim = open_arm(arm_spec)
        outlet = MarkerOutlet(f"neurogrip-{bundle.task}", f"neurogrip-{bundle.content_hash[7:19]}") if markers \
            else None
        rt = Runtime(bundle, source, arm, config, json_log, outlet)
        rt.t_created = t0  # start-up is measured from the command, not from the loop
        if view is not None:
            from edge.view import attach

            viewer = attach(rt, view)
        previous = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, lambda *_: rt.stop())
            # SIGHUP (the terminal closed): stop as for SIGTERM, the arm rests and a simulator child ends too
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: rt.stop())
            # SIGUSR1: the deliberate start after the arm's e-stop (docs/robustness.md § E-stop)
            signal.signal(signal.SIGUSR1, lambda *_: rt.request_start())
            previous[signal.SIGUSR1] = usr1
        if on_ready is not None:
            on_ready(rt)
        try:
            summary = rt.run(max_seconds=duration)
        except KeyboardInterrupt:
            summary = rt.summary  # run()'s finally already rested the arm
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return summary
    finally:
        if viewer is not None:
            viewer.close()
        if source is not None:
            source.close()
        if arm is not None:
            arm.close()
        if sim is not None:
            sim.stop()
        if json_log is not None:
            json_log.close()
            if rt is not None:  # lines lost up to the very last (the summary's own line included)
                rt.summary.log_lines_lost = json_log.lost
        link_lines.remove()
