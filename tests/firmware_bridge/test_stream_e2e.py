"""SAMPLES end to end: an ADC feed file drives the simulated arm's analog inputs, the real firmware
samples and streams them, and ``protocol.Samples`` decodes exactly the feed's values from the pty.

In both forms, the test id saying which ran: ``[simavr]`` the AVR binary on simavr's ATmega328P
(``arm_sim --adc``), ``[host]`` the host build of the same core (``arm_host --adc``).  The port is read
raw here (FrameParser on the pty's bytes): consuming SAMPLES in the link is not this test's business.
"""

from __future__ import annotations

import itertools
import os
import select
import struct
import time
import tty

import pytest

from firmware_bridge import protocol as P
from firmware_bridge import sim
from tests.conftest import REQUIRE_AVR, missing, require_tool

FEED_RATE = 500


def _pattern(k: int, ch: int) -> int:
    """The ADC counts the feed holds for input ``ch`` at sample ``k``."""
    return (k * 7 + ch * 131) % 1024


def _write_feed(path, seconds: int = 20) -> None:
    """An ADC feed (``firmware/host/adc_feed.h``): header line, then 8 little-endian u16 millivolts a sample."""
    with open(path, "wb") as f:
        f.write(f"NGADC1 {FEED_RATE} 8\n".encode())
        # the smallest millivolts the simulated ADC converts to the pattern's counts (mV x 1023 / 5000)
        f.writelines(struct.pack("<8H", *(-(-_pattern(k, ch) * 5000 // 1023) for ch in range(8)))
                     for k in range(FEED_RATE * seconds))


@pytest.fixture(params=["simavr", "host"])
def streaming_arm(request, host_build, tmp_path):
    feed = tmp_path / "feed.ngadc"
    _write_feed(feed)
    if request.param == "simavr":
        require_tool("avr-gcc")
        require_tool("simavr")
        try:
            proc = sim.start_simavr(adc=feed)
        except sim.SimError as e:
            missing(f"simavr cannot run here ({e})", REQUIRE_AVR)
    else:
        proc = sim.start_arm_host(host_build, adc=feed)
    yield proc
    proc.stop()


class _RawPort:
    """The pty, frames in and out, no link: what arrives is kept in order."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.parser = P.FrameParser()
        self.frames: list[P.Frame] = []
        self.seq = 0

    def send(self, msg_type: int, payload: bytes = b"") -> int:
        self.seq = (self.seq + 1) & 0xFF
        os.write(self.fd, b"\x00" + P.encode_frame(msg_type, self.seq, payload))
        return self.seq

    def pump(self, seconds: float) -> None:
        t_end = time.monotonic() + seconds
        while (left := t_end - time.monotonic()) > 0:
            if select.select([self.fd], [], [], min(left, 0.01))[0]:
                self.frames += self.parser.feed(os.read(self.fd, 4096))

    def reply(self, seq: int, timeout: float = 2.0) -> P.Frame:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            for f in self.frames:
                if f.type != P.MsgType.SAMPLES and f.seq == seq:
                    return f
            self.pump(0.01)
        raise AssertionError(f"no reply to seq {seq} within {timeout} s")

    def close(self) -> None:
        os.close(self.fd)


def test_samples_carry_the_feed_while_commands_and_heartbeats_go_on(streaming_arm):
    port = _RawPort(streaming_arm.pty)
    try:
        assert port.reply(port.send(P.MsgType.HELLO, P.pack_hello())).type == P.MsgType.HELLO_REPLY
        refused = port.reply(port.send(P.MsgType.STREAM_START, bytes([0xFF, 0, 44, 1])))  # 300 Hz
        assert P.parse_reply(refused) == P.Nack(P.MsgType.STREAM_START, P.Reason.BAD_ARG)
        start = port.send(P.MsgType.STREAM_START, P.pack_stream_start(0xFF, 500))
        assert P.parse_reply(port.reply(start)) == P.Ack(P.MsgType.STREAM_START)
        acks = statuses = 0
        for i in range(20):  # 1 s: a heartbeat every 50 ms, a command every 250 ms
            statuses += port.reply(port.send(P.MsgType.HEARTBEAT)).type == P.MsgType.STATUS
            if i % 5 == 0:
                cmd = port.send(P.MsgType.ARM_CMD, P.pack_arm_cmd(P.Action.GRASP, 1000 + 10 * i, 600))
                acks += P.parse_reply(port.reply(cmd)) == P.Ack(P.MsgType.ARM_CMD)
            port.pump(0.05)
        stop = port.send(P.MsgType.STREAM_STOP)
        assert P.parse_reply(port.reply(stop)) == P.Ack(P.MsgType.STREAM_STOP)
        port.pump(0.1)
    finally:
        port.close()
    assert (acks, statuses) == (4, 20)
    i_stop = next(i for i, f in enumerate(port.frames) if f.type == P.MsgType.ACK and f.seq == stop)
    assert not [f for f in port.frames[i_stop:] if f.type == P.MsgType.SAMPLES]  # nothing after STOP's ACK
    frames = [f for f in port.frames if f.type == P.MsgType.SAMPLES]
    samples = [P.Samples.from_payload(f.payload) for f in frames]
    assert len(samples) > 50, streaming_arm.kind  # simavr may run slower than real time on a busy machine
    assert [f.seq for f in frames] == [i & 0xFF for i in range(len(frames))]
    assert {(s.stream, s.channel_mask) for s in samples} == {(start, 0xFF)}
    assert samples[0].first_sample == 0
    assert all(b.first_sample == a.next_sample for a, b in itertools.pairwise(samples)), "a scan went missing"
    assert all(s.n_scans == 2 for s in samples[:-1]) and 1 <= samples[-1].n_scans <= 2
    # the feed (500 Hz) starts at the firmware's first conversion: scan k holds feed sample k, exactly
    for s in samples:
        for i, scan in enumerate(s.values):
            assert scan == tuple(_pattern(s.first_sample + i, ch) for ch in range(8)), (streaming_arm.kind, s)


def test_a_host_that_stops_reading_does_not_stall_the_simulated_arm(streaming_arm):
    # Like a real UART, the simulated arm sends whether or not anyone reads: with nobody reading the pty
    # for 2 s the stream goes on (and is lost), and SIGTERM still ends the program at once.
    port = _RawPort(streaming_arm.pty)
    try:
        assert port.reply(port.send(P.MsgType.HELLO, P.pack_hello())).type == P.MsgType.HELLO_REPLY
        port.reply(port.send(P.MsgType.STREAM_START, P.pack_stream_start(0xFF, 1000)))
        time.sleep(2.0)  # nothing read: the pty's buffer fills
        t0 = time.monotonic()
        streaming_arm.proc.terminate()
        streaming_arm.proc.wait(timeout=3)
        assert time.monotonic() - t0 < 1.0
    finally:
        port.close()
