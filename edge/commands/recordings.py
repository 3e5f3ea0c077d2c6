"""``neurogrip info``, ``neurogrip synth`` and ``neurogrip record``: what recordings contain, realistic
synthetic ones in the real file layouts (:mod:`edge.recordings`, :mod:`edge.recordings.synthetic`), and a
guided session recorded into an XDF file (:mod:`edge.record`)."""

from __future__ import annotations

import signal
from pathlib import Path


def info(args) -> int:
    """Print what each of ``args.recordings`` contains."""
    from edge.recordings import read_recording

    for path in args.recordings:
        rec = read_recording(path)
        dur = rec.n_samples / rec.fs
        print(f"{rec.source}: {rec.n_samples} samples x {len(rec.channels)} channels at {rec.fs:g} Hz "
              f"({dur:.1f} s), {len(rec.segments)} contiguous segment(s)"
              + (f", state={rec.state}" if rec.state else "")
              + (f", labels={','.join(rec.label_names)}" if rec.labels is not None else "")
              + (f", {len(rec.markers)} marker(s)" if rec.markers else ""))
    return 0


def synth(args) -> int:
    """Write synthetic recordings of ``args.kind`` into ``args.out``; print each file written."""
    from edge.recordings import write_muse
    from edge.recordings.synthetic import TrialTiming, muse_recording, synthesize_grasp_lift

    if args.kind == "grasp-lift":
        timing = None
        if args.timing_from:
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


def record(args) -> int:
    """A guided session into ``args.out``; 0 when complete, 130 when interrupted (Ctrl-C, SIGTERM), else 1."""
    from edge.record import record as record_session
    from edge.record.recorder import TERMINATED

    def terminated(signum, frame):  # a service stop, `kill`: close the file with its footer, as Ctrl-C does
        raise KeyboardInterrupt(TERMINATED)

    signal.signal(signal.SIGTERM, terminated)
    result = record_session(args.source, args.paradigm, args.out, view=args.view)
    if result.partial:
        return 130 if result.interrupted else 1
    return 0
