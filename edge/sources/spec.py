"""Source spec strings: one URL-like string chooses a source (as pyserial chooses a transport)::

    lsl:type=EEG                          the one LSL stream of type EEG (several: an error listing them)
    lsl:name=Muse&type=EEG&timeout=10     keys combine with '&'
    replay:rec/subj1_series7_data.csv.gz?speed=1&chunk=10
    synthetic:?kind=grasp-lift&subject=1&seed=0&speed=max
    synthetic:muse?state=relaxed&duration=30
    brainflow:board=synthetic             a BrainFlow board (OpenBCI, Muse, synthetic, playback)
    brainflow:board=cyton&serial_port=/dev/ttyUSB0
    brainflow:muse_2?serial_number=Muse-1234
    brainflow:board=playback&master_board=muse_2&file=rec.csv
    arm:/dev/ttyACM0?channels=0-7&rate=200  the arm's microcontroller: its analog inputs (EMG sensors)
    arm:sim                               the simulated arm's (shared with --arm sim)

The scheme picks the source class (:data:`SCHEMES`); the options a spec may set are the ones
that class declares (its ``OPTIONS``: ``name, type, source_id, timeout, stall_timeout,
drop_tolerance, max_chunk, max_buflen`` for ``lsl:``; ``speed, chunk, stall_timeout`` for
``replay:``; those and each kind's generator options for ``synthetic:``; ``board``, BrainFlow's
connection fields, ``file, master_board, signal`` and the stall/drop options for ``brainflow:``
(:mod:`edge.sources.boards`); ``channels, rate, names, vref, bias, gain, unit, stall_timeout`` for
``arm:`` (:mod:`edge.sources.arm`), whose options follow the *last* '?' so that a pyserial URL keeps
its own query), cast from text by the cast it declares, and passed to its constructor as keywords.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from edge._checks import check_type
from edge.errors import SourceSpecError
from edge.sources.arm import ArmSource
from edge.sources.base import Source
from edge.sources.boards import BrainFlowSource
from edge.sources.lsl import LSLSource
from edge.sources.replay import ReplaySource, SyntheticSource

SCHEMES: dict[str, type[Source]] = {"lsl": LSLSource, "replay": ReplaySource, "synthetic": SyntheticSource,
                                    "brainflow": BrainFlowSource, "arm": ArmSource}
SPEC_EXAMPLES = ("lsl:type=EEG, lsl:name=neurogrip-replay, replay:FILE?speed=1, synthetic:?kind=grasp-lift, "
                 "brainflow:board=synthetic, arm:/dev/ttyACM0?rate=200")


def _parse_query(query: str, spec: str, allowed) -> dict[str, str]:
    if not query:
        return {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise SourceSpecError(f"malformed query {query!r} in source {spec!r}; write key=value pairs "
                              "joined by '&' (e.g. speed=1&chunk=10)") from None
    out: dict[str, str] = {}
    for key, value in pairs:
        if key not in allowed:
            raise SourceSpecError(f"unknown option {key!r} in source {spec!r}; allowed: {', '.join(allowed)}")
        if key in out:
            raise SourceSpecError(f"option {key!r} given twice in source {spec!r}")
        if value == "":
            raise SourceSpecError(f"option {key!r} has no value in source {spec!r}; write {key}=VALUE")
        out[key] = value
    return out


def _cast(options: dict, casts: dict, spec: str) -> dict:
    """The options with each text value converted by its declared cast."""
    out = dict(options)
    for key, value in options.items():
        cast = casts.get(key)
        if cast is None or not isinstance(value, str):
            continue
        try:
            out[key] = cast(value)
        except (TypeError, ValueError):
            want = "a whole number" if cast is int else "a number"
            raise SourceSpecError(f"{key}={value!r} in source {spec!r} is not {want}") from None
    return out


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split a source spec into ``(scheme, target, options)`` (options as strings)."""
    check_type(spec, str, "spec", fix=f"a source spec is a str like {SPEC_EXAMPLES}")
    scheme, sep, rest = spec.partition(":")
    scheme = scheme.strip().lower()
    if not sep or scheme not in SCHEMES:
        raise SourceSpecError(f"unknown source {spec!r}: the scheme must be one of {', '.join(SCHEMES)} "
                              f"(e.g. {SPEC_EXAMPLES})")
    cls = SCHEMES[scheme]
    if scheme == "lsl":  # no target: "lsl:type=EEG" or "lsl:?type=EEG"
        target, query = "", rest.removeprefix("?")
    elif scheme == "arm":  # a pyserial URL may have a query of its own: ours follows the last '?'
        target, _, query = rest.rpartition("?") if "?" in rest else (rest, "", "")
    else:
        target, _, query = rest.partition("?")
        if scheme in ("synthetic", "brainflow") and "=" in target and not query:  # "synthetic:kind=muse"
            target, query = "", target
    params = _parse_query(query, spec, tuple(cls.OPTIONS))
    target, params = cls.check_spec(target, params, spec)
    return scheme, target, params


def open_source(spec: str, **kw) -> Source:
    """Open the source a spec string names (see the module docstring).

    Keyword arguments give defaults for options the spec does not set (e.g.
    ``stall_timeout`` from the runtime's configuration); options in the spec
    win.

    Raises
    ------
    SourceSpecError
        Unknown scheme, malformed query, unknown option or bad value.
    SourceError
        No LSL stream found in time, pylsl/liblsl missing; a BrainFlow board that cannot be opened,
        brainflow or its native library missing.
    RecordingError
        The replay file is missing or malformed.
    """
    scheme, target, params = parse_spec(spec)
    cls = SCHEMES[scheme]
    options = _cast({**kw, **params}, cls.spec_casts(params), spec)
    return cls.from_spec(target, options, spec)


def shares_link(source_spec: str, arm_spec: str | None) -> bool:
    """Whether ``--source`` reads the arm's analog inputs on the very port ``--arm`` names (``arm:PORT`` with
    ``--arm PORT``, ``arm:sim`` with ``--arm sim``): then one link must serve both, since a serial port opens
    once (the runtime hands its link to the source: :func:`edge.runtime.serve.serve`)."""
    scheme, target, _ = parse_spec(source_spec)
    return scheme == "arm" and ArmSource.same_port(target, arm_spec)
