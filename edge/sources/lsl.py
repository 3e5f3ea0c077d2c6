"""A live LSL stream (``lsl:`` specs), and the pylsl/liblsl import with the fix when it fails.

Timing: timestamps are on this machine's LSL clock (``pylsl.local_clock``), corrected by liblsl's
clock synchronisation; dropped samples are found from timestamp steps larger than
``drop_tolerance`` nominal periods.

Trust (:mod:`edge.sources.lsl_identity`, docs/security.md): several streams matching the spec at
start-up are an error listing them; the adopted producer is pinned, and after a drop a background
thread takes back only that producer (liblsl's own recovery is off: it would adopt any stream with
the same name, type and source_id).  Streams refused meanwhile are logged and reported by
:meth:`LSLSource.take_alarms`.

Metadata: channel labels, types and units come from ``desc/channels/channel`` (XDF meta-data,
:func:`edge.signals.channels.lsl_channel_info`); :mod:`edge.signals.units` turns them into a factor
to the bundle's unit, which :meth:`LSLSource.read` applies while copying out of liblsl's buffer.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import ClassVar

import numpy as np

from edge import config
from edge._checks import check_int
from edge.config import DROP_TOLERANCE, LSL_BUFLEN_S, LSL_MAX_CHUNK, RESOLVE_TIMEOUT_S, STALL_TIMEOUT_S
from edge.errors import SourceError, SourceSpecError
from edge.signals.channels import lsl_channel_info
from edge.signals.units import CHECK_SECONDS, check_unit_options
from edge.sources.base import Chunk, Source, check_min, check_stall_timeout
from edge.sources.lsl_config import import_pylsl, lsl_errors
from edge.sources.lsl_identity import Readoption, SourceAlarm, StreamIdentity, pinned_hostname, resolve_one

log = logging.getLogger(__name__)

LSL_FIX = ("start a stream with `neurogrip stream FILE`, or check that the headset app "
           "(Muse/OpenBCI/...) is running and publishing LSL on this network")

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
    return lsl_channel_info(info, n_channels)[0]


class LSLSource(Source):
    """A live LSL stream (``lsl:`` specs).

    Parameters
    ----------
    name, type, source_id : str, optional
        Stream properties to match (at least one); all given must match.
    hostname : str, optional
        The producer's machine must be this one (``localhost``: this machine).  Several streams
        matching is an error; ``name``, ``source_id`` and ``hostname`` together pin one producer.
    scope, session : str, optional
        liblsl's ResolveScope (``machine``: look for streams on this machine only) and SessionID
        (the producer must use the same), for this process (:mod:`edge.sources.lsl_config`).
    timeout : float
        Seconds to wait for a matching stream (and for the connection).
    stall_timeout : float
        See :class:`~edge.sources.base.Source`.
    drop_tolerance : float
        A timestamp step above this many nominal periods counts as dropped
        samples and flags the chunk as a discontinuity.
    max_chunk : int
        At most this many samples per ``read``; any rest comes on the next.
    max_buflen : int
        Seconds of data liblsl buffers for us if we fall behind.
    unit, scale : optional
        Override what the stream declares: its unit, or the factor to the bundle's unit
        (:mod:`edge.signals.units`).

    Notes
    -----
    Clock correction: the inlet uses liblsl's ``proc_clocksync``, which adds the
    continuously re-estimated clock offset to every timestamp inside liblsl (so
    drift and a reconnect to a restarted sender are handled, unlike a one-off
    ``time_correction()``).  ``proc_dejitter`` is deliberately *not* used: it
    fits a line through the timestamps and smears a jump from dropped samples
    over many samples, hiding it from the drop detector.  The first correction
    estimate takes ~0.5 s; it is fetched while opening so the first ``read``
    does not block the real-time loop.  The inlet does not recover by itself
    (``recover=False``): after a drop only the pinned producer is taken back.
    """

    kind = "lsl"
    live = True
    OPTIONS: ClassVar[dict] = {"name": str, "type": str, "source_id": str, "hostname": str, "scope": str,
                               "session": str, "timeout": float, "stall_timeout": float,
                               "drop_tolerance": float, "max_chunk": int, "max_buflen": int, "unit": str,
                               "scale": float}

    def __init__(self, name: str | None = None, type: str | None = None, source_id: str | None = None,
                 hostname: str | None = None, scope: str | None = None, session: str | None = None,
                 timeout: float = RESOLVE_TIMEOUT_S, stall_timeout: float = STALL_TIMEOUT_S,
                 drop_tolerance: float = DROP_TOLERANCE, max_chunk: int = LSL_MAX_CHUNK,
                 max_buflen: int = LSL_BUFLEN_S, unit: str | None = None, scale: float | None = None):
        props = {k: v for k, v in (("name", name), ("type", type), ("source_id", source_id)) if v}
        if not props:
            raise SourceSpecError("an LSL source needs at least one of name, type, source_id "
                                  "(e.g. lsl:name=X&source_id=Y&hostname=localhost; docs/security.md)")
        if hostname:
            props["hostname"] = pinned_hostname(hostname)
        timeout = check_min(timeout, "timeout", 0, "seconds", above=True)
        drop_tolerance = check_min(drop_tolerance, "drop_tolerance", 1, "nominal period", above=True)
        check_stall_timeout(stall_timeout)
        max_chunk = check_min(max_chunk, "max_chunk", 2, "samples", integer=True)
        max_buflen = check_int(max_buflen, "max_buflen", lo=1, exc=SourceSpecError)
        unit, scale = check_unit_options(unit, scale)
        self._pylsl = pylsl = import_pylsl(scope, session)
        self._timeout_error, self._lost_error = lsl_errors(pylsl)
        self.props = props
        self.timeout = timeout
        self.drop_tolerance = drop_tolerance
        self.max_buflen = max_buflen
        self.predicate = " and ".join(f"{k}={_xpath_literal(v)}" for k, v in props.items())
        self.searched = " and ".join(f"{k}={v!r}" for k, v in props.items())

        info = resolve_one(pylsl, self.predicate, timeout, self.searched)
        if info is None:
            raise SourceError(f"no LSL stream with {self.searched} found within {timeout:g} s; {LSL_FIX}")
        dtype = _LSL_DTYPES.get(info.channel_format())
        if dtype is None:
            raise SourceError(f"LSL stream {info.name()!r} carries strings, not EEG samples; select the "
                              "EEG stream (e.g. lsl:type=EEG)")
        inlet, full = self._connect(info)
        if full.uid() != info.uid():  # another outlet answered at that address since the resolve
            inlet.close_stream()
            raise SourceError(f"LSL stream {info.name()!r} changed while connecting (uid {full.uid()} instead "
                              f"of {info.uid()}); stop any stream you did not start and try again")
        n_ch = full.channel_count()
        labels, types, units = lsl_channel_info(full, n_ch)
        if labels is None:
            labels = [f"ch{i}" for i in range(n_ch)]
            log.warning("LSL stream %r has no channel labels in desc/channels/channel/label; using "
                        "ch0..ch%d (channel_map by name will fail unless those are the names)",
                        full.name(), n_ch - 1)
        super().__init__(labels, full.nominal_srate(), stall_timeout)
        self.units, self.channel_types, self.unit, self.scale = units, types, unit, scale
        self.name = full.name()
        self.type = self.stream_type = full.type()
        self.identity = StreamIdentity.of(full)
        self.source_id, self.hostname = self.identity.source_id, self.identity.hostname
        self.identity.warn_unpinned(props, self.searched)
        self._inlet = inlet
        # proc_clocksync puts every stamp on this machine's LSL clock: the data's age is measurable
        self.stream_clock = pylsl.local_clock
        self._dtype = np.dtype(dtype)
        self._cap = int(max_chunk)
        # Preallocated buffers: liblsl writes into _raw (the stream's dtype), which is cast into
        # _out (float64); for double streams they are the same array.
        self._out = np.zeros((self._cap, n_ch), dtype=np.float64)
        self._raw = self._out if self._dtype == np.float64 else np.zeros((self._cap, n_ch), self._dtype)
        self._ts = np.zeros(self._cap, dtype=np.float64)
        self._last_ts: float | None = None
        self._gap_pending = False
        self._pending: tuple | None = None  # the first second, read by first_second(), not yet delivered
        self._lost = False
        self._readoption: Readoption | None = None
        self._last_check = time.monotonic()
        self._alarms: deque[SourceAlarm] = deque()
        self.alarms = 0  # streams refused in place of the pinned producer, in all

    def take_alarms(self) -> list[SourceAlarm]:
        """The streams refused since the last call (the runtime counts each as a fault)."""
        return [self._alarms.popleft() for _ in range(len(self._alarms))]

    def _alarm(self, alarm: SourceAlarm) -> None:  # from the readoption thread
        self.alarms += 1
        self._alarms.append(alarm)

    def _connect(self, info):
        pylsl = self._pylsl
        try:
            inlet = pylsl.StreamInlet(info, max_buflen=self.max_buflen, recover=False,
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
        if self._pending is not None:
            x, ts, gap = self._pending
            self._pending = None
            if self.factors is not None:
                x *= self.factors
            return self._deliver(x, ts, gap)
        if self._readoption is not None and self._readoption.done.is_set():
            self._readopted()
        if self._lost:
            if timeout > 0:
                time.sleep(timeout)
            self._check_stall()
            return None
        try:
            n = self._pull(timeout)
        except self._lost_error:
            self._search(silent=False)
            self._check_stall()
            return None
        if n == 0:
            if self._readoption is None and min(self.seconds_since_last_sample(), time.monotonic()
                                                 - self._last_check) > config.LSL_SILENT_CHECK_S:
                self._search(silent=True)  # a silent producer: is its outlet still there?
            self._check_stall()
            return None
        if self._readoption is not None:  # data again on the inlet we have: nothing to take back
            self._readoption.close()
            self._readoption = None
        if self.factors is not None:  # to the bundle's unit, in the copy out of liblsl's buffer
            np.multiply(self._raw[:n], self.factors, out=self._out[:n], casting="unsafe")
        elif self._raw is not self._out:
            np.copyto(self._out[:n], self._raw[:n], casting="unsafe")
        ts = self._ts[:n]
        gap = self._check_steps(ts)
        return self._deliver(self._out[:n], ts, gap)

    def first_second(self) -> np.ndarray:
        """Pull the first second of samples now (waiting up to ``timeout``) for the amplitude check of
        :mod:`edge.signals.units`; the next :meth:`read` delivers them, so none is lost."""
        want, got, parts, gap = max(1, round(self.fs * CHECK_SECONDS)), 0, [], False
        deadline = time.monotonic() + self.timeout
        while got < want and (left := deadline - time.monotonic()) > 0:
            try:
                n = self._pull(min(left, 0.1))
            except self._lost_error:
                break
            if n:
                parts.append((self._raw[:n].astype(np.float64), self._ts[:n].copy()))
                gap |= self._check_steps(self._ts[:n])
                got += n
        if got < want:
            raise SourceError(f"LSL stream {self.name!r} declares no unit and sent {got} of the {want} samples "
                              f"needed to check its amplitude within {self.timeout:g} s; start the stream, or "
                              "declare its unit in the source spec (unit=uV)")
        x = np.concatenate([p[0] for p in parts])
        self._pending = (x, np.concatenate([p[1] for p in parts]), gap)
        return x[:want].copy()

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

    # -- after a drop, or a long silence: take back the pinned producer, and nothing else ---------
    def _search(self, silent: bool) -> None:
        if not silent and self._readoption is not None and self._readoption.silent:
            self._readoption.close()  # lost now: reconnect even to the same uid
            self._readoption = None
        self._lost = self._lost or not silent
        self._last_check = time.monotonic()
        if self._readoption is None:
            log.log(logging.INFO if silent else logging.ERROR, "LSL stream %r %s; looking for its producer (%s) "
                    "in the background", self.name, "is silent" if silent else "was lost", self.identity)
            self._readoption = Readoption(self._pylsl, self.predicate, self.identity, self._connect,
                                          self._check_channels, self._alarm, silent=silent)

    def _check_channels(self, full) -> str | None:
        labels, _, units = lsl_channel_info(full, full.channel_count())
        if (labels or self.channels, units) != (self.channels, self.units):
            return f"it came back with other channels or units ({labels}, {units})"
        return None

    def _readopted(self) -> None:
        search, self._readoption = self._readoption, None
        self._last_check = time.monotonic()
        if search.error is not None:
            raise search.error
        if search.found is None:
            return  # silent, but its outlet is still there
        inlet, _, identity = search.found
        old, self._inlet = self._inlet, inlet
        if old is not None and not self._lost:
            old.close_stream()
        restarted = identity.uid != self.identity.uid
        log.log(logging.WARNING if restarted else logging.INFO, "LSL stream %r taken back: %s", self.name,
                f"its producer restarted (uid {self.identity.uid} → {identity.uid})" if restarted else "same outlet")
        if restarted:  # a restart or a copy of its identity: the same to us, so the run's log says which
            self._alarms.append(SourceAlarm.takeover(identity, self.identity.uid))
        # _last_ts is kept: the samples missing across the silence count as dropped, as they did before
        self.identity, self._lost, self._gap_pending = identity, False, True

    def close(self) -> None:
        if not self.closed:
            if self._readoption is not None:
                self._readoption.close()
            inlet, self._inlet = self._inlet, None
            if inlet is not None:
                inlet.close_stream()
            del inlet
        super().close()

    def __repr__(self) -> str:
        return (f"<LSLSource {self.name!r} type {self.type!r} {len(self.channels)} ch @ {self.fs:g} Hz, "
                f"source_id {self.source_id!r}>")

