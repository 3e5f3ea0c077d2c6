"""The live view's cost to the loop (docs/design.md §3 "live view": with a client connected, replay
throughput and sample → command p99 within 5 % of without).

The client is what a phone on the Wi-Fi is to the Pi: another process that holds ``GET /events`` open
and takes every byte (it counts the updates; it does not parse them, as a remote browser's work is not
the Pi's).  Every run of a pair is made in this process, alternated, so drift on the shared machine
falls on both sides.

(a) ``replay``: the continuous synthetic series through :class:`edge.runtime.Runtime` from a
    :class:`edge.sources.ReplaySource` as fast as it goes (no arm), three ways: no view, the view with
    no client, the view with one client; ``realtime_factor`` is EEG processed over wall time.
(b) ``lsl``: the series published in real time over LSL on loopback, :func:`edge.runtime.serve` reading
    it and commanding the simulated arm (the e2e section's rig: commands flow under the forced policy);
    ``latency_ms`` is the runtime's sample received → command acknowledged, without the view and with
    the view and one client.

Each repeat runs every configuration once, in alternating order; the ratio is taken within each repeat
(drift of the shared machine falls on both of its sides) and the figure is the median of those ratios.
Their spread (interquartile range, and min–max) is reported with it, and the output says when the
spread exceeds the effect measured (the difference is then not resolved by the runs) or the 5 % goal
(the goal cannot be judged from them).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import numpy as np

from benchmarks.common import continuous_grasp_lift, fmt, forced_decider, stats_ms
from edge.stats import percentiles

GOAL = 0.05  # with a client connected, within 5 % of without
CONFIGS = ("no view", "view, no client", "view + 1 client")
REPEATS = {"replay": (2, 11), "lsl": (1, 6)}  # alternated repeats (quick: the plumbing, in make test; full)
LSL_SECONDS = (3.0, 20.0)  # each live run (quick: the plumbing, in make test; full: the figure)


def spread(ratios, effect_sign: float = 1.0) -> dict:
    """The median of per-repeat ratios and their spread; ``resolved``: the interquartile range is narrower
    than the effect (|1 - median|), ``goal_resolvable``: narrower than the goal."""
    a = np.asarray([r for r in ratios if r is not None and np.isfinite(r)], float)
    out = percentiles(a, (25, 50, 75))  # the one key convention (edge/stats.py)
    if not out["n"]:
        return out
    iqr, effect = out["p75"] - out["p25"], out["p50"] - 1.0
    spread_known = out["n"] >= 3  # (an IQR of one or two runs says nothing about the spread)
    return {**out, "iqr": iqr, "min": float(a.min()), "ratios": [float(v) for v in a], "effect": effect,
            "resolved": spread_known and bool(iqr < abs(effect)),
            "goal_resolvable": spread_known and bool(iqr < GOAL)}


def spread_note(name: str, s: dict) -> str:
    """One sentence on whether the runs resolve the effect and the goal."""
    if not s.get("n"):
        return f"{name}: no runs."
    text = (f"{name}: median of {s['n']} per-repeat ratios {s['p50']:.3f} (IQR {s['p25']:.3f}–{s['p75']:.3f}, "
            f"range {s['min']:.3f}–{s['max']:.3f}).")
    if s["n"] < 3:
        return text + " **Too few runs to know their spread: nothing is resolved by them.**"
    if not s["resolved"]:
        text += (f" **The runs' spread (IQR {100 * s['iqr']:.1f} %) exceeds the effect ({100 * s['effect']:+.1f} %): "
                 "the difference is not resolved by these runs.**")
    if not s["goal_resolvable"]:
        text += (f" **The spread also exceeds the {100 * GOAL:.0f} % goal: these runs cannot tell whether it is "
                 "met (more repeats, or a quieter machine).**")
    return text

# The client: holds the event stream open, counts updates and bytes, prints them when terminated.
CLIENT = r"""
import signal, socket, sys, time
host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
n = nbytes = 0
t0 = time.monotonic()
def stop(*_):
    print(n, nbytes, time.monotonic() - t0, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
s = socket.create_connection((host, port))
s.sendall(f"GET /events?token={token} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
print("connected", flush=True)
tail = b""
while True:
    d = s.recv(1 << 16)
    if not d:
        stop()
    nbytes += len(d)
    n += (tail + d).count(b"data: ")
    tail = d[-5:]
"""


class Client:
    """The view's client in its own process (see :data:`CLIENT`)."""

    def __init__(self, url: str):
        u = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(u.query)["token"][0]
        self.proc = subprocess.Popen([sys.executable, "-c", CLIENT, u.hostname, str(u.port), token],
                                     stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "connected":
            raise RuntimeError("the view's client did not connect")

    def stop(self) -> tuple[int, int, float]:
        """(updates, bytes, seconds connected)."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        n, nbytes, seconds = out.split()
        return int(n), int(nbytes), float(seconds)


def _wait_for(cond, timeout: float = 10.0) -> None:
    t = time.monotonic() + timeout
    while not cond() and time.monotonic() < t:
        time.sleep(0.01)


# --------------------------------------------------------------------------- (a) replay


def replay_once(bundle, rec, config: str) -> dict:
    from edge.runtime import Runtime, RuntimeConfig
    from edge.sources import ReplaySource
    from edge.view import attach

    rt = Runtime(bundle, ReplaySource(rec, speed=0), None, RuntimeConfig())
    server = client = None
    if config != "no view":
        server = attach(rt, "127.0.0.1:0", say=lambda *a, **k: None)
        if config == "view + 1 client":
            client = Client(server.url)
            _wait_for(lambda: server.hub.clients == 1)
            time.sleep(0.3)  # the first updates are taken
    try:
        s = rt.run()
        n = nbytes = connected = None
        if client is not None:
            n, nbytes, connected = client.stop()
    finally:
        if server is not None:
            server.close()
    return {"config": config, "realtime_factor": s.realtime_factor, "wall_s": s.wall_seconds,
            "windows": s.windows, "updates_received": n, "bytes_received": nbytes,
            "updates_per_s": None if n is None else n / connected}


def replay(bundle, rec, repeats: int) -> dict:
    runs = {c: [] for c in CONFIGS}
    for r in range(repeats):
        order = CONFIGS if r % 2 == 0 else CONFIGS[::-1]  # alternate, so drift falls on every side
        for config in order:
            runs[config].append(replay_once(bundle, rec, config))
    out = {"stream_s": rec.n_samples / rec.fs, "repeats": repeats, "runs": runs,
           "realtime_factor": {c: float(np.median([x["realtime_factor"] for x in runs[c]])) for c in CONFIGS},
           "realtime_factor_range": {c: [float(min(x["realtime_factor"] for x in runs[c])),
                                         float(max(x["realtime_factor"] for x in runs[c]))] for c in CONFIGS}}
    base = [x["realtime_factor"] for x in runs["no view"]]
    out["spread_client"] = spread([x["realtime_factor"] / b for x, b in zip(runs["view + 1 client"], base)])
    out["spread_view"] = spread([x["realtime_factor"] / b for x, b in zip(runs["view, no client"], base)])
    out["ratio_client"] = out["spread_client"].get("p50")
    out["ratio_view"] = out["spread_view"].get("p50")
    client = runs["view + 1 client"]
    out["updates_per_s"] = float(np.median([x["updates_per_s"] for x in client]))
    out["kb_per_update"] = float(np.median([x["bytes_received"] / max(1, x["updates_received"]) for x in client])) / 1e3
    return out


# --------------------------------------------------------------------------- (b) LSL → runtime → simulated arm


def lsl_once(bundle_path, rec, decider, seconds: float, with_view: bool) -> dict:
    from edge.runtime import RuntimeConfig, serve
    from edge.sources.player import Player
    from firmware_bridge.sim import start

    sim = start()
    name = f"neurogrip-bench-view-{uuid.uuid4().hex[:8]}"
    player = Player(rec, name=name, speed=1.0, loop=True, wait_consumers=10.0).start()
    state: dict = {}

    def on_ready(rt):
        rt.pipeline.decider = decider
        state["rt"] = rt
        if with_view:
            state["client"] = Client(rt.view.url)

        def stop_later():
            time.sleep(seconds)
            rt.stop()

        threading.Thread(target=stop_later, daemon=True).start()

    try:
        s = serve(bundle_path, f"lsl:name={name}&timeout=10", sim.pty, config=RuntimeConfig(), install_signals=False,
                  on_ready=on_ready, duration=seconds + 10, view="127.0.0.1:0" if with_view else None)
    finally:
        player.stop()
        sim.stop()
        n = state["client"].stop()[0] if "client" in state else None
    rt = state["rt"]
    return {"view": with_view, "simulator": sim.kind, "latency_ms": stats_ms(rt._timings.values("latency")),
            "latency_values_ms": [float(v) for v in rt._timings.values("latency")],
            "processing_ms": stats_ms(rt._timings.values("processing")), "commands_sent": s.commands_sent,
            "commands_failed": s.commands_failed, "deadline_misses": s.deadline_misses, "windows": s.windows,
            "updates_received": n}


def lsl(bundle_path, rec, seconds: float, repeats: int) -> dict:
    from edge.bundle import load_bundle

    decider = forced_decider(load_bundle(bundle_path), rec)
    runs = {"without": [], "with": []}
    for r in range(repeats):
        for with_view in ((False, True) if r % 2 == 0 else (True, False)):
            x = lsl_once(bundle_path, rec, decider, seconds, with_view)
            runs["with" if with_view else "without"].append(x)
    # every command of the alternated runs pooled per side: a p99 of a few hundred values is its few largest
    pooled = {k: np.concatenate([x.pop("latency_values_ms") for x in v]) for k, v in runs.items()}
    lat = {k: stats_ms(a) for k, a in pooled.items()}
    per_run = {k: [x["latency_ms"].get("p99") for x in v] for k, v in runs.items()}
    pairs = spread([w / wo if w and wo else None for w, wo in zip(per_run["with"], per_run["without"])])
    return {"seconds": seconds, "repeats": repeats, "runs": runs, "latency_ms": lat,
            "commands": {k: a["n"] for k, a in lat.items()}, "p99_per_run_ms": per_run,
            "ratio_p99_pooled": (lat["with"]["p99"] / lat["without"]["p99"]
                                 if lat["with"].get("n") and lat["without"].get("n") else None), "spread_p99": pairs, "ratio_p99": pairs.get("p50"),
            "simulator": runs["with"][0]["simulator"]}


# --------------------------------------------------------------------------- section


def run(quick: bool = False, ctx=None) -> dict:
    from edge.bundle import load_bundle

    ref = ctx.bundle("grasp-lift")
    if ref is None:
        return {"goal": GOAL, "skipped": "no grasp-lift bundle"}
    rec = continuous_grasp_lift(quick)
    out = {"goal": GOAL, "bundle": str(ref.path)}
    out["replay"] = replay(load_bundle(ref.path), rec, REPEATS["replay"][not quick])
    out["lsl"] = lsl(ref.path, rec, LSL_SECONDS[not quick], REPEATS["lsl"][not quick])
    return out


def targets(r: dict) -> list[dict]:
    t = []
    if "replay" in r:
        t.append({"area": "live view", "target": "replay throughput with a client connected within 5 % of without",
                  "measured": r["replay"]["ratio_client"], "unit": "× (with / without)", "goal": 1 - r["goal"],
                  "op": ">=", "note": f"median of the ratios of {r['replay']['repeats']} alternated repeats"
                                      + ("" if r["replay"]["spread_client"].get("goal_resolvable")
                                         else "; their spread exceeds the goal: not resolved")})
    if "lsl" in r:
        t.append({"area": "live view", "target": "sample → command p99 with a client connected within 5 % of without",
                  "measured": r["lsl"]["ratio_p99"], "unit": "× (with / without)", "goal": 1 + r["goal"], "op": "<=",
                  "note": f"LSL → {r['lsl']['simulator']} arm, median of the per-repeat ratios of p99 over "
                          f"{r['lsl']['repeats']} alternated pairs of {r['lsl']['seconds']:g} s runs"
                          + ("" if r["lsl"]["spread_p99"].get("goal_resolvable")
                             else "; their spread exceeds the goal: not resolved")})
    return t


def markdown(r: dict) -> str:
    if "skipped" in r:
        return f"skipped: {r['skipped']}"
    rp, ls = r["replay"], r["lsl"]
    rf, rng = rp["realtime_factor"], rp["realtime_factor_range"]

    def cell(c: str) -> str:
        return f"{rf[c]:.0f}× ({rng[c][0]:.0f}–{rng[c][1]:.0f})"

    sc = rp["spread_client"]
    lines = [(f"**Replay through the runtime** (ReplaySource speed=max, no arm; median × real time of "
              f"{rp['repeats']} alternated repeats, their range in brackets)"), "",
             "| no view | view, no client | view + 1 client | with client / without (IQR) | updates/s received | KB per update |",
             "|---|---|---|---|---|---|",
             (f"| {cell('no view')} | {cell('view, no client')} | {cell('view + 1 client')} | "
              f"{rp['ratio_client']:.3f} ({sc['p25']:.3f}–{sc['p75']:.3f}) | {rp['updates_per_s']:.1f} | "
              f"{rp['kb_per_update']:.1f} |"), "",
             "**Live: LSL → runtime → simulated arm**, sample received → command acknowledged (ms)", "",
             "| | p50 | p99 (pooled; per run) | commands | updates received |", "|---|---|---|---|---|"]
    for k in ("without", "with"):
        runs = ls["runs"][k]
        ups = [x["updates_received"] for x in runs if x["updates_received"] is not None]
        per_run = ", ".join(fmt(v, ".1f") for v in ls["p99_per_run_ms"][k])
        lines.append(f"| {k} the view + client | {fmt(ls['latency_ms'][k].get('p50'), '.2f')} | {fmt(ls['latency_ms'][k].get('p99'), '.2f')} "
                     f"(runs: {per_run}) | {ls['commands'][k]} | {sum(ups) if ups else '–'} |")
    lines += ["", (f"p99 with / without: {fmt(ls['ratio_p99'], '.3f')} (goal ≤ {1 + r['goal']:.2f}; pooled over the "
                   f"runs: {fmt(ls['ratio_p99_pooled'], '.3f')}); throughput with a client / without: {rp['ratio_client']:.3f} "
                   f"(goal ≥ {1 - r['goal']:.2f}).  The client is another process holding /events open and counting "
                   "what arrives."), "",
              "- " + spread_note("Replay throughput, with a client / without", sc),
              "- " + spread_note("Replay throughput, the view without a client / without", rp["spread_view"]),
              "- " + spread_note("Sample → command p99, with / without", ls["spread_p99"])]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m benchmarks.view [--quick]: this section alone, as Markdown
    from benchmarks.common import Context

    ctx = Context.create(quick="--quick" in sys.argv)
    print(markdown(run("--quick" in sys.argv, ctx)))
