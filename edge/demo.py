"""``neurogrip demo``: a recording streamed over LSL on loopback → the edge runtime → the simulated arm.

The edge half of ``make demo`` (the Makefile trains the bundle first, in the training
environment).  Everything is real but the arm: a :class:`edge.player.Player` publishes the
recording as a live LSL stream, :func:`edge.runtime.serve` reads it through ``lsl:``, runs the
bundle and commands the firmware running under simulation (simavr, else the host build) over a
pty.  At the end it prints the latency report and compares every command with the true events
of the recording at the window that fired it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from edge.errors import EdgeError


def truth_table(bundle, recording, fired, rows) -> dict:
    """Commands vs the recording's true events.

    ``fired`` is the runtime's ``(t_end, label, action, _)`` list, ``rows`` the recording row of
    each window's last sample.  A command is *correct* when its own event is true at that sample.
    """
    labels = list(bundle.labels)
    per = {lab: {"commands": 0, "correct": 0} for lab in labels}
    for (_, label, _, _), row in zip(fired, rows):
        per[label]["commands"] += 1
        if row >= 0 and recording.labels is not None and recording.labels[row, labels.index(label)]:
            per[label]["correct"] += 1
    occurrences = {}
    if recording.labels is not None:
        for k, lab in enumerate(labels):
            col = recording.labels[:, k].astype(np.int8)
            occurrences[lab] = int((np.diff(np.concatenate([[0], col])) == 1).sum())
    total = sum(v["commands"] for v in per.values())
    correct = sum(v["correct"] for v in per.values())
    return {"per_label": per, "event_occurrences": occurrences, "commands": total, "correct": correct,
            "precision": correct / total if total else None}


def format_truth(t: dict) -> str:
    lines = ["decisions vs true labels (command counted correct when its event is true at the window's last sample)",
             "  label                 commands  correct  true events in recording"]
    for lab, v in t["per_label"].items():
        lines.append(f"  {lab:<20} {v['commands']:>9} {v['correct']:>8} {t['event_occurrences'].get(lab, 0):>10}")
    prec = "n/a" if t["precision"] is None else f"{t['precision']:.2f}"
    lines.append(f"  all                  {t['commands']:>9} {t['correct']:>8}   precision {prec}")
    return "\n".join(lines)


def continuous_use(bundle, recording, fired, rows) -> dict:
    """Continuous-use scores of the live run (:mod:`edge.scoring`): the commands the arm received,
    at the recording row of their window's last sample, against the class held at each sample."""
    from edge.evaluation import command_map
    from edge.scoring import score_continuous

    commands = [(int(row), action) for (_, _, action, _), row in zip(fired, rows) if row >= 0]
    s = score_continuous(recording.labels.argmax(axis=1), recording.fs, commands,
                         command_map(bundle.decision_policy()),
                         grace_s=bundle.window["length"] * bundle.signal_chain().factor / bundle.fs)
    return {k: v for k, v in s.items() if k not in ("per_command", "delays_ms")}


def format_continuous(s: dict) -> str:
    d = s["delay_ms"]
    delay = f"p50 {d['p50']:.0f} ms, p90 {d['p90']:.0f} ms" if d.get("n") else "n/a"
    fa = "n/a" if s["false_activations_per_min"] is None else f"{s['false_activations_per_min']:.1f}/min"
    return ("continuous use (as a user feels it)\n"
            f"  gestures commanded     {s['detected']}/{s['gestures']}\n"
            f"  delay from gesture start to its command: {delay}\n"
            f"  false activations      {s['false_activations']} in {s['rest_minutes']:.2f} min of rest ({fa})\n"
            f"  wrong commands         {s['wrong_commands']} ({s['wrong_per_min']:.1f}/min)")


def run_demo(bundle_path, recording_path, *, arm: str = "sim", speed: float = 1.0, duration: float | None = None,
             log_path=None, report_path=None, view: str | None = None) -> dict:
    from edge.bundle import load_bundle
    from edge.player import Player
    from edge.recordings import read_recording
    from edge.runtime import RuntimeConfig, format_report, serve

    bundle = load_bundle(bundle_path)
    rec = read_recording(recording_path)
    name = f"neurogrip-demo-{uuid.uuid4().hex[:6]}"
    player = Player(rec, name=name, speed=speed, wait_consumers=10.0)
    player.start()
    print(f"[demo] streaming {rec.source.name} ({rec.n_samples / rec.fs:.0f} s of "
          f"{bundle.task_spec.modality.upper()}, "
          f"{len(rec.segments)} segment(s)) as LSL stream '{name}' at {speed:g}x", flush=True)

    def stop_when_done(rt):
        arm_kind = "none" if rt.arm is None else getattr(rt.arm, "url", "")
        print(f"[demo] runtime ready: {rt.summary.interpreter}, arm {arm_kind}", flush=True)

        def watch():  # stop once the player has published everything (or at `duration`)
            player.wait()
            time.sleep(0.1)  # the last chunks in flight; less than the 200 ms stall rule
            rt.stop()

        threading.Thread(target=watch, daemon=True).start()

    try:
        summary = serve(bundle_path, f"lsl:name={name}&timeout=10", arm, config=RuntimeConfig(stream_speed=speed),
                        log_path=log_path, duration=duration, on_ready=stop_when_done, view=view)
    finally:
        player.stop()
    rows = player.rows_at([f[0] for f in summary.fired]) if summary.fired else np.zeros(0, int)
    truth = truth_table(bundle, rec, summary.fired, rows)
    print("\n" + format_report(summary), flush=True)
    print("\n" + format_truth(truth), flush=True)
    result = {"summary": summary.to_dict(), "truth": truth, "bundle": str(bundle_path),
              "recording": str(recording_path), "metrics_in_bundle": bundle.manifest.get("metrics")}
    if bundle.task_spec.mode == "multiclass" and rec.labels is not None:  # one class per sample: continuous use
        result["continuous"] = continuous_use(bundle, rec, summary.fired, rows)
        print("\n" + format_continuous(result["continuous"]), flush=True)
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_text(json.dumps(result, indent=1))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="neurogrip demo", description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--recording", required=True,
                    help="a Kaggle-layout _data.csv[.gz] (or Muse/GAMEEMO) file, or a Myo armband session folder")
    ap.add_argument("--arm", default="sim", help="'sim' (default), a serial port, or 'none'")
    ap.add_argument("--speed", type=float, default=1.0, help="stream speed (1 = real time)")
    ap.add_argument("--duration", type=float, help="stop after this many seconds")
    ap.add_argument("--log", help="JSON-lines log of the run")
    ap.add_argument("--report", help="write the demo result as JSON")
    ap.add_argument("--view", default="0", metavar="[ADDR:]PORT",
                    help="the live view (docs/live-view.md; default 0: a free port on 127.0.0.1; 'none': off)")
    args = ap.parse_args(argv)
    try:
        run_demo(args.bundle, args.recording, arm=args.arm, speed=args.speed, duration=args.duration,
                 log_path=args.log, report_path=args.report, view=None if args.view == "none" else args.view)
    except EdgeError as exc:
        print(f"neurogrip demo: error: {exc}", file=sys.stderr)
        return 1
    return 0
