"""A live LSL stream (``lsl:`` specs), and the pylsl/liblsl import with the fix when it fails.

Timing: timestamps are on this machine's LSL clock (``pylsl.local_clock``), corrected by liblsl's
clock synchronisation; dropped samples are found from timestamp steps larger than
``drop_tolerance`` nominal periods.  A stream that is lost and that liblsl cannot recover (it has
no ``source_id``) is searched for again by a background thread (the relocation thread).

Metadata: channel labels, types and units come from ``desc/channels/channel`` (XDF meta-data,
:func:`edge.sources.channels.lsl_channel_info`); :mod:`edge.sources.units` turns them into a factor
to the bundle's unit, which :meth:`LSLSource.read` applies while copying out of liblsl's buffer.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import ClassVar

import numpy as np

from edge._checks import check_int
from edge.config import DROP_TOLERANCE, LSL_BUFLEN_S, LSL_MAX_CHUNK, RESOLVE_TIMEOUT_S, STALL_TIMEOUT_S
from edge.errors import SourceError, SourceSpecError
from edge.sources.base import Chunk, Source, check_min, check_stall_timeout
from edge.sources.channels import lsl_channel_info
from edge.sources.lsl_config import quiet_liblsl
from edge.sources.units import CHECK_SECONDS, check_unit_options

log = logging.getLogger(__name__)

LSL_FIX = ("start a stream with `neurogrip stream FILE`, or check that the headset app "
           "(Muse/OpenBCI/...) is running and publishing LSL on this network")
LIBLSL_FIX = ("on a 64-bit Raspberry Pi `pip install pylsl` brings no liblsl: install liblsl from the "
              "liblsl releases .deb (https://github.com/sccn/liblsl/releases) or build it, and set "
              "PYLSL_LIB=/path/to/liblsl.so")


def import_pylsl():
    """Import pylsl, turning a missing module or a missing liblsl into a SourceError with the fix.

    liblsl's INFO lines are kept out of the console first (:func:`quiet_liblsl`)."""
    quiet_liblsl()
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
    return lsl_channel_info(info, n_channels)[0]


class LSLSource(Source):
    """A live LSL stream (``lsl:`` specs).

    Parameters
    ----------
    name, type, source_id : str, optional
        Stream properties to match (at least one); all given must match.
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
        (:mod:`edge.sources.units`).

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
    OPTIONS: ClassVar[dict] = {"name": str, "type": str, "source_id": str, "timeout": float,
                               "stall_timeout": float, "drop_tolerance": float, "max_chunk": int,
                               "max_buflen": int, "unit": str, "scale": float}

    def __init__(self, name: str | None = None, type: str | None = None, source_id: str | None = None,
                 timeout: float = RESOLVE_TIMEOUT_S, stall_timeout: float = STALL_TIMEOUT_S,
                 drop_tolerance: float = DROP_TOLERANCE, max_chunk: int = LSL_MAX_CHUNK,
                 max_buflen: int = LSL_BUFLEN_S, unit: str | None = None, scale: float | None = None):
        props = {k: v for k, v in (("name", name), ("type", type), ("source_id", source_id)) if v}
        if not props:
            raise SourceSpecError("an LSL source needs at least one of name, type, source_id "
                                  "(e.g. lsl:type=EEG or lsl:name=neurogrip-replay)")
        timeout = check_min(timeout, "timeout", 0, "seconds", above=True)
        drop_tolerance = check_min(drop_tolerance, "drop_tolerance", 1, "nominal period", above=True)
        check_stall_timeout(stall_timeout)
        max_chunk = check_min(max_chunk, "max_chunk", 2, "samples", integer=True)
        max_buflen = check_int(max_buflen, "max_buflen", lo=1, exc=SourceSpecError)
        unit, scale = check_unit_options(unit, scale)
        self._pylsl = pylsl = import_pylsl()
        self._timeout_error, self._lost_error = _lsl_errors(pylsl)
        self.props = props
        self.timeout = timeout
        self.drop_tolerance = drop_tolerance
        self.max_buflen = max_buflen
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
        self._pending: tuple | None = None  # the first second, read by first_second(), not yet delivered
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
        if self._pending is not None:
            x, ts, gap = self._pending
            self._pending = None
            if self.factors is not None:
                x *= self.factors
            return self._deliver(x, ts, gap)
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
        if self.factors is not None:  # to the bundle's unit, in the copy out of liblsl's buffer
            np.multiply(self._raw[:n], self.factors, out=self._out[:n], casting="unsafe")
        elif self._raw is not self._out:
            np.copyto(self._out[:n], self._raw[:n], casting="unsafe")
        ts = self._ts[:n]
        gap = self._check_steps(ts)
        return self._deliver(self._out[:n], ts, gap)

    def first_second(self) -> np.ndarray:
        """Pull the first second of samples now (waiting up to ``timeout``) for the amplitude check of
        :mod:`edge.sources.units`; the next :meth:`read` delivers them, so none is lost."""
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
                labels, _, units = lsl_channel_info(full, full.channel_count())
                if (labels or self.channels, units) != (self.channels, self.units):
                    log.warning("LSL stream %r reappeared with other channels or units %s %s; ignoring it",
                                full.name(), labels, units)
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

