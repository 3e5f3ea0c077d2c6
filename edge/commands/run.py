"""``neurogrip run``: the edge runtime (:func:`edge.runtime.serve`) with a console a person reads.

On a terminal (stdout is a tty) the run says what it does as it happens: a line at the start (the
bundle, its signal, the source, the arm), one line per command (its time, label → action, sent or
held and why, the arm's ACK time: :mod:`edge.runtime.console`, printed off the loop's thread), the
latency report at the end and, for a labelled replay, the commands against the recording's truth
(:mod:`edge.evaluation.live`).  ``--quiet`` keeps the report only; off a terminal (a pipe, the
service's journal) that is the default, and ``--console`` asks for the lines there too.  A run with
no arm says so at its start, whatever the mode.
"""

from __future__ import annotations

import json
import sys

#: ``--console`` choices: ``auto`` (lines on a terminal only), ``lines`` (always), ``quiet`` (never).
CONSOLE_MODES = ("auto", "lines", "quiet")


def wants_lines(mode: str, out=None) -> bool:
    """Whether per-command lines are printed: ``mode`` (:data:`CONSOLE_MODES`), ``auto`` when ``out``
    (default stdout) is a terminal."""
    if mode != "auto":
        return mode == "lines"
    out = sys.stdout if out is None else out
    return bool(getattr(out, "isatty", lambda: False)())


def start_lines(rt, source_spec: str, lines: bool) -> list[str]:
    """What the run says once everything is connected: always whether an arm is commanded; with ``lines``
    also the bundle and the source."""
    out = []
    b = rt.bundle
    if lines:
        out.append(f"[run] {b.task} bundle ({b.task_spec.modality.upper()}, {len(b.labels)} labels) on "
                   f"{source_spec}; {rt.summary.interpreter}; Ctrl-C stops (the arm rests)")
    if rt.arm is None:
        out.append("[run] no arm (--arm none): commands are decided and counted, nothing is sent; "
                   "--arm PORT drives an arm, --arm sim the simulated one")
    elif lines:
        out.append(f"[run] arm {getattr(rt.arm, 'url', 'connected')}: a line per command as it happens")
    return out


def replay_scores(rt) -> str:
    """For a labelled replay (``replay:`` or ``synthetic:`` of a recording with labels): its commands against
    the truth of the part of the recording it played; '' for anything else."""
    from edge.evaluation.live import format_scores, run_scores

    source = rt.source
    recording = getattr(source, "recording", None)
    if recording is None or recording.labels is None or not hasattr(source, "rows_at"):
        return ""
    played = int(source.counters.samples)  # a run stopped early (--duration, Ctrl-C) is judged on what it played
    if not played:
        return ""
    if played < recording.n_samples:
        recording = recording.rows(0, played)
    fired = list(rt.summary.fired)
    rows = source.rows_at([f[0] for f in fired])
    return format_scores(run_scores(rt.bundle, recording, fired, rows))


def fed_arm(args):
    """With ``--adc RECORDING``: the simulated arm started with the recording on its analog inputs
    (:class:`edge.commands.emg_loop.FedArm`, for ``--source arm:sim``); else None."""
    if not getattr(args, "adc", None):
        return None
    from edge.bundle import load_bundle
    from edge.commands.emg_loop import FedArm

    channels = load_bundle(args.bundle, check_model=False).channels
    return FedArm(args.adc, args.source, args.arm, bundle_channels=channels)


def run(args) -> int:
    """The ``run`` sub-command (its arguments: :func:`edge.cli.build_parser`)."""
    from edge.runtime import RuntimeConfig, format_report, serve
    from edge.runtime.console import CommandConsole

    lines = wants_lines(args.console)
    cfg = RuntimeConfig(budget_ms=args.budget_ms, safe_after_ms=args.safe_after_ms, stream_speed=args.stream_speed)
    ran, fed = {}, fed_arm(args)  # --adc: the simulated arm, its inputs driven by a recording (the cheap build)

    def on_ready(rt):
        ran["rt"] = rt
        for line in start_lines(rt, args.source, lines):
            print(line, flush=True)
        if fed is not None:
            print(f"[run] simulated arm ({fed.arm.kind}): {fed.feed.describe()}; the run ends with it", flush=True)
            fed.attach(rt)
        if lines:
            ran["console"] = rt.console = CommandConsole.for_runtime(rt)

    try:
        summary = serve(args.bundle, fed.source_spec if fed else args.source, fed.arm_spec if fed else args.arm,
                        config=cfg, log_path=args.log, markers=args.markers,
                        duration=args.duration, log_max_bytes=round(args.log_max_mb * (1 << 20)),
                        log_backups=args.log_keep, view=args.view, on_ready=on_ready)
    finally:
        if "console" in ran:
            ran["console"].close()  # its last lines before the report
        if fed is not None:
            fed.stop()
    print(format_report(summary), flush=True)
    scores = replay_scores(ran["rt"]) if lines and "rt" in ran else ""
    if fed is not None and lines and "rt" in ran:
        from edge.evaluation.live import format_scores

        scores = format_scores(fed.scores(ran["rt"].bundle, summary.fired))
    if scores:
        print("\n" + scores, flush=True)
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary.to_dict(), f, indent=1)
    return 0
