"""The wire protocol on plain bytes: CRC, COBS, frames, the parser, and Python == C."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import protocol as P
from firmware_bridge.errors import FrameError, LinkError

ROOT = Path(P.__file__).resolve().parent
CORE = ROOT / "firmware" / "core"


def test_crc_check_value():
    assert P.crc16_ccitt_false(b"123456789") == 0x29B1
    assert P.crc16_ccitt_false(b"") == 0xFFFF


@pytest.mark.parametrize("raw, enc", [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
])
def test_cobs_known_vectors(raw, enc):
    # Vectors from Cheshire & Baker's COBS paper / Wikipedia.
    assert P.cobs_encode(raw) == enc
    assert P.cobs_decode(enc) == raw


def test_example_frame_in_protocol_md():
    doc = (ROOT / "PROTOCOL.md").read_text()
    hexline = re.search(r"^EXAMPLE-FRAME: ([0-9a-f ]+)$", doc, re.MULTILINE).group(1)
    frame = P.encode_frame(P.MsgType.ARM_CMD, 5, P.pack_arm_cmd(P.Action.GRASP, 1200, 600))
    assert frame == bytes.fromhex(hexline)
    # the hex dump in the document's code block shows the same bytes
    assert "05 03 05 06 01 07 B0 04 58 02 48 13 00" in doc
    assert P.FrameParser().feed(frame) == [P.Frame(P.MsgType.ARM_CMD, 5, bytes.fromhex("0100b0045802"))]


def test_example_frame_in_c_test():
    # The C unit test checks the same bytes against ng_frame_encode.
    src = (ROOT / "firmware" / "tests" / "test_core.c").read_text()
    assert "0x05, 0x03, 0x05, 0x06, 0x01, 0x07, 0xB0, 0x04, 0x58, 0x02, 0x48, 0x13, 0x00" in src


def _c_defines(*files: str) -> dict[str, int]:
    out = {}
    for name in files:
        for m in re.finditer(r"#define (NG_\w+) (0x[0-9A-Fa-f]+|\d+)u?\b", (CORE / name).read_text()):
            out[m.group(1)] = int(m.group(2), 0)
    return out


def test_constants_match_the_c_headers():
    d = _c_defines("ng_protocol.h", "ng_config.h")
    assert d["NG_PROTOCOL_VERSION"] == P.PROTOCOL_VERSION
    assert d["NG_MAX_PAYLOAD"] == P.MAX_PAYLOAD
    assert d["NG_CLEAR_MAGIC"] == P.CLEAR_MAGIC
    assert d["NG_ANGLE_MAX_DDEG"] == P.ANGLE_MAX_DDEG
    assert d["NG_SPEED_MAX_DDEG_S"] == P.SPEED_MAX_DDEG_S
    assert (d["NG_WATCHDOG_MIN_MS"], d["NG_WATCHDOG_MAX_MS"], d["NG_WATCHDOG_DEFAULT_MS"]) == (
        P.WATCHDOG_MIN_MS, P.WATCHDOG_MAX_MS, P.WATCHDOG_DEFAULT_MS)
    assert d["NG_N_JOINTS"] == P.N_JOINTS
    for t in P.MsgType:
        assert d[f"NG_LEN_{t.name}"] == P.PAYLOAD_SIZE[t], t.name
    for f in P.Fault:
        assert d[f"NG_FAULT_{f.name}"] == f.value, f.name
    enums = (CORE / "ng_protocol.h").read_text()
    for t in P.MsgType:
        assert re.search(rf"NG_MSG_{t.name} = 0x{t.value:02X}\b", enums), t.name
    for a in P.Action:
        assert f"NG_ACT_{a.name} = {a.value}" in enums
    for r in P.Reason:
        assert f"NG_R_{r.name} = {r.value}" in enums


def test_parser_resyncs_and_counts():
    good = P.encode_frame(0x42, 9, b"\x00\x01\x02")
    bad_crc = bytearray(good)
    bad_crc[5] ^= 0x40
    stream = b"\x11\x22\x33\x00" + b"\x00" + good + b"\x33" * 200 + b"\x00" + good + bytes(bad_crc)
    p = P.FrameParser()
    frames = p.feed(stream)
    assert frames == [P.Frame(0x42, 9, b"\x00\x01\x02")] * 2
    assert (p.frames_ok, p.crc_errors, p.framing_errors) == (2, 1, 2)


def test_parser_byte_by_byte_equals_whole():
    stream = b"".join(P.encode_frame(t, s, bytes([s]) * (s % 5)) for t, s in [(1, 0), (0x83, 7), (3, 255)])
    p1, p2 = P.FrameParser(), P.FrameParser()
    one_by_one = [f for b in stream for f in p1.feed(bytes([b]))]
    assert one_by_one == p2.feed(stream)
    assert len(p2.feed(b"")) == 0 and p2.frames_ok == 3


def test_decode_errors_have_reasons():
    with pytest.raises(FrameError) as e:
        P.decode_frame(P.encode_frame(1, 1, b"ab")[:-3] + b"\x01")
    assert isinstance(e.value, LinkError)
    with pytest.raises(FrameError, match="shorter"):
        P.decode_frame(P.cobs_encode(b"\x01\x02"))
    raw = bytes([1, 1, 5, 0, 0])  # length field says 5, frame has 0 payload bytes
    with pytest.raises(FrameError, match="length field"):
        P.decode_frame(P.cobs_encode(raw))


def test_pack_validation_names_the_fix():
    with pytest.raises(ValueError, match="action must be one of"):
        P.pack_arm_cmd(9, 100, 100)
    with pytest.raises(ValueError, match="target_ddeg must be 0..1800"):
        P.pack_arm_cmd(P.Action.GRASP, 1801, 100)
    with pytest.raises(ValueError, match="speed_ddeg_s must be >= 1"):
        P.pack_arm_cmd(P.Action.GRASP, 100, 0)
    with pytest.raises(TypeError, match="target_ddeg must be an int"):
        P.pack_arm_cmd(P.Action.GRASP, 10.5, 10)
    with pytest.raises(ValueError, match="mask must be"):
        P.pack_clear(0x40)
    with pytest.raises(ValueError, match="seq must be 0..255"):
        P.encode_frame(1, 256)
    with pytest.raises(ValueError, match="payload must be at most 32"):
        P.encode_frame(1, 1, bytes(33))


def test_status_layout():
    payload = struct.pack("<I2H2HHBB6H", 1234, 400, 410, 900, 400, 0x03, 6, 0, 1, 2, 3, 4, 5, 6)
    s = P.Status.from_payload(payload)
    assert len(payload) == P.PAYLOAD_SIZE[P.MsgType.STATUS]
    assert s.position == (400, 410) and s.target == (900, 400)
    assert s.faults == P.Fault.ESTOP | P.Fault.WATCHDOG and s.nacks_sent == 6 and s.frames_ok == 1


def test_pulse_mapping():
    assert [P.ddeg_to_pulse_us(a) for a in (0, 1, 900, 1800)] == [1000, 1001, 1500, 2000]


# ------------------------------------------------------------------ properties
@given(st.binary(max_size=600))
def test_cobs_roundtrip_property(data):
    enc = P.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert P.cobs_decode(enc) == data


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=P.MAX_PAYLOAD))
def test_frame_roundtrip_property(t, s, payload):
    wire = P.encode_frame(t, s, payload)
    assert wire.count(0) == 1 and wire[-1] == 0 and len(wire) <= P.MAX_ENCODED + 1
    assert P.FrameParser().feed(wire) == [P.Frame(t, s, payload)]


@given(st.integers(0, 255), st.integers(0, 255), st.binary(min_size=0, max_size=P.MAX_PAYLOAD),
       st.data())
def test_any_single_byte_corruption_is_detected(t, s, payload, data):
    wire = bytearray(P.encode_frame(t, s, payload))
    i = data.draw(st.integers(0, len(wire) - 2))
    wire[i] ^= data.draw(st.integers(1, 255))
    p = P.FrameParser()
    frames = p.feed(bytes(wire) + b"\x00")
    assert frames == []
    assert p.crc_errors + p.framing_errors >= 1


# ------------------------------------------------------------------ Python == C
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=P.MAX_PAYLOAD))
def test_c_encodes_identical_frames(frametool, t, s, payload):
    assert frametool(f"E {t} {s} {payload.hex() or '-'}") == P.encode_frame(t, s, payload).hex()


def _py_events(stream: bytes) -> str:
    """The parser events as the C frame tool prints them."""
    out = []
    p = P.FrameParser()
    for b in stream:
        before = (p.crc_errors, p.framing_errors)
        for f in p.feed(bytes([b])):
            out.append(f"F:{f.type}:{f.seq}:{f.payload.hex() or '-'}")
        if p.crc_errors != before[0]:
            out.append("C")
        elif p.framing_errors != before[1]:
            out.append("X")
    return " ".join(out)


frames_st = st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=P.MAX_PAYLOAD)),
                     max_size=6)


@settings(max_examples=300, deadline=None)
@given(frames_st, st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=8),
       st.binary(max_size=60))
def test_c_and_python_parse_identically(frametool, frames, corruptions, noise):
    stream = bytearray(noise)
    for t, s, pl in frames:
        stream += P.encode_frame(t, s, pl)
    for pos, val in corruptions:
        if stream:
            stream[pos % len(stream)] = val
    stream = bytes(stream)
    assert frametool(f"P {stream.hex() or '-'}") == _py_events(stream)
