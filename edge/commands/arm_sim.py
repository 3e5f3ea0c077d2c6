"""``neurogrip arm-sim``: the simulated arm (:func:`firmware_bridge.sim.run`), its analog inputs driven by a
recording with ``--adc``.

``--adc RECORDING`` takes any file neurogrip reads (a Myo session folder, an XDF or EDF file, a Kaggle
CSV ...) or an ADC feed file (``NGADC1``): the recording's channels drive A0.. at the recording's own rate
in simulated time, scaled to a sensor's 0–5 V swing around its bias (:mod:`edge.sources.arm_feed`: a
declared gain, the exact inverse of what the ``arm:`` source reads), from the first STREAM_START on.  It
prints the ``arm:`` spec that reads them back, e.g.::

    neurogrip arm-sim --adc ../shared/data/myo_armband/EvaluationDataset/Male1/Test0
    neurogrip run --bundle B --source 'arm:/tmp/neurogrip-arm-k2x9/tty?channels=0-7&rate=200' --arm /tmp/neurogrip-arm-k2x9/tty

(``neurogrip run --source arm:sim --arm sim --adc RECORDING`` does both in one command.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.errors import EdgeError
from firmware_bridge import sim
from firmware_bridge.adc_feed import ADC_FEED_MAGIC


def is_feed_file(path) -> bool:
    """Whether ``path`` is an ADC feed file (its first bytes are ``NGADC1``) rather than a recording."""
    p = Path(path)
    if not p.is_file():
        return False
    with p.open("rb") as f:
        return f.read(len(ADC_FEED_MAGIC) + 1) == (ADC_FEED_MAGIC + " ").encode()


def add_scale_options(ap: argparse.ArgumentParser) -> None:
    """The options that scale a recording onto the inputs (:func:`edge.sources.arm_feed.feed_scale`)."""
    ap.add_argument("--gain", type=float, help="the sensor's gain, as the arm: source's gain= (default: the largest "
                                               "1/2/5 x 10^k at which the recording does not clip; 1 for a Myo session)")
    ap.add_argument("--unit", help="the recording's unit, as the arm: source's unit= (default: the one it declares, "
                                   "else myo)")
    ap.add_argument("--bias", type=float, default=2.5, help="the sensor's output at rest, V (default 2.5)")
    ap.add_argument("--vref", type=float, default=5.0, help="the ADC's reference, V (default 5)")
    ap.add_argument("--channels", help="the recording's channels to feed to A0.., comma-separated names or "
                                       "indices (default: all, at most 8)")


def feed_from_args(path, args):
    """``(adc for sim.start, a line saying what it holds, the arm: spec that reads it back or None)``."""
    if is_feed_file(path):
        return str(path), f"ADC feed {path}", None
    from edge.sources.arm_feed import recording_feed

    channels = None if not args.channels else [c.strip() for c in args.channels.split(",")]
    rf = recording_feed(Path(path), channels=channels, unit=args.unit, gain=args.gain, bias=args.bias, vref=args.vref)
    return rf.feed, f"{Path(path).name}: {rf.describe()}", rf


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="neurogrip arm-sim", description=(
        "start the simulated arm (the real firmware under simavr, else its host build), print its pty and run "
        "until Ctrl-C, SIGTERM or SIGHUP"))
    ap.add_argument("--host", action="store_true", help="run the host build instead of the simavr Uno")
    ap.add_argument("--trace-ms", type=int, default=0, help="print servo pulse widths every N ms")
    ap.add_argument("--adc", metavar="RECORDING", help="drive the analog inputs A0.. with a recording (any file "
                                                       "neurogrip reads, or an NGADC1 feed file)")
    add_scale_options(ap)
    args = ap.parse_args(argv)
    adc = about = None
    if args.adc:
        try:
            adc, about, rf = feed_from_args(args.adc, args)
        except (EdgeError, OSError, ValueError) as exc:
            print(f"neurogrip arm-sim: error: {exc}", file=sys.stderr)
            return 1
        if rf is not None:
            about = (lambda arm, text=about: f"{text}; read them with --source '{rf.spec(arm.pty)}'")
    return sim.run("host" if args.host else "simavr", trace_ms=args.trace_ms, adc=adc, adc_about=about)
