"""What every source is: :class:`Chunk`, :class:`SourceCounters` and the :class:`Source` base class.

A source has ``channels``, ``fs``, ``kind``, ``read(timeout) -> Chunk | None``, ``close()``,
the running :class:`SourceCounters` and the stall state (``stalled``,
``seconds_since_last_sample()``).  ``read`` never raises because data stopped: the runtime
polls ``stalled`` and puts the arm in its safe state, then resumes when data returns.

A source class that a spec string can open declares its options: :attr:`Source.OPTIONS` maps
each spec key to the cast from the spec's text, and every keyword of its constructor
(:meth:`Source.spec_factory`) is either an option or named in :attr:`Source.NOT_IN_SPEC` with
the reason.  The two are checked against each other when the class is defined, so the spec
parser (:mod:`edge.sources.spec`) and the constructor cannot disagree.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import ClassVar

import numpy as np

from edge._checks import check_int, check_number
from edge.config import STALL_TIMEOUT_S
from edge.errors import SourceError, SourceSpecError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    """Consecutive samples from a source.

    The arrays are read-only and only valid until the next ``read()`` of the
    same source (LSL sources reuse preallocated buffers); call :meth:`copy`
    to keep a chunk.

    Attributes
    ----------
    samples : ndarray, shape (n, n_channels), float64
    timestamps : ndarray, shape (n,), float64
        Seconds: LSL clock (clock-corrected) for LSL, recording time for replay.
    t_received : float
        ``time.monotonic()`` when ``read()`` returned the chunk.
    first_index : int
        Running count of samples this source delivered before this chunk.
    discontinuity : bool
        Samples are missing (gap in the recording, dropped or lost LSL
        samples) between the previous chunk and this one, or inside this one.
    labels : ndarray, shape (n, n_labels), or None
        Per-sample truth when replaying a labelled recording; None for LSL.
    """

    samples: np.ndarray
    timestamps: np.ndarray
    t_received: float
    first_index: int
    discontinuity: bool = False
    labels: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.samples.shape[0])

    def copy(self) -> Chunk:
        """A chunk owning its arrays (safe to keep after the next read)."""
        return replace(self, samples=self.samples.copy(), timestamps=self.timestamps.copy(),
                       labels=None if self.labels is None else self.labels.copy())


@dataclass
class SourceCounters:
    """Running totals of a source.

    ``dropped`` counts LSL samples missing by the timestamps (including those
    missing across a stall) and an arm stream's lost scans; a replay's gaps
    are not counted there, only flagged.  ``discontinuities`` counts flagged chunks; ``stalls`` counts
    entries into the stalled state.
    """

    samples: int = 0
    chunks: int = 0
    dropped: int = 0
    stalls: int = 0
    discontinuities: int = 0


def check_min(value, name: str, lo: float, unit: str, *, above: bool = False, integer: bool = False):
    """``value`` as an int (``integer``) or a finite float that is ``>= lo`` (``> lo`` with ``above``).

    The type is checked by :mod:`edge._checks`; the range error reads as the spec errors always
    have ("chunk must be >= 1 sample, got 0").  Both raise :class:`SourceSpecError`.
    """
    value = (check_int if integer else check_number)(value, name, exc=SourceSpecError)
    if value < lo or (above and value == lo):
        raise SourceSpecError(f"{name} must be {'>' if above else '>='} {lo:g} {unit}, got {value}")
    return value


def check_stall_timeout(value) -> float:
    return check_min(value, "stall_timeout", 0, "seconds", above=True)


def read_only(a: np.ndarray) -> np.ndarray:
    if not a.flags.writeable:  # e.g. a slice of a replay's read-only arrays: nothing to do
        return a
    v = a.view()
    v.flags.writeable = False
    return v


def option_mismatches(cls: type[Source]) -> list[str]:
    """How ``cls.OPTIONS`` and ``cls.NOT_IN_SPEC`` disagree with ``cls.spec_factory()``'s keywords."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(cls.spec_factory()).parameters
    keywords = [n for n, p in params.items() if p.kind in kinds]
    where = f"{cls.__name__}.{getattr(cls.spec_factory(), '__name__', '__init__')}"
    problems = [f"{where} takes {k!r}, which is neither in OPTIONS nor in NOT_IN_SPEC"
                for k in keywords if k not in cls.OPTIONS and k not in cls.NOT_IN_SPEC]
    problems += [f"{k!r} is in OPTIONS but is no keyword of {where}" for k in cls.OPTIONS if k not in keywords]
    problems += [f"{k!r} is in NOT_IN_SPEC but is no keyword of {where}" for k in cls.NOT_IN_SPEC
                 if k not in keywords]
    problems += [f"{k!r} is both in OPTIONS and in NOT_IN_SPEC" for k in cls.OPTIONS if k in cls.NOT_IN_SPEC]
    problems += [f"NOT_IN_SPEC gives no reason for {k!r}" for k, why in cls.NOT_IN_SPEC.items() if not why]
    return problems


class Source:
    """Base class of EEG sources (see the module docstring).

    Attributes
    ----------
    channels : list of str
    fs : float
        Nominal sampling rate in Hz (0 for an irregular LSL stream).
    kind : str
        ``"lsl"``, ``"replay"`` or ``"synthetic"``.
    counters : SourceCounters
    stall_timeout : float
        Seconds without a sample after which :attr:`stalled` is True.
    exhausted : bool
        True once a replay has delivered its last chunk (never for LSL).
    units, channel_types : list of (str or None)
        What the producer declares for each channel (LSL ``desc/channels/channel``); None: not said.
    stream_type : str or None
        The stream's declared type (LSL), None for files.
    unit, scale : str or float, optional
        The spec's ``unit=`` (overrides every declared unit) or ``scale=`` (the factor to the
        bundle's unit); see :mod:`edge.signals.units`.
    factors : ndarray or None
        Per-channel factor applied to every chunk (set by :func:`~edge.signals.units.prepare_source`
        through :meth:`set_scale`); None: values pass unchanged, at no cost.
    """

    kind = "source"
    #: A producer outside this process sets the pace (LSL, a BrainFlow board): the runtime checks
    #: that it delivers the rate it declares (edge/runtime/rate.py).  Replays pace themselves.
    live: ClassVar[bool] = False
    #: "Now" on the clock of this source's timestamps, where this machine reads that clock (LSL's
    #: clock-corrected ``local_clock``): the runtime then checks the age of the data directly.  None:
    #: only against the stream's own freshest chunk (edge/runtime/rate.py).
    stream_clock: Callable[[], float] | None = None
    #: Options a spec string may set: spec key → cast from the spec's text (in the order the
    #: "allowed:" of an error lists them).  Each is a keyword of :meth:`spec_factory`.
    OPTIONS: ClassVar[dict[str, Callable[[str], object]]] = {}
    #: Keywords of :meth:`spec_factory` that a spec cannot set → why not.
    NOT_IN_SPEC: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "OPTIONS" in cls.__dict__ and (problems := option_mismatches(cls)):
            raise TypeError(f"{cls.__name__}: the spec options disagree with the constructor: "
                            + "; ".join(problems))

    def __init__(self, channels, fs: float, stall_timeout: float = STALL_TIMEOUT_S):
        self.channels: list[str] = list(channels)
        self.fs = float(fs)
        self.stall_timeout = check_stall_timeout(stall_timeout)
        self.counters = SourceCounters()
        self.exhausted = False
        self.closed = False
        self._last_sample_time = time.monotonic()  # start of the stall clock until data arrives
        self._in_stall = False
        self.units: list[str | None] = [None] * len(self.channels)
        self.channel_types: list[str | None] = [None] * len(self.channels)
        self.stream_type: str | None = None
        self.unit: str | None = None
        self.scale: float | None = None
        self.factors: np.ndarray | None = None

    # -- units (edge.signals.units) ----------------------------------------------------
    def set_scale(self, factors) -> None:
        """Multiply every later chunk by ``factors`` (one per channel); None: deliver values as they come."""
        self.factors = None if factors is None else np.asarray(factors, dtype=np.float64).reshape(len(self.channels))

    def first_second(self) -> np.ndarray | None:
        """The first second of samples, for the amplitude check of undeclared units; None if unknown."""
        return None

    # -- what a spec string opens (edge.sources.spec) ---------------------------------
    @classmethod
    def spec_factory(cls) -> Callable[..., Source]:
        """What a spec's options are passed to as keywords: the class itself unless overridden."""
        return cls

    @classmethod
    def check_spec(cls, target: str, params: dict[str, str], spec: str) -> tuple[str, dict[str, str]]:
        """Check a parsed spec's target and options beyond their names; returns them (completed)."""
        return target, params

    def take_alarms(self) -> list:
        """Alarms raised since the last call (e.g. a stream refused in place of the pinned LSL
        producer, :meth:`edge.sources.lsl.LSLSource.take_alarms`); the runtime counts each as a fault."""
        return []

    def check_bundle(self, bundle) -> None:
        """Refuse a bundle this source cannot serve (:class:`SourceError` naming the fix), or fit itself to it
        (an arm's inputs take the bundle's channel names); called first where a source meets a bundle
        (:func:`edge.signals.units.prepare_source`).  Nothing to check by default."""

    def report(self) -> dict:
        """What the run summary says of this source: its counters (a source adds its own, e.g. the arm
        stream's losses and restarts)."""
        return {"kind": self.kind, **asdict(self.counters)}

    @staticmethod
    def target_option(key: str, target: str, params: dict[str, str], spec: str) -> dict[str, str]:
        """``params`` with the spec's target as option ``key`` ("synthetic:muse?..." = "kind=muse",
        "brainflow:cyton?..." = "board=cyton"); the two must not disagree."""
        if target:
            if key in params and params[key] != target:
                raise SourceSpecError(f"source {spec!r} names two {key}s ({target!r} and {params[key]!r})")
            params[key] = target
        return params

    @classmethod
    def spec_casts(cls, params: dict[str, str]) -> dict[str, Callable[[str], object]]:
        """Spec key → cast for these options (:attr:`OPTIONS` unless they depend on each other)."""
        return cls.OPTIONS

    @classmethod
    def from_spec(cls, target: str, options: dict, spec: str) -> Source:
        """Open the source of a parsed spec (``options`` already cast)."""
        return cls.spec_factory()(**options)

    # -- stall bookkeeping ------------------------------------------------------------
    def seconds_since_last_sample(self) -> float:
        """Seconds since the last chunk arrived (since opening if none has)."""
        return time.monotonic() - self._last_sample_time

    @property
    def stalled(self) -> bool:
        """No sample for more than ``stall_timeout`` seconds."""
        return self._check_stall()

    def _check_stall(self) -> bool:
        since = self.seconds_since_last_sample()
        if since > self.stall_timeout:
            if not self._in_stall:
                self._in_stall = True
                self.counters.stalls += 1
                if not self.exhausted:  # INFO: its reader says what a stall means (the runtime: a fault, REST)
                    log.info("%s source stalled: no sample for %.3f s", self.kind, since)
            return True
        return False

    def _deliver(self, samples, timestamps, discontinuity: bool, labels=None) -> Chunk:
        now = time.monotonic()
        if self._in_stall:
            log.info("%s source resumed after %.3f s without samples", self.kind, now - self._last_sample_time)
            self._in_stall = False
        self._last_sample_time = now
        n = int(samples.shape[0])
        chunk = Chunk(read_only(samples), read_only(timestamps), now, self.counters.samples,
                      bool(discontinuity), None if labels is None else read_only(labels))
        self.counters.samples += n
        self.counters.chunks += 1
        self.counters.discontinuities += int(bool(discontinuity))
        return chunk

    # -- API -------------------------------------------------------------------------
    def read(self, timeout: float = 0.0) -> Chunk | None:
        """Return the next chunk, waiting up to ``timeout`` s; None if none arrived."""
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True

    def _check_open(self) -> None:
        if self.closed:
            raise SourceError(f"{self.kind} source is closed; open a new one with open_source()")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self.channels)} ch @ {self.fs:g} Hz>"
