"""The wire protocol's vocabulary: message types, actions, NACK reasons and fault bits (PROTOCOL.md § 3, § 5).

The lowest module of :mod:`firmware_bridge`: it imports nothing from the package, so both
:mod:`firmware_bridge.errors` (which names types and reasons in its messages) and
:mod:`firmware_bridge.protocol` (which re-exports everything here) read it without importing each
other.  The numbers mirror ``firmware/core/ng_protocol.h``; ``tests/firmware_bridge/test_protocol.py``
checks they agree.
"""

from __future__ import annotations

import enum


class MsgType(enum.IntEnum):
    HELLO = 0x01
    HEARTBEAT = 0x02
    ARM_CMD = 0x03
    ESTOP = 0x04
    CLEAR = 0x05
    STATUS_REQ = 0x06
    SET_LIMITS = 0x07
    SET_CONFIG = 0x08
    STREAM_START = 0x09
    STREAM_STOP = 0x0A
    ACK = 0x80
    NACK = 0x81
    HELLO_REPLY = 0x82
    STATUS = 0x83
    SAMPLES = 0x84


class Action(enum.IntEnum):
    GRASP = 1
    RELEASE = 2
    LIFT = 3
    LOWER = 4
    OPEN = 5
    HOLD = 6
    REST = 7


class Reason(enum.IntEnum):
    CRC = 1
    FRAMING = 2
    UNKNOWN_TYPE = 3
    BAD_LENGTH = 4
    BAD_ARG = 5
    ESTOPPED = 6
    WATCHDOG = 7
    VERSION = 8
    NO_HELLO = 9
    BUDGET = 10


_HINTS = {
    Reason.CRC: "the frame was corrupted on the wire; it is retried automatically",
    Reason.FRAMING: "the frame was corrupted on the wire; it is retried automatically",
    Reason.UNKNOWN_TYPE: "host and firmware disagree on the protocol: flash the matching firmware",
    Reason.BAD_LENGTH: "host and firmware disagree on the protocol: flash the matching firmware",
    Reason.BAD_ARG: "a field is out of range: see the message table in PROTOCOL.md",
    Reason.ESTOPPED: "the e-stop is latched: call clear(Fault.ESTOP) once the arm is safe",
    Reason.WATCHDOG: "heartbeats stopped and the arm went to its safe pose: call clear(Fault.WATCHDOG)",
    Reason.VERSION: "protocol versions differ: flash the firmware that matches this neurogrip",
    Reason.NO_HELLO: "send HELLO first (ArmLink.open does this)",
    Reason.BUDGET: ("the stream needs more bytes per second than the link has at the firmware's baud rate: "
                    "stream fewer channels or a lower rate (protocol.stream_budget, PROTOCOL.md section 5)"),
}


def reason_hint(reason: int) -> str:
    """Return a one-line fix for a NACK reason code."""
    try:
        return _HINTS[Reason(reason)]
    except ValueError:
        return "unknown reason code: flash the firmware that matches this neurogrip"


class Fault(enum.IntFlag):
    ESTOP = 0x01
    WATCHDOG = 0x02
    CLAMPED = 0x04
    NO_HELLO = 0x08
    RX_OVERFLOW = 0x10
    ESTOP_INPUT = 0x20  # the arm's own e-stop switch is pressed (only releasing it clears this)
