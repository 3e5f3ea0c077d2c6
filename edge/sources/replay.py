"""Replay of a recording (``replay:`` specs) and of generated EEG (``synthetic:`` specs).

Timing: timestamps are the recording's own time (its timestamp column, or sample number / fs).
Pacing is on ``time.monotonic()`` over the *rows* delivered, so a gap between segments is not
waited out: it is reported as ``discontinuity`` on the first chunk after it.  Chunks never
straddle a gap.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import numpy as np

from edge._checks import check_number, check_option, check_type
from edge.config import REPLAY_CHUNK_S, STALL_TIMEOUT_S
from edge.errors import SourceSpecError
from edge.recordings import Recording, read_recording
from edge.signals.units import CHECK_SECONDS, check_unit_options
from edge.sources.base import Chunk, Source, check_min, check_stall_timeout, read_only


def _parse_speed(value) -> float:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("max", "inf", "0"):
            return 0.0
        try:
            value = float(text)
        except ValueError:
            raise SourceSpecError(f"speed={value!r} is not a number; use speed=1 (real time), "
                                  "speed=2 (twice as fast) or speed=max") from None
    speed = check_number(value, "speed", exc=SourceSpecError)
    if not speed >= 0:
        raise SourceSpecError(f"speed must be >= 0 (0 = as fast as possible), got {value!r}")
    return speed


def _check_replay_options(speed, chunk, stall_timeout) -> float:
    """Validate replay options; returns the speed as a float."""
    if chunk is not None:
        check_min(chunk, "chunk", 1, "sample", integer=True)
    check_stall_timeout(stall_timeout)
    return _parse_speed(speed)


class ReplaySource(Source):
    """Replay a :class:`~edge.recordings.Recording` chunk by chunk.

    Parameters
    ----------
    recording : Recording, str or Path
        A recording, or a file :func:`~edge.recordings.read_recording` reads.
    speed : float or "max"
        1 = real time (paced on ``time.monotonic()`` from the first ``read``),
        2 = twice as fast, 0 or "max" = as fast as ``read`` is called.
    chunk : int, optional
        Samples per chunk; default 20 ms worth (10 at 500 Hz).  The last chunk
        of a segment may be shorter: chunks never straddle a gap.
    stall_timeout : float
        See :class:`~edge.sources.base.Source`.
    unit, scale : optional
        The unit of the file's values (default: undeclared, so the amplitude of the first second
        is checked against the bundle's unit), or the factor to the bundle's unit
        (:mod:`edge.signals.units`).  A factor scales the recording once, not every chunk.
    """

    kind = "replay"
    # speed: a number or "max"
    OPTIONS: ClassVar[dict] = {"speed": str, "chunk": int, "stall_timeout": float, "unit": str, "scale": float}
    NOT_IN_SPEC: ClassVar[dict] = {"recording": "the spec's target names the file (replay:PATH?...)"}

    def __init__(self, recording: Recording | str | Path, speed=1.0, chunk: int | None = None,
                 stall_timeout: float = STALL_TIMEOUT_S, unit: str | None = None, scale: float | None = None):
        # Check the options before reading a (possibly large) file.
        self.speed = _check_replay_options(speed, chunk, stall_timeout)
        unit, scale = check_unit_options(unit, scale)
        if isinstance(recording, (str, Path)):
            recording = read_recording(recording)
        check_type(recording, Recording, "recording", fix="or give a path")
        super().__init__(recording.channels, recording.fs, stall_timeout)
        self.unit, self.scale = unit, scale
        self.recording = recording
        self.chunk = max(1, round(self.fs * REPLAY_CHUNK_S)) if chunk is None else int(chunk)
        self.label_names = tuple(recording.label_names)
        if recording.timestamps is not None:
            self._timestamps = read_only(np.asarray(recording.timestamps, dtype=np.float64))
        else:
            self._timestamps = read_only(recording.sample_index.astype(np.float64) / self.fs)
        # Read-only views once, so that every chunk (a slice of them) already is one.
        self._samples = read_only(recording.samples)
        self._labels = None if recording.labels is None else read_only(recording.labels)
        # (start, stop, discontinuity) of every chunk, in order.
        plan = []
        for k, (start, stop) in enumerate(recording.segments.tolist()):
            for a in range(start, stop, self.chunk):
                plan.append((a, min(a + self.chunk, stop), k > 0 and a == start))
        self._plan = plan
        self._next = 0
        self._t0: float | None = None

    @classmethod
    def check_spec(cls, target, params, spec):
        if not target.strip():
            raise SourceSpecError(f"source {spec!r} names no file; write replay:PATH (e.g. "
                                  "replay:subj1_series7_data.csv.gz?speed=1)")
        return target, params

    @classmethod
    def from_spec(cls, target, options, spec):
        return cls(target, **options)

    def set_scale(self, factors) -> None:
        super().set_scale(factors)
        x = self.recording.samples
        self._samples = read_only(x if self.factors is None else x * self.factors)

    def first_second(self) -> np.ndarray:
        return self.recording.samples[:max(1, round(self.fs * CHECK_SECONDS))]

    @property
    def n_chunks(self) -> int:
        return len(self._plan)

    def read(self, timeout: float = 0.0) -> Chunk | None:
        self._check_open()
        if self._next >= len(self._plan):
            self.exhausted = True
            return None
        a, b, gap = self._plan[self._next]
        if self.speed > 0:
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now - a / (self.fs * self.speed)
            # A chunk is available once its last sample has "happened".
            wait = self._t0 + b / (self.fs * self.speed) - now
            if wait > 0:
                if wait > timeout:
                    time.sleep(max(0.0, timeout))
                    return None
                time.sleep(wait)
        self._next += 1
        if self._next >= len(self._plan):
            self.exhausted = True
        return self._deliver(self._samples[a:b], self._timestamps[a:b], gap,
                             None if self._labels is None else self._labels[a:b])

    def rows_at(self, timestamps) -> np.ndarray:
        """The recording's rows delivered with these timestamps (e.g. the ``t_end`` of the windows that fired
        a command), -1 where none was: a run's commands against the recording's truth, as
        :meth:`edge.sources.player.Player.rows_at` gives them for a recording streamed over LSL."""
        ts, want = self._timestamps, np.asarray(timestamps, np.float64)
        rows = np.searchsorted(ts, want) if len(ts) else np.zeros(len(want), np.int64)
        ok = (rows < len(ts)) & (ts[np.minimum(rows, len(ts) - 1)] == want) if len(ts) else rows < 0
        return np.where(ok, rows, -1)

    def __repr__(self) -> str:
        speed = "max" if self.speed == 0 else f"{self.speed:g}x"
        return (f"<{type(self).__name__} {self.recording.source} {len(self.channels)} ch @ {self.fs:g} Hz, "
                f"speed {speed}, chunk {self.chunk}>")


def _not_for_kind(key: str, kind: str) -> SourceSpecError:
    allowed = ("kind",) + tuple(SyntheticSource.KINDS[kind]) + tuple(ReplaySource.OPTIONS)
    return SourceSpecError(f"option {key!r} does not apply to synthetic kind {kind!r}; allowed: "
                           f"{', '.join(allowed)}")


class SyntheticSource(ReplaySource):
    """Replay of :mod:`edge.recordings.synthetic` EEG (``synthetic:`` specs): see :meth:`generate`.

    ``SyntheticSource(recording, ...)`` replays an already generated recording, as
    :class:`ReplaySource` does.
    """

    kind = "synthetic"
    #: The generator options of each synthetic kind (spec key → cast); replay options apply to all.
    KINDS: ClassVar[dict] = {
        "grasp-lift": {"subject": int, "series": int, "seed": int, "trials": int},
        "muse": {"subject": str, "state": str, "duration": float, "seed": int},
    }
    # Every kind's options (a subject is a number for grasp-lift, a letter for muse: spec_casts).
    OPTIONS: ClassVar[dict] = dict(sorted({
        "kind": str, **{k: cast for opts in KINDS.values() for k, cast in opts.items()}, **ReplaySource.OPTIONS,
    }.items()))
    NOT_IN_SPEC: ClassVar[dict] = {}

    @classmethod
    def generate(cls, kind: str = "grasp-lift", subject=None, series: int | None = None,
                 trials: int | None = None, state: str | None = None, duration: float | None = None,
                 seed: int = 0, speed=1.0, chunk: int | None = None, stall_timeout: float = STALL_TIMEOUT_S,
                 unit: str | None = None, scale: float | None = None) -> SyntheticSource:
        """Generate EEG of ``kind`` and replay it (what a ``synthetic:`` spec opens).

        ``grasp-lift``: :func:`edge.recordings.synthetic.grasp_lift_series` (``subject`` 1, ``series`` 1,
        ``trials`` 34); ``muse``: :func:`edge.recordings.synthetic.muse_recording` (``subject`` "a", ``state``
        "neutral", ``duration`` 60 s).  An option the kind does not use is an error.
        """
        check_option(kind, "kind", cls.KINDS, exc=SourceSpecError)
        given = {"subject": subject, "series": series, "trials": trials, "state": state, "duration": duration}
        for key, value in given.items():
            if value is not None and key not in cls.KINDS[kind]:
                raise _not_for_kind(key, kind)
        speed = _check_replay_options(speed, chunk, stall_timeout)  # before generating
        check_unit_options(unit, scale)
        from edge.recordings import synthetic

        if kind == "grasp-lift":
            rec = synthetic.grasp_lift_series(1 if subject is None else subject, 1 if series is None else series,
                                              seed=seed, n_trials=34 if trials is None else trials)
        else:
            rec = synthetic.muse_recording("a" if subject is None else str(subject), state or "neutral",
                                           duration_s=60.0 if duration is None else duration, seed=seed)
        return cls(rec, speed, chunk, stall_timeout, unit, scale)

    @classmethod
    def spec_factory(cls):
        return cls.generate

    @classmethod
    def check_spec(cls, target, params, spec):
        params = cls.target_option("kind", target, params, spec)  # "synthetic:muse?seed=1"
        kind = params.setdefault("kind", "grasp-lift")
        if kind not in cls.KINDS:
            raise SourceSpecError(f"unknown synthetic kind {kind!r} in {spec!r}; use kind=grasp-lift or kind=muse")
        for key in params:
            if key != "kind" and key not in cls.KINDS[kind] and key not in ReplaySource.OPTIONS:
                raise _not_for_kind(key, kind)
        return "", params

    @classmethod
    def spec_casts(cls, params):
        return {**cls.OPTIONS, **cls.KINDS.get(params.get("kind"), {})}

    @classmethod
    def from_spec(cls, target, options, spec):
        try:
            return cls.generate(**options)
        except SourceSpecError:
            raise
        except ValueError as exc:  # the generator's own checks (e.g. an unknown state)
            raise SourceSpecError(f"source {spec!r}: {exc}") from None
