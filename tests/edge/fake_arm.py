"""A stand-in for :class:`firmware_bridge.link.ArmLink` in runtime tests that are about the runtime, not
the wire (the real link, firmware and simulated arm are tested in tests/firmware_bridge and by the
runtime tests that use the simavr arm).  It acknowledges every command and records it; subclasses
refuse commands or report link faults the way the real link does."""

from __future__ import annotations

from firmware_bridge.errors import Nacked
from firmware_bridge.protocol import Action, Reason


class AckingArm:
    """Acknowledges every command (``sent`` in order); ``refuse`` = a NACK reason name for every
    command but REST (the firmware's watchdog or e-stop latched)."""

    url = "fake://arm"

    def __init__(self, refuse: str | None = None):
        self.sent: list[Action] = []
        self.refuse = refuse

    def command(self, action, target=None, speed=None, deadline=None):
        if self.refuse is not None and action is not Action.REST:
            raise Nacked(0, Reason[self.refuse])
        self.sent.append(action)

    @property
    def rests(self) -> int:
        return sum(a is Action.REST for a in self.sent)

    def clear(self, *_):
        pass

    def pause_heartbeat(self):
        pass

    def resume_heartbeat(self):
        pass
