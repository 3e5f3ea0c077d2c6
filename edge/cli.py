"""The ``neurogrip`` command: one entry point, one sub-command per job.

Sub-commands import their implementation lazily, so ``neurogrip --help`` and
the edge commands work on a Raspberry Pi without the training extras; a
sub-command whose extra is missing fails with one line naming the install fix.
"""

from __future__ import annotations

import argparse
import sys

from edge.errors import EdgeError

# Top-level module of a missing dependency → the extra that provides it.
EXTRA_FOR_MODULE = {
    "tensorflow": "train", "sklearn": "train", "scipy": "train", "matplotlib": "train",
    "pylsl": "edge", "serial": "edge", "tflite_runtime": "edge", "ai_edge_litert": "edge",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, with the fix, instead of argparse's usage dump
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _parse_int_list(text: str) -> list[int]:
    """'1-3,5' → [1, 2, 3, 5]."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list like 1-3,5") from None
    return out


def _cmd_info(args) -> int:
    from edge.recordings import read_recording

    for path in args.recordings:
        rec = read_recording(path)
        dur = rec.n_samples / rec.fs
        print(f"{rec.source}: {rec.n_samples} samples x {len(rec.channels)} channels at {rec.fs:g} Hz "
              f"({dur:.1f} s), {len(rec.segments)} contiguous segment(s)"
              + (f", state={rec.state}" if rec.state else "")
              + (f", labels={','.join(rec.label_names)}" if rec.labels is not None else ""))
    return 0


def _cmd_synth(args) -> int:
    from edge.synthetic import TrialTiming, muse_recording, synthesize_grasp_lift, write_muse

    if args.kind == "grasp-lift":
        timing = None
        if args.timing_from:
            from pathlib import Path

            from edge.errors import RecordingError

            files = sorted(Path(args.timing_from).glob("subj*_series*_events.csv*"))
            if not files:
                raise RecordingError(args.timing_from, None, "no events files", "Kaggle *_events.csv[.gz] files")
            timing = TrialTiming.from_events_files(files)
        written = synthesize_grasp_lift(args.out, args.subjects, args.series, seed=args.seed,
                                        n_trials=args.trials, timing=timing)
    else:
        written = []
        for s in args.subjects:
            for state in ("concentrating", "neutral", "relaxed"):
                rec = muse_recording(f"{s}", state, duration_s=args.duration, seed=args.seed)
                written.append(write_muse(rec, f"{args.out}/subject{s}-{state}-1.csv"))
    for p in written:
        print(p)
    return 0


def _cmd_bench(args) -> int:
    from benchmarks.run import main as bench_main

    return bench_main(args.quick, args.json, args.markdown)


def _cmd_arm_sim(args) -> int:
    from firmware_bridge.sim import main as sim_main

    return int(sim_main(args.sim_args) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neurogrip", description="EEG in, arm motion out: neurogrip's command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("info", help="read recordings and print what they contain")
    p.add_argument("recordings", nargs="+", help="Kaggle _data.csv[.gz], Muse CSV or GAMEEMO CSV files")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("synth", help="write realistic synthetic recordings in the real file layouts")
    p.add_argument("kind", choices=("grasp-lift", "muse"))
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--subjects", type=_parse_int_list, default=[1], help="e.g. 1-3 (default 1)")
    p.add_argument("--series", type=_parse_int_list, default=list(range(1, 9)), help="grasp-lift series (1-8)")
    p.add_argument("--trials", type=int, default=34, help="grasp-lift trials per series (default 34)")
    p.add_argument("--duration", type=float, default=60.0, help="muse seconds per recording")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timing-from", metavar="DIR", help="draw trial timing from real Kaggle events files here")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("arm-sim", help="start the simulated arm (real firmware under simavr) and print its pty")
    p.add_argument("sim_args", nargs=argparse.REMAINDER, help="options passed to the simulator (see --help)")
    p.set_defaults(func=_cmd_arm_sim)

    p = sub.add_parser("bench", help="measure speed and accuracy against peers (see benchmarks/)")
    p.add_argument("--quick", action="store_true", help="small sizes, checks the benchmark runs (<2 min)")
    p.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown tables")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        extra = EXTRA_FOR_MODULE.get(root)
        if extra is None:
            raise
        print(f"neurogrip {args.command}: needs the Python module '{root}'; "
              f"install it with: pip install 'neurogrip[{extra}]'", file=sys.stderr)
        return 3
    except EdgeError as exc:
        print(f"neurogrip {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
