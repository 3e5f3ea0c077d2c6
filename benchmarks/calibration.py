"""On-device calibration (``neurogrip calibrate``, :mod:`edge.calibration`) on real data: what a new
person gets after a short session of their own, measured through the edge path, int8, with no
TensorFlow in the process.

Protocols (each base bundle has never seen the person it is calibrated to):

* **EMG gestures** (Myo armband, Côté-Allard et al. 2019): base = the gesture bundle, pre-trained
  on the PreTrainingDataset; each evaluation participant's ``training0`` is calibrated on-device;
  tested on ``Test0`` + ``Test1`` (window accuracy per file, mean over participants — the gesture
  section's protocol).  The workstation reference is the same participants' TensorFlow fine-tune
  (the gesture bundle's training report).  Time and peak memory: one calibration run as
  ``neurogrip calibrate`` in a child process.
* **Grasp-lift** (WAY-EEG-GAL segments): base = a grasp-lift bundle trained on the *other* three
  subjects (``build/bundles/calibration/grasp-lift-for-*``, made by ``tools/calibration-bases``);
  calibrated on the subject's series 1–6, tested on series 7–8: mean column AUC per subject, and
  the Kaggle metric over all test windows of all subjects.
* **Muse mental states**: base = an emotion bundle trained on the other three subjects
  (``emotion-for-*``); calibrated on the first half of each of the subject's three recordings,
  tested on the second half (window accuracy).

Nothing is tuned on the test parts: calibration chooses its penalty and normalisation on its own
session (edge.calibration), and judges itself on that session's held-out end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import DEFAULT_BUNDLES, fmt

EMG_GOAL = 0.97
EMG_WITHIN = 0.01
GL_GOAL = 0.85
SECONDS_GOAL = 30.0
RSS_GOAL_MB = 120.0
BASES = DEFAULT_BUNDLES / "calibration"


def _scores(bundle, recs) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, truth) of every window of the recordings, each file's segments on their own."""
    from edge.calibration.session import read_session, session_windows

    model = bundle.model()
    probs, truth = [], []
    for rec in recs:
        sw = session_windows(bundle, read_session([rec], bundle)[0])
        probs.append(model.predict(bundle.model_input(sw.windows)))
        truth.append(sw.y)
    return np.concatenate(probs), np.concatenate(truth)


def _accuracy(probs, truth) -> float:
    from edge.metrics import accuracy

    keep = truth.sum(axis=1) == 1
    return accuracy(truth[keep].argmax(1), probs[keep].argmax(1))


def _auc(probs, truth) -> float:
    from edge.metrics import mean_columnwise_auc

    return float(mean_columnwise_auc(truth, probs))


# The child reports its own peak: VmHWM (its address space's high-water mark, new at exec).  Neither
# ru_maxrss of RUSAGE_CHILDREN (the largest child of the whole bench) nor the child's own ru_maxrss
# (Linux keeps it across exec: it starts at the forking bench's size) measures calibration.
_CHILD = ("import re, sys\nfrom edge.cli import main\nrc = main(sys.argv[1:])\n"
          "print('PEAK_RSS_KB', re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1))\n"
          "sys.exit(rc)")


def _child_calibration(base: Path, data: Path, out: Path) -> dict:
    """One ``neurogrip calibrate`` in a child process: wall time and the child's peak RSS."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, "calibrate", "--bundle", str(base), "--data", str(data),
                           "--out", str(out)], capture_output=True, text=True, timeout=600, check=False)
    wall = time.perf_counter() - t0
    peak = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("PEAK_RSS_KB ")]
    return {"seconds": wall, "peak_rss_mb": peak[0] / 1024 if peak else None, "exit": proc.returncode,
            "output": (proc.stdout + proc.stderr)[-400:]}


def _emg(ctx, quick: bool) -> dict:
    from edge.bundle import load_bundle
    from edge.calibration import calibrate
    from edge.evaluation import window_accuracy
    from edge.recordings.myo import read_myo_session

    ref = ctx.bundle("gesture")
    root = ctx.shared_data / "myo_armband" / "EvaluationDataset"
    if ref is None or not root.is_dir():
        return {"skipped": "no gesture bundle or no Myo data"}
    parts = sorted(p for p in root.iterdir() if p.is_dir())[: 1 if quick else None]
    out = {"bundle": ref.name, "origin": ref.origin, "participants": {}}
    base = load_bundle(ref.path)
    out["child"] = _child_calibration(ref.path, parts[0] / "training0", ctx.tmp / "emg-child")
    for part in parts:
        t0 = time.perf_counter()
        res = calibrate(ref.path, part / "training0", ctx.tmp / f"emg-{part.name}", force=True)
        secs = time.perf_counter() - t0
        mine = load_bundle(ctx.tmp / f"emg-{part.name}")
        tests = [read_myo_session(part / s, continuous=False) for s in ("Test0", "Test1")]
        cal = np.sum([window_accuracy(mine, r) for r in tests], axis=0)
        bas = np.sum([window_accuracy(base, r) for r in tests], axis=0)
        out["participants"][part.name] = {"calibrated": cal[0] / cal[1], "base": bas[0] / bas[1],
                                          "held_out": {"base": res.base, "calibrated": res.calibrated},
                                          "refused": not (res.calibrated >= res.base), "seconds": secs,
                                          "choice": res.choice}
    ps = out["participants"].values()
    out["calibrated"] = float(np.mean([p["calibrated"] for p in ps]))
    out["base"] = float(np.mean([p["base"] for p in ps]))
    rep = ref.report_dir / "report.json"
    if rep.is_file():
        report = json.loads(rep.read_text())
        proto = next(v for k, v in report["protocols"].items() if k.startswith("calibrated"))
        per = proto.get("per_participant") or {}
        names = [p.name for p in parts]
        vals = [per[n]["int8"] for n in names if isinstance(per.get(n), dict) and "int8" in per[n]]
        out["workstation"] = float(np.mean(vals)) if len(vals) == len(names) else proto["int8"]["accuracy"]
    return out


def _grasp_lift(ctx, quick: bool) -> dict:
    from edge.bundle import load_bundle
    from edge.calibration import calibrate
    from edge.recordings import read_grasp_lift

    data = ctx.shared_data / "grasp_lift_segments"
    groups = {s: BASES / ("grasp-lift-for-1-2-3" if s <= 3 else "grasp-lift-for-4-5-6") for s in range(1, 7)}
    if not data.is_dir() or not all((p / "manifest.json").is_file() for p in set(groups.values())):
        return {"skipped": f"no grasp-lift data or no other-subject bases in {BASES} (tools/calibration-bases)"}
    subjects = [1] if quick else list(range(1, 7))
    out = {"subjects": {}}
    all_p, all_b, all_t = [], [], []
    for s in subjects:
        base = load_bundle(groups[s])
        files = [data / f"subj{s}_series{k}_data.csv.gz" for k in range(1, 7)]
        res = calibrate(groups[s], files, ctx.tmp / f"gl-{s}", force=True)
        mine = load_bundle(ctx.tmp / f"gl-{s}")
        tests = [read_grasp_lift(data / f"subj{s}_series{k}_data.csv.gz") for k in (7, 8)]
        pc, t = _scores(mine, tests)
        pb, _ = _scores(base, tests)
        all_p.append(pc), all_b.append(pb), all_t.append(t)
        out["subjects"][s] = {"calibrated": _auc(pc, t), "base": _auc(pb, t), "choice": res.choice,
                              "held_out": {"base": res.base, "calibrated": res.calibrated}}
    t = np.concatenate(all_t)
    out["calibrated"], out["base"] = _auc(np.concatenate(all_p), t), _auc(np.concatenate(all_b), t)
    return out


def _half(rec, first: bool):
    n = rec.n_samples // 2
    return rec.rows(0, n) if first else rec.rows(n, rec.n_samples)


def _muse(ctx, quick: bool) -> dict:
    from edge.bundle import load_bundle
    from edge.calibration import calibrate
    from edge.recordings import read_muse

    data = ctx.shared_data / "muse_mental_state"
    subjects = ["a"] if quick else ["a", "b", "c", "d"]
    if not data.is_dir() or not all((BASES / f"emotion-for-{s}" / "manifest.json").is_file() for s in subjects):
        return {"skipped": f"no Muse data or no other-subject bases in {BASES} (tools/calibration-bases)"}
    out = {"subjects": {}}
    for s in subjects:
        base_path = BASES / f"emotion-for-{s}"
        base = load_bundle(base_path)
        recs = [read_muse(p) for p in sorted(data.glob(f"subject{s}-*-1.csv"))]
        res = calibrate(base_path, [_half(r, True) for r in recs], ctx.tmp / f"mu-{s}", force=True)
        mine = load_bundle(ctx.tmp / f"mu-{s}")
        tests = [_half(r, False) for r in recs]
        pc, t = _scores(mine, tests)
        pb, _ = _scores(base, tests)
        out["subjects"][s] = {"calibrated": _accuracy(pc, t), "base": _accuracy(pb, t), "choice": res.choice,
                              "held_out": {"base": res.base, "calibrated": res.calibrated}}
    ss = out["subjects"].values()
    out["calibrated"] = float(np.mean([v["calibrated"] for v in ss]))
    out["base"] = float(np.mean([v["base"] for v in ss]))
    return out


def run(quick: bool = False, ctx=None) -> dict:
    return {"emg": _emg(ctx, quick), "grasp_lift": _grasp_lift(ctx, quick), "muse": _muse(ctx, quick)}


def targets(r: dict) -> list[dict]:
    t = []
    e = r["emg"]
    if "skipped" not in e:
        src = (f"{e['bundle']}: {len(e['participants'])} participant(s), calibrated on-device on training0, "
               "Test0+Test1, int8 edge path")
        t.append({"area": "calibration", "target": "EMG on-device calibrated accuracy ≥ 97 %", "measured": e["calibrated"],
                  "unit": "accuracy", "goal": EMG_GOAL, "op": ">=", "note": src})
        if e.get("workstation") is not None:
            t.append({"area": "calibration", "target": "EMG on-device within 1 point of the workstation fine-tune",
                      "measured": e["calibrated"] - e["workstation"], "unit": "Δaccuracy", "goal": -EMG_WITHIN,
                      "op": ">=", "note": f"workstation (TensorFlow fine-tune) {e['workstation']:.4f}; " + src})
        c = e["child"]
        t.append({"area": "calibration", "target": "one EMG calibration ≤ 30 s here (one core)",
                  "measured": c["seconds"], "unit": "s", "goal": SECONDS_GOAL, "op": "<=",
                  "note": "`neurogrip calibrate` in a child process, the first participant's training0 (140 s)"})
        t.append({"area": "calibration", "target": "calibration peak RSS within the edge footprint (≤ 120 MB)",
                  "measured": c["peak_rss_mb"], "unit": "MB", "goal": RSS_GOAL_MB, "op": "<=",
                  "note": "the same child process's peak resident memory"})
    g = r["grasp_lift"]
    if "skipped" not in g:
        t.append({"area": "calibration", "target": "grasp-lift calibrated AUC ≥ 0.85 (new subject)",
                  "measured": g["calibrated"], "unit": "AUC", "goal": GL_GOAL, "op": ">=",
                  "note": f"{len(g['subjects'])} subject(s): base trained on the other 3 subjects, calibrated on "
                          "series 1–6, Kaggle metric over all series 7–8 windows"})
    return t


def markdown(r: dict) -> str:
    lines = []
    e = r["emg"]
    if "skipped" in e:
        lines.append(f"EMG: skipped: {e['skipped']}")
    else:
        lines += [("EMG gestures (Myo armband, Côté-Allard et al. 2019): calibrated on-device on training0, "
                   "tested on Test0+Test1."), "",
                  "| participant | base | on-device calibrated | held-out (base → cal.) | choice | s |",
                  "|---|---|---|---|---|---|"]
        for n, p in e["participants"].items():
            lines.append(f"| {n} | {p['base']:.4f} | {p['calibrated']:.4f} | {p['held_out']['base']:.3f} → "
                         f"{p['held_out']['calibrated']:.3f} | {p['choice']['normalisation']}, "
                         f"{p['choice']['penalty']:g} | {p['seconds']:.1f} |")
        mean = (f"Mean: base {e['base']:.4f}, on-device {e['calibrated']:.4f}, workstation fine-tune "
                f"{fmt(e.get('workstation'), '.4f')}; `neurogrip calibrate` child: {e['child']['seconds']:.1f} s, "
                f"peak RSS {fmt(e['child']['peak_rss_mb'], '.0f')} MB.")
        lines += ["", mean, ""]
    for key, title, metric in (("grasp_lift", "Grasp-lift (base on the other 3 subjects; series 1–6 → 7–8)", "AUC"),
                               ("muse", "Muse states (base on the other 3 subjects; first half → second half)",
                                "accuracy")):
        g = r[key]
        if "skipped" in g:
            lines.append(f"{title}: skipped: {g['skipped']}")
            continue
        lines += [f"{title}, {metric}:", "", "| subject | base | on-device calibrated | choice |", "|---|---|---|---|"]
        for n, p in g["subjects"].items():
            lines.append(f"| {n} | {p['base']:.4f} | {p['calibrated']:.4f} | {p['choice']['normalisation']}, "
                         f"{p['choice']['penalty']:g} |")
        lines += ["", f"Over all: base {g['base']:.4f}, calibrated {g['calibrated']:.4f}.", ""]
    return "\n".join(lines)
