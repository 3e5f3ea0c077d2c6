"""The whole edge chain, end to end (docs/design.md §3 "edge loop", "controller delay", "footprint", "safety").

(a) ``replay``: a recording through :class:`edge.runtime.Pipeline` from a
    :class:`edge.sources.ReplaySource` at ``speed=0`` (as fast as it goes), chunks of 10 and 25
    samples.  Times: the whole loop (read + process) against the recording's duration
    (``realtime_factor``), :meth:`Pipeline.process` per chunk (``chunk_ms``; ``chunk_with_window_ms``
    for the chunks that completed a window, i.e. ran the model) and the per-window stages
    (``stages_ms``: filter, infer, decide, from ``WindowResult.stages_ms``).  Two recordings: a
    continuous synthetic series (the live situation, a window every stride; the goals are judged
    on it) and the shared real held-out series (event windows with gaps, so fewer windows per
    second) when present.
    ``replay`` also holds the continuous series run in the training environment
    (``.venv-train``: Python 3.12, numpy 2 and ``ai_edge_litert``, the interpreter the edge installs
    on Python >= 3.12; the edge code imports no TensorFlow there either), via
    ``python -m benchmarks.e2e --replay BUNDLE``; every run names its ``interpreter``.
(b) ``lsl``: an :class:`edge.sources.player.Player` publishes the continuous series in real time over LSL
    on loopback; :func:`edge.runtime.serve` reads it (``lsl:``) and commands the simulated arm
    (:func:`firmware_bridge.sim.start`: the simavr Uno, else the host build; ``simulator`` says
    which) over its pty.  The decision policy is forced (every label fires easily, 200 ms
    refractory) so that commands flow whatever the model.  ``latency_ms`` is the runtime's
    sample received → command acknowledged by the arm; then the player stops and
    ``safe_state_ms`` is the time from the stream's end to the arm acknowledging REST.
(c) ``footprint``: ``python -m edge.cli run --bundle B --source replay:FILE?speed=max --arm none``
    as a subprocess per bundle.  ``peak_rss_mb`` is the child's VmHWM polled from /proc by the
    bench; ``summary_peak_rss_mb`` is the runtime's own report (also VmHWM); its summary gives
    ``startup_s`` (serve() entered → first decision) and ``realtime_factor`` (EEG samples
    processed / fs over wall time).  ``process_startup_s`` is an upper bound of
    process launch → first decision: (launch → runtime created, from the run's JSON log) +
    ``startup_s`` (so the bundle load is counted twice).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from benchmarks.common import (
    REPO,
    continuous_grasp_lift,
    fmt,
    forced_decider,
    grasp_lift_file,
    proc_status_kb,
    recording_for,
    stats_ms,
)

OTHER_ENV_TIMEOUT_S = 900
GOALS = {"realtime_factor": 200.0, "chunk_p99_ms": 2.0, "latency_p99_ms": 10.0, "decision_interval_ms": 50.0,
         "peak_rss_mb": 120.0, "startup_s": 2.0, "safe_state_ms": 250.0}
CHUNKS = (10, 25)


# --------------------------------------------------------------------------- (a) replay


def replay(bundle, rec, chunk: int, repeats: int, label: str) -> dict:
    from edge import native
    from edge.runtime import Pipeline
    from edge.sources import ReplaySource

    per_chunk, with_window, factors, walls = [], [], [], []
    stages = {"filter": [], "infer": [], "decide": []}
    windows = 0
    stream_s = rec.n_samples / rec.fs
    for _ in range(repeats):
        src = ReplaySource(rec, speed=0, chunk=chunk)
        pipe = Pipeline(bundle, src.channels, src.fs, drop_stale=False)
        times = np.empty(src.n_chunks)
        made = np.zeros(src.n_chunks, bool)
        results = []
        i = 0
        t_start = time.perf_counter()
        while (c := src.read()) is not None:
            t0 = time.perf_counter()
            res = pipe.process(c)
            times[i] = time.perf_counter() - t0
            if res:
                made[i] = True
                results += res
            i += 1
        wall = time.perf_counter() - t_start
        walls.append(wall)
        factors.append(stream_s / wall)
        per_chunk.append(times[:i] * 1e3)
        with_window.append(times[:i][made[:i]] * 1e3)
        for r in results:
            for k, values in stages.items():
                values.append(r.stages_ms[k])
        windows = pipe.windows
    return {"label": label, "chunk": chunk, "interpreter": f"{pipe.model.backend} {pipe.model.backend_version}",
            "python": platform.python_version(), "numpy": np.__version__, "c_kernel": native.available(),
            "samples": int(rec.n_samples), "segments": len(rec.segments),
            "stream_s": stream_s, "windows": int(windows), "repeats": repeats,
            "wall_s": float(np.median(walls)), "realtime_factor": float(np.median(factors)),
            "realtime_factor_runs": [float(f) for f in factors],
            "chunk_ms": stats_ms(np.concatenate(per_chunk), cdf=True),
            "chunk_with_window_ms": stats_ms(np.concatenate(with_window)),
            "stages_ms": {k: stats_ms(v, cdf=True) for k, v in stages.items()}}


def continuous_replays(bundle, cont, quick: bool) -> list[dict]:
    """The judged replays: the continuous series ``cont`` at every chunking, in this environment."""
    return [replay(bundle, cont, c, 1 if quick else 5, "synthetic continuous") for c in CHUNKS]


def replay_elsewhere(python, bundle_path, quick: bool, tmp) -> list[dict] | dict:
    """:func:`continuous_replays` run by another environment's ``python``; its runs, or ``{"skipped": why}``."""
    if python is None:
        return {"skipped": "no training environment (.venv-train); run 'make env-train'"}
    out = Path(tmp) / f"replay-{uuid.uuid4().hex[:8]}.json"
    cmd = [str(python), "-m", "benchmarks.e2e", "--replay", str(bundle_path), "--json", str(out)] + \
        (["--quick"] if quick else [])
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    try:
        r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=OTHER_ENV_TIMEOUT_S,
                           check=False)
    except subprocess.TimeoutExpired:
        return {"skipped": f"the replay in {python} timed out after {OTHER_ENV_TIMEOUT_S} s"}
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"the replay in {python} failed (exit {r.returncode}): {last}"}
    return json.loads(out.read_text())["replay"]


def main(argv=None) -> int:
    """``python -m benchmarks.e2e --replay BUNDLE --json OUT [--quick]``: the continuous replays here."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.e2e", description=main.__doc__)
    ap.add_argument("--replay", required=True, metavar="BUNDLE")
    ap.add_argument("--json", required=True, metavar="OUT")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    from edge.bundle import load_bundle

    runs = continuous_replays(load_bundle(args.replay), continuous_grasp_lift(args.quick), args.quick)
    Path(args.json).write_text(json.dumps({"replay": runs}))
    return 0


# --------------------------------------------------------------------------- (b) LSL → simulated arm


def lsl_run(bundle_path, rec, seconds: float) -> dict:
    from edge.bundle import load_bundle
    from edge.runtime import RuntimeConfig, serve
    from edge.sources.player import Player
    from firmware_bridge.protocol import Action
    from firmware_bridge.sim import start

    bundle = load_bundle(bundle_path)
    decider = forced_decider(bundle, rec)
    sim = start()  # the simavr Uno if it runs here, else the host build (serve(arm="sim") does the same)
    name = f"neurogrip-bench-{uuid.uuid4().hex[:8]}"
    player = Player(rec, name=name, speed=1.0, loop=True, wait_consumers=10.0).start()
    state: dict = {"rests": []}
    done = threading.Event()

    t_ends: list = []

    def on_ready(rt):
        rt.pipeline.decider = decider
        state["rt"] = rt
        process = rt.pipeline.process

        def recorded(chunk):  # every window's stream time, for the decision cadence
            res = process(chunk)
            if res and not t_ends:  # stale windows of the backlog queued while the arm link opened
                state["dropped_at_connect"] = rt.pipeline.dropped_windows
            t_ends.extend(r.t_end for r in res)
            return res

        rt.pipeline.process = recorded
        real = rt.arm.command

        def command(action, target, speed, deadline=None):
            r = real(action, target, speed, deadline=deadline)
            if Action(action) == Action.REST:
                state["rests"].append(time.monotonic())
            return r

        rt.arm.command = command

        def script():
            t_ready = time.monotonic()
            while time.monotonic() - t_ready < seconds and not done.is_set():
                time.sleep(0.05)
            state["windows_before_stop"] = rt.pipeline.windows
            state["t_stop"] = time.monotonic()
            player.stop()  # the EEG stream drops: the runtime must rest the arm within 250 ms
            t_give_up = time.monotonic() + 2.0
            while time.monotonic() < t_give_up and not any(t >= state["t_stop"] for t in state["rests"]):
                time.sleep(0.005)
            rt.stop()

        threading.Thread(target=script, daemon=True).start()

    try:
        s = serve(bundle_path, f"lsl:name={name}&timeout=10", sim.pty, config=RuntimeConfig(),
                  install_signals=False, on_ready=on_ready, duration=seconds + 10)
    finally:
        done.set()
        player.stop()
        sim.stop()
    rt = state.get("rt")
    after = [t for t in state["rests"] if "t_stop" in state and t >= state["t_stop"]]
    raw = getattr(getattr(rt, "_timings", None), "values", None)
    latency = stats_ms(raw("latency"), cdf=True) if raw else dict(s.latency_ms)
    processing = stats_ms(raw("processing"), cdf=True) if raw else dict(s.processing_ms)
    return {
        "recording": "synthetic continuous (looped), published in real time", "seconds": seconds,
        "simulator": sim.kind, "simulator_fallback_reason": getattr(sim, "fallback_reason", None),
        "policy": ("forced: each label's threshold at its median output on the stream, no dwell, "
                   "200 ms refractory"), "thresholds": [float(t) for t in decider.policy.thresholds], "budget_ms": RuntimeConfig().budget_ms,
        "interpreter": s.interpreter, "windows": s.windows, "stream_s": s.stream_seconds,
        "decision_interval_ms": stats_ms(np.diff(t_ends) * 1e3),
        "window_stride_ms": bundle.window.get("stride_ms"),
        "decisions_fired": s.decisions_fired, "commands_sent": s.commands_sent, "commands_failed": s.commands_failed,
        "deadline_misses": s.deadline_misses, "dropped_windows": s.dropped_windows,
        "dropped_windows_at_connect": state.get("dropped_at_connect"),
        "lsl_samples_dropped": rt.source.counters.dropped if rt is not None else None,
        "faults": s.faults, "latency_ms": latency, "processing_ms": processing,
        "stages_ms": s.stages_ms,
        "safe_state_ms": (after[0] - state["t_stop"]) * 1e3 if after else None,
    }


# --------------------------------------------------------------------------- (c) footprint


def _poll_vmhwm(proc, every_s: float = 0.005) -> float | None:
    """Peak resident set (VmHWM, MB) of a running child, polled until it exits."""
    hwm = None
    while proc.poll() is None:
        kb = proc_status_kb(proc.pid, "VmHWM")
        if kb is None:
            break
        hwm = max(hwm or 0.0, kb / 1024)
        time.sleep(every_s)
    return hwm


def footprint(ref, path, origin: str, tmp) -> dict:
    summary, log = tmp / f"summary-{ref.name}.json", tmp / f"run-{ref.name}.jsonl"
    for f in (summary, log):
        f.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "edge.cli", "run", "--bundle", str(ref.path), "--source",
           f"replay:{path}?speed=max", "--arm", "none", "--summary", str(summary), "--log", str(log)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t_launch = time.time()
    t0 = time.perf_counter()
    err = tmp / f"run-{ref.name}.stderr"
    # Read from outside as well (/proc/<pid>/status VmHWM), so the figure does not depend on the
    # runtime reporting itself correctly.
    with open(err, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=fh)
        hwm = _poll_vmhwm(proc)
        proc.wait(timeout=600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"'neurogrip run' failed (exit {proc.returncode}): {err.read_text().strip()[-500:]}")
    s = json.loads(summary.read_text())
    start = next((json.loads(line) for line in log.read_text().splitlines() if '"start"' in line), None)
    to_runtime = (start["t"] - t_launch) if start else None
    return {"recording": f"{origin}: {path.name}", "command": " ".join(cmd[1:5]) + " ... --arm none",
            "peak_rss_mb": hwm, "summary_peak_rss_mb": s["peak_rss_mb"], "startup_s": s["startup_seconds"],
            "launch_to_runtime_s": to_runtime,
            "process_startup_s": (to_runtime + s["startup_seconds"]) if to_runtime is not None
            and s["startup_seconds"] is not None else None,
            "realtime_factor": s["realtime_factor"], "windows": s["windows"], "stream_s": s["stream_seconds"],
            "process_wall_s": wall, "interpreter": s["interpreter"]}


# --------------------------------------------------------------------------- section


def run(quick: bool = False, ctx=None) -> dict:
    from edge.bundle import load_bundle

    out = {"goals": GOALS}
    ref = ctx.bundle("grasp-lift")
    if ref is None:
        out["replay"] = out["lsl"] = {"skipped": "no grasp-lift bundle"}
    else:
        bundle = load_bundle(ref.path)
        out["bundle"] = str(ref.path)
        cont = continuous_grasp_lift(quick)
        repeats = 1 if quick else 3
        runs = continuous_replays(bundle, cont, quick)
        if not quick:  # the other interpreter, in the training environment (a TensorFlow start-up: not in --quick)
            other = replay_elsewhere(ctx.train_python, ref.path, quick, ctx.tmp)
            if isinstance(other, list):
                runs += other
            else:
                out["replay_other_interpreter"] = other
        real, origin = grasp_lift_file(ctx)
        if origin == "real":
            from edge.recordings import read_recording

            rec = read_recording(real)
            runs += [replay(bundle, rec, c, repeats, f"real {real.name.replace('_data.csv.gz', '')} (gapped)")
                     for c in CHUNKS]
        out["replay"] = runs
        out["lsl"] = lsl_run(ref.path, cont, 5.0 if quick else 20.0)
    out["footprint"] = {}
    for b in ctx.bundles:
        try:
            path, origin = recording_for(ctx, b.task)
        except FileNotFoundError as exc:
            out["footprint"][b.name] = {"skipped": str(exc)}
            continue
        out["footprint"][b.name] = footprint(b, path, origin, ctx.tmp)
    return out


def _judged(r: dict) -> list[dict]:
    return [x for x in r.get("replay", []) if isinstance(x, dict) and x.get("label") == "synthetic continuous"] \
        if isinstance(r.get("replay"), list) else []


def _interpreter(x: dict) -> str:
    return f"{x.get('interpreter', '?')}, Python {x.get('python', '?')}"


def targets(r: dict) -> list[dict]:
    g, t = r["goals"], []
    runs = _judged(r)
    if runs:
        worst = max(runs, key=lambda x: x["chunk_ms"]["p99"])
        for interp in dict.fromkeys(_interpreter(x) for x in runs):  # one row per interpreter, in run order
            slow = min((x for x in runs if _interpreter(x) == interp), key=lambda x: x["realtime_factor"])
            t.append({"area": "edge loop", "target": "replay through the whole chain ≥ 200× real time",
                      "measured": slow["realtime_factor"], "unit": "×", "goal": g["realtime_factor"], "op": ">=",
                      "note": f"{interp}: slowest chunking ({slow['chunk']} samples), continuous series"})
        t.append({"area": "edge loop", "target": "per-chunk processing p99 ≤ 2 ms",
                  "measured": worst["chunk_ms"]["p99"], "unit": "ms", "goal": g["chunk_p99_ms"], "op": "<=",
                  "note": f"worst chunking ({worst['chunk']} samples)"})
    lsl = r.get("lsl", {})
    if "latency_ms" in lsl:
        t.append({"area": "controller delay", "target": "sample in → command p99 ≤ 10 ms",
                  "measured": lsl["latency_ms"].get("p99"), "unit": "ms", "goal": g["latency_p99_ms"], "op": "<=",
                  "note": f"LSL loopback → {lsl['simulator']} arm, command acknowledged"})
        t.append({"area": "controller delay", "target": "decision every ≤ 50 ms",
                  "measured": lsl["decision_interval_ms"].get("p50"), "unit": "ms", "goal": g["decision_interval_ms"],
                  "op": "<=", "note": f"median interval between decisions, live (p99 "
                                      f"{fmt(lsl['decision_interval_ms'].get('p99'), '.0f')} ms, "
                                      f"{lsl['dropped_windows']} stale windows dropped)"})
        t.append({"area": "safety", "target": "arm in safe state ≤ 250 ms after the EEG stream drops",
                  "measured": lsl["safe_state_ms"], "unit": "ms", "goal": g["safe_state_ms"], "op": "<=",
                  "note": "stream stopped → REST acknowledged"})
    fp = {k: v for k, v in r.get("footprint", {}).items() if "skipped" not in v}
    if fp:
        rss = max(v["peak_rss_mb"] or v["summary_peak_rss_mb"] for v in fp.values())
        t.append({"area": "footprint", "target": "edge process peak RSS ≤ 120 MB", "measured": rss,
                  "unit": "MB", "goal": g["peak_rss_mb"], "op": "<=",
                  "note": "largest over bundles, VmHWM of `neurogrip run` replaying a recording"})
        key = "process_startup_s" if all(v["process_startup_s"] is not None for v in fp.values()) else "startup_s"
        st = max(fp.values(), key=lambda x: x[key] or 0)
        t.append({"area": "footprint", "target": "start-up to first decision ≤ 2 s", "measured": st[key],
                  "unit": "s", "goal": g["startup_s"], "op": "<=",
                  "note": "process launch → first decision (upper bound)" if key == "process_startup_s"
                  else "serve() → first decision"})
    return t


def markdown(r: dict) -> str:
    lines = []
    if isinstance(r.get("replay"), list):
        lines += ["**Replay through the whole chain** (ReplaySource speed=max → Pipeline; ms)", "",
                  ("| recording | interpreter | chunk | × real time | chunk p50 | chunk p99 | chunk+window p99 | "
                   "filter p50/p99 | infer p50/p99 | decide p50/p99 |"), "|---|---|---|---|---|---|---|---|---|---|"]
        for x in r["replay"]:
            st = x["stages_ms"]
            kernel = "" if x.get("c_kernel", True) else ", numpy kernel (C kernel not built)"
            lines.append(f"| {x['label']} ({x['stream_s']:.0f} s, {x['windows']} windows) | "
                         f"{_interpreter(x)}{kernel} | {x['chunk']} | "
                         f"{x['realtime_factor']:.0f}× | {x['chunk_ms']['p50']:.3f} | {x['chunk_ms']['p99']:.3f} | "
                         f"{fmt(x['chunk_with_window_ms'].get('p99'), '.3f')} | "
                         + " | ".join(f"{fmt(st[k].get('p50'), '.3f')} / {fmt(st[k].get('p99'), '.3f')}"
                                      for k in ("filter", "infer", "decide")) + " |")
        lines += ["", (f"Goals: ≥ {r['goals']['realtime_factor']:.0f}× real time, chunk p99 ≤ "
                  f"{r['goals']['chunk_p99_ms']:g} ms (judged on the continuous series: the real held-out data are "
                  "event windows with gaps, so they yield fewer windows per second of EEG).  Each interpreter is "
                  "judged on its own; ai_edge_litert runs in the training environment (Python 3.12, numpy 2), "
                  "which is what `pip install neurogrip[edge]` installs on Python ≥ 3.12.")]
        if "replay_other_interpreter" in r:
            lines += ["", f"Other interpreter: skipped ({r['replay_other_interpreter']['skipped']})."]
        lines += [""]
    lsl = r.get("lsl", {})
    if "latency_ms" in lsl:
        la, di = lsl["latency_ms"], lsl["decision_interval_ms"]
        lines += ["**Live: LSL loopback → runtime → simulated arm**", "", "| measure | value |", "|---|---|",
                  f"| simulator | {lsl['simulator']}"
                  + (f" (simavr unavailable: {lsl['simulator_fallback_reason']})" if lsl['simulator_fallback_reason']
                     else "") + " |",
                  (f"| stream | {lsl['stream_s']:.1f} s, {lsl['windows']} windows; interval between decisions p50 "
                  f"{fmt(di.get('p50'), '.1f')} ms, p99 {fmt(di.get('p99'), '.1f')} ms, max {fmt(di.get('max'), '.0f')} ms"
                  f" (window stride {fmt(lsl['window_stride_ms'], 'g')} ms) |"),
                  (f"| commands | {lsl['commands_sent']} acknowledged of {lsl['decisions_fired']} fired, "
                  f"{lsl['commands_failed']} failed ({lsl['policy']}) |"),
                  (f"| sample received → command acknowledged | p50 {fmt(la.get('p50'))} ms, p99 {fmt(la.get('p99'))} ms, "
                  f"max {fmt(la.get('max'))} ms (n = {la.get('n', 0)}) |"),
                  (f"| deadline misses ({lsl['budget_ms']:g} ms budget) / stale windows dropped (of which in the "
                  f"backlog at connect) / LSL samples lost | {lsl['deadline_misses']} / {lsl['dropped_windows']} "
                  f"({lsl['dropped_windows_at_connect']}) / {lsl['lsl_samples_dropped']} |"),
                  f"| stream stopped → REST acknowledged | {fmt(lsl['safe_state_ms'], '.0f')} ms (goal ≤ 250 ms) |",
                  ""]
    fp = {k: v for k, v in r.get("footprint", {}).items() if "skipped" not in v}
    if fp:
        lines += ["**Footprint** (`neurogrip run --source replay:FILE?speed=max --arm none`, one process per bundle)",
                  "", ("| bundle | recording | peak RSS MB (VmHWM) | runtime's own peak RSS MB | serve() → first "
                  "decision s | launch → first decision s (upper bound) | × real time (runtime's figure) |"),
                  "|---|---|---|---|---|---|---|"]
        for name, v in fp.items():
            lines.append(f"| {name} | {v['recording']} | {fmt(v['peak_rss_mb'], '.0f')} | "
                         f"{fmt(v['summary_peak_rss_mb'], '.0f')} | {fmt(v['startup_s'], '.2f')} | "
                         f"{fmt(v['process_startup_s'], '.2f')} | {v['realtime_factor']:.0f}× |")
        lines += ["", ("Peak RSS: the child's VmHWM polled by the bench, and the runtime's own VmHWM report. "
                  "The runtime's × real time is EEG processed (samples / fs) over wall time; start-up "
                  "includes loading the bundle and the interpreter.")]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
