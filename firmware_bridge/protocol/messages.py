"""The messages' payloads (PROTOCOL.md § 3): the requests' packers and the replies' decoders.

Every reply's payload length is checked against its type before any field is read; HELLO_REPLY
reads its version byte first, so a firmware of another protocol version is named as such.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from firmware_bridge.errors import ProtocolError, VersionMismatch
from firmware_bridge.protocol.frames import MAX_PAYLOAD, PROTOCOL_VERSION, Frame
from firmware_bridge.wire import Action, Fault, MsgType

N_JOINTS = 2
ANGLE_MAX_DDEG = 1800  # 180.0 degrees: the servo's whole travel
SPEED_MAX_DDEG_S = 3000  # hard ceiling the firmware never exceeds, whatever SET_LIMITS says
WATCHDOG_MIN_MS = 20
WATCHDOG_MAX_MS = 250  # design goal: safe state <= 250 ms after heartbeats stop
WATCHDOG_DEFAULT_MS = 250
CLEAR_MAGIC = 0xC1EA

#: Fixed payload size of every message type; any other length is refused (NACK BAD_LENGTH).  SAMPLES
#: is the one exception: this is its largest size, its exact size follows from its own header
#: (:func:`~firmware_bridge.protocol.stream.samples_payload_size`, PROTOCOL.md section 5).
PAYLOAD_SIZE = {
    MsgType.HELLO: 2, MsgType.HEARTBEAT: 0, MsgType.ARM_CMD: 6, MsgType.ESTOP: 0, MsgType.CLEAR: 4,
    MsgType.STATUS_REQ: 0, MsgType.SET_LIMITS: 10, MsgType.SET_CONFIG: 4, MsgType.STREAM_START: 4,
    MsgType.STREAM_STOP: 0,
    MsgType.ACK: 1, MsgType.NACK: 2, MsgType.HELLO_REPLY: 8, MsgType.STATUS: 28, MsgType.SAMPLES: MAX_PAYLOAD,
}
HOST_TYPES = frozenset(t for t in MsgType if t < 0x80)
CLEARABLE = Fault.ESTOP | Fault.WATCHDOG | Fault.RX_OVERFLOW


def _check_u16(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{name} must be 0..65535, got {value}")
    return value


def pack_hello(version: int = PROTOCOL_VERSION) -> bytes:
    return struct.pack("<BB", version, 0)


def pack_arm_cmd(action: Action | int, target_ddeg: int, speed_ddeg_s: int) -> bytes:
    """Payload of ARM_CMD: action, reserved, target (0.1°), speed (0.1°/s)."""
    try:
        action = Action(action)
    except ValueError:
        raise ValueError(f"action must be one of {[a.name for a in Action]}, got {action!r}") from None
    if not 0 <= _check_u16("target_ddeg", target_ddeg) <= ANGLE_MAX_DDEG:
        raise ValueError(f"target_ddeg must be 0..{ANGLE_MAX_DDEG} (tenths of a degree), got {target_ddeg}")
    if _check_u16("speed_ddeg_s", speed_ddeg_s) < 1:
        raise ValueError("speed_ddeg_s must be >= 1 (tenths of a degree per second)")
    return struct.pack("<BBHH", action, 0, target_ddeg, speed_ddeg_s)


def pack_clear(mask: Fault | int) -> bytes:
    mask = int(mask)
    if mask == 0 or mask & ~int(CLEARABLE):
        raise ValueError(f"mask must be a non-empty combination of {CLEARABLE!r}, got 0x{mask:x}")
    return struct.pack("<HH", mask, CLEAR_MAGIC)


def pack_set_limits(joint: int, min_ddeg: int, max_ddeg: int, safe_ddeg: int, max_speed_ddeg_s: int) -> bytes:
    """Payload of SET_LIMITS.  The firmware re-checks everything; this only catches typos early."""
    if joint not in range(N_JOINTS):
        raise ValueError(f"joint must be 0..{N_JOINTS - 1}, got {joint}")
    for name, v in (("min_ddeg", min_ddeg), ("max_ddeg", max_ddeg), ("safe_ddeg", safe_ddeg),
                    ("max_speed_ddeg_s", max_speed_ddeg_s)):
        _check_u16(name, v)
    return struct.pack("<BBHHHH", joint, 0, min_ddeg, max_ddeg, safe_ddeg, max_speed_ddeg_s)


def pack_set_config(watchdog_ms: int) -> bytes:
    return struct.pack("<HH", _check_u16("watchdog_ms", watchdog_ms), 0)


def _check_length(msg_type: MsgType, p: bytes) -> None:
    want = PAYLOAD_SIZE[msg_type]
    if len(p) != want:
        raise ProtocolError(f"{msg_type.name} with {len(p)} payload bytes, protocol {PROTOCOL_VERSION} says "
                            f"{want}: host and firmware disagree on the protocol; flash the firmware that "
                            "matches this neurogrip")


@dataclass(frozen=True)
class Ack:
    acked_type: int


@dataclass(frozen=True)
class Nack:
    nacked_type: int  # 0 for a corrupted frame (PROTOCOL.md section 2)
    reason: int


@dataclass(frozen=True)
class HelloReply:
    protocol_version: int
    n_joints: int
    firmware_version: int
    watchdog_ms: int

    @classmethod
    def from_payload(cls, p: bytes) -> HelloReply:
        """Decode a HELLO_REPLY: the version byte first, so another protocol is named as such.

        Raises
        ------
        VersionMismatch
            The firmware speaks another protocol version (byte 0 of HELLO_REPLY in every version).
        ProtocolError
            The payload is empty or its length is not this version's.
        """
        if not p:
            raise ProtocolError("empty HELLO_REPLY: host and firmware disagree on the protocol; flash the "
                                "firmware that matches this neurogrip")
        if p[0] != PROTOCOL_VERSION:
            raise VersionMismatch(PROTOCOL_VERSION, p[0])
        _check_length(MsgType.HELLO_REPLY, p)
        v, n, fw, wd, _ = struct.unpack("<BBHHH", p)
        return cls(v, n, fw, wd)


_STATUS = struct.Struct("<I2H2HHBB6H")


@dataclass(frozen=True)
class Status:
    """Telemetry: joint positions/targets (0.1°), fault flags and link counters."""

    uptime_ms: int
    position: tuple[int, int]
    target: tuple[int, int]
    faults: Fault
    last_action: int
    frames_ok: int
    crc_errors: int
    framing_errors: int
    commands_executed: int
    watchdog_trips: int
    nacks_sent: int

    @classmethod
    def from_payload(cls, p: bytes) -> Status:
        """Decode a STATUS payload; :class:`ProtocolError` if its length is not the protocol's."""
        _check_length(MsgType.STATUS, p)
        u = _STATUS.unpack(p)
        return cls(u[0], (u[1], u[2]), (u[3], u[4]), Fault(u[5]), u[6], *u[8:14])


def parse_reply(f: Frame) -> Ack | Nack | HelloReply | Status:
    """Decode a firmware reply, checking its payload length before reading any field.

    Raises
    ------
    ProtocolError
        The payload's length is not the one its type has in this protocol version, or ``f`` is
        not a reply type (``VersionMismatch`` for a HELLO_REPLY of another version).
    """
    p = f.payload
    if f.type == MsgType.ACK:
        _check_length(MsgType.ACK, p)
        return Ack(p[0])
    if f.type == MsgType.NACK:
        _check_length(MsgType.NACK, p)
        return Nack(p[0], p[1])
    if f.type == MsgType.HELLO_REPLY:
        return HelloReply.from_payload(p)
    if f.type == MsgType.STATUS:
        return Status.from_payload(p)
    raise ProtocolError(f"frame type 0x{f.type:02x} is not a firmware reply")


def ddeg_to_pulse_us(ddeg: int) -> int:
    """Servo pulse width for an angle, as the firmware computes it (1000 µs at 0°, 2000 µs at 180°)."""
    return 1000 + (ddeg * 1000 + ANGLE_MAX_DDEG // 2) // ANGLE_MAX_DDEG
