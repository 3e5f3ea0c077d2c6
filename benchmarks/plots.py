"""PNG plots of a benchmark report (matplotlib, Agg backend), drawn from the report's JSON alone.

* ``latency_cdf.png``    per-stage latency CDFs of the replay (filter, infer, decide, whole chunk) and
                         the live sample → command latency over LSL to the simulated arm;
* ``throughput.png``     filter throughput against scipy's sosfilt, and replay × real time against
                         the 200× goal;
* ``inference.png``      int8 latency per runtime and float peer, per bundle;
* ``roc_<bundle>.png``   ROC curve per event of a grasp-lift bundle (int8, edge path), with the
                         operating point of the bundle's thresholds;
* ``timeline_<bundle>.png`` a replay as a user would see it: per label its true events and its
                         probability, then the commands (sent, and held by the arm's state) and the arm's
                         state, on the recording's own time axis (gaps shaded, never bridged);
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


def _timeline_gaps(tl: dict, t: np.ndarray) -> list[tuple[float, float]]:
    """Where a timeline has no data: its own ``gaps`` (each segment boundary of the recording: a gap, or
    separately recorded files back to back when both ends are equal), else window steps of more than
    three strides."""
    if tl.get("gaps") is not None:
        return [(float(a), float(b)) for a, b in tl["gaps"]]
    if len(t) < 3:
        return []
    step = float(np.median(np.diff(t)))
    return [(float(t[i]), float(t[i + 1])) for i in np.flatnonzero(np.diff(t) > 3 * step)]


def _broken(t: np.ndarray, gaps, *series: np.ndarray):
    """``t`` and each of ``series`` with a NaN row after the last window before each gap, so that no
    line and no shading is drawn across one."""
    at = sorted({int(np.searchsorted(t, a, side="right")) for a, _ in gaps} - {0, len(t)})
    return [np.insert(np.asarray(x, float), at, np.nan, axis=0) for x in (t, *series)]


def timeline_png(tl: dict, path: Path, title: str = "") -> Path:
    """A replay's timeline (:func:`edge.evaluation.replay.timeline`) as a PNG: :func:`timeline_figure`."""
    fig = timeline_figure(tl, title)
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def timeline_figure(tl: dict, title: str = ""):
    """A replay's timeline, one panel per label — its truth shaded, its probability and threshold drawn over
    it — and the commands (sent, held) with the arm's state below, under one legend.  The time axis is
    the recording's own: its gaps are shaded (separate recordings joined back to back: a dashed line),
    and nothing is drawn across them."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    plt = _plt()
    labels = list(tl["labels"])
    t = np.asarray(tl["t_s"], float)
    gaps = _timeline_gaps(tl, t)
    truth = np.asarray(tl["truth"], float) if tl.get("truth") is not None else None
    tb, probs = _broken(t, gaps, np.asarray(tl["probs"], float).reshape(len(t), len(labels)))
    truth = None if truth is None else _broken(t, gaps, truth)[1]
    k = len(labels)
    fig, axes = plt.subplots(k + 1, 1, figsize=(13, 0.75 * k + 3.2), sharex=True,
                             gridspec_kw={"height_ratios": [1] * k + [2.2]})
    colors = plt.get_cmap("tab10").colors
    thresholds = tl.get("thresholds")
    for i, (ax, lab) in enumerate(zip(axes, labels)):
        c = colors[i % 10]
        if truth is not None:
            ax.fill_between(tb, 0, 1.05, where=truth[:, i] > 0, step="post", color=c, alpha=0.22, lw=0)
        ax.plot(tb, probs[:, i], color=c, lw=0.9)
        if thresholds:
            ax.axhline(thresholds[i], color=c, lw=0.8, ls=":")
        ax.set(ylim=(0, 1.05), yticks=[0, 1])
        ax.set_ylabel(lab, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
    ax = axes[-1]
    names = tl.get("state_names") or []
    states = [names.index(s) if s in names else np.nan for s in tl["states"]] if names else []
    if names:
        tb2, st = _broken(t, gaps, np.asarray(states, float))
        ax.step(tb2, st, where="post", color="k", lw=1.2)
        ax.set(yticks=range(len(names)), yticklabels=names, ylim=(-0.5, len(names) - 0.5))
    else:
        ax.set(yticks=[], ylim=(-0.5, 0.5))
    y_at = (lambda ts: states[min(int(np.searchsorted(t, ts)), len(states) - 1)]) if states else (lambda ts: 0)
    actions = {}
    sent = [d for d in tl["decisions"] if d["action"]]
    for d in tl["decisions"]:
        y = y_at(d["t_s"])
        if d["action"]:
            i = labels.index(d["label"]) if d["label"] in labels else 0
            actions.setdefault(d["action"], colors[i % 10])
            ax.plot(d["t_s"], y, marker="^", ms=8, color=colors[i % 10], ls="")
            if len(sent) <= 40:
                ax.annotate(d["action"], (d["t_s"], y), xytext=(0, 7), textcoords="offset points", fontsize=6,
                            ha="center")
        else:
            ax.plot(d["t_s"], y, marker="x", ms=7, color="grey", ls="")
    ax.set_ylabel("arm state" if names else "commands", fontsize=8)
    for a in axes:
        for g0, g1 in gaps:
            if g1 > g0:
                a.axvspan(g0, g1, color="0.88", lw=0, zorder=0)
            else:
                a.axvline(g0, color="0.6", lw=0.6, ls="--", zorder=0)
    joined, spans = any(b <= a for a, b in gaps), any(b > a for a, b in gaps)
    handles = ([Patch(color="0.5", alpha=0.35, label="label true")] if truth is not None else []) + [
        Line2D([], [], color="0.3", lw=0.9, label="probability")]
    handles += [Line2D([], [], color="0.3", lw=0.8, ls=":", label="threshold")] if thresholds else []
    handles += [Patch(color="0.88", label="no data (a gap)")] if spans else []
    handles += [Line2D([], [], color="0.6", lw=0.6, ls="--", label="separate recordings joined")] if joined else []
    handles += [Line2D([], [], color="k", lw=1.2, label="arm state")] if names else []
    handles += [Line2D([], [], marker="^", ms=7, color=c, ls="", label=f"{a} sent") for a, c in actions.items()]
    if any(not d["action"] for d in tl["decisions"]):
        handles += [Line2D([], [], marker="x", ms=6, color="grey", ls="", label="held (not valid in the arm's state)")]
    axes[0].set_title(title or tl["source"], fontsize=10)
    axes[-1].set_xlabel("recording time (s)" + (f"; {sum(b > a for a, b in gaps)} gap(s) shaded" if spans else ""))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.03 + 0.025 * ((len(handles) - 1) // 6), 1, 1))
    return fig


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
