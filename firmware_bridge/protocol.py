"""The neurogrip serial protocol, pure and transport-free (see ``firmware_bridge/PROTOCOL.md``).

Everything here works on plain ``bytes``: :class:`FrameParser` is fed whatever the port returned
and yields whole, CRC-checked frames, so it is tested without threads, ports or sleeps.  It mirrors
``firmware/core/ng_frame.c`` byte for byte (the tests compare both on random inputs).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from firmware_bridge.errors import FrameError, ProtocolError, VersionMismatch

PROTOCOL_VERSION = 1
HEADER_SIZE = 3  # type, seq, len
CRC_SIZE = 2
MAX_PAYLOAD = 32
MAX_RAW = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
# COBS adds one byte per started 254-byte block; frames are far shorter than 254 bytes.
MAX_ENCODED = MAX_RAW + 1
DELIMITER = 0x00
N_JOINTS = 2
ANGLE_MAX_DDEG = 1800  # 180.0 degrees: the servo's whole travel
SPEED_MAX_DDEG_S = 3000  # hard ceiling the firmware never exceeds, whatever SET_LIMITS says
WATCHDOG_MIN_MS = 20
WATCHDOG_MAX_MS = 250  # design goal: safe state <= 250 ms after heartbeats stop
WATCHDOG_DEFAULT_MS = 250
CLEAR_MAGIC = 0xC1EA


class MsgType(enum.IntEnum):
    HELLO = 0x01
    HEARTBEAT = 0x02
    ARM_CMD = 0x03
    ESTOP = 0x04
    CLEAR = 0x05
    STATUS_REQ = 0x06
    SET_LIMITS = 0x07
    SET_CONFIG = 0x08
    ACK = 0x80
    NACK = 0x81
    HELLO_REPLY = 0x82
    STATUS = 0x83


#: Fixed payload size of every message type; any other length is refused (NACK BAD_LENGTH).
PAYLOAD_SIZE = {
    MsgType.HELLO: 2, MsgType.HEARTBEAT: 0, MsgType.ARM_CMD: 6, MsgType.ESTOP: 0, MsgType.CLEAR: 4,
    MsgType.STATUS_REQ: 0, MsgType.SET_LIMITS: 10, MsgType.SET_CONFIG: 4,
    MsgType.ACK: 1, MsgType.NACK: 2, MsgType.HELLO_REPLY: 8, MsgType.STATUS: 28,
}
HOST_TYPES = frozenset(t for t in MsgType if t < 0x80)


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


CLEARABLE = Fault.ESTOP | Fault.WATCHDOG | Fault.RX_OVERFLOW


# --------------------------------------------------------------------------- CRC and COBS
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        table.append(c & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR (check 0x29B1)."""
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result contains no 0x00 byte."""
    out = bytearray([0])
    code_at, code = 0, 1
    for b in data:
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at, code = len(out), 1
                out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Invert :func:`cobs_encode`; raise :class:`FrameError` on a malformed block."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError("COBS: zero byte inside a frame; frames end at the first 0x00")
        end = i + code
        if end > n:
            raise FrameError("COBS: block runs past the end of the frame (truncated frame)")
        chunk = data[i + 1:end]
        if 0 in chunk:
            raise FrameError("COBS: zero byte inside a frame; frames end at the first 0x00")
        out += chunk
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


# --------------------------------------------------------------------------- frames
@dataclass(frozen=True)
class Frame:
    """One decoded frame: message type, sequence number and payload."""

    type: int
    seq: int
    payload: bytes


def encode_frame(msg_type: int, seq: int, payload: bytes = b"") -> bytes:
    """Build the wire bytes of one frame: ``COBS(type seq len payload crc16le) 0x00``.

    Raises
    ------
    ValueError
        If ``msg_type``/``seq`` do not fit a byte or the payload is longer than ``MAX_PAYLOAD``.
    """
    if not 0 <= msg_type <= 0xFF:
        raise ValueError(f"msg_type must be 0..255, got {msg_type}")
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"seq must be 0..255, got {seq}: wrap it with seq & 0xFF")
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload must be at most {MAX_PAYLOAD} bytes, got {len(payload)}")
    raw = bytes([msg_type, seq, len(payload)]) + payload
    raw += struct.pack("<H", crc16_ccitt_false(raw))
    return cobs_encode(raw) + b"\x00"


def decode_frame(encoded: bytes) -> Frame:
    """Decode one frame given its COBS bytes without the trailing delimiter.

    Raises
    ------
    FrameError
        ``.reason`` is ``Reason.FRAMING`` (bad COBS, too short/long, length field wrong) or
        ``Reason.CRC``.
    """
    if len(encoded) > MAX_ENCODED:
        raise _frame_error(Reason.FRAMING, f"frame of {len(encoded)} bytes exceeds {MAX_ENCODED}")
    try:
        raw = cobs_decode(encoded)
    except FrameError as e:
        raise _frame_error(Reason.FRAMING, str(e)) from None
    if len(raw) < HEADER_SIZE + CRC_SIZE:
        raise _frame_error(Reason.FRAMING, f"frame of {len(raw)} bytes is shorter than header + CRC")
    if raw[2] != len(raw) - HEADER_SIZE - CRC_SIZE:
        raise _frame_error(Reason.FRAMING, "length field disagrees with the frame size")
    (crc,) = struct.unpack_from("<H", raw, len(raw) - CRC_SIZE)
    if crc != crc16_ccitt_false(raw[:-CRC_SIZE]):
        raise _frame_error(Reason.CRC, "CRC mismatch")
    return Frame(raw[0], raw[1], bytes(raw[HEADER_SIZE:-CRC_SIZE]))


def _frame_error(reason: Reason, text: str) -> FrameError:
    e = FrameError(text)
    e.reason = reason
    return e


class FrameParser:
    """Incremental frame parser: feed it bytes as they arrive, get whole valid frames back.

    Bytes are collected up to each 0x00 delimiter.  An over-long run without a delimiter is
    dropped as one framing error (the parser resynchronises at the next 0x00), exactly like the
    firmware's parser.  Empty frames (two delimiters in a row) are ignored: senders may prefix a
    delimiter to resynchronise the receiver.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False
        self.frames_ok = 0
        self.crc_errors = 0
        self.framing_errors = 0

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data``; return the frames completed by it, in order."""
        frames = []
        for b in data:
            if b != DELIMITER:
                if len(self._buf) < MAX_ENCODED:
                    self._buf.append(b)
                else:
                    self._overflow = True
                continue
            if self._overflow:
                self.framing_errors += 1
            elif self._buf:
                try:
                    frames.append(decode_frame(bytes(self._buf)))
                    self.frames_ok += 1
                except FrameError as e:
                    if e.reason == Reason.CRC:
                        self.crc_errors += 1
                    else:
                        self.framing_errors += 1
            self._buf.clear()
            self._overflow = False
        return frames


# --------------------------------------------------------------------------- payloads
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
