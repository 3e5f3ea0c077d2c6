"""The wire protocol on plain bytes: CRC, COBS, frames, the parser, and Python == C."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import protocol as P
from firmware_bridge.errors import FrameError, LinkError, ProtocolError

ROOT = Path(P.__file__).resolve().parents[1]  # firmware_bridge/ (protocol is a package)
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


# ------------------------------------------------------------------ streaming (PROTOCOL.md section 5)
def _doc_hex(marker: str) -> bytes:
    doc = (ROOT / "PROTOCOL.md").read_text()
    return bytes.fromhex(re.search(rf"^{marker}: ([0-9a-f ]+)$", doc, re.MULTILINE).group(1))


def test_samples_example_frame_in_protocol_md():
    # A0 and A1 at 500 Hz (2 scans a frame), the stream STREAM_START seq 7 began; frame 500 (seq 0xF4)
    wire = _doc_hex("EXAMPLE-SAMPLES-FRAME")
    payload = P.pack_samples(1000, 7, 0x03, [(512, 498), (530, 1023)])
    assert P.encode_frame(P.MsgType.SAMPLES, 0xF4, payload) == wire
    [f] = P.FrameParser().feed(wire)
    s = P.Samples.from_payload(f.payload)
    assert (f.type, f.seq, s.first_sample, s.stream, s.channels) == (P.MsgType.SAMPLES, 0xF4, 1000, 7, (0, 1))
    assert s.values == ((512, 498), (530, 1023)) and s.next_sample == 1002
    doc = (ROOT / "PROTOCOL.md").read_text()
    assert " ".join(f"{b:02X}" for b in wire) in doc  # the annotated dump shows the same bytes
    assert "00 CA 27 E1 FF" in doc  # the packed values, byte by byte


def test_samples_example_frame_in_c_test():
    # The C unit test builds the same bytes with the firmware core's own stream (test_samples_example_frame).
    src = (ROOT / "firmware" / "tests" / "test_core.c").read_text()
    c_bytes = ", ".join(f"0x{b:02X}" for b in _doc_hex("EXAMPLE-SAMPLES-FRAME"))
    assert re.sub(r"\s+", " ", c_bytes) in re.sub(r",\s+", ", ", src)
    start = ", ".join(f"0x{b:02X}" for b in _doc_hex("EXAMPLE-STREAM-START-FRAME"))
    assert start in src


def test_stream_start_example_frame_in_protocol_md():
    wire = _doc_hex("EXAMPLE-STREAM-START-FRAME")
    assert P.encode_frame(P.MsgType.STREAM_START, 7, P.pack_stream_start(0x03, 500)) == wire


def test_stream_constants_match_the_c_headers():
    from firmware_bridge import config

    d = _c_defines("ng_protocol.h", "ng_config.h")
    assert d["NG_LINK_BAUD"] == P.LINK_BAUD == config.BAUDRATE
    assert d["NG_ADC_CHANNELS"] == P.ADC_CHANNELS
    assert (d["NG_STREAM_TICK_HZ"], d["NG_STREAM_RATE_MAX_HZ"], d["NG_STREAM_SPAN_MS"]) == (
        P.STREAM_TICK_HZ, P.STREAM_RATE_MAX_HZ, P.STREAM_SPAN_MS)
    assert (d["NG_STREAM_RESERVE_BPS"], d["NG_STREAM_LOAD_PCT"]) == (P.STREAM_RESERVE_BPS, P.STREAM_LOAD_PCT)
    assert d["NG_SAMPLES_HEADER"] == P.SAMPLES_HEADER_SIZE
    assert d["NG_LEN_SAMPLES"] == P.MAX_PAYLOAD == P.PAYLOAD_SIZE[P.MsgType.SAMPLES]


@pytest.mark.parametrize("mask, rate, baud, k, frame, need, avail, fits", [
    (0xFF, 500, 500_000, 2, 34, 8500, 38000, True),     # raw EMG, 8 inputs
    (0x0F, 1000, 500_000, 5, 39, 7800, 38000, True),    # raw EMG, 4 inputs
    (0xFF, 200, 500_000, 1, 24, 4800, 38000, True),     # envelopes, Myo-like
    (0xFF, 1000, 500_000, 2, 34, 17000, 38000, True),   # the most the ADC does
    (0x01, 1000, 500_000, 5, 21, 4200, 38000, True),
    (0xFF, 1000, 250_000, 2, 34, 17000, 18000, True),
    (0xFF, 500, 115_200, 2, 34, 8500, 7216, False),
    (0x0F, 1000, 115_200, 5, 39, 7800, 7216, False),
    (0xFF, 200, 115_200, 1, 24, 4800, 7216, True),
])
def test_stream_budget_table(mask, rate, baud, k, frame, need, avail, fits):
    b = P.stream_budget(mask, rate, baud)
    assert (b.scans_per_frame, b.frame_bytes, b.needed_bps, b.available_bps, b.fits) == (k, frame, need, avail, fits)
    assert (b.problem is None) == fits
    if not fits:
        assert "fewer channels or a lower rate" in b.problem and f"{P.LINK_BAUD} baud" in b.problem


def test_stream_arguments_name_the_fix():
    with pytest.raises(ValueError, match="rate_hz must divide 1000"):
        P.pack_stream_start(0xFF, 300)
    with pytest.raises(ValueError, match="rate_hz must divide 1000"):
        P.stream_budget(0xFF, 2000)
    with pytest.raises(ValueError, match="channel_mask must select 1 to 8"):
        P.pack_stream_start(0, 500)
    with pytest.raises(TypeError, match="rate_hz must be an int"):
        P.pack_stream_start(3, 500.0)
    with pytest.raises(ValueError, match="channels must be ADC inputs 0..7"):
        P.channel_mask([0, 8])
    assert P.channel_mask(range(8)) == 0xFF and P.channel_mask([5, 0]) == 0x21
    assert P.mask_channels(0x21) == (0, 5)
    assert P.pack_stream_start(0xFF, 1000) == bytes([0xFF, 0, 0xE8, 0x03])


def test_samples_malformed_payloads_are_refused():
    good = P.pack_samples(5, 1, 0x0F, [(1, 2, 3, 4)] * 3)
    assert P.Samples.from_payload(good).values == ((1, 2, 3, 4),) * 3
    for bad in (good[:6], good[:-1], good + b"\0", good[:5] + b"\0" + good[6:],    # short, length, no channel
                good[:6] + b"\0" + good[7:]):                                        # no scan
        with pytest.raises(ProtocolError, match="disagree on the protocol"):
            P.Samples.from_payload(bad)
    with pytest.raises(ValueError, match="each scan must hold 4 values"):
        P.pack_samples(0, 0, 0x0F, [(1, 2, 3)])
    with pytest.raises(ValueError, match="ADC values must be 0..1023"):
        P.pack_samples(0, 0, 0x01, [(1024,)])
    with pytest.raises(ValueError, match="more than 32"):
        P.pack_samples(0, 0, 0xFF, [(0,) * 8] * 3)


def test_the_wire_vocabulary_sits_below_errors_and_protocol():
    # errors.py and protocol.py both read wire.py; errors.py does not import protocol.py (no circle).
    import ast

    from firmware_bridge import errors, wire

    def imports(mod) -> set[str]:
        tree = ast.parse(Path(mod.__file__).read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}

    assert not {m for m in imports(wire) if m and m.startswith("firmware_bridge")}
    assert "firmware_bridge.protocol" not in imports(errors)
    assert P.MsgType is wire.MsgType and P.Reason is wire.Reason and P.reason_hint is wire.reason_hint
    assert "BUDGET" in str(errors.Nacked(P.MsgType.STREAM_START, P.Reason.BUDGET))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 255), st.integers(0, 2**32 - 1), st.integers(0, 255), st.data())
def test_samples_roundtrip_property(mask, first, stream, data):
    n = mask.bit_count()
    scans = data.draw(st.lists(st.lists(st.integers(0, P.ADC_MAX), min_size=n, max_size=n),
                               min_size=1, max_size=20 // n))
    s = P.Samples.from_payload(P.pack_samples(first, stream, mask, scans))
    assert (s.first_sample, s.stream, s.channel_mask) == (first, stream, mask)
    assert s.values == tuple(tuple(v) for v in scans)


_RATES = [r for r in range(1, 1001) if 1000 % r == 0]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 1), st.sampled_from(_RATES + [0, 3, 300, 2000]),
       st.sampled_from([500_000, 250_000, 115_200, 57_600, 9_600, 1_000_000]))
def test_c_and_python_compute_the_same_budget(frametool, mask, reserved, rate, baud):
    reason, k, frame, need, avail = (int(x) for x in frametool(f"B {mask} {reserved} {rate} {baud}").split())
    try:
        if reserved:
            raise ValueError("reserved byte")
        b = P.stream_budget(mask, rate, baud)
    except ValueError:
        assert reason == P.Reason.BAD_ARG
        return
    assert (k, frame, need, avail) == (b.scans_per_frame, b.frame_bytes, b.needed_bps, b.available_bps)
    assert reason == (0 if b.fits else P.Reason.BUDGET)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 255), st.sampled_from(_RATES), st.integers(0, 2**31 - 64), st.integers(0, 255), st.data())
def test_c_core_and_python_build_identical_samples_frames(frametool, mask, rate, first, start_seq, data):
    # The firmware core's stream (HELLO, STREAM_START, scans from `first`, STREAM_STOP) == Python's encoding.
    n = mask.bit_count()
    scans = data.draw(st.lists(st.lists(st.integers(0, P.ADC_MAX), min_size=n, max_size=n), min_size=1, max_size=25))
    flat = ",".join(str(v) for scan in scans for v in scan)
    got = frametool(f"S {start_seq} {mask} {rate} {first} {flat}").split()
    k = P.scans_per_frame(n, rate)
    want = [P.encode_frame(P.MsgType.SAMPLES, i & 0xFF, P.pack_samples(first + i * k, start_seq, mask,
                                                                      scans[i * k:(i + 1) * k])).hex()
            for i in range(-(-len(scans) // k))]
    assert got == want
