"""Reader throughput: one full Kaggle series (≈120 000 rows × 32 channels, gzip) vs numpy.loadtxt.

Goal (issue 2): ≤ 2 s per full series on the development machine.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.timing import median_time
from edge.recordings import read_grasp_lift, write_grasp_lift
from edge.recordings.synthetic import grasp_lift_series

GOAL_S = 2.0


def run(quick: bool = False, ctx=None) -> dict:
    repeats = 2 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        rec = grasp_lift_series(1, 1, seed=0, n_trials=8 if quick else 34)
        data, events = write_grasp_lift(rec, tmp)
        ours = median_time(lambda: read_grasp_lift(data), repeats)

        def peer():  # what a user would write with numpy alone (no validation, no events check)
            with gzip.open(data, "rt") as fh:
                np.loadtxt(fh, delimiter=",", skiprows=1, usecols=range(1, 33))
            with gzip.open(events, "rt") as fh:
                np.loadtxt(fh, delimiter=",", skiprows=1, usecols=range(1, 7))

        theirs = median_time(peer, repeats)
        size = Path(data).stat().st_size + Path(events).stat().st_size
    return {
        "rows": rec.n_samples, "channels": len(rec.channels), "gz_bytes": size, "repeats": repeats,
        "neurogrip_s": ours, "numpy_loadtxt_s": theirs, "speedup_vs_loadtxt": theirs / ours,
        "goal_s": GOAL_S, "goal_met": (ours <= GOAL_S) if not quick else None,
    }


def markdown(r: dict) -> str:
    return ("| reader | rows × ch | median s | np.loadtxt (no validation) s | ratio |\n|---|---|---|---|---|\n"
            f"| Kaggle series (data+events, gz) | {r['rows']} × {r['channels']} | {r['neurogrip_s']:.2f} "
            f"(goal ≤ {r['goal_s']:.0f} s) | {r['numpy_loadtxt_s']:.2f} | {r['speedup_vs_loadtxt']:.2f}× |")
