"""The link benchmark's safety audit, short: 1 % byte corruption must never execute a corrupted
command, never run one twice, never ACK one that did not run, and never lose one silently."""

from __future__ import annotations

from benchmarks import link as bench
from tests.conftest import require_tool


def test_corruption_audit_short():
    r = bench.corruption(600, rate=0.01, seed=1)
    assert r["bytes_corrupted"]["to_arm"] > 0 and r["bytes_corrupted"]["to_host"] > 0
    assert r["corrupted_commands_executed"] == 0
    assert r["commands_executed_twice"] == 0
    assert r["acked_but_not_executed"] == 0
    assert r["unreported_losses"] == 0
    # every frame corrupted on its way to the firmware was detected there (CRC or framing)
    assert r["firmware_crc_errors"] + r["firmware_framing_errors"] >= r["frames_hit"]["to_arm"] * 0.9
    assert r["retransmissions"] > 0
    assert r["outcomes"]["acked"] >= 590  # losses are retried, not just reported


def test_heavy_corruption_still_never_executes_garbage():
    r = bench.corruption(200, rate=0.05, seed=2)
    assert r["corrupted_commands_executed"] == 0 and r["commands_executed_twice"] == 0
    assert r["acked_but_not_executed"] == 0 and r["unreported_losses"] == 0


def test_quick_run_and_markdown():
    r = bench.run(quick=True)
    assert r["goal_met"] is True
    assert 0 < r["roundtrip"]["latency_ms"]["p50"] <= r["roundtrip"]["latency_ms"]["p99"]
    md = bench.markdown(r)
    assert "p50" in md and "corrupted commands executed **0**" in md
    # the quick run fuzzes for a few seconds where clang's libFuzzer is installed (else: skip, or
    # fail under NEUROGRIP_REQUIRE_AVR=1, after the checks above have passed)
    if r["fuzz"] is not None and r["fuzz"]["crash_found"] is None:
        require_tool("libfuzzer")
    assert r["fuzz"] is None or (r["fuzz"]["crash_found"] is False and r["fuzz"]["runs"] > 0), r["fuzz"]
