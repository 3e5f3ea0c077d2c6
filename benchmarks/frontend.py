"""The arm's microcontroller as the EMG front end (issue 27): its analog inputs sampled by the real firmware
and streamed up the link, the simulated arm's ADC driven by an ADC feed (``firmware_bridge.sim``).

(a) ``corruption``: 8 inputs × 500 Hz through a pty that replaces 1 % of the bytes both ways (as the link
    section does for commands), the host build.  The proxy keeps every scan the firmware sent, before the
    damage, so each scan the link delivers is checked against it: ``corrupted_delivered`` (goal 0),
    ``unreported_losses`` (scans neither delivered nor counted lost: goal 0), repeats.
(b) ``ack``: command → ACK through the link with the stream off and on (8 × 500 Hz, read by another
    thread), in alternating blocks on one link so both are measured under the same load; the AVR binary on
    simavr where it runs (the real firmware's timing) and the host build.  Goal: p99 with streaming on
    within 2 ms of off.
(c) ``emg_loop``: the closed loop (:mod:`edge.commands.emg_loop`) on a real Myo session: simulated ADC →
    firmware → SAMPLES → ``arm:`` source → runtime → commands → firmware; ``latency_ms`` is the runtime's
    sample received (the frame's arrival) → command acknowledged.  Real data only (skipped without them).
(d) ``firmware``: flash and static RAM of the ATmega328P image (``avr-size``), against an Uno's 32 KiB and
    2 KiB (the build fails above 28 KiB / 1 KiB).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import shutil
import subprocess
import threading
import time

from benchmarks.common import FIXTURE_BUNDLES, fmt, forced_decider, myo_session, stats_ms
from benchmarks.link import CorruptingProxy
from firmware_bridge import protocol as P
from firmware_bridge import sim
from firmware_bridge.link import ArmLink

CORRUPTION_RATE = 0.01
CHANNELS, RATE_HZ = tuple(range(8)), 500  # raw EMG: the densest stream the firmware is specified for
GOALS = {"corrupted_delivered": 0, "unreported_losses": 0, "ack_p99_delta_ms": 2.0, "loop_p99_ms": 10.0}
UNO_FLASH, UNO_RAM = 32768, 2048


def _pattern(k: int, ch: int) -> int:
    """The ADC counts the feed holds on input ``ch`` at sample ``k`` (every scan tells which it is)."""
    return (k * 7 + ch * 131) % 1024


def pattern_feed(seconds: float, rate: int = RATE_HZ) -> sim.AdcFeed:
    """A feed whose scan k reads :func:`_pattern` (k, ch) on every input: the smallest millivolts the
    simulated ADC converts to those counts."""
    rows = ([-(-_pattern(k, ch) * sim.ADC_VREF_MV // 1023) for ch in range(8)] for k in range(int(seconds * rate)))
    return sim.AdcFeed(rows, rate)


class _TruthProxy(CorruptingProxy):
    """:class:`benchmarks.link.CorruptingProxy` that also keeps the SAMPLES the firmware sent, before the
    damage: ``sent[index] = scan``."""

    def __init__(self, arm_pty: str, rate: float, seed: int = 27):
        self._truth = P.FrameParser()
        self.sent: dict[int, tuple[int, ...]] = {}
        super().__init__(arm_pty, rate, seed)

    def to_host(self, data: bytes) -> bytes:
        for f in self._truth.feed(data):
            if f.type == P.MsgType.SAMPLES:
                s = P.Samples.from_payload(f.payload)
                self.sent.update((s.first_sample + i, v) for i, v in enumerate(s.values))
        return super().to_host(data)


def _read_for(stream, seconds: float, blocks: list) -> list:
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        b = stream.read(0.05)
        if b is not None:
            blocks.append(b)
    return blocks


def corruption(seconds: float, rate: float = CORRUPTION_RATE) -> dict:
    """The stream under ``rate`` byte corruption for ``seconds``: what was sent, delivered, counted lost."""
    arm = sim.start_arm_host(sim.build_host(), adc=pattern_feed(seconds + 30))
    proxy = _TruthProxy(arm.pty, rate)
    try:
        with ArmLink(proxy.path, retries=5, boot_timeout=5, command_max_age=1.0) as link:
            stream = link.open_stream(CHANNELS, RATE_HZ)
            blocks = _read_for(stream, seconds, [])
            proxy.rate = 0.0  # stop on a clean line
            stream.close()
            while (b := stream.read()) is not None:
                blocks.append(b)
            st = stream.stats
    finally:
        proxy.close()
        arm.stop()
    end = blocks[-1].next_sample if blocks else 0
    delivered: dict[int, tuple] = {}
    repeats = 0
    for b in blocks:
        for i, v in enumerate(b.scans):
            repeats += (b.first_sample + i) in delivered
            delivered[b.first_sample + i] = v
    truth = {k: v for k, v in proxy.sent.items() if k < end}
    lost = set(range(end)) - set(delivered)
    return {"seconds": seconds, "rate": rate, "stream": f"{len(CHANNELS)} x {RATE_HZ} Hz",
            "bytes_corrupted": proxy.corrupted, "frames_hit_to_host": proxy.frames_hit["to_host"],
            "scans_sent": len(truth), "firmware_skipped": end - len(truth), "delivered": len(delivered),
            "lost": len(lost), "lost_counted": int(st.lost_samples), "gaps": int(st.gaps),
            "frames_refused": int(st.rejected_frames),
            "unreported_losses": max(0, len(lost) - int(st.lost_samples)), "counted_exactly": st.lost_samples == len(lost),
            "corrupted_delivered": sum(1 for k, v in delivered.items() if truth.get(k) != v),
            "delivered_twice": repeats,
            "out_of_order": sum(1 for a, b in itertools.pairwise(blocks) if b.first_sample < a.next_sample)}


def _commands(link, n: int, lat: list) -> None:
    for i in range(n):
        t0 = time.perf_counter()
        link.command(P.Action.GRASP if i % 2 else P.Action.LIFT, 600 + i % 400, 600)
        lat.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.002 + random.random() * 0.002)  # spread over the stream's frame period


def ack(kind: str, n: int, block: int = 50) -> dict:
    """Command → ACK with streaming off and on, ``n`` each, alternating blocks of ``block`` on one link."""
    arm = sim.start_simavr(adc=pattern_feed(600)) if kind == "simavr" \
        else sim.start_arm_host(sim.build_host(), adc=pattern_feed(600))
    off, on, lost, delivered = [], [], 0, 0
    try:
        with ArmLink(arm.pty, command_max_age=1.0) as link:
            _commands(link, 20, [])  # warm-up
            while len(on) < n:
                _commands(link, block, off)
                stream = link.open_stream(CHANNELS, RATE_HZ)
                stop = threading.Event()

                def read(stream=stream, stop=stop):  # the stream is read as the runtime would, off this thread
                    while not stop.is_set():
                        _read_for(stream, 0.05, [])

                reader = threading.Thread(target=read)
                reader.start()
                try:
                    _commands(link, block, on)
                finally:
                    stop.set()
                    reader.join()
                    stream.close()
                lost += stream.stats.lost_samples
                delivered += stream.stats.delivered
            retransmissions = link.stats.retransmissions
    finally:
        arm.stop()
    off_s, on_s = stats_ms(off), stats_ms(on)
    return {"kind": kind, "n": n, "off_ms": off_s, "on_ms": on_s, "p99_delta_ms": on_s["p99"] - off_s["p99"],
            "samples_delivered": int(delivered), "samples_lost": int(lost), "retransmissions": retransmissions}


def firmware() -> dict:
    """Flash (text + data) and static RAM (data + bss) of the ATmega328P image, from avr-size."""
    if shutil.which("avr-gcc") is None or shutil.which("avr-size") is None:
        return {"skipped": "avr-gcc/avr-size not installed: apt-get install gcc-avr avr-libc"}
    r = subprocess.run(["make", "-s", "-C", str(sim.FIRMWARE_DIR), "avr"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        return {"skipped": f"make avr failed: {(r.stdout + r.stderr).strip().splitlines()[-1:]}"}
    elf = sim.BUILD_DIR / "avr" / "neurogrip_arm.elf"
    out = subprocess.run(["avr-size", "--format=berkeley", str(elf)], capture_output=True, text=True, check=True)
    text, data, bss = (int(x) for x in out.stdout.splitlines()[1].split()[:3])
    return {"flash_bytes": text + data, "ram_bytes": data + bss, "flash_of": UNO_FLASH, "ram_of": UNO_RAM,
            "text": text, "data": data, "bss": bss}


def _simavr_runs() -> str | None:
    """Why simavr cannot run here, or None."""
    try:
        sim.build_sim()
    except sim.SimError as e:
        return str(e).splitlines()[0]
    return None


def forced_gesture_decider(bundle):
    """The bundle's own multi-class policy made to fire whatever the model (as :func:`forced_decider` does for
    multi-label tasks): every window's top class is a candidate, no vote or dwell, 200 ms refractory per joint."""
    from edge.decision import Decider

    return Decider(dataclasses.replace(bundle.decision_policy(), reject_below=0.0, vote=1, min_dwell_ms=0.0,
                                       refractory_ms=200.0))


def loop_latency(session, seconds: float, bundle_path) -> dict:
    """``seconds`` of a Myo ``session`` through the closed loop (:func:`edge.commands.emg_loop.closed_loop`,
    the simavr Uno where it runs) with a gesture bundle under a forced policy (:func:`forced_gesture_decider`),
    so that commands flow whatever the model: the runtime's sample → command acknowledged, and what was lost."""
    from edge.bundle import load_bundle
    from edge.commands.emg_loop import closed_loop
    from edge.recordings import read_recording

    bundle, rec = load_bundle(bundle_path), read_recording(session)
    rec = rec.rows(0, min(rec.n_samples, round(seconds * rec.fs)))
    decider = forced_gesture_decider(bundle) if bundle.task_spec.mode == "multiclass" else forced_decider(bundle, rec)
    state = {}

    def forced(rt, arm):
        rt.pipeline.decider = decider
        state["rt"] = rt

    r = closed_loop(bundle_path, rec, prefer="simavr", on_ready=forced)
    s, rt = r["summary"], state["rt"]
    raw = getattr(getattr(rt, "_timings", None), "values", None)
    return {"recording": f"{session.parent.name}/{session.name}", "seconds": r["seconds"], "simulator": r["simulator"],
            "simulator_fallback_reason": r["fallback_reason"], "spec": r["spec"].split("?")[1],
            "policy": "forced: every window's top class a candidate, no vote or dwell, 200 ms refractory",
            "windows": s.windows, "commands_sent": s.commands_sent, "commands_failed": s.commands_failed,
            "dropped_windows": s.dropped_windows, "samples_lost": r["samples_lost"], "faults": s.faults,
            "latency_ms": stats_ms(raw("latency"), cdf=True) if raw else dict(s.latency_ms)}


def run(quick: bool = False, ctx=None) -> dict:
    out: dict = {"goals": GOALS, "corruption": corruption(3.0 if quick else 20.0)}
    why = _simavr_runs()
    kinds = ["host"] + ([] if why or quick else ["simavr"])
    out["ack"] = [ack(k, 100 if quick else 1000) for k in kinds]
    if why:
        out["simavr_skipped"] = why
    try:
        session, _ = myo_session(ctx)
        ref = ctx.bundle("gesture")
        out["emg_loop"] = loop_latency(session, 10.0 if quick else 60.0, ref.path if ref else FIXTURE_BUNDLES / "gesture")
    except FileNotFoundError as exc:
        out["emg_loop"] = {"skipped": str(exc)}
    out["firmware"] = firmware()
    return out


def _judged_ack(r: dict) -> dict:
    """The AVR binary's run where it ran (the real firmware's timing), else the host build's."""
    return next((a for a in r["ack"] if a["kind"] == "simavr"), r["ack"][0])


def targets(r: dict) -> list[dict]:
    c, a = r["corruption"], _judged_ack(r)
    t = [{"area": "front end", "target": "every sample loss detected under 1 % byte corruption",
          "measured": c["unreported_losses"], "unit": "samples", "goal": 0, "op": "<=",
          "note": f"{c['stream']} for {c['seconds']:g} s: {c['lost']} lost, {c['lost_counted']} counted"},
         {"area": "front end", "target": "zero corrupted samples delivered under 1 % byte corruption",
          "measured": c["corrupted_delivered"], "unit": "samples", "goal": 0, "op": "<=",
          "note": f"{c['delivered']} delivered, each checked against what the firmware sent"},
         {"area": "front end", "target": "command → ACK p99 with streaming on within 2 ms of off",
          "measured": a["p99_delta_ms"], "unit": "ms", "goal": GOALS["ack_p99_delta_ms"], "op": "<=",
          "note": f"{a['kind']}: off p99 {a['off_ms']['p99']:.2f} ms, on ({r['corruption']['stream']}) p99 "
                  f"{a['on_ms']['p99']:.2f} ms, {a['n']} commands each"}]
    e = r.get("emg_loop", {})
    if "latency_ms" in e:
        t.append({"area": "front end", "target": "EMG loop: sample → command p99 ≤ 10 ms",
                  "measured": e["latency_ms"].get("p99"), "unit": "ms", "goal": GOALS["loop_p99_ms"], "op": "<=",
                  "note": f"{e['recording']} on the {e['simulator']} ADC → arm: source → runtime → command "
                          f"acknowledged ({e['commands_sent']} commands; goal as for LSL, docs/design.md §3)"})
    fw = r.get("firmware", {})
    if "flash_bytes" in fw:
        t.append({"area": "front end", "target": "firmware fits an Uno with margin (flash ≤ 28 KiB, RAM ≤ 1 KiB)",
                  "measured": fw["flash_bytes"] <= 28672 and fw["ram_bytes"] <= 1024, "unit": "", "goal": True,
                  "op": "==", "note": f"flash {fw['flash_bytes']} B, static RAM {fw['ram_bytes']} B (avr-size)"})
    return t


def markdown(r: dict) -> str:
    c = r["corruption"]
    lines = ["| front end | value |", "|---|---|",
             (f"| {c['rate']:.0%} byte corruption, {c['stream']} for {c['seconds']:g} s (host build) | "
              f"{c['scans_sent']} scans sent, {c['delivered']} delivered, {c['lost']} lost of which "
              f"**{c['lost_counted']} counted** ({c['gaps']} gaps, {c['frames_refused']} frames refused); "
              f"corrupted delivered **{c['corrupted_delivered']}**, twice {c['delivered_twice']}, "
              f"out of order {c['out_of_order']} |")]
    for a in r["ack"]:
        lines.append(f"| command → ACK, {a['kind']}, {a['n']} commands each | off p50 {a['off_ms']['p50']:.2f} / "
                     f"p99 {a['off_ms']['p99']:.2f} ms; streaming {c['stream']} p50 {a['on_ms']['p50']:.2f} / "
                     f"p99 {a['on_ms']['p99']:.2f} ms (**{a['p99_delta_ms']:+.2f} ms**, goal ≤ +2 ms); "
                     f"{a['samples_lost']} of {a['samples_delivered']} samples lost |")
    if r.get("simavr_skipped"):
        lines.append(f"| simavr | not run: {r['simavr_skipped']} |")
    e = r.get("emg_loop", {})
    if "latency_ms" in e:
        la = e["latency_ms"]
        lines.append(f"| EMG loop: {e['recording']} ({e['seconds']:.0f} s) → {e['simulator']} ADC → arm: source → "
                     f"runtime → commands | sample received → command acknowledged p50 {fmt(la.get('p50'))} ms, "
                     f"p99 **{fmt(la.get('p99'))} ms** (n = {la.get('n', 0)}); {e['commands_sent']} commands, "
                     f"{e['samples_lost']} samples lost |")
    else:
        lines.append(f"| EMG loop | skipped: {e.get('skipped', '?')} |")
    fw = r.get("firmware", {})
    lines.append(f"| firmware (ATmega328P, avr-size) | flash {fw['flash_bytes']} B of {fw['flash_of']} "
                 f"({100 * fw['flash_bytes'] / fw['flash_of']:.1f} %), static RAM {fw['ram_bytes']} B of {fw['ram_of']} "
                 f"({100 * fw['ram_bytes'] / fw['ram_of']:.1f} %) |" if "flash_bytes" in fw
                 else f"| firmware | {fw.get('skipped', '?')} |")
    return "\n".join(lines)
