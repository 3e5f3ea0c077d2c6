"""Where EEG comes from on the Pi: a live LSL stream, a recording replay, or synthetic EEG.

A source is chosen by one URL-like spec string (as pyserial chooses a transport)::

    lsl:type=EEG                          first LSL stream of type EEG (resolve timeout 5 s)
    lsl:name=Muse&type=EEG&timeout=10     keys combine with '&': name, type, source_id, timeout
    replay:rec/subj1_series7_data.csv.gz?speed=1&chunk=10
    synthetic:?kind=grasp-lift&subject=1&seed=0&speed=max
    synthetic:muse?state=relaxed&duration=30

Every source has the same small API (:class:`Source`): ``channels``, ``fs``,
``kind``, ``read(timeout) -> Chunk | None``, ``close()``, the running
:class:`SourceCounters` and the stall state (``stalled``,
``seconds_since_last_sample()``).  ``read`` never raises because data stopped:
the runtime polls ``stalled`` and puts the arm in its safe state, then resumes
when data returns.

Timing
------
* LSL: timestamps are on this machine's LSL clock (``pylsl.local_clock``),
  corrected by liblsl's clock synchronisation; dropped samples are found from
  timestamp steps larger than ``drop_tolerance`` nominal periods.
* Replay: timestamps are the recording's own time (its timestamp column, or
  sample number / fs).  Pacing is on ``time.monotonic()`` over the *rows*
  delivered, so a gap between segments is not waited out: it is reported as
  ``discontinuity`` on the first chunk after it.  Chunks never straddle a gap.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from edge.errors import SourceError, SourceSpecError
from edge.recordings import Recording, read_recording

log = logging.getLogger(__name__)

DEFAULT_RESOLVE_TIMEOUT = 5.0  # s, lsl: resolve
DEFAULT_STALL_TIMEOUT = 0.1  # s without a sample → stalled (safety budget to safe state is 0.25 s)
DEFAULT_DROP_TOLERANCE = 1.5  # nominal periods; a larger timestamp step means samples were lost
DEFAULT_CHUNK_SECONDS = 0.02  # replay chunk: 20 ms of samples (10 at 500 Hz)
DEFAULT_MAX_CHUNK = 1024  # samples returned by one LSL read at most (the rest comes next read)
DEFAULT_LSL_BUFLEN = 10  # s of data liblsl keeps for us if we fall behind (older samples are dropped)

LSL_FIX = ("start a stream with `neurogrip stream FILE`, or check that the headset app "
           "(Muse/OpenBCI/...) is running and publishing LSL on this network")
LIBLSL_FIX = ("on a 64-bit Raspberry Pi `pip install pylsl` brings no liblsl: install liblsl from the "
              "liblsl releases .deb (https://github.com/sccn/liblsl/releases) or build it, and set "
              "PYLSL_LIB=/path/to/liblsl.so")




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
    missing across a stall); a replay's gaps are not counted there, only
    flagged.  ``discontinuities`` counts flagged chunks; ``stalls`` counts
    entries into the stalled state.
    """

    samples: int = 0
    chunks: int = 0
    dropped: int = 0
    stalls: int = 0
    discontinuities: int = 0


def _check_stall_timeout(value) -> float:
    value = float(value)
    if not value > 0:
        raise SourceSpecError(f"stall_timeout must be > 0 seconds, got {value}")
    return value


def _read_only(a: np.ndarray) -> np.ndarray:
    if not a.flags.writeable:  # e.g. a slice of a replay's read-only arrays: nothing to do
        return a
    v = a.view()
    v.flags.writeable = False
    return v


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
    """

    kind = "source"

    def __init__(self, channels, fs: float, stall_timeout: float = DEFAULT_STALL_TIMEOUT):
        self.channels: list[str] = list(channels)
        self.fs = float(fs)
        self.stall_timeout = _check_stall_timeout(stall_timeout)
        self.counters = SourceCounters()
        self.exhausted = False
        self.closed = False
        self._last_sample_time = time.monotonic()  # start of the stall clock until data arrives
        self._in_stall = False

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
                if not self.exhausted:
                    log.warning("%s source stalled: no sample for %.3f s", self.kind, since)
            return True
        return False

    def _deliver(self, samples, timestamps, discontinuity: bool, labels=None) -> Chunk:
        now = time.monotonic()
        if self._in_stall:
            log.info("%s source resumed after %.3f s without samples", self.kind, now - self._last_sample_time)
            self._in_stall = False
        self._last_sample_time = now
        n = int(samples.shape[0])
        chunk = Chunk(_read_only(samples), _read_only(timestamps), now, self.counters.samples,
                      bool(discontinuity), None if labels is None else _read_only(labels))
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


# --------------------------------------------------------------------------- replay


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
    speed = float(value)
    if not (speed >= 0 and math.isfinite(speed)):
        raise SourceSpecError(f"speed must be >= 0 (0 = as fast as possible), got {value!r}")
    return speed


def _check_replay_options(speed, chunk, stall_timeout) -> float:
    """Validate replay options; returns the speed as a float."""
    if chunk is not None:
        if not isinstance(chunk, (int, np.integer)):
            raise SourceSpecError(f"chunk must be a whole number of samples, got {chunk!r}")
        if chunk < 1:
            raise SourceSpecError(f"chunk must be >= 1 sample, got {chunk}")
    _check_stall_timeout(stall_timeout)
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
        See :class:`Source`.
    """

    kind = "replay"

    def __init__(self, recording: Recording | str | Path, speed=1.0, chunk: int | None = None,
                 stall_timeout: float = DEFAULT_STALL_TIMEOUT):
        # Check the options before reading a (possibly large) file.
        self.speed = _check_replay_options(speed, chunk, stall_timeout)
        if isinstance(recording, (str, Path)):
            recording = read_recording(recording)
        if not isinstance(recording, Recording):
            raise TypeError(f"recording must be a Recording or a path, got {type(recording).__name__}")
        super().__init__(recording.channels, recording.fs, stall_timeout)
        self.recording = recording
        self.chunk = max(1, round(self.fs * DEFAULT_CHUNK_SECONDS)) if chunk is None else int(chunk)
        self.label_names = tuple(recording.label_names)
        if recording.timestamps is not None:
            self._timestamps = _read_only(np.asarray(recording.timestamps, dtype=np.float64))
        else:
            self._timestamps = _read_only(recording.sample_index.astype(np.float64) / self.fs)
        # Read-only views once, so that every chunk (a slice of them) already is one.
        self._samples = _read_only(recording.samples)
        self._labels = None if recording.labels is None else _read_only(recording.labels)
        # (start, stop, discontinuity) of every chunk, in order.
        plan = []
        for k, (start, stop) in enumerate(recording.segments.tolist()):
            for a in range(start, stop, self.chunk):
                plan.append((a, min(a + self.chunk, stop), k > 0 and a == start))
        self._plan = plan
        self._next = 0
        self._t0: float | None = None

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

    def __repr__(self) -> str:
        speed = "max" if self.speed == 0 else f"{self.speed:g}x"
        return (f"<{type(self).__name__} {self.recording.source} {len(self.channels)} ch @ {self.fs:g} Hz, "
                f"speed {speed}, chunk {self.chunk}>")


class SyntheticSource(ReplaySource):
    """Replay of :mod:`edge.synthetic` EEG (``synthetic:`` specs)."""

    kind = "synthetic"


# --------------------------------------------------------------------------- LSL


def import_pylsl():
    """Import pylsl, turning a missing module or a missing liblsl into a SourceError with the fix."""
    try:
        import pylsl
    except ModuleNotFoundError as exc:
        raise SourceError(f"the Python module pylsl is not installed ({exc}); install it with "
                          f"pip install 'neurogrip[edge]'; {LIBLSL_FIX}") from exc
    except (ImportError, RuntimeError, OSError) as exc:  # pylsl raises RuntimeError when liblsl is missing
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"pylsl cannot load liblsl ({first}); {LIBLSL_FIX}") from exc
    return pylsl


def _lsl_errors(pylsl) -> tuple[type, type]:
    """pylsl's (TimeoutError, LostError); their module moved between pylsl versions."""
    for mod in (pylsl, getattr(pylsl, "util", None), getattr(pylsl, "pylsl", None)):
        if mod is not None and hasattr(mod, "LostError") and hasattr(mod, "TimeoutError"):
            return mod.TimeoutError, mod.LostError
    return RuntimeError, RuntimeError  # both derive from RuntimeError in every pylsl


# liblsl channel formats (pylsl.cf_*) → numpy dtype; cf_string (3) is not EEG.
_LSL_DTYPES = {1: np.float32, 2: np.float64, 4: np.int32, 5: np.int16, 6: np.int8, 7: np.int64}


def _xpath_literal(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise SourceSpecError(f"LSL property value {value!r} contains both quote characters; "
                          "select the stream by another property")


def lsl_channel_labels(info, n_channels: int) -> list[str] | None:
    """Channel labels from an LSL stream's ``desc/channels/channel/label``, or None if absent/incomplete."""
    labels = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty():
        labels.append(ch.child_value("label").strip())
        ch = ch.next_sibling("channel")
    if len(labels) != n_channels or not all(labels) or len(set(labels)) != n_channels:
        return None
    return labels


class LSLSource(Source):
    """A live LSL stream (``lsl:`` specs).

    Parameters
    ----------
    name, type, source_id : str, optional
        Stream properties to match (at least one); all given must match.
    timeout : float
        Seconds to wait for a matching stream (and for the connection).
    stall_timeout : float
        See :class:`Source`.
    drop_tolerance : float
        A timestamp step above this many nominal periods counts as dropped
        samples and flags the chunk as a discontinuity.
    max_chunk : int
        At most this many samples per ``read``; any rest comes on the next.
    max_buflen : int
        Seconds of data liblsl buffers for us if we fall behind.

    Notes
    -----
    Clock correction: the inlet uses liblsl's ``proc_clocksync``, which adds the
    continuously re-estimated clock offset to every timestamp inside liblsl (so
    drift and a reconnect to a restarted sender are handled, unlike a one-off
    ``time_correction()``).  ``proc_dejitter`` is deliberately *not* used: it
    fits a line through the timestamps and smears a jump from dropped samples
    over many samples, hiding it from the drop detector.  The first correction
    estimate takes ~0.5 s; it is fetched while opening so the first ``read``
    does not block the real-time loop.
    """

    kind = "lsl"

    def __init__(self, name: str | None = None, type: str | None = None, source_id: str | None = None,
                 timeout: float = DEFAULT_RESOLVE_TIMEOUT, stall_timeout: float = DEFAULT_STALL_TIMEOUT,
                 drop_tolerance: float = DEFAULT_DROP_TOLERANCE, max_chunk: int = DEFAULT_MAX_CHUNK,
                 max_buflen: int = DEFAULT_LSL_BUFLEN):
        props = {k: v for k, v in (("name", name), ("type", type), ("source_id", source_id)) if v}
        if not props:
            raise SourceSpecError("an LSL source needs at least one of name, type, source_id "
                                  "(e.g. lsl:type=EEG or lsl:name=neurogrip-replay)")
        timeout = float(timeout)
        if not timeout > 0:
            raise SourceSpecError(f"timeout must be > 0 seconds, got {timeout}")
        if not float(drop_tolerance) > 1:
            raise SourceSpecError(f"drop_tolerance must be > 1 nominal period, got {drop_tolerance}")
        _check_stall_timeout(stall_timeout)
        if int(max_chunk) < 2:
            raise SourceSpecError(f"max_chunk must be >= 2 samples, got {max_chunk}")
        self._pylsl = pylsl = import_pylsl()
        self._timeout_error, self._lost_error = _lsl_errors(pylsl)
        self.props = props
        self.timeout = timeout
        self.drop_tolerance = float(drop_tolerance)
        self.max_buflen = int(max_buflen)
        self.predicate = " and ".join(f"{k}={_xpath_literal(v)}" for k, v in props.items())
        self.searched = " and ".join(f"{k}={v!r}" for k, v in props.items())

        infos = pylsl.resolve_bypred(self.predicate, 1, timeout)
        if not infos:
            raise SourceError(f"no LSL stream with {self.searched} found within {timeout:g} s; {LSL_FIX}")
        info = infos[0]
        if len(infos) > 1:
            log.warning("%d LSL streams match %s; using %s (source_id %r)", len(infos), self.searched,
                        info.name(), info.source_id())
        dtype = _LSL_DTYPES.get(info.channel_format())
        if dtype is None:
            raise SourceError(f"LSL stream {info.name()!r} carries strings, not EEG samples; select the "
                              "EEG stream (e.g. lsl:type=EEG)")
        inlet, full = self._connect(info)
        n_ch = full.channel_count()
        labels = lsl_channel_labels(full, n_ch)
        if labels is None:
            labels = [f"ch{i}" for i in range(n_ch)]
            log.warning("LSL stream %r has no channel labels in desc/channels/channel/label; using "
                        "ch0..ch%d (channel_map by name will fail unless those are the names)",
                        full.name(), n_ch - 1)
        super().__init__(labels, full.nominal_srate(), stall_timeout)
        self.name = full.name()
        self.type = full.type()
        self.source_id = full.source_id()
        self.hostname = full.hostname()
        self._inlet = inlet
        self._dtype = np.dtype(dtype)
        self._cap = int(max_chunk)
        # Preallocated buffers: liblsl writes into _raw (the stream's dtype), which is cast into
        # _out (float64); for double streams they are the same array.
        self._out = np.zeros((self._cap, n_ch), dtype=np.float64)
        self._raw = self._out if self._dtype == np.float64 else np.zeros((self._cap, n_ch), self._dtype)
        self._ts = np.zeros(self._cap, dtype=np.float64)
        self._last_ts: float | None = None
        self._gap_pending = False
        self._lost = False
        self._relocated: tuple | None = None
        self._relocator: threading.Thread | None = None
        self._closing = threading.Event()

    def _connect(self, info):
        pylsl = self._pylsl
        try:
            inlet = pylsl.StreamInlet(info, max_buflen=self.max_buflen, recover=True,
                                      processing_flags=pylsl.proc_clocksync)
            full = inlet.info(self.timeout)
            inlet.open_stream(self.timeout)
            inlet.time_correction(self.timeout)  # prime the clock-sync estimate (see class notes)
        except (self._timeout_error, self._lost_error) as exc:
            raise SourceError(f"found the LSL stream {info.name()!r} but could not connect within "
                              f"{self.timeout:g} s ({exc}); check the network/firewall (LSL uses UDP "
                              "multicast 16571 and TCP 16572+), or raise timeout=") from exc
        return inlet, full

    # -- reading ---------------------------------------------------------------------
    def _pull(self, timeout: float) -> int:
        """Pull what is available into the buffers; wait up to ``timeout`` for a first sample."""
        inlet = self._inlet
        _, ts = inlet.pull_chunk(timeout=0.0, max_samples=self._cap, dest_obj=self._raw)
        n = len(ts)
        if n == 0 and timeout > 0:
            # liblsl's fixed-buffer pull would wait for a *full* buffer: block for one sample
            # instead, then take whatever else is there without waiting.
            sample, t = inlet.pull_sample(timeout=timeout)
            if t is None:
                return 0
            self._raw[0] = sample
            self._ts[0] = t
            _, ts = inlet.pull_chunk(timeout=0.0, max_samples=self._cap - 1, dest_obj=self._raw[1:])
            self._ts[1:1 + len(ts)] = ts
            return 1 + len(ts)
        self._ts[:n] = ts
        return n

    def read(self, timeout: float = 0.0) -> Chunk | None:
        self._check_open()
        if self._relocated is not None:
            self._adopt()
        if self._lost:
            if timeout > 0:
                time.sleep(timeout)
            self._check_stall()
            return None
        try:
            n = self._pull(timeout)
        except self._lost_error:
            self._on_lost()
            self._check_stall()
            return None
        if n == 0:
            self._check_stall()
            return None
        if self._raw is not self._out:
            np.copyto(self._out[:n], self._raw[:n], casting="unsafe")
        ts = self._ts[:n]
        gap = self._check_steps(ts)
        return self._deliver(self._out[:n], ts, gap)

    def _check_steps(self, ts: np.ndarray) -> bool:
        gap, self._gap_pending = self._gap_pending, False
        prev, self._last_ts = self._last_ts, float(ts[-1])
        if self.fs <= 0:
            return gap
        steps = np.diff(ts) if prev is None else np.diff(ts, prepend=prev)
        tol = self.drop_tolerance / self.fs
        ahead = steps > tol
        if ahead.any():
            missing = int(np.maximum(np.rint(steps[ahead] * self.fs) - 1, 1).sum())
            self.counters.dropped += missing
            log.debug("LSL %r: %d sample(s) missing before sample %d", self.name, missing, self.counters.samples)
            gap = True
        if (steps < -tol).any():  # the sender's clock went back (restarted elsewhere)
            gap = True
        return gap

    # -- a lost, unrecoverable stream (no source_id): find it again in the background ------
    def _on_lost(self) -> None:
        self._lost = True
        log.error("LSL stream %r was lost and cannot be recovered by liblsl (it has no source_id); "
                  "searching for it again in the background", self.name)
        self._relocator = threading.Thread(target=self._relocate, name=f"lsl-relocate-{self.name}",
                                           daemon=True)
        self._relocator.start()

    def _relocate(self) -> None:
        pylsl = self._pylsl
        while not self._closing.is_set():
            for info in pylsl.resolve_bypred(self.predicate, 1, 1.0):
                if info.channel_count() != len(self.channels) or info.nominal_srate() != self.fs:
                    continue
                try:
                    inlet, full = self._connect(info)
                except SourceError as exc:
                    log.warning("%s", exc)
                    continue
                labels = lsl_channel_labels(full, full.channel_count()) or self.channels
                if labels != self.channels:
                    log.warning("LSL stream %r reappeared with other channels %s; ignoring it",
                                full.name(), labels)
                    continue
                self._relocated = (inlet, full)
                return

    def _adopt(self) -> None:
        inlet, full = self._relocated
        self._relocated = None
        self._inlet = inlet
        self.source_id = full.source_id()
        self.hostname = full.hostname()
        self._lost = False
        self._gap_pending = True
        self._last_ts = None
        log.info("LSL stream %r found again", self.name)

    def close(self) -> None:
        if not self.closed:
            self._closing.set()
            inlet, self._inlet = self._inlet, None
            if inlet is not None:
                inlet.close_stream()
            del inlet
        super().close()

    def __repr__(self) -> str:
        return (f"<LSLSource {self.name!r} type {self.type!r} {len(self.channels)} ch @ {self.fs:g} Hz, "
                f"source_id {self.source_id!r}>")


# --------------------------------------------------------------------------- specs


SCHEMES = ("lsl", "replay", "synthetic")
_LSL_KEYS = ("name", "type", "source_id", "timeout", "stall_timeout", "drop_tolerance", "max_chunk")
_REPLAY_KEYS = ("speed", "chunk", "stall_timeout")
_SYNTH_KEYS = {
    "grasp-lift": ("kind", "subject", "series", "seed", "trials") + _REPLAY_KEYS,
    "muse": ("kind", "subject", "state", "duration", "seed") + _REPLAY_KEYS,
}
SPEC_EXAMPLES = "lsl:type=EEG, lsl:name=neurogrip-replay, replay:FILE?speed=1, synthetic:?kind=grasp-lift"


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


def _number(params: dict, key: str, cast, spec: str):
    if key not in params:
        return
    try:
        params[key] = cast(params[key])
    except (TypeError, ValueError):
        want = "a whole number" if cast is int else "a number"
        raise SourceSpecError(f"{key}={params[key]!r} in source {spec!r} is not {want}") from None


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split a source spec into ``(scheme, target, options)`` (options as strings)."""
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a str like {SPEC_EXAMPLES}; got {type(spec).__name__}")
    scheme, sep, rest = spec.partition(":")
    scheme = scheme.strip().lower()
    if not sep or scheme not in SCHEMES:
        raise SourceSpecError(f"unknown source {spec!r}: the scheme must be one of {', '.join(SCHEMES)} "
                              f"(e.g. {SPEC_EXAMPLES})")
    if scheme == "lsl":
        params = _parse_query(rest.removeprefix("?"), spec, _LSL_KEYS)
        return scheme, "", params
    target, _, query = rest.partition("?")
    if scheme == "replay":
        if not target.strip():
            raise SourceSpecError(f"source {spec!r} names no file; write replay:PATH (e.g. "
                                  "replay:subj1_series7_data.csv.gz?speed=1)")
        return scheme, target, _parse_query(query, spec, _REPLAY_KEYS)
    # synthetic: "synthetic:", "synthetic:?kind=muse", "synthetic:kind=muse", "synthetic:muse?seed=1"
    if "=" in target and not query:
        target, query = "", target
    params = _parse_query(query, spec, sorted(set().union(*_SYNTH_KEYS.values())))
    if target:
        if "kind" in params and params["kind"] != target:
            raise SourceSpecError(f"source {spec!r} names two kinds ({target!r} and {params['kind']!r})")
        params["kind"] = target
    kind = params.setdefault("kind", "grasp-lift")
    if kind not in _SYNTH_KEYS:
        raise SourceSpecError(f"unknown synthetic kind {kind!r} in {spec!r}; use kind=grasp-lift or kind=muse")
    for key in params:
        if key not in _SYNTH_KEYS[kind]:
            raise SourceSpecError(f"option {key!r} does not apply to synthetic kind {kind!r}; allowed: "
                                  f"{', '.join(_SYNTH_KEYS[kind])}")
    return scheme, "", params


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
        No LSL stream found in time, pylsl/liblsl missing.
    RecordingError
        The replay file is missing or malformed.
    """
    scheme, target, params = parse_spec(spec)
    params = {**kw, **params}
    for key, cast in (("timeout", float), ("stall_timeout", float), ("drop_tolerance", float),
                      ("max_chunk", int), ("chunk", int), ("seed", int), ("series", int), ("trials", int),
                      ("duration", float)):
        _number(params, key, cast, spec)
    if scheme == "lsl":
        return LSLSource(**params)
    if scheme == "replay":
        return ReplaySource(target, **params)

    from edge import synthetic

    kind = params.pop("kind")
    replay_args = {k: params.pop(k) for k in _REPLAY_KEYS if k in params}
    _check_replay_options(replay_args.get("speed", 1.0), replay_args.get("chunk"),
                          replay_args.get("stall_timeout", DEFAULT_STALL_TIMEOUT))
    seed = params.pop("seed", 0)
    if kind == "grasp-lift":
        _number(params, "subject", int, spec)
        try:
            rec = synthetic.grasp_lift_series(params.pop("subject", 1), params.pop("series", 1), seed=seed,
                                              n_trials=params.pop("trials", 34))
        except ValueError as exc:
            raise SourceSpecError(f"source {spec!r}: {exc}") from None
    else:
        try:
            rec = synthetic.muse_recording(str(params.pop("subject", "a")), params.pop("state", "neutral"),
                                           duration_s=params.pop("duration", 60.0), seed=seed)
        except ValueError as exc:
            raise SourceSpecError(f"source {spec!r}: {exc}") from None
    if params:
        raise TypeError(f"open_source() got unexpected keyword argument(s) {sorted(params)} for {spec!r}")
    return SyntheticSource(rec, **replay_args)


def channel_map(source_channels, wanted_channels) -> np.ndarray:
    """Column indices that pick ``wanted_channels`` (in that order) out of ``source_channels``.

    Raises
    ------
    SourceError
        Naming every wanted channel the source lacks, and the channels it has.
    """
    source_channels = [str(c) for c in source_channels]
    wanted_channels = [str(c) for c in wanted_channels]
    position: dict[str, int] = {}
    for i, name in enumerate(source_channels):
        position.setdefault(name, i)
    missing = [c for c in wanted_channels if c not in position]
    if missing:
        raise SourceError(f"the source lacks channel(s) {', '.join(missing)} that the model needs; it has "
                          f"{', '.join(source_channels) or 'no channels'}. Stream the montage the model "
                          "was trained on (or label the LSL channels with those names)")
    dupes = sorted({c for c in source_channels if source_channels.count(c) > 1} & set(wanted_channels))
    if dupes:
        raise SourceError(f"the source has channel(s) {', '.join(dupes)} more than once; channel names "
                          "must be unique to pick channels by name")
    return np.array([position[c] for c in wanted_channels], dtype=np.intp)


__all__ = [
    "Chunk", "LSLSource", "ReplaySource", "Source", "SourceCounters", "SourceError", "SourceSpecError",
    "SyntheticSource", "channel_map", "import_pylsl", "lsl_channel_labels", "open_source", "parse_spec",
]
