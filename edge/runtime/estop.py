"""The e-stop asked for from outside the loop (the live view's button) and the deliberate start after
an e-stop (SIGUSR1, the view's Start): a part of :class:`edge.runtime.loop.Runtime`, kept apart from
:mod:`edge.runtime.safety` (which holds the arm while the e-stop lasts) because its requests come from
other threads.

A stop always wins.  :meth:`EStop.request_estop` runs on the caller's thread and latches the firmware's
e-stop at once; it bumps a generation that every start carries, so

* a start asked for before an e-stop is dropped, even if the loop gets to both in the same turn;
* an e-stop that arrives while a start runs (both go through the link's one-at-a-time command lock, in
  either order) is latched again once the start is done, and the hold stays;
* an e-stop the firmware did not acknowledge pauses the heartbeats, so the firmware's watchdog rests
  the arm (as for an unacknowledged REST); the deliberate start then resumes through REST.
"""

from __future__ import annotations

import logging
import threading

from edge.errors import RunError
from firmware_bridge.errors import LinkError

log = logging.getLogger("edge.runtime.loop")  # one logger for the live loop, whichever file logs

#: Hold while the arm's own e-stop is pressed, and after its release until a deliberate start.
ESTOPPED = "e-stopped"
#: How a person gives that start (logged with the release).
START_HOW = ("send SIGUSR1 to neurogrip: 'systemctl kill --kill-whom=main -s USR1 neurogrip', or 'kill -USR1 <pid>'; "
             "or the live view's Start")


class EStop:
    """The e-stop and start requests of :class:`~edge.runtime.loop.Runtime` (a mixin: it uses the runtime's
    ``arm``, ``pipeline``, ``fault``, ``_log``, ``_holds``, ``_hold`` and ``_release``)."""

    def _init_estop(self) -> None:
        self._estop_lock = threading.Lock()  # the names below, between request threads and the loop
        self._estop_by: list[str] = []  # who asked for an e-stop since the loop's last turn (request_estop)
        self._estop_gen = 0  # bumped by every request_estop: a start of an older generation is dropped
        self._start_gen = 0  # the generation when the latest start was asked for
        self._start_requested = False  # a person asked to start the arm again after its e-stop
        self._estop_ours = False  # the e-stop latch is ours (request_estop), not the arm's own switch
        self._estop_failed = False  # request_estop was not acknowledged: heartbeats paused until a start

    def request_start(self) -> None:
        """A person's deliberate start after the arm's e-stop (SIGUSR1, the view; safe from a signal handler):
        the loop clears the firmware's e-stop latch at its next turn, if the switch is released and no
        e-stop was asked for since."""
        self._start_gen = self._estop_gen
        self._start_requested = True

    def request_estop(self, who: str) -> None:
        """An e-stop from outside the loop (the live view's button), from the caller's thread: latched in
        the firmware at once (the loop may be busy), held by the loop at its next turn like the arm's own
        e-stop (nothing sent; a deliberate start resumes).  RunError without an arm; the link's error when
        the firmware did not acknowledge it: the loop holds all the same, and the heartbeats are paused."""
        if self.arm is None:
            raise RunError("no arm is connected: there is nothing to stop")
        with self._estop_lock:  # first: the loop holds even if the link fails below
            self._estop_gen += 1
            self._start_requested = False
            self._estop_by.append(who)
        try:
            self.arm.estop()
        except BaseException:
            self._estop_unacknowledged()
            raise

    def _estop_unacknowledged(self) -> None:
        self._estop_failed = True
        self.arm.pause_heartbeat()  # the firmware's watchdog rests the arm

    def _take_estops(self) -> None:
        """The loop's turn: hold for every e-stop asked for since the last one (each name logged)."""
        if not self._estop_by:
            return
        with self._estop_lock:
            names, self._estop_by = self._estop_by, []
        self._estop_ours = True
        for who in names:
            self.fault("arm", f"estop from {who}: every joint froze where it was until a deliberate start")
            self._log("estop", by=who)
        self._hold(ESTOPPED, rest=False)

    def _take_start(self) -> None:
        """The loop's turn: the start asked for, unless an e-stop was asked for after it."""
        if not self._start_requested:
            return
        self._start_requested = False  # (before the generation is read: a start asked for meanwhile counts)
        gen = self._start_gen
        if gen != self._estop_gen:
            self._log("start", result="dropped: an e-stop was asked for after it")
            log.warning("a start asked for before an e-stop was dropped: the arm stays stopped")
            return
        self._start(gen)

    def _start(self, gen: int) -> None:
        if ESTOPPED not in self._holds or self.arm is None:
            self._log("start", result="nothing to start: the arm is not e-stopped")
            log.info("start requested, but the arm is not e-stopped: nothing to do")
            return
        try:
            self.arm.start()
        except LinkError as exc:
            self.fault("arm", f"start refused ({type(exc).__name__}: {exc}): release the arm's e-stop switch, "
                              "then start again")
            self._log("start", result="refused", detail=str(exc))
            return
        if self._estop_gen != gen:  # an e-stop came while the start ran: the start may have cleared its latch
            self._log("start", result="overridden: an e-stop came during it")
            log.warning("an e-stop came while the start ran: latched again, the arm stays stopped")
            try:
                self.arm.estop()
            except Exception:  # noqa: BLE001 - not acknowledged: the watchdog rests the arm
                self._estop_unacknowledged()
            return
        self._log("start", result="sent")
        log.warning("start: the arm's e-stop latch is cleared; control resumes from where the arm stopped")
        if self._estop_failed:  # the heartbeats were paused: the firmware's watchdog rested the arm
            self._estop_failed = False
            self.arm.resume_heartbeat()
            self.pipeline.arm_state.reset()  # at its safe pose the arm holds nothing
            self._firmware_rested = True  # control resumes through REST, whose path clears the watchdog's latch
        if self._estop_ours:  # our own latch (request_estop): the link reports the release of the arm's only
            self._estop_ours = False
            self._release(ESTOPPED, "the arm was started again after its e-stop")
