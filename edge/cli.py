"""The ``neurogrip`` command: EEG or EMG in, arm motion out; one entry point, one sub-command per job.

It covers both signals end to end: EEG (a headset over LSL or BrainFlow: grasp-and-lift, emotion) and
EMG (a Myo armband: gestures) — record a session, calibrate a bundle to the person, evaluate it, run
it against the arm or the simulated one.  Sub-commands that are more than a call live in
:mod:`edge.commands` (``run``, ``demo``, ``doctor``, ``info``, ``synth``) or in their package's own
command module (:mod:`edge.bundle.commands`).

The top of the house: the only module of ``edge`` that imports ``training`` and ``benchmarks``
(nothing below imports it).  Sub-commands import their implementation lazily, so
``neurogrip --help`` and the edge commands work on a Raspberry Pi without the training extras;
a sub-command whose extra is missing fails with one line naming the install fix, and every
error of neurogrip's own (bad file, bundle, stream, port, training data) is one line with its
fix, never a traceback.  Each option's default comes from the config object that owns it
(:mod:`edge.config`, :mod:`edge.tasks`, the function it feeds).

The console is for a person: third-party libraries' log lines are kept out of it unless
``neurogrip --verbose COMMAND`` (:func:`quiet_third_party`): TensorFlow's C++ (absl) and Python
(``tensorflow``/``absl`` loggers, ``warnings``) messages, TFLite's INFO lines, and liblsl's
(:func:`edge.sources.lsl_config.quiet_liblsl`).  neurogrip's own progress, warnings and errors are unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import logging
import math
import os
import re
import subprocess
import sys
import warnings

from edge import config, progress
from edge.errors import EdgeError
from edge.tasks import get_task, task_names
from firmware_bridge.errors import LinkError

# Top-level module of a missing dependency → the extra that provides it.
EXTRA_FOR_MODULE = {
    "tensorflow": "train", "sklearn": "train", "scipy": "train", "matplotlib": "train",
    "pylsl": "edge", "serial": "edge", "tflite_runtime": "edge", "ai_edge_litert": "edge",
    "brainflow": "edge", "pyxdf": "edge", "edfio": "edge", "cryptography": "edge",
}


# Environment variable that tells the rest of neurogrip (and the processes it starts) --verbose was given.
VERBOSE_ENV = "NEUROGRIP_VERBOSE"

# Python packages whose warnings (``warnings`` module) and log records below ERROR are not shown.
THIRD_PARTY = ("tensorflow", "keras", "tf_keras", "absl", "h5py", "google.protobuf", "ai_edge_litert",
               "tflite_runtime", "ml_dtypes")

# Lines that native code (TensorFlow's C++, absl logging, TFLite) writes straight to file descriptor 2,
# out of reach of Python's logging.  absl prints everything before absl::InitializeLog() — which
# TensorFlow never calls — whatever TF_CPP_MIN_LOG_LEVEL says: "I0000 ... port.cc] oneDNN custom
# operations are on" at import.  INFO and WARNING lines only: ERROR and FATAL lines always pass.
NATIVE_NOISE = re.compile(
    rb"[IW]\d{4} [\d:.]+ +\d+ [^\]]*\] "                # absl/glog INFO and WARNING lines
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|(?:INFO|WARNING|VERBOSE): "                               # TFLite minimal logging (XNNPACK delegate)
    rb"|fully_quantize: \d+, inference_type: ")                   # the TFLite converter's calibration printf
# Sub-commands that load TensorFlow or a TFLite interpreter: their native output is filtered.
NATIVE_NOISY = frozenset({"train", "evaluate", "bench", "replay-outputs", "demo"})

# The filter runs in its own small process so that a native crash message (written just before an
# abort) still reaches the console; it ignores Ctrl-C and SIGTERM and ends when the pipe closes.
_FILTER = """
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
noise, out = re.compile(sys.argv[1].encode("latin-1")), sys.stdout.buffer
for line in sys.stdin.buffer:
    if not noise.match(line):
        out.write(line)
        out.flush()
"""


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def quiet_third_party(verbose: bool = False) -> None:
    """Keep third-party log lines out of the console (unless ``verbose``); call before TensorFlow is imported.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (TensorFlow's own C++ logging; a value the user set is kept),
    passes only ERROR records of the ``tensorflow``, ``absl`` (Keras and the TFLite converter log
    through it) and ``h5py`` loggers — which also hides Keras's tf.function retracing warnings —,
    and ignores Python warnings raised in those packages.  Native lines printed below logging are
    filtered by :func:`native_log_filter`.  With ``verbose``: nothing is hidden, Python's logging
    shows INFO records, and ``NEUROGRIP_VERBOSE=1`` tells the LSL import (and child processes) to
    leave liblsl's log level alone.
    """
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "absl", "keras", "h5py"):
        logger = logging.getLogger(name)
        if _errors_only not in logger.filters:
            logger.addFilter(_errors_only)
    modules = "|".join(re.escape(m) for m in THIRD_PARTY)
    warnings.filterwarnings("ignore", module=rf"(?:{modules})(?:\.|$)")
    warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated")


@contextlib.contextmanager
def native_log_filter(enabled: bool = True):
    """While active, lines written to file descriptor 2 that match :data:`NATIVE_NOISE` are dropped.

    fd 2 is pointed at a pipe read by a small filter process that writes every other line to the
    original stderr (Python's ``sys.stderr`` writes to fd 2 too: its lines pass unchanged).  When the
    original stderr is a terminal, progress bars are drawn on it directly (a bar is no line for the
    filter to pass: :func:`edge.progress.draw_bars_on`).  On exit fd 2 is restored.  Without a way to
    start the filter (no ``sys.executable``, not POSIX), nothing is filtered.
    """
    if not enabled or os.name != "posix" or not sys.executable:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER, NATIVE_NOISE.pattern.decode("latin-1")],
                                stdin=subprocess.PIPE, stdout=saved, stderr=saved)
    except OSError:
        os.close(saved)
        yield
        return
    os.dup2(proc.stdin.fileno(), 2)
    proc.stdin.close()
    terminal = open(os.dup(saved), "w", buffering=1) if os.isatty(saved) else None  # noqa: SIM115 - closed below
    progress.draw_bars_on(terminal)
    try:
        yield
    finally:
        progress.draw_bars_on(None)
        if terminal is not None:
            terminal.close()
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end here: the filter sees EOF
        os.close(saved)
        try:
            proc.wait(timeout=2)  # a child process of ours may still hold the pipe: leave the filter to it
        except subprocess.TimeoutExpired:
            pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, with the fix, instead of argparse's usage dump
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input or a missing part, not a bug: reported in one line."""
    errors: list[type[BaseException]] = [EdgeError, LinkError]
    if "training.errors" in sys.modules:  # imported by a training sub-command that ran
        errors.append(sys.modules["training.errors"].TrainingError)
    return tuple(errors)


def _default(fn, name: str):
    """The default of parameter ``name`` of ``fn``: the function that uses a value owns its default."""
    return inspect.signature(fn).parameters[name].default


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


def _bounded(cast, lo: float, what: str, *, above: bool = False):
    """An argparse type: ``cast(text)``, finite and >= ``lo`` (> with ``above``), else a one-line error."""
    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not (math.isfinite(v) and (v > lo if above else v >= lo)):
            raise argparse.ArgumentTypeError(f"must be {what} {'>' if above else '>='} {lo:g}, got {text}")
        return v
    return parse


def _cmd_bench(args) -> int:
    from benchmarks.run import main as bench_main

    return bench_main(args.quick, args.json, args.markdown, plots_dir=args.plots, bundles=args.bundle,
                      sections=args.sections)


def _require_modules(*names: str) -> None:
    """Fail now, in one line naming the extra, rather than after the data are loaded."""
    for name in names:
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _cmd_train(args) -> int:
    _require_modules("tensorflow", "sklearn")
    from training.train import train

    train(args.task, args.data, args.out, model_kind=args.model, quick=args.quick, seed=args.seed,
          epochs=args.epochs, lso_folds=args.lso_folds, participants=args.participants,
          progress=lambda m: print(m, flush=True))
    return 0


def _cmd_evaluate(args) -> int:
    import json

    from edge.evaluation.evaluate import evaluate

    result = evaluate(args.bundle, args.data, quick=args.quick, progress=lambda m: print(m, flush=True))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if args.plot:
        from benchmarks.plots import timeline_png
        from edge.bundle import load_bundle
        from edge.evaluation.held_out import first_held_out
        from edge.evaluation.replay import timeline

        bundle = load_bundle(args.bundle)
        rec = first_held_out(bundle.task, args.data)
        tl = timeline(bundle, rec, seconds=args.plot_seconds)
        title = f"{bundle.task}: {rec.source} (held out), first {args.plot_seconds:g} s of data"
        path = timeline_png(tl, args.plot, title)
        print(f"[evaluate] timeline {path}", flush=True)
    return 0


def _cmd_calibrate(args) -> int:
    from edge.calibration import calibrate
    from edge.errors import CalibrationError

    if os.path.lexists(args.out) and not args.overwrite:  # a file, a folder or a link (a dangling one too)
        raise CalibrationError(f"--out {args.out} already exists; choose another path, or pass --overwrite to "
                               "replace it (--force is something else: it writes a bundle judged worse than the base)")

    result = calibrate(args.bundle, args.data, args.out, holdout=args.holdout, force=args.force, progress=print,
                       sign_key=args.sign_key, overwrite=args.overwrite)
    print(f"[calibrate] {result.summary()}")
    if args.install:
        from edge.bundle.commands import install

        install(args.out)
    return 0


def _lazy(module: str, function: str):
    """A sub-command whose body is ``module.function(args)``, imported only when it runs."""
    def call(args):
        return getattr(importlib.import_module(module), function)(args)
    return call


def _cmd_passthrough(args) -> int:
    """A sub-command with its own argument parser: ``module.function(argv)`` (see :data:`PASSTHROUGH`)."""
    dest, module, function, _ = PASSTHROUGH[args.command]
    return int(getattr(importlib.import_module(module), function)(getattr(args, dest)) or 0)


def build_parser() -> argparse.ArgumentParser:
    from edge.config import RuntimeConfig
    from edge.recordings.synthetic import grasp_lift_series, muse_recording

    parser = _Parser(prog="neurogrip", description="EEG or EMG in, arm motion out: neurogrip's command line "
                     "(record a session, calibrate a bundle to a person, evaluate it, run it against an arm).")
    parser.add_argument("--verbose", action="store_true",
                        help="also show third-party log lines (TensorFlow, TFLite, liblsl) and INFO log records "
                             f"(before the command: neurogrip --verbose COMMAND ...; or {VERBOSE_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("info", help="read recordings and print what they contain")
    p.add_argument("recordings", nargs="+", help="Kaggle _data.csv[.gz], Muse CSV, GAMEEMO CSV, .xdf, .edf or .bdf files")
    p.set_defaults(func=_lazy("edge.commands.recordings", "info"))

    p = sub.add_parser("synth", help="write realistic synthetic recordings in the real file layouts")
    p.add_argument("kind", choices=("grasp-lift", "muse"))
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--subjects", type=_parse_int_list, default=[1], help="e.g. 1-3 (default 1)")
    p.add_argument("--series", type=_parse_int_list, default=list(range(1, 9)), help="grasp-lift series (1-8)")
    trials, duration = _default(grasp_lift_series, "n_trials"), _default(muse_recording, "duration_s")
    p.add_argument("--trials", type=int, default=trials, help=f"grasp-lift trials per series (default {trials})")
    p.add_argument("--duration", type=float, default=duration,
                   help=f"muse seconds per recording (default {duration:g})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timing-from", metavar="DIR", help="draw trial timing from real Kaggle events files here")
    p.set_defaults(func=_lazy("edge.commands.recordings", "synth"))

    p = sub.add_parser("train", help="train a model, evaluate it honestly and export an int8 bundle")
    p.add_argument("--task", required=True, choices=task_names(),
                   help="; ".join(f"{t}: {get_task(t).description}" for t in task_names()))
    p.add_argument("--data", required=True, help="recordings folder, or 'synthetic'")
    p.add_argument("--out", required=True, help="bundle directory (or .zip) to write; report in <out>.report/")
    p.add_argument("--model", choices=("cnn", "gru"), help="default: the task's own ("
                   + ", ".join(f"{get_task(t).default_model} for {t}" for t in task_names()) + ")")
    p.add_argument("--quick", action="store_true", help="tiny data and 2 epochs: a smoke run (< 1 min)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="maximum epochs (early stopping on the tune block)")
    p.add_argument("--lso-folds", type=int, help="grasp-lift leave-subjects-out folds (default 3, 0 = skip)")
    p.add_argument("--participants", type=lambda t: [x for x in t.split(",") if x], metavar="A,B",
                   help="gesture: the evaluation participants to calibrate (default: all)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="run a bundle through the edge path on held-out data, print metrics")
    p.add_argument("bundle")
    p.add_argument("--data", required=True, help="recordings folder, or 'synthetic'")
    p.add_argument("--json", metavar="FILE", help="write the metrics as JSON")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--plot", metavar="PNG", help="a timeline of one held-out recording: truth, probabilities, "
                                                 "commands sent and held, the arm's state")
    p.add_argument("--plot-seconds", type=float, default=60.0, help="how much of it to draw (default 60)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("record", help="a guided session: cues on the terminal, signal + cue markers into an XDF file")
    p.add_argument("--source", required=True, help="where the signal comes from (lsl:..., replay:..., synthetic:..., brainflow:..., "
                                                      "arm:PORT?channels=0-7&rate=200: the arm's own analog inputs)")
    p.add_argument("--paradigm", required=True, help="gesture, emotion, grasp-lift, or a TOML file of cues")
    p.add_argument("--out", required=True, help="the .xdf file to write")
    p.add_argument("--view", metavar="[ADDR:]PORT", help=VIEW_HELP + " (the cue in large letters, for a phone)")
    p.set_defaults(func=_lazy("edge.commands.recordings", "record"))

    p = sub.add_parser("calibrate", help="adapt a bundle to one person from their session (on the Pi, no TensorFlow)")
    p.add_argument("--bundle", required=True, help="the base bundle")
    p.add_argument("--data", required=True, nargs="+", metavar="SESSION",
                   help="the person's session: a 'neurogrip record' file, or dataset files (several = one session)")
    p.add_argument("--out", required=True, help="the calibrated bundle to write (directory or .zip)")
    p.add_argument("--holdout", type=float, default=config.CALIBRATION_HOLDOUT,
                   help="last fraction of each session file that judges base vs calibrated "
                        f"(default {config.CALIBRATION_HOLDOUT:g})")
    p.add_argument("--force", action="store_true", help="write the bundle even if it is worse than the base there")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (refused otherwise)")
    p.add_argument("--install", action="store_true",
                   help="then make it the bundle the service runs (the previous one kept: 'neurogrip rollback')")
    p.add_argument("--sign-key", metavar="PRIVATE.pem",
                   help="sign the calibrated bundle with this key (default where a trust store is installed: "
                        "this Pi's device key, 'neurogrip keygen --device')")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("run", help="the edge runtime: EEG or EMG source -> int8 model -> arm commands",
                       description=RUN_CONSOLE)
    p.add_argument("--bundle", required=True, help="model bundle directory or .zip")
    p.add_argument("--source", required=True,
                   help="lsl:name=X | lsl:type=EEG (or EMG) | replay:PATH[?speed=1] | synthetic:[?kind=grasp-lift] | "
                        "brainflow:board=NAME[&serial_port=...] | arm:PORT[?channels=0-7&rate=200] (the arm's "
                        "analog inputs; with --arm PORT, the same port, one link serves both)")
    p.add_argument("--arm", default="none", help="serial port or pyserial URL, 'sim' (simulated arm) or 'none' "
                                                 "(the default: nothing is sent, as the run says at its start)")
    p.add_argument("--adc", metavar="RECORDING", help="with --source arm:sim: the recording drives the simulated arm's "
                                                      "analog inputs, scaled as the spec says; the run ends with it")
    lines = p.add_mutually_exclusive_group()
    lines.add_argument("--quiet", dest="console", action="store_const", const="quiet", default="auto",
                       help="no per-command lines, even on a terminal: the report at the end only")
    lines.add_argument("--lines", dest="console", action="store_const", const="lines",
                       help="per-command lines even when stdout is no terminal (a pipe, the service's journal)")
    defaults = RuntimeConfig()
    p.add_argument("--budget-ms", type=float, default=defaults.budget_ms,
                   help=f"per-decision processing budget (default {defaults.budget_ms:g})")
    p.add_argument("--safe-after-ms", type=float, default=defaults.safe_after_ms,
                   help=f"stream silence before the safe pose (default {defaults.safe_after_ms:g})")
    p.add_argument("--stream-speed", type=float, default=defaults.stream_speed,
                   help="the LSL stream is a recording played this many times faster than real time "
                        "('neurogrip stream --speed'); its rate is checked against that (0: not checked)")
    p.add_argument("--log", metavar="FILE", help="append decisions, faults and timings as JSON lines "
                                                 "(rotated by size: FILE.1, FILE.2 ...)")
    p.add_argument("--log-max-mb", type=_bounded(float, 0, "a finite number of MB", above=True), default=config.LOG_MAX_BYTES / (1 << 20),
                   help=f"rotate the log at this size (default {config.LOG_MAX_BYTES >> 20:d} MB)")
    p.add_argument("--log-keep", type=_bounded(int, 1, "a whole number"), default=config.LOG_BACKUPS,
                   help=f"rotated logs kept (default {config.LOG_BACKUPS})")
    p.add_argument("--markers", action="store_true", help="publish decisions on an LSL marker stream")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--summary", metavar="FILE", help="write the run summary (latency report) as JSON")
    p.add_argument("--view", metavar="[ADDR:]PORT", help=VIEW_HELP + " (signal, outputs, decisions, arm, latency, "
                                                         "e-stop)")
    p.set_defaults(func=_lazy("edge.commands.run", "run"))

    link = f"${'{'}NEUROGRIP_BUNDLE_LINK{'}'}, default {config.BUNDLE_LINK}"
    p = sub.add_parser("install-bundle", help=f"make a bundle the one the service runs ({link}); the previous "
                                              "one is kept for 'neurogrip rollback'")
    p.add_argument("bundle")
    p.set_defaults(func=_lazy("edge.bundle.commands", "install_main"))
    p = sub.add_parser("rollback", help="go back to the bundle the service ran before the last install")
    p.set_defaults(func=_lazy("edge.bundle.commands", "rollback_main"))

    p = sub.add_parser("replay-outputs", help="int8 outputs of every window of a recording (platform checks)")
    p.add_argument("--bundle", required=True)
    p.add_argument("--recording", required=True)
    p.add_argument("--out", required=True, help=".npy file for the (n_windows, n_labels) int8 outputs")
    p.add_argument("--reference-out", metavar="FILE",
                   help="also the outputs with TFLite's reference kernels (bit-identical across CPUs)")
    p.add_argument("--chunk", type=int, help=f"samples per chunk (default {config.REPLAY_CHUNK_S * 1e3:g} ms)")
    p.set_defaults(func=_lazy("edge.commands.replay_outputs", "replay_outputs"))

    for name, (dest, _, _, help_) in PASSTHROUGH.items():
        p = sub.add_parser(name, help=help_, add_help=False)
        p.add_argument(dest, nargs=argparse.REMAINDER, help=f"see 'neurogrip {name} --help'")
        p.set_defaults(func=_cmd_passthrough)

    p = sub.add_parser("bench", help="measure speed and accuracy against peers (see benchmarks/)")
    p.add_argument("--quick", action="store_true", help="small sizes, checks the benchmark runs (<2 min)")
    p.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown tables")
    p.add_argument("--plots", metavar="DIR", help="write PNG plots (latency CDFs, throughput bars, ROC curves)")
    p.add_argument("--bundle", action="append", metavar="B",
                   help="bundle(s) to measure (default: build/bundles/*, else the test fixtures)")
    p.add_argument("--sections", type=lambda t: t.split(","), metavar="A,B",
                   help="only these sections (default: all)")
    p.set_defaults(func=_cmd_bench)
    return parser


RUN_CONSOLE = ("On a terminal, a line per command as it happens (stream time, label -> action, sent with the "
               "arm's ACK time, or held and why) and, for a labelled replay, its commands against the truth at the "
               "end; off a terminal (a pipe, the service's journal) only the report at the end, as with --quiet, "
               "unless --lines.  Faults are printed once each, on stderr; a run with no arm says so at its start.")

VIEW_HELP = ("serve a live view in the browser on PORT (127.0.0.1 unless ADDR is named; 0.0.0.0: the whole network); "
             "its URL with the access token is printed at start-up (a fixed $NEUROGRIP_VIEW_TOKEN is not: the URL "
             "names it) (docs/live-view.md)")

# Sub-commands with their own argument parser: everything after the name is theirs.
# name -> (attribute holding the rest of the command line, module, function(argv) -> exit code, help)
PASSTHROUGH = {
    "stream": ("player_args", "edge.sources.player", "main", "publish a recording as a live LSL stream"),
    "doctor": ("doctor_args", "edge.commands.doctor", "main", "check this machine and a bundle for running the edge"),
    "demo": ("demo_args", "edge.commands.demo", "main", "stream a recording over LSL through the runtime to the simulated arm"),
    "arm-sim": ("sim_args", "edge.commands.arm_sim", "main",
                "start the simulated arm (real firmware under simavr), print its pty; --adc RECORDING feeds its ADC"),
    "keygen": ("keygen_args", "edge.bundle.commands", "keygen_main", "make an Ed25519 key pair for signing bundles"),
    "sign": ("sign_args", "edge.bundle.commands", "sign_main", "sign a bundle with a private key (writes its signature.json)"),
    "verify": ("verify_args", "edge.bundle.commands", "verify_main", "check that a bundle is signed by a trusted key"),
}


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    n_global = next((i for i, a in enumerate(argv) if a != "--verbose"), len(argv))  # global options first
    if n_global < len(argv) and argv[n_global] in PASSTHROUGH:
        args = parser.parse_args(argv[:n_global + 1])
        setattr(args, PASSTHROUGH[argv[n_global]][0], argv[n_global + 1:])
    else:
        args = parser.parse_args(argv)
    verbose = args.verbose or os.environ.get(VERBOSE_ENV) == "1"  # also inherited from a verbose parent
    quiet_third_party(verbose)
    with native_log_filter(not verbose and args.command in NATIVE_NOISY):
        return _run(args)


def _run(args) -> int:
    """Run the sub-command; a user's mistake or a missing part is one line naming the fix."""
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"neurogrip {args.command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        extra = EXTRA_FOR_MODULE.get(root)
        if extra is None:
            raise
        print(f"neurogrip {args.command}: needs the Python module '{root}'; "
              f"install it with: pip install 'neurogrip[{extra}]'", file=sys.stderr)
        return 3
    except Exception as exc:
        if isinstance(exc, _user_errors()):
            message = str(exc)
        elif isinstance(exc, OSError) and exc.filename is not None:  # a file or folder the user named
            message = f"{exc.filename}: {exc.strerror or exc}; check the path and its permissions"
        else:
            raise
        print(f"neurogrip {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
