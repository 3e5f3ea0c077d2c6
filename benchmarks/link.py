"""Arm link: command -> ACK round trip on a pty to the host build of the firmware, and integrity
under random byte corruption (goal, issue 4: over 100 000 frames at 1 % byte corruption, zero
corrupted commands executed, every loss detected and retried or reported).  The full run also
fuzzes the firmware's frame parser for 60 s (libFuzzer) and records the result.
"""

from __future__ import annotations

import random
import re
import subprocess
import time

import numpy as np

from benchmarks.common import stats_ms
from firmware_bridge import protocol as P
from firmware_bridge.errors import DeadlineExpired, LinkError, Nacked
from firmware_bridge.link import ArmLink
from firmware_bridge.sim import FIRMWARE_DIR, PtyProxy, build_host, start_arm_host

CORRUPTION_RATE = 0.01


class CorruptingProxy(PtyProxy):
    """A pty that forwards to another pty, replacing each byte with probability ``rate`` by a
    different random byte, in both directions.

    ``path`` is what the link opens.  ``frames_hit[d]`` counts the frames (as delimited in the
    original stream) that had at least one byte corrupted, for d in ("to_arm", "to_host").
    """

    def __init__(self, arm_pty: str, rate: float, seed: int = 0):
        super().__init__(arm_pty, poll_s=0.05)
        self.rate = rate
        self._rng = random.Random(seed)
        self.bytes = {"to_arm": 0, "to_host": 0}
        self.corrupted = {"to_arm": 0, "to_host": 0}
        self.frames_hit = {"to_arm": 0, "to_host": 0}
        self._hit_open = {"to_arm": False, "to_host": False}
        self.start()

    def _damage(self, raw: bytes, d: str) -> bytes:
        data = bytearray(raw)
        for i, b in enumerate(data):
            if self.rate and self._rng.random() < self.rate:
                data[i] = b ^ self._rng.randint(1, 255)
                self.corrupted[d] += 1
                self._hit_open[d] = True
            if b == 0:  # end of a frame in the original stream
                self.frames_hit[d] += self._hit_open[d]
                self._hit_open[d] = False
        self.bytes[d] += len(data)
        return bytes(data)

    def to_arm(self, data: bytes) -> bytes:
        return self._damage(data, "to_arm")

    def to_host(self, data: bytes) -> bytes:
        return self._damage(data, "to_host")


def _payload(i: int) -> tuple[P.Action, int, int]:
    # unique per command over 4.2 million commands, so every executed payload names its command
    return (P.Action.GRASP if i % 2 else P.Action.LIFT), 200 + i % 1400, 1 + (i // 1400) % 3000


def roundtrip(n: int) -> dict:
    """Command -> ACK latency through the link to the host build behind a pty."""
    host = build_host()
    with start_arm_host(host) as arm, ArmLink(arm.pty) as link:
        for i in range(20):  # warm-up
            link.command(*_payload(i))
        lat = []
        for i in range(n):
            t0 = time.perf_counter()
            link.command(*_payload(i))
            lat.append(time.perf_counter() - t0)
        lost = link.stats.retransmissions
    return {"latency_ms": stats_ms(np.array(lat) * 1e3), "retransmissions": lost}


def corruption(n: int, rate: float = CORRUPTION_RATE, seed: int = 0) -> dict:
    """Send ``n`` commands through a proxy that corrupts ``rate`` of all bytes; audit what ran.

    Every command is unique, and the firmware logs each ARM_CMD it executes, so a command run from
    a corrupted frame (a payload that was never sent) or run twice is caught.
    """
    host = build_host()
    arm = start_arm_host(host, log_commands=True)
    proxy = CorruptingProxy(arm.pty, rate, seed)
    outcome = {"acked": 0, "ack_timeout": 0, "deadline": 0, "nacked": 0, "disconnected": 0}
    acked, sent = set(), set()
    watchdog_clears = 0
    t0 = time.perf_counter()
    try:
        with ArmLink(proxy.path, retries=5, boot_timeout=5) as link:
            for i in range(n):
                payload = _payload(i)
                sent.add(P.pack_arm_cmd(*payload))
                for _ in range(3):
                    try:
                        link.command(*payload)
                        outcome["acked"] += 1
                        acked.add(P.pack_arm_cmd(*payload))
                    except Nacked as e:
                        if e.reason == P.Reason.WATCHDOG:  # heartbeats lost to noise: clear, resend
                            try:
                                link.clear(P.Fault.WATCHDOG)
                                watchdog_clears += 1
                                continue
                            except LinkError:
                                pass
                        outcome["nacked"] += 1
                    except DeadlineExpired:
                        outcome["deadline"] += 1
                    except TimeoutError:
                        outcome["ack_timeout"] += 1
                    except LinkError:
                        outcome["disconnected"] += 1
                    break
            elapsed = time.perf_counter() - t0
            proxy.rate = 0.0  # read the firmware's counters over a clean line
            time.sleep(0.05)
            st = link.status()
            stats = link.stats
        time.sleep(0.1)
    finally:
        proxy.close()
        arm.stop()
    executed = [pl for _, pl in arm.commands]
    counts: dict[bytes, int] = {}
    for pl in executed:
        counts[pl] = counts.get(pl, 0) + 1
    return {
        "n_commands": n, "rate": rate, "seconds": elapsed,
        "host_frames_sent": stats.requests + stats.retransmissions,
        "bytes_corrupted": proxy.corrupted, "frames_hit": proxy.frames_hit,
        "outcomes": outcome, "retransmissions": stats.retransmissions,
        "firmware_frames_ok": st.frames_ok, "firmware_crc_errors": st.crc_errors,
        "firmware_framing_errors": st.framing_errors,
        "host_crc_errors": link._parser.crc_errors, "host_framing_errors": link._parser.framing_errors,
        "heartbeats_lost": stats.heartbeats_lost, "watchdog_clears": watchdog_clears,
        # the safety audit
        "executed": len(executed),
        "corrupted_commands_executed": sum(1 for pl in executed if pl not in sent),
        "commands_executed_twice": sum(1 for c in counts.values() if c > 1),
        "acked_but_not_executed": len(acked - set(executed)),
        "unreported_losses": n - sum(outcome.values()),
    }


def fuzz(seconds: int) -> dict:
    """Run ``make fuzz`` for ``seconds``; report executions and whether it found a crash.

    A run that did not happen (no clang/libFuzzer, build error) is reported with ``error`` and
    ``crash_found`` None, not as a crash.
    """
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE_DIR), "fuzz", f"FUZZ_SECONDS={seconds}"],
                       capture_output=True, text=True, check=False)
    text = r.stdout + r.stderr
    m = re.search(r"Done (\d+) runs in (\d+) second", text)
    crashed = bool(re.search(r"deadly signal|==\d+==ERROR|ERROR: libFuzzer|Test unit written to .*crash-", text))
    out = {"seconds": seconds, "runs": int(m.group(1)) if m else None,
           "crash_found": True if crashed else (False if m and r.returncode == 0 else None),
           "corpus_seeds": len(list((FIRMWARE_DIR / "fuzz" / "corpus").iterdir()))}
    if out["crash_found"] is None:
        out["error"] = f"the fuzzer did not run (exit {r.returncode}): " + " | ".join(text.strip().splitlines()[-3:])
    return out


QUICK = {"roundtrip": 300, "corruption": 2_000, "fuzz_s": 5}
FULL = {"roundtrip": 5_000, "corruption": 100_000, "fuzz_s": 60}


def run(quick: bool = False, ctx=None) -> dict:
    n = QUICK if quick else FULL
    out = {"roundtrip": roundtrip(n["roundtrip"]), "corruption": corruption(n["corruption"])}
    out["fuzz"] = fuzz(n["fuzz_s"]) if n["fuzz_s"] else None
    c = out["corruption"]
    out["goal_met"] = (c["corrupted_commands_executed"] == 0 and c["commands_executed_twice"] == 0
                       and c["acked_but_not_executed"] == 0 and c["unreported_losses"] == 0)
    return out


def targets(r: dict) -> list[dict]:
    c = r["corruption"]
    return [{"area": "safety", "target": "zero commands executed from corrupted frames",
             "measured": c["corrupted_commands_executed"], "unit": "commands", "goal": 0, "op": "<=",
             "note": f"{c['n_commands']:,} commands at {c['rate']:.0%} byte corruption, firmware host build"}]


def markdown(r: dict) -> str:
    lat, c = r["roundtrip"]["latency_ms"], r["corruption"]
    o = c["outcomes"]
    lines = [
        "| link | value |", "|---|---|",
        (f"| command → ACK round trip, pty to host build ({lat['n']} commands) | p50 {lat['p50']:.2f} ms, "
         f"p99 {lat['p99']:.2f} ms, max {lat['max']:.2f} ms |"),
        (f"| {c['rate']:.0%} byte corruption, {c['n_commands']} commands ({c['host_frames_sent']} host frames, "
         f"{c['frames_hit']['to_arm']} + {c['frames_hit']['to_host']} frames hit) | "
         f"acked {o['acked']}, reported lost {o['ack_timeout'] + o['deadline'] + o['nacked'] + o['disconnected']}, "
         f"retransmissions {c['retransmissions']} |"),
        (f"| safety audit | corrupted commands executed **{c['corrupted_commands_executed']}**, "
         f"executed twice **{c['commands_executed_twice']}**, acked but not executed "
         f"**{c['acked_but_not_executed']}**, unreported losses **{c['unreported_losses']}** |"),
    ]
    if r.get("fuzz"):
        f = r["fuzz"]
        lines.append(f"| frame-parser fuzzing (libFuzzer, {f['seconds']} s, {f['corpus_seeds']} seeds) | "
                     + (f"{f['runs']} runs, crash found: {'**yes**' if f['crash_found'] else 'no'} |"
                        if f["crash_found"] is not None else f"did not run: {f.get('error', '')} |"))
    return "\n".join(lines)
