"""Frames on plain bytes: CRC-16/CCITT-FALSE, COBS, encoding, decoding and the incremental parser.

:class:`FrameParser` is fed whatever the port returned and yields whole, CRC-checked frames, so it is
tested without threads, ports or sleeps.  It mirrors ``firmware/core/ng_frame.c`` byte for byte (the
tests compare both on random inputs).  PROTOCOL.md § 1.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from firmware_bridge.errors import FrameError
from firmware_bridge.wire import Reason

PROTOCOL_VERSION = 1
HEADER_SIZE = 3  # type, seq, len
CRC_SIZE = 2
MAX_PAYLOAD = 32
MAX_RAW = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
# COBS adds one byte per started 254-byte block; frames are far shorter than 254 bytes.
MAX_ENCODED = MAX_RAW + 1
DELIMITER = 0x00


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
