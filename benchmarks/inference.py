"""int8 inference latency per bundle, against the interpreters and float peers that exist.

For each bundle: the model's size, and the latency of one :meth:`edge.model.inference.Int8Model.run_int8`
call (batch 1, 1 thread, real windows built by the edge chain from a recording, many repeats)
under every TFLite interpreter installed in this environment.  When the training environment
(``.venv-train``) exists and the bundle's ``<bundle>.report/`` holds the float model, the peers
are measured there by :mod:`benchmarks.peer_inference` on the same windows: ai_edge_litert int8,
the float TFLite model (ai_edge_litert) and the float Keras model (``model(x, training=False)``
and ``predict_on_batch``).  A peer that cannot run is reported with ``skipped`` and the reason.

``ratio_vs_reference`` = peer p50 / reference p50, where the reference is the int8 model under
tflite_runtime in this process (the Pi's interpreter); > 1 means the peer is slower.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import numpy as np

from benchmarks.common import REPO, fmt, int8_windows, recording_for, stats_ms

BACKENDS = ("tflite_runtime", "ai_edge_litert")
PEERS = ("ai_edge_litert_int8", "float_tflite", "keras_call", "keras_predict_on_batch")
PEER_TIMEOUT_S = 600


def time_calls(fn, xs: np.ndarray, repeats: int, warmup: int = 20) -> dict:
    """Latency (ms) of ``fn(x)`` for ``repeats`` calls cycling over the windows ``xs``."""
    for i in range(warmup):
        fn(xs[i % len(xs)])
    t = np.empty(repeats)
    for i in range(repeats):
        x = xs[i % len(xs)]
        t0 = time.perf_counter()
        fn(x)
        t[i] = time.perf_counter() - t0
    return stats_ms(t * 1e3)


def _peers(ctx, ref, windows_path, repeats: int) -> dict:
    """Run :mod:`benchmarks.peer_inference` in the training environment; one entry per peer.

    (The result goes through a file, not stdout, which TensorFlow may write to.)"""
    out = windows_path.with_suffix(".peers.json")
    if ctx.train_python is None:
        return {p: {"skipped": "no training environment (.venv-train); run 'make env-train'"} for p in PEERS}
    cmd = [str(ctx.train_python), "-m", "benchmarks.peer_inference", "--bundle", str(ref.path),
           "--windows", str(windows_path), "--repeats", str(repeats), "--json", str(out)]
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    try:
        r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=PEER_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return {p: {"skipped": f"the peer helper timed out after {PEER_TIMEOUT_S} s"} for p in PEERS}
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {p: {"skipped": f"the peer helper failed in .venv-train (exit {r.returncode}): {last}"} for p in PEERS}
    return json.loads(out.read_text())["peers"]


def run(quick: bool = False, ctx=None) -> dict:
    from edge.bundle import load_bundle
    from edge.model.inference import InferenceError, Int8Model, interpreter_backend
    from edge.recordings import read_recording

    repeats = 300 if quick else 3000
    out = {"repeats": repeats, "batch": 1, "threads": 1, "reference": "tflite_runtime int8 (this process)",
           "bundles": {}}
    for ref in ctx.bundles:
        bundle = load_bundle(ref.path)
        try:
            path, origin = recording_for(ctx, bundle.task)
        except FileNotFoundError as exc:
            out["bundles"][ref.name] = {"task": bundle.task, "skipped": str(exc)}
            continue
        xs = int8_windows(bundle, read_recording(path), 64 if quick else 256)
        info = ref.info()
        res = {"task": bundle.task, "path": str(ref.path), "model_bytes": info["model_bytes"],
               "bundle_bytes": info["bundle_bytes"], "architecture": bundle.manifest["model"].get("architecture"),
               "input_shape": list(bundle.manifest["model"]["input"]["shape"]), "windows": len(xs),
               "window_source": f"{origin}: {path.name}", "interpreters": {}, "peers": {}}
        for name in BACKENDS:
            try:
                _, version, _ = interpreter_backend(prefer=name)
            except InferenceError as exc:
                res["interpreters"][name] = {"skipped": f"not installed in this environment ({exc})"}
                continue
            m = Int8Model(bundle.model_bytes, num_threads=1, backend=name)
            res["interpreters"][name] = {"version": version, "latency_ms": time_calls(m.run_int8, xs, repeats)}
        # the peers, in the training environment, on the very same windows
        wpath = ctx.tmp / f"windows-{ref.name}.npy"
        np.save(wpath, xs)
        res["peers"] = _peers(ctx, ref, wpath, repeats)  # the helper says which peers it had to skip
        base = res["interpreters"].get("tflite_runtime", {}).get("latency_ms", {}).get("p50")
        if base is None:  # no tflite_runtime here: the first interpreter that ran is the reference
            base = next((v["latency_ms"]["p50"] for v in res["interpreters"].values() if "latency_ms" in v), None)
        res["reference_p50_ms"] = base
        for group in ("interpreters", "peers"):
            for v in res[group].values():
                if "latency_ms" in v and base:
                    v["ratio_vs_reference"] = v["latency_ms"]["p50"] / base
        out["bundles"][ref.name] = res
    return out


def targets(r: dict) -> list[dict]:
    sizes = [v["bundle_bytes"] for v in r["bundles"].values() if "skipped" not in v]
    if not sizes:
        return []
    worst = max(sizes)
    return [{"area": "footprint", "target": "bundle ≤ 256 KB", "measured": worst / 1024, "unit": "KB",
             "goal": 256.0, "op": "<=", "note": "largest bundle (manifest + model)"}]


_LABELS = {"tflite_runtime": "int8, tflite_runtime", "ai_edge_litert": "int8, ai_edge_litert (this env)",
           "ai_edge_litert_int8": "int8, ai_edge_litert (train env)", "float_tflite": "float TFLite (ai_edge_litert)",
           "keras_call": "float Keras model(x, training=False)", "keras_predict_on_batch": "float Keras predict_on_batch"}


def markdown(r: dict) -> str:
    lines = ["| bundle | model bytes | runtime | p50 ms | p99 ms | vs int8 tflite_runtime |", "|---|---|---|---|---|---|"]
    notes = []
    for name, b in r["bundles"].items():
        if "skipped" in b:
            notes.append(f"{name}: skipped ({b['skipped']})")
            continue
        first = True
        for group in ("interpreters", "peers"):
            for k, v in b[group].items():
                cell = f"{name} ({b['task']})" if first else ""
                size = f"{b['model_bytes']:,}" if first else ""
                first = False
                if "skipped" in v:
                    lines.append(f"| {cell} | {size} | {_LABELS.get(k, k)} | skipped | | |")
                    notes.append(f"{name}, {_LABELS.get(k, k)}: {v['skipped']}")
                    continue
                lat = v["latency_ms"]
                lines.append(f"| {cell} | {size} | {_LABELS.get(k, k)} | {lat['p50']:.3f} | {lat['p99']:.3f} | "
                             f"{fmt(v.get('ratio_vs_reference'), '.2f')}× |")
    lines += ["", (f"Batch 1, 1 thread, {r['repeats']} calls per runtime over real windows from the edge chain "
              "(the window source is in the JSON); ratio = runtime p50 / int8 tflite_runtime p50.")]
    if notes:
        lines += ["", "Skipped:"] + [f"- {n}" for n in dict.fromkeys(notes)]
    return "\n".join(lines)
