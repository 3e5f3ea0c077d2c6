"""PNG plots of a benchmark report (matplotlib, Agg backend), drawn from the report's JSON alone.

* ``latency_cdf.png``    per-stage latency CDFs of the replay (filter, infer, decide, whole chunk) and
                         the live sample → command latency over LSL to the simulated arm;
* ``throughput.png``     filter throughput against scipy's sosfilt, and replay × real time against
                         the 200× goal;
* ``inference.png``      int8 latency per runtime and float peer, per bundle;
* ``roc_<bundle>.png``   ROC curve per event of a grasp-lift bundle (int8, edge path), with the
                         operating point of the bundle's thresholds;
* ``timeline_<bundle>.png`` a replay as a user would see it: the true events, the probabilities, the
                         commands (sent, and held by the arm's state) and the arm's state;
* ``tradeoff_<bundle>.png`` commands for the wrong phase against trials fully commanded, over the
                         decision threshold level, with the operating point chosen on the tune block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Lay out, write and close a figure; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def _cdf(ax, stats: dict, label: str, **kw) -> None:
    c = stats.get("cdf") if isinstance(stats, dict) else None
    if not c:
        return
    ms = [max(v, 1e-4) for v in c["ms"]]
    ax.plot(ms, [lv / 100 for lv in c["levels"]], label=f"{label} (p99 {stats['p99']:.3g} ms)", **kw)


def latency_cdf(report: dict, out: Path) -> Path | None:
    e2e = report["sections"].get("e2e", {})
    replay = e2e.get("replay") if isinstance(e2e.get("replay"), list) else []
    run = next((x for x in replay if x["label"] == "synthetic continuous" and x["chunk"] == 10), None)
    lsl = e2e.get("lsl", {})
    if run is None and "latency_ms" not in lsl:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    if run is not None:
        for k, style in (("filter", "-"), ("infer", "-"), ("decide", "-")):
            _cdf(ax, run["stages_ms"][k], k, ls=style)
        _cdf(ax, run["chunk_ms"], "whole chunk (Pipeline.process)", color="k", lw=2)
        ax.axvline(e2e["goals"]["chunk_p99_ms"], color="r", ls="--", lw=1, label="goal: chunk p99 ≤ 2 ms")
    ax.set(xscale="log", xlabel="ms (log)", ylabel="fraction ≤ x",
           title="Replay, 10-sample chunks: per-stage latency CDF"
           + (f" ({run.get('interpreter', '?').split()[0]})" if run is not None else ""))
    ax.axhline(0.99, color="grey", lw=0.5)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[1]
    if "latency_ms" in lsl:
        _cdf(ax, lsl["latency_ms"], "sample received → command acked", color="C3", lw=2)
        _cdf(ax, lsl["processing_ms"], "chunk received → done (every window, incl. send)", color="C0")
        ax.axvline(e2e["goals"]["latency_p99_ms"], color="r", ls="--", lw=1, label="goal: p99 ≤ 10 ms")
        ax.set_title(f"Live over LSL → {lsl['simulator']} arm ({lsl['commands_sent']} commands)")
    ax.set(xscale="log", xlabel="ms (log)", ylabel="fraction ≤ x")
    ax.axhline(0.99, color="grey", lw=0.5)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, out / "latency_cdf.png")


def throughput(report: dict, out: Path) -> Path | None:
    f = report["sections"].get("filter", {})
    e2e = report["sections"].get("e2e", {})
    replay = e2e.get("replay") if isinstance(e2e.get("replay"), list) else []
    if "scipy_stream_samples_per_s" not in f and not replay:
        return None
    plt = _plt()
    n = int("scipy_stream_samples_per_s" in f) + int(bool(replay))
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 4.5), squeeze=False)
    axes = list(axes[0])
    if "scipy_stream_samples_per_s" in f:
        ax = axes.pop(0)
        names, vals = ["scipy sosfilt\n(float64, zi)"], [f["scipy_stream_samples_per_s"]]
        for b in ("c", "numpy"):
            if f"{b}_stream_samples_per_s" in f:
                names.append(f"neurogrip\nfixed point ({b})")
                vals.append(f[f"{b}_stream_samples_per_s"])
        bars = ax.bar(names, vals, color=["grey", "C0", "C1"][:len(vals)])
        for bar, v in zip(bars, vals):
            ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v / vals[0]:.2f}×", ha="center", va="bottom")
        ax.set(yscale="log", ylabel="samples/s (32 ch, log)",
               title=f"Filter, streaming in {f['chunk']}-sample chunks (goal ≥ 1× sosfilt)")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    if replay:
        ax = axes.pop(0)
        names = [f"{'continuous' if 'continuous' in x['label'] else 'real, gapped'}\n"
                 f"{x.get('interpreter', '?').split()[0]}\nchunk {x['chunk']}" for x in replay]
        vals = [x["realtime_factor"] for x in replay]
        bars = ax.bar(range(len(vals)), vals, color=["C0" if "continuous" in x["label"] else "C2" for x in replay])
        ax.set_xticks(range(len(vals)), names, fontsize=8)
        for bar, v in zip(bars, vals):
            ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.0f}×", ha="center", va="bottom")
        goal = e2e["goals"]["realtime_factor"]
        ax.axhline(goal, color="r", ls="--", label=f"goal ≥ {goal:.0f}× real time")
        ax.set(ylabel="× real time", title="Replay through the whole edge chain (32 ch @ 500 Hz)")
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, out / "throughput.png")


def inference(report: dict, out: Path) -> Path | None:
    inf = report["sections"].get("inference", {})
    bundles = {k: v for k, v in inf.get("bundles", {}).items() if "skipped" not in v}
    if not bundles:
        return None
    short = {"tflite_runtime": "int8\ntflite_runtime", "ai_edge_litert": "int8\nai_edge_litert",
             "ai_edge_litert_int8": "int8\nai_edge_litert\n(train env)", "float_tflite": "float TFLite\n(ai_edge_litert)",
             "keras_call": "float Keras\nmodel(x)", "keras_predict_on_batch": "float Keras\npredict_on_batch"}
    plt = _plt()
    fig, axes = plt.subplots(1, len(bundles), figsize=(6 * len(bundles), 4.5), squeeze=False)
    for ax, (name, b) in zip(axes[0], bundles.items()):
        names, p50, p99 = [], [], []
        for group in ("interpreters", "peers"):
            for k, v in b[group].items():
                if "latency_ms" in v:
                    names.append(short.get(k, k))
                    p50.append(v["latency_ms"]["p50"])
                    p99.append(v["latency_ms"]["p99"])
        if not names:
            continue
        import math

        x = list(range(len(names)))
        floor = 10 ** math.floor(math.log10(min(p50) * 0.9))
        ax.bar([i - 0.2 for i in x], [v - floor for v in p50], 0.4, bottom=floor, label="p50")
        ax.bar([i + 0.2 for i in x], [v - floor for v in p99], 0.4, bottom=floor, label="p99")
        for i, v in zip(x, p50):
            ax.text(i - 0.2, v, f"{v:.3g}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, names, fontsize=7)
        ax.set(yscale="log", ylim=(floor, max(p99) * 2), ylabel="ms per window (batch 1, 1 thread, log)",
               title=f"{name}: {b['model_bytes']:,}-byte int8 model")
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", which="both", alpha=0.3)
    return _save(fig, out / "inference.png")


def roc(report: dict, out: Path) -> list[Path]:
    paths = []
    dec = report["sections"].get("decoding", {})
    for name, b in dec.get("bundles", {}).items():
        rp = b.get("replay")
        if not rp:
            continue
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6.5, 6))
        for i, (lab, r) in enumerate(rp["roc"].items()):
            ax.plot(r["fpr"], r["tpr"], color=f"C{i}", label=f"{lab} (AUC {r['auc']:.3f})")
            op = r.get("operating_point")
            if op:
                ax.plot([op["fpr"]], [op["tpr"]], "o", color=f"C{i}", ms=6)
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (windows)", ylabel="true positive rate",
               title=f"{name}: int8 edge path, {rp['origin']} held-out series 7–8\n"
                     f"{rp['windows']} windows, mean AUC {rp['mean_auc']:.3f}; dots: the bundle's thresholds")
        ax.set_aspect("equal")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        paths.append(_save(fig, out / f"roc_{name}.png"))
    return paths


def timeline_png(tl: dict, path: Path, title: str = "") -> Path:
    """A replay's timeline (:func:`edge.evaluation.timeline`): truth, probabilities, decisions, arm state."""
    import numpy as np

    plt = _plt()
    t = np.asarray(tl["t_s"], float)
    probs = np.asarray(tl["probs"], float)
    labels = tl["labels"]
    fig, axes = plt.subplots(3, 1, figsize=(13, 7.5), sharex=True, gridspec_kw={"height_ratios": [1.2, 2, 1.3]})
    colors = plt.get_cmap("tab10").colors
    ax = axes[0]
    if tl.get("truth") is not None:
        truth = np.asarray(tl["truth"], bool)
        for k, lab in enumerate(labels):
            ax.fill_between(t, k - 0.4, k + 0.4, where=truth[:, k], step="post", color=colors[k % 10], lw=0)
    ax.set(yticks=range(len(labels)), yticklabels=labels, ylim=(-0.6, len(labels) - 0.4), title=title or tl["source"])
    ax.set_ylabel("truth")
    ax = axes[1]
    for k, lab in enumerate(labels):
        ax.plot(t, probs[:, k], color=colors[k % 10], lw=0.9, label=lab)
        if tl.get("thresholds"):
            ax.axhline(tl["thresholds"][k], color=colors[k % 10], lw=0.6, ls=":")
    ax.set(ylabel="probability", ylim=(0, 1.02))
    ax.legend(ncol=min(len(labels), 7), fontsize=7, loc="upper right")
    ax = axes[2]
    names = tl.get("state_names") or []
    if names:
        idx = [names.index(s) if s in names else np.nan for s in tl["states"]]
        ax.step(t, idx, where="post", color="k", lw=1.2, label="arm state")
        ax.set(yticks=range(len(names)), yticklabels=names)
    for d in tl["decisions"]:
        k = labels.index(d["label"]) if d["label"] in labels else 0
        y = (names.index(tl["states"][int(np.searchsorted(t, d["t_s"]))]) if names and
             int(np.searchsorted(t, d["t_s"])) < len(tl["states"]) and tl["states"][int(np.searchsorted(t, d["t_s"]))]
             in names else 0)
        if d["action"]:
            ax.plot(d["t_s"], y, marker="^", ms=8, color=colors[k % 10], ls="")
            ax.annotate(d["action"], (d["t_s"], y), xytext=(0, 7), textcoords="offset points", fontsize=6,
                        ha="center")
        else:
            ax.plot(d["t_s"], y, marker="x", ms=7, color="grey", ls="")
    ax.set(xlabel="stream time (s)", ylabel="commands (▲ sent, × held)")
    return _save(fig, path)


def tradeoff_png(curve: list, chosen: dict, path: Path, title: str) -> Path:
    """Wrong-phase commands per minute against trials fully commanded, one point per threshold level."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    xs = [c["wrong_phase_per_min"] for c in curve]
    ys = [100 * (c["trials_complete_fraction"] or 0) for c in curve]
    ax.plot(xs, ys, marker="o", color="C0")
    for c, x, y in zip(curve, xs, ys):
        ax.annotate(f"×{c['level']:g}", (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
    if chosen:
        ax.plot(chosen["wrong_phase_per_min"], 100 * (chosen["trials_complete_fraction"] or 0), marker="*", ms=16,
                color="C3", ls="", label="operating point (chosen on the tune block)")
    ax.axvline(10, color="r", ls="--", lw=1, label="goal: ≤ 10 wrong-phase/min")
    ax.axhline(50, color="g", ls="--", lw=1, label="goal: ≥ 50 % trials")
    ax.set(xlabel="wrong-phase commands per minute", ylabel="trials fully commanded in order (%)", title=title)
    if all(c.get("right_phase_per_min") is not None for c in curve):
        twin = ax.twinx()  # what the user does get: commands in the right phase
        twin.plot(xs, [c["right_phase_per_min"] for c in curve], marker="s", color="C2", ls=":",
                  label="right-phase commands/min (right axis)")
        if chosen and chosen.get("right_phase_per_min") is not None:
            twin.plot(chosen["wrong_phase_per_min"], chosen["right_phase_per_min"], marker="*", ms=14, color="C3")
        twin.set_ylabel("right-phase commands per minute")
        twin.legend(fontsize=7, loc="center right")
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def calibration_pngs(report: dict, out: Path) -> list[Path]:
    """One figure per task: base vs on-device calibrated, per participant (benchmarks/calibration.py)."""
    c = report["sections"].get("calibration") or {}
    paths = []
    for key, title, metric, per in (("emg", "EMG gestures: Test0+Test1", "window accuracy", "participants"),
                                    ("grasp_lift", "Grasp-lift: series 7-8", "mean column AUC", "subjects"),
                                    ("muse", "Muse states: second half", "window accuracy", "subjects")):
        r = c.get(key) or {}
        if per not in r:
            continue
        plt = _plt()
        names = list(r[per])
        x = np.arange(len(names))
        fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 2), 3.2))
        # per participant: the base, the per-person baseline, on-device, the workstation fine-tune
        bars = [("base", "base (never saw this person)"), ("lda", "per-person LDA (Hudgins TD)"),
                ("baseline", "per-subject FB + LR (peer)"), ("calibrated", "calibrated on-device"),
                ("workstation", "workstation fine-tune")]
        bars = [(k, lab) for k, lab in bars if all(r[per][n].get(k) is not None for n in names)]
        width = 0.8 / len(bars)
        for i, (k, lab) in enumerate(bars):
            ax.bar(x - 0.4 + (i + 0.5) * width, [r[per][n][k] for n in names], width, label=lab)
        if r.get("workstation") is not None and not any(k == "workstation" for k, _ in bars):
            ax.axhline(r["workstation"], color="k", ls="--", lw=1, label="workstation fine-tune (mean)")
        ax.set_xticks(x, [str(n) for n in names], rotation=30)
        ax.set_ylabel(metric)
        ax.set_ylim(0.5 if key == "grasp_lift" else 0, 1)
        ax.set_title(f"{title}: base {r['base']:.3f} -> calibrated {r['calibrated']:.3f}", fontsize=9)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=len(bars) or 1, frameon=False)
        paths.append(_save(fig, out / f"calibration_{key}.png"))
    delays = [d for p in (c.get("emg") or {}).get("participants", {}).values() for d in p.get("delays_ms", [])]
    if delays:
        paths.append(delay_png(delays, out / "delay_gesture.png"))
    return paths


def delay_png(delays_ms: list, path: Path) -> Path:
    """The onset → command delay of every commanded gesture (on-device calibrated bundles, continuous
    use), against the optimal controller delay (Farrell & Weir 2007)."""
    plt = _plt()
    d = np.sort(np.asarray(delays_ms, float))
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    ax.hist(d, bins=np.arange(0, max(600.0, d.max() + 25), 25), color="tab:blue", alpha=0.8)
    ax.axvspan(100, 125, color="tab:green", alpha=0.25, label="optimal 100-125 ms (Farrell & Weir 2007)")
    p50, p90 = np.percentile(d, [50, 90])
    ax.axvline(p50, color="k", lw=1, label=f"p50 {p50:.0f} ms")
    ax.axvline(p90, color="k", ls="--", lw=1, label=f"p90 {p90:.0f} ms")
    ax.set_xlabel("gesture start → its command (ms)")
    ax.set_ylabel("gestures")
    ax.set_title(f"EMG on-device calibrated, continuous use: {len(d)} gestures", fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path)


def write_plots(report: dict, out) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [latency_cdf(report, out), throughput(report, out), inference(report, out)] + roc(report, out)
    paths += calibration_pngs(report, out)
    for name, b in report["sections"].get("decoding", {}).get("bundles", {}).items():
        rp = b.get("replay") or {}
        if rp.get("timeline"):
            paths.append(timeline_png(rp["timeline"], out / f"timeline_{name}.png",
                                      f"{name}: held-out replay ({rp['origin']}), its first 40 s of EEG"))
        curve = (rp.get("tradeoff") or {}).get("curve")
        if curve:
            lvl = rp["tradeoff"]["chosen_level"]
            chosen = next((c for c in curve if c["level"] == lvl), None)
            paths.append(tradeoff_png(curve, chosen, out / f"tradeoff_{name}.png",
                                      f"{name}: decision trade-off on the held-out replay"))
    g = report["sections"].get("gesture", {})
    if g.get("timeline"):
        paths.append(timeline_png(g["timeline"], out / "timeline_gesture.png",
                                  f"gesture: {g['timeline']['source']} (calibrated bundle), first 60 s"))
    return [p for p in paths if p is not None]
