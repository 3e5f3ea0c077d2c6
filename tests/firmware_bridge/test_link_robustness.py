"""The link under faults (issue 13): replies the protocol does not allow, threads that fail, another
protocol version, MCU resets, watchdog trips — against the real firmware behind real ptys.

Replies the real firmware never sends (a valid CRC around a payload of the wrong length, another
protocol version) come from :class:`TamperingProxy`: a pty between the link and the firmware's pty
that re-encodes chosen replies with ``firmware_bridge.protocol`` (so their CRC is valid) and passes
everything else through.  MCU resets are real: ``ArmProcess.reset_mcu()`` resets simavr's ATmega328P
running the AVR binary, or re-initialises the host build's core, behind the same pty.
"""

from __future__ import annotations

import signal
import struct
import time

import pytest

from firmware_bridge import protocol as P
from firmware_bridge import sim
from firmware_bridge.errors import (
    HeldAfterReset,
    LinkError,
    LinkFailed,
    Nacked,
    ProtocolError,
    VersionMismatch,
)
from firmware_bridge.link import ArmLink, FaultKind
from tests.conftest import REQUIRE_AVR, missing, require_tool


def make_link(url: str, **kw) -> ArmLink:
    """An ArmLink whose commands tolerate a loaded test machine (these tests are not about deadlines)."""
    return ArmLink(url, command_max_age=1.0, **kw)


class TamperingProxy(sim.PtyProxy):
    """A pty (``path``) forwarding to ``arm_pty``; each firmware->host frame goes through ``tamper``.

    ``tamper(frame, request_type)`` (``request_type``: the type of the last host frame with the reply's
    seq, or None) returns the wire bytes to send instead (``P.encode_frame(...)``), or None to pass
    the frame through unchanged.  Host->firmware bytes pass unchanged.
    """

    def __init__(self, arm_pty: str, tamper):
        super().__init__(arm_pty)
        self.tamper = tamper
        self.tampered = 0
        self._buf = bytearray()
        self._host_parser = P.FrameParser()
        self._requests: dict[int, int] = {}  # seq -> type of the host's last frame with that seq
        self.start()

    def to_arm(self, data: bytes) -> bytes:
        for f in self._host_parser.feed(data):
            self._requests[f.seq] = f.type
        return data

    def to_host(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            if b:
                self._buf.append(b)
                continue
            chunk, self._buf = bytes(self._buf), bytearray()
            try:
                f = P.decode_frame(chunk) if chunk else None
            except P.FrameError:
                f = None
            new = self.tamper(f, self._requests.get(f.seq)) if f is not None else None
            self.tampered += new is not None
            out += new if new is not None else chunk + b"\x00"
        return bytes(out)


def first(n: int, when, make):
    """A tamper function: the first ``n`` frames for which ``when(frame, request_type)`` holds become
    ``make(frame)``."""
    left = [n]

    def tamper(f, req):
        if left[0] and when(f, req):
            left[0] -= 1
            return make(f)
        return None

    return tamper


def is_status(f, req) -> bool:
    return f.type == P.MsgType.STATUS


def answers_heartbeat(f, req) -> bool:
    return f.type == P.MsgType.STATUS and req == P.MsgType.HEARTBEAT


@pytest.fixture
def proxy(arm_host):
    made = []

    def make(tamper):
        made.append(TamperingProxy(arm_host.pty, tamper))
        return made[-1]

    yield make
    for p in made:
        p.close()


def _faults(link: ArmLink, kind: FaultKind) -> list:
    return [f for f in link.take_faults() if f.kind == kind]


def _wait(cond, timeout: float, every: float = 0.005) -> bool:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if cond():
            return True
        time.sleep(every)
    return cond()


# ------------------------------------------------------------------ replies the protocol does not allow
def _is_reply_to(msg_type, reply_type):
    return lambda f, req: f.type == reply_type and f.payload[:1] == bytes([msg_type])


@pytest.mark.parametrize("case", ["ACK without payload", "NACK without payload", "NACK with 1 byte"])
def test_a_short_reply_with_a_valid_crc_is_reported_and_the_link_goes_on(proxy, case):
    if case == "ACK without payload":
        tamper = first(1, _is_reply_to(P.MsgType.ARM_CMD, P.MsgType.ACK),
                       lambda f: P.encode_frame(P.MsgType.ACK, f.seq, b""))
    else:  # the NACK BAD_ARG to SET_CONFIG 1000 ms, cut short
        keep = b"" if case == "NACK without payload" else bytes([P.MsgType.SET_CONFIG])
        tamper = first(1, _is_reply_to(P.MsgType.SET_CONFIG, P.MsgType.NACK),
                       lambda f: P.encode_frame(P.MsgType.NACK, f.seq, keep))
    seen = []
    px = proxy(tamper)
    with make_link(px.path, on_fault=seen.append) as link:
        with pytest.raises(ProtocolError, match="malformed") as e:
            if case == "ACK without payload":
                link.command(P.Action.GRASP, 900, 600)
            else:
                link.set_watchdog(1000)
        assert px.tampered == 1
        if case == "ACK without payload":
            assert "may have run" in str(e.value)
        assert link.healthy() and link.failed is None
        assert link.stats.malformed_replies == 1
        assert [f.kind for f in seen] == [FaultKind.MALFORMED_REPLY] and "valid CRC" in seen[0].detail
        # the next requests work, and the I/O thread still matches replies
        link.command(P.Action.GRASP, 1000, 600)
        assert link.status().target[0] == 1000
        with pytest.raises(Nacked, match="BAD_ARG"):
            link.set_watchdog(1000)
        hb = link.stats.heartbeats_ok
        assert _wait(lambda: link.stats.heartbeats_ok > hb + 2, 1.0)


def test_a_malformed_status_never_ends_the_heartbeat_thread(proxy):
    sizes = iter([27, 0, 29, 3])
    px = proxy(first(4, answers_heartbeat, lambda f: P.encode_frame(P.MsgType.STATUS, f.seq, bytes(next(sizes)))))
    with make_link(px.path, heartbeat_period=0.02) as link:
        assert _wait(lambda: px.tampered == 4, 1.0)
        ok = link.stats.heartbeats_ok
        assert _wait(lambda: link.stats.heartbeats_ok >= ok + 5, 1.0)  # the heartbeat thread goes on
        assert link.healthy()
        assert link.stats.malformed_replies == 4 and link.stats.heartbeats_lost >= 2
        assert len(_faults(link, FaultKind.MALFORMED_REPLY)) == 4
        link.command(P.Action.LIFT, 1000, 900)
        s = link.status()
        assert s.target[1] == 1000 and not s.faults & P.Fault.WATCHDOG  # heartbeats kept feeding it


def test_a_peer_whose_every_status_is_malformed_leaves_the_arms_state_unknown(proxy):
    """The review: a peer answering only malformed STATUS replies kept receiving commands for a whole run.
    The link says how long it has had no valid STATUS (the runtime holds the arm past ARM_STATUS_MAX_AGE_S)."""
    px = proxy(first(1, is_status, lambda f: None))  # the first STATUS (open's) passes
    with make_link(px.path, heartbeat_period=0.02) as link:
        assert link.status_age() is not None and link.status_age() < 0.5
        px.tamper = lambda f, req: P.encode_frame(P.MsgType.STATUS, f.seq, b"") if is_status(f, req) else None
        assert _wait(lambda: link.status_age() > 0.3, 2.0)
        assert link.stats.malformed_replies >= 5 and link.healthy()  # reported, the link goes on
        px.tamper = lambda f, req: None  # a valid STATUS again
        assert _wait(lambda: link.status_age() < 0.1, 2.0)


def test_raw_requests_the_protocol_does_not_have_are_refused_and_the_link_goes_on(arm_host):
    with make_link(arm_host.pty) as link:
        with pytest.raises(Nacked, match="0x7e: UNKNOWN_TYPE"):
            link.request(0x7E)
        with pytest.raises(Nacked, match="CLEAR: BAD_LENGTH"):
            link.request(P.MsgType.CLEAR, b"\x02")
        assert link.healthy()
        link.command(P.Action.GRASP, 1000, 600)


def test_a_frame_that_answers_no_request_is_routed_by_its_type_or_counted(proxy):
    """The seam the arm's sample stream will come up by (issue 27): a valid frame of a type that is no
    reply goes to the consumer routed for its type, or is counted and dropped; the link goes on."""
    unasked = P.encode_frame(0x90, 7, b"adc")  # no such type in protocol version 1
    px = proxy(lambda f, req: None)
    got = []
    with make_link(px.path, heartbeat_period=0.02) as link:
        def inject():
            return first(1, answers_heartbeat, lambda f: unasked + P.encode_frame(f.type, f.seq, f.payload))

        px.tamper = inject()
        assert _wait(lambda: link.stats.unexpected_frames == 1, 1.0)  # nobody routed its type
        link._transport.route(0x90, got.append)
        px.tamper = inject()
        assert _wait(lambda: got, 1.0)
        assert [(f.type, f.seq, f.payload) for f in got] == [(0x90, 7, b"adc")]
        assert link.stats.unexpected_frames == 1 and link.stats.malformed_replies == 0
        hb = link.stats.heartbeats_ok
        assert _wait(lambda: link.stats.heartbeats_ok > hb + 3, 1.0) and link.healthy()
        with pytest.raises(ValueError, match="is a reply"):
            link._transport.route(P.MsgType.STATUS, got.append)


def test_open_fails_with_a_malformed_first_status(proxy):
    px = proxy(first(1, is_status, lambda f: P.encode_frame(P.MsgType.STATUS, f.seq, b"")))
    link = make_link(px.path)
    with pytest.raises(ProtocolError, match="STATUS with 0 payload bytes"):
        link.open()
    assert not link.healthy()


# ------------------------------------------------------------------ another protocol version
def test_another_protocol_version_is_named_before_any_field_is_read(proxy):
    # A version 2 firmware whose HELLO_REPLY and STATUS have other sizes: the version is what is reported.
    def version_2(f, req):
        if f.type == P.MsgType.HELLO_REPLY:
            return P.encode_frame(f.type, f.seq, bytes([2]) + bytes(11))
        return P.encode_frame(f.type, f.seq, bytes(20)) if f.type == P.MsgType.STATUS else None

    px = proxy(version_2)
    with pytest.raises(VersionMismatch) as e:
        make_link(px.path).open()
    assert isinstance(e.value, ProtocolError)
    assert (e.value.host_version, e.value.firmware_version) == (P.PROTOCOL_VERSION, 2)
    assert "protocol version 2" in str(e.value) and f"protocol version {P.PROTOCOL_VERSION}" in str(e.value)
    assert "flash the firmware" in str(e.value)


def test_a_firmware_that_refuses_our_version_is_named_too(proxy):
    refuse = bytes([P.MsgType.HELLO, P.Reason.VERSION])
    px = proxy(lambda f, req: P.encode_frame(P.MsgType.NACK, f.seq, refuse) if f.type == P.MsgType.HELLO_REPLY else None)
    with pytest.raises(VersionMismatch, match=f"refused HELLO for protocol version {P.PROTOCOL_VERSION}") as e:
        make_link(px.path).open()
    assert e.value.firmware_version is None


def test_hello_reply_reads_the_version_first():
    with pytest.raises(VersionMismatch, match="protocol version 7"):
        P.HelloReply.from_payload(bytes([7]))  # one byte: too short for version 1, but it says 7
    with pytest.raises(ProtocolError, match="empty HELLO_REPLY"):
        P.HelloReply.from_payload(b"")
    with pytest.raises(ProtocolError, match="HELLO_REPLY with 3 payload bytes"):
        P.HelloReply.from_payload(bytes([P.PROTOCOL_VERSION, 2, 0]))
    with pytest.raises(ProtocolError, match="STATUS with 27 payload bytes"):
        P.Status.from_payload(bytes(27))
    for t in (P.MsgType.ACK, P.MsgType.NACK):
        with pytest.raises(ProtocolError, match=f"{t.name} with 0 payload bytes"):
            P.parse_reply(P.Frame(t, 0, b""))


# ------------------------------------------------------------------ MCU resets
@pytest.fixture(params=["simavr", "host"])
def any_arm(request, host_build):
    if request.param == "simavr":
        require_tool("avr-gcc")
        require_tool("simavr")
        try:
            proc = sim.start_simavr()
        except sim.SimError as e:
            missing(f"simavr cannot run here ({e}); the [host] variant ran instead", REQUIRE_AVR)
    else:
        proc = sim.start_arm_host(host_build)
    yield proc
    proc.stop()


def test_mcu_reset_is_detected_the_session_restored_and_commands_held_until_cleared(any_arm):
    with make_link(any_arm.pty, boot_timeout=3) as link:
        link.set_limits(0, 300, 1200, 500, 600)
        link.command(P.Action.GRASP, 1000, 600)
        link.take_faults()
        any_arm.reset_mcu()
        t0 = time.monotonic()
        # the owner's recovery: commands are held (or refused NO_HELLO for the first ~50 ms, before
        # the link has seen the reset); once the session is back, clear and command again
        while True:
            try:
                link.command(P.Action.GRASP, 1100, 600)
                break
            except HeldAfterReset as e:
                assert e.reason == P.Reason.WATCHDOG  # the same handling as a watchdog trip
                if link.stats.resyncs:
                    link.clear(P.Fault.WATCHDOG)
            except Nacked as e:
                assert e.reason == P.Reason.NO_HELLO
            assert time.monotonic() - t0 < 1.0, f"[{any_arm.kind}] control not restored within 1 s"
            time.sleep(0.005)
        assert time.monotonic() - t0 < 1.0
        assert link.stats.mcu_resets == 1 and link.stats.resyncs == 1 and link.healthy()
        kinds = [f.kind for f in link.take_faults()]
        assert FaultKind.MCU_RESET in kinds and FaultKind.RESYNC in kinds
        s = link.status()
        assert s.uptime_ms < 1500 and not s.faults & P.Fault.NO_HELLO
        link.command(P.Action.GRASP, 1500, 600)  # the joint limits set before the reset were restored
        assert link.status().target[0] == 1200


def test_without_auto_resync_the_owner_resyncs_within_a_second(arm_host):
    with make_link(arm_host.pty, auto_resync=False, hold_after_reset=False) as link:
        link.command(P.Action.LIFT, 1000, 900)
        arm_host.reset_mcu()
        with pytest.raises(Nacked, match="NO_HELLO"):
            link.command(P.Action.LIFT, 1100, 900)
        assert _wait(lambda: link.stats.mcu_resets == 1, 0.5)
        t0 = time.monotonic()
        s = link.resync()
        assert P.Fault.NO_HELLO not in s.faults and s.target == (400, 400)  # rebooted to its safe pose
        link.command(P.Action.LIFT, 1100, 900)
        assert time.monotonic() - t0 < 1.0
        assert link.stats.mcu_resets == 1 and link.stats.resyncs == 1
        time.sleep(0.15)  # heartbeats flow again: the firmware's watchdog does not trip
        assert not link.status().faults & P.Fault.WATCHDOG


def test_a_latched_estop_survives_an_mcu_reset(arm_host):
    with make_link(arm_host.pty) as link:
        link.estop()
        arm_host.reset_mcu()
        assert _wait(lambda: link.stats.resyncs == 1, 1.0)
        assert link.status().faults & P.Fault.ESTOP  # latched again by the link's resync
        link.clear(P.Fault.WATCHDOG)  # releases the hold after the reset, not the e-stop
        with pytest.raises(Nacked, match="ESTOPPED"):
            link.command(P.Action.GRASP, 1000, 600)
        link.clear(P.Fault.ESTOP)
        link.command(P.Action.GRASP, 1000, 600)


# ------------------------------------------------------------------ the arm's own e-stop switch
def test_the_arms_estop_switch_is_reported_refuses_motion_and_its_release_too(any_arm):
    """The e-stop switch on the arm (D2; simulated: SIGUSR2): every joint freezes where it was, every
    motion is refused, CLEAR cannot release it, the link reports it and its release.  Released, the
    arm stays stopped (ISO 13850: resetting does not restart) until a deliberate start; then it stays
    where it stopped and takes commands again."""
    with make_link(any_arm.pty, boot_timeout=3) as link:
        link.command(P.Action.GRASP, 1500, 300)
        time.sleep(0.2)
        link.take_faults()
        any_arm.set_estop(True)
        assert _wait(lambda: link.stats.estops == 1, 1.0)
        frozen = link.status().position
        s = link.status()
        assert s.faults & P.Fault.ESTOP_INPUT and s.target == frozen
        with pytest.raises(Nacked, match="ESTOPPED"):
            link.command(P.Action.REST, 0, 900)
        with pytest.raises(Nacked, match="BAD_ARG"):  # only releasing the switch clears it
            link.request(P.MsgType.CLEAR, struct.pack("<HH", int(P.Fault.ESTOP_INPUT), 0xC1EA))
        time.sleep(0.3)
        assert link.status().position == frozen  # nothing moved, not even the watchdog's safe pose
        kinds = [f.kind for f in link.take_faults()]
        assert kinds.count(FaultKind.ESTOP) == 1
        with pytest.raises(Nacked, match="ESTOPPED"):  # no start while the switch is held
            link.start()
        any_arm.set_estop(False)
        seen = []
        assert _wait(lambda: FaultKind.ESTOP_SWITCH_RELEASED in (seen.extend(link.take_faults()) or
                                                                [f.kind for f in seen]), 1.0)
        s = link.status()
        assert not s.faults & P.Fault.ESTOP_INPUT and s.faults & P.Fault.ESTOP  # released, still stopped
        assert FaultKind.ESTOP_RELEASED not in [f.kind for f in seen]
        with pytest.raises(Nacked, match="ESTOPPED"):
            link.command(P.Action.GRASP, 800, 600)
        time.sleep(0.3)
        assert link.status().position == frozen
        link.start()  # the deliberate start
        assert FaultKind.ESTOP_RELEASED in [f.kind for f in link.take_faults()]
        assert not link.status().faults & (P.Fault.ESTOP | P.Fault.ESTOP_INPUT)
        assert link.status().position == frozen  # started: it stays where it stopped
        link.command(P.Action.GRASP, 800, 600)
        assert link.healthy()


def test_an_mcu_reset_before_the_start_keeps_the_arm_stopped(arm_host):
    """The arm's e-stop released but not started, then its MCU resets (forgetting every latch): the link
    latches the e-stop again on the new session, so the reset cannot start the arm either."""
    with make_link(arm_host.pty, boot_timeout=3) as link:
        link.command(P.Action.GRASP, 1500, 300)
        arm_host.set_estop(True)
        assert _wait(lambda: link.stats.estops == 1, 1.0)
        arm_host.set_estop(False)
        assert _wait(lambda: not link.status().faults & P.Fault.ESTOP_INPUT, 1.0)
        arm_host.reset_mcu()
        assert _wait(lambda: link.stats.mcu_resets >= 1, 2.0)
        assert _wait(lambda: bool(link.status().faults & P.Fault.ESTOP), 2.0)
        with pytest.raises(LinkError):
            link.command(P.Action.GRASP, 800, 600)
        link.clear(P.Fault.WATCHDOG)  # the reset's own hold, released by the owner
        link.start()
        link.command(P.Action.GRASP, 800, 600)


# ------------------------------------------------------------------ watchdog trips
def test_paused_heartbeats_trip_the_watchdog_until_the_owner_clears(arm_host):
    with make_link(arm_host.pty) as link:
        link.command(P.Action.GRASP, 1000, 600)
        link.pause_heartbeat()
        assert _wait(lambda: link.status().faults & P.Fault.WATCHDOG, 0.6)
        with pytest.raises(Nacked, match="WATCHDOG"):
            link.command(P.Action.GRASP, 1100, 600)
        (trip,) = _faults(link, FaultKind.WATCHDOG_TRIP)
        assert trip.intended and "paused by the owner" in trip.detail
        assert link.stats.watchdog_trips == 1 and link.stats.watchdog_trips_unintended == 0
        link.resume_heartbeat()
        time.sleep(0.3)  # heartbeats flow again; the link never clears by itself
        with pytest.raises(Nacked, match="WATCHDOG"):
            link.command(P.Action.GRASP, 1100, 600)
        assert link.seconds_since_heartbeat() < 0.2
        link.clear(P.Fault.WATCHDOG)
        link.command(P.Action.GRASP, 1100, 600)
        assert link.status().target[0] == 1100
        assert link.stats.watchdog_trips == 1 and link.stats.mcu_resets == 0


def test_a_stalled_host_trips_the_watchdog_and_is_reported_as_unintended(arm_host):
    with make_link(arm_host.pty) as link:
        link.command(P.Action.GRASP, 1000, 600)
        assert _wait(lambda: link.stats.heartbeats_ok >= 2, 1.0)
        with link._transport.write_lock:  # the process stalls: nothing reaches the port for 0.4 s
            time.sleep(0.4)
        assert _wait(lambda: link.stats.watchdog_trips == 1, 0.5)
        (trip,) = _faults(link, FaultKind.WATCHDOG_TRIP)
        assert not trip.intended and "not paused" in trip.detail and "stalled" in trip.detail
        assert link.stats.watchdog_trips_unintended == 1
        with pytest.raises(Nacked, match="WATCHDOG"):
            link.command(P.Action.GRASP, 1100, 600)
        link.clear(P.Fault.WATCHDOG)
        link.command(P.Action.GRASP, 1100, 600)


# ------------------------------------------------------------------ a thread that fails
@pytest.mark.parametrize("thread", ["io", "heartbeat"])
def test_a_thread_that_dies_fails_the_link_loudly(arm_host, thread, caplog):
    seen = []
    link = make_link(arm_host.pty, on_fault=seen.append)
    link.open()
    try:
        boom = RuntimeError(f"bug in the {thread} thread (test)")

        def fail(*a, **k):
            raise boom

        if thread == "io":
            link._transport.parser.feed = fail
        else:
            link.heartbeat = fail
        assert _wait(lambda: link.failed is not None and seen, 1.0)
        assert link.failed is boom and not link.healthy()
        assert [f.kind for f in seen] == [FaultKind.THREAD_DIED] and seen[0].cause is boom
        assert "bug in the" in caplog.text and "Traceback" in caplog.text  # logged with its cause
        with pytest.raises(LinkFailed, match="close\\(\\) and open\\(\\)") as e:
            link.command(P.Action.GRASP, 1000, 600)
        assert e.value.cause is boom
        time.sleep(0.35)  # no more heartbeats: the firmware's watchdog trips
        vars(link).pop("heartbeat", None)  # the "bug" is fixed
        link.close()
        link.open()  # a supervisor's restart
        assert link.healthy() and link.failed is None
        assert link.status().faults & P.Fault.WATCHDOG
        link.clear(P.Fault.WATCHDOG)
        link.command(P.Action.GRASP, 1000, 600)
    finally:
        link.close()


def test_an_on_fault_callback_that_raises_does_not_end_a_thread(proxy):
    def bad_callback(fault):
        raise ValueError("bug in the owner's callback (test)")

    px = proxy(first(1, answers_heartbeat, lambda f: P.encode_frame(P.MsgType.STATUS, f.seq, b"")))
    with make_link(px.path, heartbeat_period=0.02, on_fault=bad_callback) as link:
        assert _wait(lambda: link.stats.malformed_replies == 1, 1.0)
        hb = link.stats.heartbeats_ok
        assert _wait(lambda: link.stats.heartbeats_ok > hb + 3, 1.0) and link.healthy()


# ------------------------------------------------------------------ the simulators stop promptly
@pytest.mark.parametrize("kind", ["simavr", "host"])
def test_simulated_arm_exits_within_a_second_of_sigterm(kind, host_build):
    if kind == "simavr":
        require_tool("avr-gcc")
        require_tool("simavr")
    for _ in range(3):
        arm = sim.start_simavr() if kind == "simavr" else sim.start_arm_host(host_build)
        time.sleep(0.2)
        arm.proc.send_signal(signal.SIGTERM)
        try:
            assert arm.proc.wait(timeout=1.0) == 0
        finally:
            arm.stop()
