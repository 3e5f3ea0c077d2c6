"""Fixed-point filter chain vs scipy.signal.sosfilt (float64), measured in the same run.

Goal (docs/design.md §3): streaming 32 channels in 10-sample chunks at >= 1x the throughput of
sosfilt with its state (zi) carried, same chunking and chain; SNR >= 90 dB vs float64.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from benchmarks.timing import median_time
from edge.chain.dsp import FixedPointSOS, available_backends
from edge.recordings.synthetic import grasp_lift_series
from training.filter_design import FilterSpec, design_chain

CHAIN = [FilterSpec("highpass", (0.5,), 2), FilterSpec("notch", (50.0,)), FilterSpec("lowpass", (40.0,), 4)]
SNR_CHAINS = {
    "band-pass 0.5–30 Hz o4": [FilterSpec("bandpass", (0.5, 30.0), 4)],
    "high-pass 0.1 Hz o4": [FilterSpec("highpass", (0.1,), 4)],
    "low-pass 5 Hz o4": [FilterSpec("lowpass", (5.0,), 4)],
    "notch 50 Hz": [FilterSpec("notch", (50.0,))],
}
CHUNK = 10


def run(quick: bool = False, ctx=None) -> dict:
    fs = 500.0
    rec = grasp_lift_series(1, 1, seed=0, n_trials=2 if quick else 8)
    x = rec.samples[: (2_000 if quick else 20_000)]
    n, nch = x.shape
    sos = design_chain(CHAIN, fs)
    repeats = 3 if quick else 7
    chunks = [x[i:i + CHUNK] for i in range(0, n, CHUNK)]

    def scipy_stream():
        zi = np.zeros((sos.shape[0], 2, nch))
        for c in chunks:
            _, zi = signal.sosfilt(sos, c, axis=0, zi=zi)

    result = {"channels": nch, "samples": n, "chunk": CHUNK, "sections": int(sos.shape[0]), "repeats": repeats}
    t_scipy = median_time(scipy_stream, repeats)
    t_scipy_one = median_time(lambda: signal.sosfilt(sos, x, axis=0), repeats)
    result["scipy_stream_samples_per_s"] = n / t_scipy
    result["scipy_oneshot_samples_per_s"] = n / t_scipy_one
    for backend in available_backends():
        if backend == "numpy" and not quick:
            sub = chunks[:50]  # the reference kernel is slow; time a slice
        else:
            sub = chunks
        f = FixedPointSOS(sos, nch, backend=backend)
        m = sum(len(c) for c in sub)

        def ours_stream(f=f, sub=sub):
            for c in sub:
                f.process(c)

        t = median_time(ours_stream, repeats)
        f1 = FixedPointSOS(sos, nch, backend=backend)
        t1 = median_time(lambda f1=f1: f1.process(x), 1 if backend == "numpy" else repeats)
        result[f"{backend}_stream_samples_per_s"] = m / t
        result[f"{backend}_oneshot_samples_per_s"] = n / t1
        result[f"{backend}_stream_ratio_vs_scipy"] = (m / t) / (n / t_scipy)
        result[f"{backend}_oneshot_ratio_vs_scipy"] = (n / t1) / (n / t_scipy_one)
    snr = {}
    xs = rec.samples[: (5_000 if quick else 60_000)]
    for name, specs in SNR_CHAINS.items():
        for fs_ in (500.0, 256.0):
            s = design_chain(specs, fs_)
            ref = signal.sosfilt(s, xs, axis=0)
            got = FixedPointSOS(s, nch).process(xs)
            snr[f"{name} @ {fs_:g} Hz"] = float(10 * np.log10(np.sum(ref**2) / np.sum((got - ref) ** 2)))
    result["snr_db"] = snr
    # bit-exact whatever the chunking: one shot vs 10-sample chunks vs uneven chunks (process() returns
    # the fixed-point output exactly, y_int / 2**35, so float equality is bit equality)
    whole = FixedPointSOS(sos, nch).process(xs)
    exact = True
    for sizes in ((CHUNK,), (1, 7, 333, 64)):
        f = FixedPointSOS(sos, nch)
        parts, i, j = [], 0, 0
        while i < len(xs):
            k = sizes[j % len(sizes)]
            parts.append(f.process(xs[i:i + k]))
            i, j = i + k, j + 1
        exact &= bool(np.array_equal(np.concatenate(parts), whole))
    result["bit_exact_across_chunking"] = exact
    result["snr_goal_db"] = 90.0
    result["stream_goal_ratio"] = 1.0
    return result


def targets(r: dict) -> list[dict]:
    best = max((k for k in ("c", "numpy") if f"{k}_stream_ratio_vs_scipy" in r),
               key=lambda k: r[f"{k}_stream_ratio_vs_scipy"])
    return [{"area": "filter accuracy", "target": "fixed point vs float64 sosfilt: SNR ≥ 90 dB",
             "measured": min(r["snr_db"].values()), "unit": "dB", "goal": r["snr_goal_db"], "op": ">=",
             "note": f"worst of {len(r['snr_db'])} chains × rates"},
            {"area": "filter accuracy", "target": "bit-exact whatever the chunking",
             "measured": r["bit_exact_across_chunking"], "unit": "", "goal": True, "op": "==",
             "note": "one shot vs 10-sample and uneven chunks"},
            {"area": "filter speed", "target": "streaming 32 ch in 10-sample chunks ≥ 1× sosfilt (with zi)",
             "measured": r[f"{best}_stream_ratio_vs_scipy"], "unit": "×", "goal": r["stream_goal_ratio"], "op": ">=",
             "note": f"{best} kernel"}]


def markdown(r: dict) -> str:
    rows = ["| kernel | streaming (10-sample chunks) samples/s | vs sosfilt | one-shot samples/s | vs sosfilt |",
            "|---|---|---|---|---|",
            (f"| scipy.signal.sosfilt (float64, zi) | {r['scipy_stream_samples_per_s']:,.0f} | 1.00× | "
            f"{r['scipy_oneshot_samples_per_s']:,.0f} | 1.00× |")]
    for b in ("c", "numpy"):
        if f"{b}_stream_samples_per_s" in r:
            rows.append(f"| neurogrip fixed point ({b}) | {r[f'{b}_stream_samples_per_s']:,.0f} | "
                        f"{r[f'{b}_stream_ratio_vs_scipy']:.2f}× | {r[f'{b}_oneshot_samples_per_s']:,.0f} | "
                        f"{r[f'{b}_oneshot_ratio_vs_scipy']:.2f}× |")
    rows += ["", (f"{r['channels']} channels, {r['sections']} sections (HP 0.5 + notch 50 + LP 40), "
             f"median of {r['repeats']}; goal: streaming ≥ {r['stream_goal_ratio']:.0f}× sosfilt."), "",
             "| chain | SNR vs float64 (dB, goal ≥ 90) |", "|---|---|"]
    rows += [f"| {k} | {v:.1f} |" for k, v in r["snr_db"].items()]
    if "bit_exact_across_chunking" in r:
        rows += ["", (f"Bit-exact across chunkings (one shot, 10, 1/7/333/64): "
                     f"**{'yes' if r['bit_exact_across_chunking'] else 'NO'}**")]
    return "\n".join(rows)
