"""`neurogrip bench --quick` runs every section and writes well-formed JSON, Markdown and plots.

Never asserts a timing against a number: the machine is shared and timings are noisy.
"""

import json
import math

import numpy as np
import pytest

from benchmarks.decoding import auc, roc_curve
from benchmarks.run import SECTIONS
from edge import cli
from tests.conftest import FIXTURE_BUNDLES

# make bench runs in the tflite_runtime environment (its e2e section replays under ai_edge_litert in the
# training environment, tested below), so its plumbing is tested in that pass of make test only.
# Its e2e and front-end sections run the firmware on simavr in real time: make test's exclusive phase.
pytestmark = [pytest.mark.once, pytest.mark.exclusive]

GL = FIXTURE_BUNDLES / "grasp-lift"
EMO = FIXTURE_BUNDLES / "emotion"
STATS = {"n", "mean", "p50", "p90", "p99", "max"}


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-finite number {name} in the JSON")

    return json.loads(text, parse_constant=refuse)


def _numbers(obj, path="$"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def _stats(d, cdf=False):
    assert STATS <= set(d), d
    assert 0 <= d["p50"] <= d["p99"] <= d["max"]
    if cdf:
        assert len(d["cdf"]["levels"]) == len(d["cdf"]["ms"]) and np.all(np.diff(d["cdf"]["ms"]) >= 0)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out, md, plots = tmp / "bench.json", tmp / "bench.md", tmp / "plots"
    rc = cli.main(["bench", "--quick", "--json", str(out), "--markdown", str(md), "--plots", str(plots),
                   "--bundle", str(GL), "--bundle", str(EMO)])
    report = _strict(out.read_text())
    errors = {k: v.get("traceback") for k, v in report["sections"].items() if "error" in v}
    assert rc == 0 and not errors, errors
    return report, md.read_text(), plots


def test_report_is_strict_json_with_every_section_and_finite_numbers(bench):
    report, _, _ = bench
    assert report["schema_version"] == 1 and report["quick"] is True
    assert {"cpu", "cores", "python", "libraries"} <= set(report["machine"])
    assert list(report["sections"]) == list(SECTIONS)
    assert [b["task"] for b in report["bundles"]] == ["grasp-lift", "emotion"]
    for path, v in _numbers(report):
        assert math.isfinite(v), path
    for name, r in report["sections"].items():
        assert r["wall_s"] > 0, name


def test_readers_and_filter_sections(bench):
    s = bench[0]["sections"]
    readers = s["readers"]
    assert readers["rows"] > 0 and readers["neurogrip_s"] > 0 and readers["numpy_loadtxt_s"] > 0
    f = s["filter"]
    assert f["scipy_stream_samples_per_s"] > 0 and f["c_stream_ratio_vs_scipy"] > 0
    assert len(f["snr_db"]) == 8 and f["bit_exact_across_chunking"] is True
    assert min(f["snr_db"].values()) >= 90


def test_inference_section_measures_each_bundle_and_names_skipped_peers(bench):
    inf = bench[0]["sections"]["inference"]
    assert set(inf["bundles"]) == {"grasp-lift", "emotion"}
    for b in inf["bundles"].values():
        assert b["model_bytes"] > 0 and b["bundle_bytes"] > b["model_bytes"] and b["windows"] > 0
        from edge.model.inference import interpreter_backend

        # this environment's interpreter is measured; the other one is measured or says why not
        _stats(b["interpreters"][interpreter_backend()[0]]["latency_ms"])
        for name, r in b["interpreters"].items():
            assert "latency_ms" in r or (isinstance(r["skipped"], str) and r["skipped"]), name
        assert set(b["peers"]) == {"ai_edge_litert_int8", "float_tflite", "keras_call", "keras_predict_on_batch"}
        for name, p in b["peers"].items():
            if "skipped" in p:
                assert isinstance(p["skipped"], str) and p["skipped"], name
            else:
                _stats(p["latency_ms"])
                assert p["ratio_vs_reference"] > 0
        # the fixtures have no <bundle>.report/ (and a fresh clone tests the edge before it builds
        # the training environment): the float peers say why they were skipped
        reason = b["peers"]["float_tflite"]["skipped"]
        assert "model_float.tflite" in reason or "no training environment" in reason, reason


def test_e2e_section_replay_live_and_footprint(bench):
    e = bench[0]["sections"]["e2e"]
    assert {x["chunk"] for x in e["replay"]} == {10, 25}
    for x in e["replay"]:
        assert x["realtime_factor"] > 0 and x["windows"] > 0
        assert x["interpreter"].split()[0] in ("tflite_runtime", "ai_edge_litert") and x["c_kernel"]
        _stats(x["chunk_ms"], cdf=True)
        for k in ("filter", "infer", "decide"):
            _stats(x["stages_ms"][k], cdf=True)
    lsl = e["lsl"]
    assert lsl["simulator"] in ("simavr", "host") and lsl["windows"] > 0
    assert lsl["commands_sent"] > 0 and lsl["commands_failed"] == 0  # the forced policy makes commands flow
    _stats(lsl["latency_ms"], cdf=True)
    _stats(lsl["decision_interval_ms"])
    assert lsl["safe_state_ms"] is not None and lsl["safe_state_ms"] > 0, "no REST after the stream dropped"
    assert set(e["footprint"]) == {"grasp-lift", "emotion"}
    for v in e["footprint"].values():
        assert v["peak_rss_mb"] > 0 and v["startup_s"] > 0 and v["process_startup_s"] >= v["startup_s"]
        assert v["realtime_factor"] > 0


def test_replay_in_another_environment_returns_its_runs_or_says_why_not(tmp_path):
    """The full bench replays again in the training environment (ai_edge_litert); the plumbing is
    the same whatever the Python, so it is tested here with this one."""
    import sys

    from benchmarks.e2e import replay_elsewhere

    runs = replay_elsewhere(sys.executable, GL, True, tmp_path)
    assert [x["chunk"] for x in runs] == [10, 25]
    assert all(x["label"] == "synthetic continuous" and x["python"] and x["windows"] > 0 for x in runs)
    assert "skipped" in replay_elsewhere(None, GL, True, tmp_path)
    broken = replay_elsewhere(sys.executable, tmp_path / "no-such-bundle", True, tmp_path)
    assert "failed" in broken["skipped"]


def test_decoding_section_roc_detection_and_false_activations(bench):
    d = bench[0]["sections"]["decoding"]["bundles"]
    assert set(d) == {"grasp-lift", "emotion"}
    assert all(b["manifest_metrics"] for b in d.values())
    assert "replay" not in d["emotion"]
    rp = d["grasp-lift"]["replay"]
    labels = ["HandStart", "FirstDigitTouch", "BothStartLoadPhase", "LiftOff", "Replace", "BothReleased"]
    assert list(rp["roc"]) == labels and list(rp["events"]) == labels
    for lab in labels:
        r = rp["roc"][lab]
        assert 0 <= r["auc"] <= 1 and len(r["fpr"]) == len(r["tpr"]) >= 2
        assert r["fpr"][0] == 0 and r["fpr"][-1] == pytest.approx(1) and np.all(np.diff(r["tpr"]) >= 0)
        ev = rp["events"][lab]
        assert ev["events"] > 0 and 0 <= ev["detected"] <= ev["events"]
        assert ev["latency_from_onset_ms"]["n"] == ev["detected"]
    assert 0 <= rp["mean_auc"] <= 1 and rp["windows"] > 0 and rp["stream_s"] > 0
    assert rp["false_activations"] <= rp["commands"] and rp["false_activations_per_min"] >= 0


def test_link_section_and_targets_table(bench):
    report, md, _ = bench
    link = report["sections"]["link"]
    assert link["roundtrip"]["latency_ms"]["n"] > 0 and link["corruption"]["n_commands"] > 0
    assert link["corruption"]["corrupted_commands_executed"] == 0
    assert link["fuzz"] is None or {"runs", "crash_found"} <= set(link["fuzz"])
    areas = {t["area"] for t in report["targets"]}
    assert {"filter accuracy", "filter speed", "edge loop", "controller delay", "footprint", "safety", "decoding",
            "quantisation", "emotion"} <= areas
    for t in report["targets"]:
        assert {"target", "goal", "op", "measured", "unit", "met", "note"} <= set(t)
        assert t["met"] in (True, False, None)
        # targets that are not timings must hold even in a quick run on the fixture bundles
        if t["area"] == "filter accuracy" or t["target"].startswith(("zero commands", "bundle")):
            assert t["met"] is not False, t
    assert md.startswith("## neurogrip benchmark") and "Machine:" in md.splitlines()[2]
    for name in ("targets (docs/design.md §3)", *SECTIONS):
        assert f"### {name}" in md
    assert "MET" in md


def test_frontend_section_losses_counted_none_corrupted_ack_and_footprint(bench):
    report, md, _ = bench
    fe = report["sections"]["frontend"]
    c = fe["corruption"]  # 1 % byte corruption on the SAMPLES stream: every loss counted, nothing bad delivered
    assert c["scans_sent"] > 500 and 0 < c["lost"] == c["lost_counted"] and c["unreported_losses"] == 0
    assert c["corrupted_delivered"] == c["delivered_twice"] == c["out_of_order"] == 0
    assert fe["ack"][0]["kind"] == "host"
    for a in fe["ack"]:
        _stats(a["off_ms"])
        _stats(a["on_ms"])
        assert a["samples_delivered"] > 0 and a["samples_lost"] == 0
    loop = fe["emg_loop"]  # the Myo data: real only (skipped on a clean clone without ../shared/data)
    assert "skipped" in loop or (loop["commands_sent"] > 0 and loop["latency_ms"]["n"] == loop["commands_sent"])
    fw = fe["firmware"]
    assert "skipped" in fw or 0 < fw["flash_bytes"] <= 28672 and 0 < fw["ram_bytes"] <= 1024
    rows = {t["target"]: t for t in report["targets"] if t["section"] == "frontend"}
    assert rows["zero corrupted samples delivered under 1 % byte corruption"]["met"] is True
    assert rows["every sample loss detected under 1 % byte corruption"]["met"] is True
    assert "| front end | value |" in md and "command → ACK, host" in md


def test_plots_are_written(bench):
    report, _, plots = bench
    names = {p.name for p in plots.iterdir()}
    assert {"latency_cdf.png", "throughput.png", "inference.png", "roc_grasp-lift.png"} <= names
    assert sorted(report["plots"]) == sorted(str(plots / n) for n in names)
    for p in plots.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_roc_auc_equals_the_rank_statistic_with_ties():
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.3
    s = np.round(rng.random(400) + 0.3 * y, 1)  # coarse scores: many ties, as int8 outputs have
    fpr, tpr, _ = roc_curve(y, s)
    pos, neg = s[y], s[~y]
    mw = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    assert auc(fpr, tpr) == pytest.approx(mw)
