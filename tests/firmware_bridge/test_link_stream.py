"""The ADC stream through the link (issue 27, the Pi side in firmware_bridge): ``ArmLink.open_stream``.

Real parts: an ADC feed (``firmware/host/adc_feed.h``) drives the simulated arm's analog inputs, the
real firmware (its host build, or the AVR binary on simavr) samples and streams them behind a pty, and
the link delivers them.  Feed sample k holds ``_pattern(k, ch)`` counts on input ch, so every value a
block carries is checked, and a scan's feed index can be read back from its values (after an MCU reset
the feed goes on with time, like the muscles, while the new run's indices start at 0 again).

The first tests feed :class:`SampleStream` frames by hand: no threads, no port.
"""

from __future__ import annotations

import itertools
import random
import threading
import time

import pytest

from firmware_bridge import protocol as P
from firmware_bridge import sim
from firmware_bridge.errors import LinkError, Nacked
from firmware_bridge.link import ArmLink, FaultKind, SampleBlock, SampleStream
from tests.conftest import REQUIRE_AVR, missing, require_tool

_INV7 = pow(7, -1, 1024)


def _pattern(k: int, ch: int) -> int:
    """The ADC counts the feed holds for input ``ch`` at feed sample ``k``."""
    return (k * 7 + ch * 131) % 1024


def _feed_index(scan: tuple[int, ...], channels) -> int:
    """The feed sample (mod 1024) a scan read, checked on every channel.

    A scan's inputs are converted one after the other (~0.1 ms each on the AVR): when the scan does not
    start with a feed sample (after an MCU reset the tick's phase is new, the feed's is not), its last
    inputs may read the next feed sample already."""
    k = (scan[0] - channels[0] * 131) * _INV7 % 1024
    assert any(scan == tuple(_pattern(k + (i >= j), ch) for i, ch in enumerate(channels))
               for j in range(1, len(channels) + 1)), f"scan {scan} is no feed sample: corrupted"
    return k


def _write_feed(path, rate: int, seconds: int = 30) -> None:
    """The pattern as an NGADC1 feed: the smallest millivolts the simulated ADC converts to its counts."""
    sim.write_adc_feed(path, ([-(-_pattern(k, ch) * 5000 // 1023) for ch in range(8)]
                              for k in range(rate * seconds)), rate, 8)


@pytest.fixture
def start_arm(host_build, tmp_path):
    """``start_arm(rate, kind="host", link=None)``: a simulated arm whose ADC feed runs at ``rate``."""
    arms = []

    def start(rate: int, kind: str = "host", link=None) -> sim.ArmProcess:
        feed = tmp_path / f"feed{rate}.ngadc"
        if not feed.exists():
            _write_feed(feed, rate)
        if kind == "simavr":
            require_tool("avr-gcc")
            require_tool("simavr")
            try:
                arms.append(sim.start_simavr(adc=feed))
            except sim.SimError as e:
                missing(f"simavr cannot run here ({e})", REQUIRE_AVR)
        else:
            arms.append(sim.start_arm_host(host_build, adc=feed, link=link))
        return arms[-1]

    yield start
    for arm in arms:
        arm.stop()


def _read(stream: SampleStream, seconds: float, blocks: list | None = None, until=None) -> list[SampleBlock]:
    """Read blocks for ``seconds`` (or until ``until(blocks)``); return them (appended to ``blocks``)."""
    blocks = [] if blocks is None else blocks
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end and not (until and until(blocks)):
        b = stream.read(0.05)
        if b is not None:
            blocks.append(b)
    return blocks


def _drain(stream: SampleStream, blocks: list) -> list[SampleBlock]:
    while (b := stream.read()) is not None:
        blocks.append(b)
    return blocks


def _check_indices(blocks: list[SampleBlock]) -> None:
    """Host indices: every scan once, in order, and every missing one counted before the next block."""
    assert blocks[0].first_sample == blocks[0].lost_before
    for a, b in itertools.pairwise(blocks):
        assert b.first_sample == a.next_sample + b.lost_before, (a, b)


def _kinds(link: ArmLink) -> list[FaultKind]:
    return [f.kind for f in link.take_faults()]


# ------------------------------------------------------------------ SampleStream alone, frames by hand
def _stream(mask=0x03, rate=500, buffer_s=2.0, t_sent=None) -> SampleStream:
    s = SampleStream(mask, rate, P.stream_budget(mask, rate), buffer_s, lambda stream: None)
    s.run_began(7, time.monotonic() - 1e7 if t_sent is None else t_sent)  # run 7: its START's seq
    return s


def _frame(seq: int, first: int, scans, stream: int = 7, mask: int | None = None) -> P.Frame:
    mask = (1 << len(scans[0])) - 1 if mask is None else mask  # inputs A0.. as many as a scan holds
    return P.Frame(P.MsgType.SAMPLES, seq & 0xFF, P.pack_samples(first & 0xFFFFFFFF, stream, mask, scans))


def _all(s: SampleStream) -> list[SampleBlock]:
    return _drain(s, [])


def test_losses_duplicates_and_reordering_are_counted_never_delivered():
    s = _stream()
    scans = [((2 * i) % 1024, (2 * i + 1) % 1024) for i in range(20)]
    # frames 0..9 of two scans; frame 3 lost, frame 5 duplicated, frames 7 and 8 swapped
    order = [0, 1, 2, 4, 5, 5, 6, 8, 7, 9]
    for i in order:
        s.on_frame(_frame(i, 2 * i, scans[2 * i:2 * i + 2]))
    s.on_frame(_frame(10, 20, [(1, 2)], stream=8))  # another stream: stray
    s.on_frame(_frame(10, 20, [(1, 2, 3)], mask=0x07))  # not what the START asked for
    blocks = _all(s)
    assert [b.first_sample for b in blocks] == [0, 2, 4, 8, 10, 12, 16, 18]
    assert [b.lost_before for b in blocks] == [0, 0, 0, 2, 0, 0, 2, 0]  # frame 3; frame 7 came late
    assert all(b.scans == tuple(scans[b.first_sample:b.next_sample]) for b in blocks)
    _check_indices(blocks)
    st = s.stats
    assert (st.frames, st.samples, st.delivered, st.lost_samples, st.gaps) == (8, 16, 16, 4, 2)
    assert (st.frames_lost, st.rejected_frames, st.stray_frames) == (2, 3, 1)


def test_indices_unwrap_across_the_firmwares_u32_and_runs_continue_them():
    s = _stream(mask=0x01)
    top = 1 << 32
    for seq, first, scans in [(0, 0, [(0,)]), (1, 1 << 30, [(1,)]), (2, 3 << 30, [(2,)]), (3, top - 3, [(3,), (4,)]),
                              (4, top - 1, [(5,), (6,)]), (5, top + 2, [(7,)])]:  # wraps in frame 4
        s.on_frame(_frame(seq, first, scans))
    s.run_ended("a test reset", restart=True)
    assert s.needs_start
    s.on_frame(_frame(6, top + 3, [(8,)]))  # the old run after its end: stray
    s.run_began(9, time.monotonic() - 10)
    s.on_frame(_frame(0, 4, [(9,), (10,)], stream=9))  # the new run lost its first 4 scans
    blocks = _all(s)
    assert [(b.first_sample, b.lost_before, b.restarted) for b in blocks] == [
        (0, 0, False), (1 << 30, (1 << 30) - 1, False), (3 << 30, (1 << 31) - 1, False),
        (top - 3, (1 << 30) - 4, False), (top - 1, 0, False), (top + 2, 1, False), (top + 3 + 4, 4, True)]
    assert [b.scans[0][0] for b in blocks] == [0, 1, 2, 3, 5, 7, 9]
    _check_indices(blocks)
    assert s.stats.restarts == 1 and s.stats.stray_frames == 1 and not s.needs_start


def test_an_index_the_run_cannot_have_reached_is_refused_and_a_wrong_anchor_is_left():
    s = _stream(mask=0x01, rate=100, t_sent=time.monotonic())
    s.on_frame(_frame(0, 0, [(1,)]))
    s.on_frame(_frame(1, 1 << 20, [(2,)]))  # 2**20 scans at 100 Hz after a few ms: a corrupted header
    s.on_frame(_frame(1, 1, [(3,)]))
    assert [(b.first_sample, b.lost_before) for b in _all(s)] == [(0, 0), (1, 0)]
    # an index that passed the checks but was wrong (too high): the frames after it seem to come from
    # the past; after a few of them the stream follows them again, as after a restart (never going back)
    s = _stream(mask=0x01)
    s.on_frame(_frame(0, 0, [(1,)]))
    s.on_frame(_frame(1, 5000, [(2,)]))  # a corrupted index that passed the CRC (p ~ 2**-16)
    for i in range(2, 12):
        s.on_frame(_frame(i, i - 1, [(i,)]))
    blocks = _all(s)
    _check_indices(blocks)
    assert blocks[2].restarted and blocks[2].lost_before == 0 and blocks[2].scans == ((9,),)
    assert [b.scans[0][0] for b in blocks] == [1, 2, 9, 10, 11] and s.stats.rejected_frames == 7


def test_a_full_queue_drops_the_oldest_counts_them_and_reports_once():
    s = _stream(mask=0x01, rate=100, buffer_s=0.05)  # 5 scans
    events = []
    for i in range(8):
        events += s.on_frame(_frame(i, i, [(i,)]))
    assert [e.kind for e in events] == [FaultKind.STREAM_OVERRUN]
    blocks = [s.read(), s.read(), s.read()]
    assert [(b.first_sample, b.lost_before) for b in blocks] == [(3, 3), (4, 0), (5, 0)]
    for i in range(8, 20):
        events += s.on_frame(_frame(i, i, [(i,)]))
    assert [e.kind for e in events] == [FaultKind.STREAM_OVERRUN] * 2  # caught up in between: again
    blocks += _all(s)
    _check_indices(blocks)
    assert s.stats.overruns == 2 and s.stats.overrun_samples == s.stats.lost_samples == 20 - 8 == 12
    assert sum(b.n_scans for b in blocks) == s.stats.delivered == 8
    with pytest.raises(ValueError, match="timeout"):
        s.read(-1)


# ------------------------------------------------------------------ the real firmware behind a pty
@pytest.mark.parametrize("kind, channels, rate", [("host", range(8), 500), ("host", range(4), 1000),
                                                  ("simavr", range(8), 500)],
                         ids=["host-8x500", "host-4x1000", "simavr-8x500"])
def test_exact_values_in_order_without_duplicates(start_arm, kind, channels, rate):
    arm = start_arm(rate, kind)
    with ArmLink(arm.pty, boot_timeout=3) as link:
        stream = link.open_stream(channels, rate)
        assert stream.channels == tuple(channels) and stream.rate_hz == rate
        t0 = time.monotonic()
        blocks = _read(stream, 1.0)
        stream.close()
        elapsed = time.monotonic() - t0
        _drain(stream, blocks)  # the scans the firmware still held came before STOP's ACK
        stream.close()  # idempotent
        time.sleep(0.05)
        assert link.stats.unexpected_frames == 0  # nothing after the STOP
    _check_indices(blocks)
    assert blocks[0].first_sample == 0 and not any(b.lost_before or b.restarted for b in blocks)
    for b in blocks:  # the feed runs at the stream's rate from the first conversion: scan k is sample k
        assert b.scans == tuple(tuple(_pattern(b.first_sample + i, ch) for ch in channels)
                                for i in range(b.n_scans)), (kind, b)
    st = stream.stats
    assert st.samples == st.delivered == blocks[-1].next_sample and st.lost_samples == 0
    assert st.rejected_frames == st.stray_frames == st.frames_lost == 0
    assert st.samples <= rate * elapsed * 1.01 + 64
    if kind == "host":  # simavr may run slower than real time on a busy machine
        assert st.samples >= rate * 0.8


def _percentile(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, round(q / 100 * (len(v) - 1)))]


@pytest.mark.parametrize("kind", ["host", "simavr"])
def test_command_ack_latency_with_streaming_on_and_off(start_arm, kind):
    arm = start_arm(500, kind)
    with ArmLink(arm.pty, command_max_age=1.0) as link:
        def commands(n: int = 300) -> list[float]:
            lat = []
            for i in range(n):
                t0 = time.perf_counter()
                link.command(P.Action.GRASP if i % 2 else P.Action.LIFT, 600 + i % 400, 600)
                lat.append((time.perf_counter() - t0) * 1e3)
                time.sleep(0.002)  # spread over the stream's frame period
            return lat

        commands(20)  # warm-up
        off = commands()
        stream = link.open_stream(range(8), 500)
        blocks, stop = [], threading.Event()

        def read_on():
            while not stop.is_set():
                _read(stream, 0.05, blocks)

        reader = threading.Thread(target=read_on)
        reader.start()
        try:
            on = commands()
        finally:
            stop.set()
            reader.join()
        stream.close()
        retransmissions = link.stats.retransmissions
    p = {name: (_percentile(v, 50), _percentile(v, 99)) for name, v in (("off", off), ("on", on))}
    print(f"\n[{kind}] command -> ACK over {len(on)} commands through the link: streaming off p50 "
          f"{p['off'][0]:.2f} ms p99 {p['off'][1]:.2f} ms; 8 x 500 Hz on p50 {p['on'][0]:.2f} ms "
          f"p99 {p['on'][1]:.2f} ms (goal: p99 within 2 ms of off)")
    print(f"  ({retransmissions} retransmissions)")
    _check_indices(blocks)
    assert stream.stats.lost_samples == 0 and stream.stats.delivered > 200
    assert p["on"][1] <= p["off"][1] + 5.0  # the goal is 2 ms; a shared test machine gets slack


def test_estop_and_watchdog_while_streaming_stop_motion_not_sensing(start_arm):
    arm = start_arm(500)
    with ArmLink(arm.pty, command_max_age=1.0) as link:
        stream = link.open_stream(range(8), 500, buffer_s=10)
        link.command(P.Action.GRASP, 1000, 600)
        link.estop()
        with pytest.raises(Nacked, match="ESTOPPED"):
            link.command(P.Action.GRASP, 1200, 600)
        link.clear(P.Fault.ESTOP)
        link.pause_heartbeat()
        t0 = time.monotonic()
        while not link.status().faults & P.Fault.WATCHDOG:
            assert time.monotonic() - t0 < 1.0, "the watchdog did not trip while streaming"
            time.sleep(0.01)
        with pytest.raises(Nacked, match="WATCHDOG"):
            link.command(P.Action.GRASP, 1200, 600)
        link.resume_heartbeat()
        time.sleep(0.1)
        link.clear(P.Fault.WATCHDOG)
        link.command(P.Action.GRASP, 1200, 600)
        assert link.status().target[0] == 1200
        stream.close()
        blocks = _drain(stream, [])
    _check_indices(blocks)
    assert stream.stats.lost_samples == 0 and stream.stats.restarts == 0 and blocks[-1].next_sample > 150
    for b in blocks:
        assert b.scans == tuple(tuple(_pattern(b.first_sample + i, ch) for ch in range(8)) for i in range(b.n_scans))


class _CorruptingProxy(sim.PtyProxy):
    """Replaces each byte with probability ``rate`` by another, both ways (as ``benchmarks/link.py``);
    keeps the firmware's SAMPLES as sent, before the damage: ``sent[index] = scan``."""

    def __init__(self, arm_pty: str, rate: float, seed: int = 27):
        super().__init__(arm_pty)
        self.rate, self._rng = rate, random.Random(seed)
        self._truth = P.FrameParser()
        self.sent: dict[int, tuple[int, ...]] = {}
        self.corrupted = 0
        self.start()

    def _damage(self, data: bytes) -> bytes:
        out = bytearray(data)
        for i in range(len(out)):
            if self._rng.random() < self.rate:
                out[i] ^= self._rng.randint(1, 255)
                self.corrupted += 1
        return bytes(out)

    def to_arm(self, data: bytes) -> bytes:
        return self._damage(data)

    def to_host(self, data: bytes) -> bytes:
        for f in self._truth.feed(data):
            if f.type == P.MsgType.SAMPLES:
                s = P.Samples.from_payload(f.payload)
                self.sent.update((s.first_sample + i, v) for i, v in enumerate(s.values))
        return self._damage(data)


def test_one_percent_byte_corruption_every_loss_counted_no_bad_sample_delivered(start_arm):
    arm = start_arm(500)
    proxy = _CorruptingProxy(arm.pty, 0.01)
    try:
        with ArmLink(proxy.path, retries=5, boot_timeout=5, command_max_age=1.0) as link:
            stream = link.open_stream(range(8), 500)
            blocks = _read(stream, 3.0)
            proxy.rate = 0.0  # stop on a clean line
            stream.close()
            _drain(stream, blocks)
            crc, framing = link._parser.crc_errors, link._parser.framing_errors
            acks = 0
            for i in range(20):  # and commands still go through
                link.command(P.Action.GRASP, 600 + i, 600)
                acks += 1
    finally:
        proxy.close()
    _check_indices(blocks)
    assert not any(b.restarted for b in blocks)
    delivered = {b.first_sample + i: v for b in blocks for i, v in enumerate(b.scans)}
    assert sum(b.n_scans for b in blocks) == len(delivered)  # no scan twice
    end = blocks[-1].next_sample
    truth = {k: v for k, v in proxy.sent.items() if k < end}
    assert sorted(truth) == list(range(end))  # the firmware itself lost nothing
    assert all(delivered[k] == truth[k] for k in delivered), "a corrupted scan was delivered"
    lost = sorted(set(truth) - set(delivered))
    st = stream.stats
    assert st.lost_samples == sum(b.lost_before for b in blocks) == len(lost) > 0  # every loss counted
    print(f"\n1 % byte corruption, 8 x 500 Hz for 3 s: {end} scans sent, {st.delivered} delivered exact, "
          f"{st.lost_samples} lost and counted ({st.gaps} gaps, {st.frames_lost} frames by seq), 0 corrupted "
          f"or repeated delivered; host parser: {crc} CRC + {framing} framing errors, {st.rejected_frames} "
          f"frames refused; {proxy.corrupted} bytes corrupted")
    assert acks == 20


@pytest.mark.parametrize("kind", ["host", "simavr"])
def test_mcu_reset_mid_stream_is_a_gap_and_the_stream_resumes_by_itself(start_arm, kind):
    arm = start_arm(500, kind)
    with ArmLink(arm.pty, boot_timeout=3, command_max_age=1.0) as link:
        stream = link.open_stream(range(8), 500)
        blocks = _read(stream, 0.5)
        link.take_faults()
        arm.reset_mcu()
        t_reset = time.monotonic()
        _read(stream, 3.0, blocks, until=lambda bs: any(b.restarted for b in bs))
        resumed = next(b for b in blocks if b.restarted)
        _read(stream, 0.3, blocks)
        kinds = _kinds(link)
        assert link.hold_reason is not None  # motion is held after the reset; sensing is not
        stream.close()
    print(f"\n[{kind}] MCU reset -> samples again after {(resumed.t_arrival - t_reset) * 1000:.0f} ms")
    assert resumed.t_arrival - t_reset < 1.0
    assert FaultKind.MCU_RESET in kinds and kinds.count(FaultKind.STREAM_RESTART) == 1
    assert stream.stats.restarts == 1 and sum(b.restarted for b in blocks) == 1
    _check_indices(blocks)
    k_prev = None  # the feed went on during the reset: values follow it within each run
    for b in blocks:
        k = _feed_index(b.scans[0], range(8))
        for i, scan in enumerate(b.scans):
            assert _feed_index(scan, range(8)) == (k + i) % 1024
        if k_prev is not None and not b.restarted:
            assert k == (k_prev + b.lost_before) % 1024
        k_prev = (k + b.n_scans) % 1024


def test_a_resync_and_a_reconnect_restart_the_stream(start_arm, tmp_path):
    name = tmp_path / "ttyARM"
    arm = start_arm(500, link=name)
    link = ArmLink(str(name), backoff_initial=0.02, backoff_max=0.2, command_max_age=1.0)
    try:
        link.open()
        stream = link.open_stream([0, 2, 5], 500)
        blocks = _read(stream, 0.3)
        link.resync("a test")  # HELLO ends the firmware's stream
        _read(stream, 2.0, blocks, until=lambda bs: sum(b.restarted for b in bs) == 1)
        arm.stop()  # the cable is pulled ...
        _read(stream, 0.2, blocks)
        arm = start_arm(500, link=name)  # ... and plugged back in: a new MCU, its feed from sample 0
        assert link.wait_connected(3.0)
        n = len(blocks)
        _read(stream, 3.0, blocks, until=lambda bs: any(b.restarted for b in bs[n:]))
        _read(stream, 0.2, blocks)
        assert link.stats.reconnects == 1 and stream.stats.restarts == 2
        assert link.hold_reason is not None  # a replugged Uno rebooted
        kinds = _kinds(link)
        assert kinds.count(FaultKind.STREAM_RESTART) == 2 and FaultKind.MCU_RESET in kinds
    finally:
        link.close()
    assert stream.closed  # the link's close stopped it
    _check_indices(blocks)
    assert sum(b.restarted for b in blocks) == 2
    runs = [i for i, b in enumerate(blocks) if b.restarted]
    for b in blocks[runs[1]:]:  # the new process's first stream: scan k is its feed's sample k
        k0 = b.first_sample - blocks[runs[1]].first_sample + blocks[runs[1]].lost_before
        assert b.scans == tuple(tuple(_pattern(k0 + i, ch) for ch in (0, 2, 5)) for i in range(b.n_scans))
    for b in blocks:
        k = _feed_index(b.scans[0], (0, 2, 5))
        assert all(_feed_index(s, (0, 2, 5)) == (k + i) % 1024 for i, s in enumerate(b.scans))


def test_a_reconnect_to_a_firmware_still_streaming_skips_the_old_run(start_arm, tmp_path):
    """The cable glitches but the MCU runs on (no reset): frames of the old run come up during the
    reconnect's handshake; they answer nothing, belong to no run, and the stream resumes after it."""
    arm = start_arm(500)
    name = tmp_path / "ttyARM"
    proxy = sim.PtyProxy(arm.pty).start()
    name.symlink_to(proxy.path)
    link = ArmLink(str(name), backoff_initial=0.02, backoff_max=0.1, command_max_age=1.0)
    try:
        link.open()
        stream = link.open_stream(range(8), 500)
        blocks = _read(stream, 0.3)
        proxy.close()  # the link's port goes away; the firmware streams on into its pty
        _read(stream, 0.2, blocks)
        proxy = sim.PtyProxy(arm.pty).start()  # back: the old run's frames come first
        name.unlink()
        name.symlink_to(proxy.path)
        assert link.wait_connected(3.0)
        _read(stream, 2.0, blocks, until=lambda bs: any(b.restarted for b in bs))
        _read(stream, 0.3, blocks)
        assert link.stats.reconnects == 1 and link.stats.mcu_resets == 0 and link.hold_reason is None
        stream.close()
    finally:
        link.close()
        proxy.close()
    _check_indices(blocks)
    assert sum(b.restarted for b in blocks) == 1 and stream.stats.restarts == 1
    for b in blocks:  # the feed went on meanwhile: each run's values follow it
        k = _feed_index(b.scans[0], range(8))
        assert all(_feed_index(x, range(8)) == (k + i) % 1024 for i, x in enumerate(b.scans))


def test_a_reader_that_stops_reading_is_reported_once_and_resumes(start_arm):
    arm = start_arm(500)
    with ArmLink(arm.pty, command_max_age=1.0) as link:
        stream = link.open_stream(range(8), 500, buffer_s=0.2)  # 100 scans
        blocks = _read(stream, 0.2)
        link.take_faults()
        time.sleep(0.6)  # the reader stalls; the link's thread does not
        link.command(P.Action.GRASP, 800, 600)  # ... and commands go on
        _read(stream, 0.4, blocks)  # reads again, catches up
        time.sleep(0.6)  # stalls again
        _read(stream, 0.4, blocks)
        kinds = _kinds(link)
        stream.close()
        _drain(stream, blocks)
    st = stream.stats
    assert st.overruns == 2 and kinds.count(FaultKind.STREAM_OVERRUN) == 2  # once per stall
    assert st.lost_samples == st.overrun_samples == sum(b.lost_before for b in blocks) > 300
    _check_indices(blocks)
    assert st.delivered + st.lost_samples == blocks[-1].next_sample
    gaps = [b for b in blocks if b.lost_before]
    assert len(gaps) == 2 and not any(b.restarted for b in blocks)
    for b in blocks:  # what is delivered is still exact
        assert b.scans == tuple(tuple(_pattern(b.first_sample + i, ch) for ch in range(8)) for i in range(b.n_scans))


class _NackingProxy(sim.PtyProxy):
    """Answers STREAM_START with NACK BUDGET, as a firmware built for a slower link would."""

    def __init__(self, arm_pty: str):
        super().__init__(arm_pty)
        self._host, self._arm = P.FrameParser(), P.FrameParser()
        self.start()

    def to_host(self, data: bytes) -> bytes:
        out = b""
        for f in self._arm.feed(data):
            if f.type == P.MsgType.ACK and f.payload == bytes([P.MsgType.STREAM_START]):
                f = P.Frame(P.MsgType.NACK, f.seq, bytes([P.MsgType.STREAM_START, P.Reason.BUDGET]))
            out += P.encode_frame(f.type, f.seq, f.payload)
        return out


def test_a_stream_that_does_not_fit_is_refused_with_the_reason(start_arm):
    arm = start_arm(500)
    with ArmLink(arm.pty, baudrate=115_200, heartbeat_period=None) as link:  # (a pty runs at any rate)
        sent = link.stats.requests
        with pytest.raises(ValueError, match=r"need 8500 B/s .* 115200 baud leaves 7216 B/s"):
            link.open_stream(range(8), 500)
        with pytest.raises(ValueError, match="rate_hz must divide 1000"):
            link.open_stream(range(2), 300)
        with pytest.raises(ValueError, match="channels must be ADC inputs"):
            link.open_stream([8], 100)
        with pytest.raises(TypeError, match="channels must be an iterable"):
            link.open_stream(8, 100)
        with pytest.raises(ValueError, match="buffer_s"):
            link.open_stream(range(8), 200, buffer_s=0)
        assert link.stats.requests == sent  # refused before anything was sent
        stream = link.open_stream(range(8), 200)  # envelopes fit at 115 200
        with pytest.raises(LinkError, match="already open"):
            link.open_stream(range(8), 200)
        stream.close()
    proxy = _NackingProxy(arm.pty)
    try:
        with ArmLink(proxy.path) as link, pytest.raises(Nacked, match="BUDGET.*another baud rate") as e:
            link.open_stream(range(8), 500)
        assert e.value.reason == P.Reason.BUDGET
    finally:
        proxy.close()
