"""``neurogrip demo``: a recording streamed over LSL on loopback → the edge runtime → the simulated arm; with
``--adc``, the cheap build instead: the recording drives the simulated Uno's analog inputs (:func:`run_adc_demo`).

The edge half of ``make demo`` (the Makefile trains the bundle first, in the training
environment).  Everything is real but the arm: a :class:`edge.sources.player.Player` publishes the
recording as a live LSL stream, :func:`edge.runtime.serve` reads it through ``lsl:``, runs the
bundle and commands the firmware running under simulation (simavr, else the host build) over a
pty.  The stream is published with the bundle's modality as its type (EEG, EMG) and read through a
spec that pins this player (its name, source_id and host: :func:`edge.sources.lsl_identity.pin_spec`).
On a terminal each command gets a line as it happens (:mod:`edge.runtime.console`).  At the end it
prints the latency report and compares every command with the true events of the recording at the
window that fired it (:mod:`edge.evaluation.live`).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from edge.errors import EdgeError
from edge.evaluation.live import continuous_use, format_continuous, format_truth, truth_table


def run_demo(bundle_path, recording_path, *, arm: str = "sim", speed: float = 1.0, duration: float | None = None,
             log_path=None, report_path=None, view: str | None = None) -> dict:
    from edge.bundle import load_bundle
    from edge.recordings import read_recording
    from edge.runtime import RuntimeConfig, format_report, serve
    from edge.runtime.console import CommandConsole
    from edge.sources.lsl_identity import pin_spec
    from edge.sources.player import Player

    bundle = load_bundle(bundle_path)
    rec = read_recording(recording_path)
    name = f"neurogrip-demo-{uuid.uuid4().hex[:6]}"
    signal = bundle.task_spec.modality.upper()
    player = Player(rec, name=name, stype=signal, speed=speed, wait_consumers=10.0)
    player.start()
    print(f"[demo] streaming {rec.source.name} ({rec.n_samples / rec.fs:.0f} s of {signal}, "
          f"{len(rec.segments)} segment(s)) as LSL stream '{name}' (type {signal}) at {speed:g}x", flush=True)
    console = None

    def stop_when_done(rt):
        nonlocal console
        arm_kind = "none: nothing is sent" if rt.arm is None else getattr(rt.arm, "url", "")
        print(f"[demo] runtime ready: {rt.summary.interpreter}, arm {arm_kind}", flush=True)
        if sys.stdout.isatty():  # a line per command as it happens (a pipe keeps the report only)
            console = rt.console = CommandConsole.for_runtime(rt)

        def watch():  # stop once the player has published everything (or at `duration`)
            player.wait()
            # the last chunks in flight (loopback: milliseconds); less than the source's 100 ms stall warning
            time.sleep(0.05)
            rt.stop()

        threading.Thread(target=watch, daemon=True).start()

    spec = pin_spec(player.name, player.source_id, socket.gethostname(), timeout=10)  # this player, no other
    try:
        summary = serve(bundle_path, spec, arm, config=RuntimeConfig(stream_speed=speed),
                        log_path=log_path, duration=duration, on_ready=stop_when_done, view=view)
    finally:
        if console is not None:
            console.close()
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


def run_adc_demo(bundle_path, recording_path, *, duration: float | None = None, log_path=None, report_path=None,
                 view: str | None = None) -> dict:
    """The cheap build (issue 27): the recording drives the simulated ATmega328P's analog inputs as sensors would
    (simavr, else the firmware's host build), its firmware streams them up the link, the runtime reads them
    (``arm:``), decides, and commands the same firmware; in real time (the first ``duration`` seconds).  Then
    the latency report, the commands against the recording's truth, and the continuous-use scores against the
    same recording replayed from its file (:mod:`edge.commands.emg_loop`)."""
    from edge.commands.emg_loop import closed_loop, compare, file_replay, format_compare
    from edge.evaluation.live import format_scores
    from edge.runtime import format_report
    from edge.runtime.console import CommandConsole

    console = None

    def ready(rt, arm):
        nonlocal console
        what = "simavr ATmega328P, the AVR firmware" if arm.kind == "simavr" else \
            f"the firmware's host build (simavr unavailable: {arm.fallback_reason})"
        print(f"[demo] runtime ready: {rt.summary.interpreter}; arm and analog inputs: {what}, one link "
              f"({arm.pty})", flush=True)
        if sys.stdout.isatty():
            console = rt.console = CommandConsole.for_runtime(rt)

    print(f"[demo] the cheap build: {Path(recording_path).name} drives the simulated Uno's analog inputs A0.., "
          "in real time", flush=True)
    try:
        loop = closed_loop(bundle_path, recording_path, prefer="simavr", seconds=duration, view=view,
                           log_path=log_path, on_ready=ready)
    finally:
        if console is not None:
            console.close()
    print(f"[demo] {loop['feed']}", flush=True)
    print("\n" + format_report(loop["summary"]), flush=True)
    scores = loop["scores"]
    if scores:
        print("\n" + format_scores(scores), flush=True)
    cmp = compare(loop, file_replay(bundle_path, recording_path, seconds=duration))
    print("\n" + format_compare(cmp), flush=True)
    result = {"front_end": "simulated arm's ADC", "simulator": loop["simulator"], "spec": loop["spec"],
              "feed": loop["feed"], "summary": loop["summary"].to_dict(), **scores, "vs_file_replay": cmp,
              "bundle": str(bundle_path), "recording": str(recording_path)}
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
    ap.add_argument("--adc", action="store_true", help="the cheap build instead of LSL: the recording drives the "
                                                       "simulated arm's analog inputs, in real time (--speed ignored)")
    args = ap.parse_args(argv)
    try:
        if args.adc:
            run_adc_demo(args.bundle, args.recording, duration=args.duration, log_path=args.log,
                         report_path=args.report, view=None if args.view == "none" else args.view)
            return 0
        run_demo(args.bundle, args.recording, arm=args.arm, speed=args.speed, duration=args.duration,
                 log_path=args.log, report_path=args.report, view=None if args.view == "none" else args.view)
    except EdgeError as exc:
        print(f"neurogrip demo: error: {exc}", file=sys.stderr)
        return 1
    return 0
