"""The arm's microcontroller as the EMG front end (``arm:`` specs): the analog inputs its firmware samples
and streams up the arm's own serial link (firmware_bridge/README.md, "Sampling the arm's analog inputs").

Specs::

    arm:/dev/ttyACM0                         A0-A7 at 200 Hz in the Myo's units: the gesture bundles'
    arm:/dev/ttyACM0?channels=0-3&rate=1000&unit=uV&gain=1000
    arm:sim?channels=0-5                     the simulated arm (simavr's Uno, else the firmware's host build)
    arm:spy:///dev/ttyACM0?file=t.txt?rate=200   a pyserial URL with a query of its own: ours follows the
                                             last '?' (end with '?' for none)

Options: ``channels`` (ADC inputs, ascending: ``0-7``, ``0,2,5``, ``A0-A3``), ``rate`` (Hz, a divisor of
1000 that fits the link's byte budget: ``firmware_bridge.protocol.stream_budget``), ``names`` (a channel
name per input, comma-separated), ``vref`` (V, default 5), ``bias`` (V, default 2.5: a raw sensor's
mid-supply; 0 for envelopes), ``gain`` (default 1), ``unit`` (default ``myo``), ``stall_timeout``.  What
the values are, counts → unit, is :mod:`edge.sources.arm_scale`'s.

**Time** (:mod:`edge.sources.arm_clock`): the MCU's scan index mapped to ``time.monotonic()`` by the
lowest-latency line through the frames' arrivals (drift corrected), the clock the runtime measures the
data's age on (``stream_clock``), as for LSL.  **Gaps**: scans lost (by the firmware, on the wire, by a
reader that fell behind) or a restarted stream (an MCU reset, a resync, a reconnect) start a chunk flagged
``discontinuity``: the chain restarts, no window bridges it; chunks never straddle one; the stream's
losses and restarts go into the run summary (:meth:`ArmSource.report`).  Stalls as for every source.

**At start** (:meth:`ArmSource.check_bundle`) a bundle the front end cannot serve is refused in one line
naming the fix: its rate (the stream runs at the bundle's input rate, from which the bundle's own chain
decimates, as for every source: no source resamples), its channel count (the inputs are named after the
bundle's channels in order, unless ``names=``), its unit.

**One link**: a serial port opens once, so ``neurogrip run --source arm:PORT --arm PORT`` hands the
runtime's link to the source (``link=``; :func:`edge.sources.spec.shares_link`); the runtime watches its
faults, the stream's included (edge/runtime/safety.py).  A source with a link of its own (``record``,
``run --arm none``) raises :class:`SourceError` when the firmware refuses to restart the stream.
"""

from __future__ import annotations

import logging
import os
import time
from typing import ClassVar

import numpy as np

from edge import config as C
from edge.errors import SourceError, SourceSpecError
from edge.signals.units import bundle_unit
from edge.sources.arm_clock import IndexClock
from edge.sources.arm_scale import adc_scale, check_unit, inputs_text, parse_inputs, unit_problem
from edge.sources.base import Chunk, Source, check_min, check_stall_timeout
from firmware_bridge import protocol as P
from firmware_bridge.errors import LinkError, Nacked
from firmware_bridge.link import ArmLink

log = logging.getLogger(__name__)

SIM = "sim"  # arm:sim: the simulated arm, started by the source (or the runtime's, with --arm sim)
FLASH_FIX = "flash this neurogrip's firmware (firmware_bridge/README.md, 'Flash with make and avrdude')"
DEFAULTS = {"channels": "0-7", "rate": C.ARM_RATE_HZ, "unit": "myo", "gain": 1.0, "bias": 2.5, "vref": 5.0}


class ArmSource(Source):
    """The arm's analog inputs through its link (``arm:`` specs; see the module docstring).

    Parameters
    ----------
    port : str
        A serial device, any pyserial URL, or ``"sim"`` (the simulated arm, stopped by :meth:`close`).
    channels : str or iterable of int
        The ADC inputs, ascending (default A0-A7).
    rate : int
        Scans per second, a divisor of 1000 (default :data:`edge.config.ARM_RATE_HZ`).
    names : str or sequence of str, optional
        A channel name per input; default ``emg1``, ``emg2``... in order, the bundle's channels at start.
    vref, bias, gain, unit
        The ADC's reference (V), the sensor's output at rest (V), its gain, the unit delivered
        (:mod:`edge.sources.arm_scale`).
    stall_timeout : float
        See :class:`~edge.sources.base.Source`.
    link : ArmLink, optional
        An open link to the port, to share (the runtime's ``--arm``): its owner closes it and watches its
        faults.  None: the source opens and closes its own.
    """

    kind = "arm"
    live = True
    OPTIONS: ClassVar[dict] = {"channels": str, "rate": int, "names": str, "vref": float, "bias": float,
                               "gain": float, "unit": str, "stall_timeout": float}
    NOT_IN_SPEC: ClassVar[dict] = {"port": "the spec's target names it (arm:PORT?...)",
                                   "link": "the runtime hands over its --arm link when it names the same port"}

    def __init__(self, port: str, channels="0-7", rate: int = C.ARM_RATE_HZ, names=None, vref: float = 5.0,
                 bias: float = 2.5, gain: float = 1.0, unit: str = "myo", stall_timeout: float = C.STALL_TIMEOUT_S,
                 link: ArmLink | None = None):
        inputs = parse_inputs(channels)
        rate = check_min(rate, "rate", 1, "Hz", integer=True)
        vref = check_min(vref, "vref", 0, "V", above=True)
        bias = check_min(bias, "bias", 0, "V")
        gain = check_min(gain, "gain", 0, "(the sensor's gain)", above=True)
        check_stall_timeout(stall_timeout)
        unit = check_unit(unit)
        given = names is not None
        names = [s.strip() for s in names.split(",")] if isinstance(names, str) else list(names or ())
        if given and (len(names) != len(inputs) or len(set(names)) != len(names) or not all(names)):
            raise SourceSpecError(f"names= gives {len(names)} name(s) for {len(inputs)} input(s); give one "
                                  f"distinct name per input, comma-separated (names="
                                  f"{','.join(f'ch{c}' for c in inputs)})")
        self.port, self.inputs, self._names_given = str(port), inputs, given
        given_opts = {"channels": inputs_text(inputs), "rate": rate, "unit": unit, "gain": gain, "bias": bias,
                      "vref": vref}
        self._options = {k: v for k, v in given_opts.items() if v != DEFAULTS[k]}
        try:
            budget = P.stream_budget(P.channel_mask(inputs), rate, link.baudrate if link else P.LINK_BAUD)
        except ValueError as exc:
            raise SourceSpecError(f"{self.spec()}: {exc}") from None
        if not budget.fits:
            raise SourceSpecError(f"{self.spec()}: {budget.problem}")
        super().__init__(names if given else [f"emg{k + 1}" for k in range(len(inputs))], rate, stall_timeout)
        self.vref, self.bias, self.gain, self.unit_out = vref, bias, gain, unit
        self.units = [unit] * len(inputs)
        self.stream_clock = time.monotonic  # the stamps' clock (edge/sources/arm_clock.py): the age is measured
        self.set_scale(None)
        self._clock = IndexClock(rate)
        self._max_chunk = max(1, round(rate * C.ARM_MAX_CHUNK_S))
        self._pending = None  # a block after a gap, for the next read (chunks never straddle one)
        self._failed = False
        self._owns_link, self._sim, self.link = link is None, None, link
        if link is None:
            self.link = self._open_link()
        try:
            self.stream = self.link.open_stream(inputs, rate)
        except ValueError as exc:
            self._close_link()
            raise SourceSpecError(f"{self.spec()}: {exc}") from None
        except LinkError as exc:
            self._close_link()
            fix = FLASH_FIX if isinstance(exc, Nacked) else "check the cable, or restart the arm"
            raise SourceError(f"the arm at {self.link.url} did not start its ADC stream ({exc}); {fix}") from None

    # -- opening, and what a bundle needs --------------------------------------------------
    def spec(self, **change) -> str:
        """This source's spec (the options given), with ``change`` (the fix in a message; None drops an option)."""
        opts = {k: v for k, v in {**self._options, **change}.items() if v is not None}
        text = "&".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in opts.items())
        return f"arm:{self.port}" + (f"?{text}" if text else "")

    def _open_link(self) -> ArmLink:
        url, link = self.port, None
        try:
            if self.port == SIM:
                from firmware_bridge.sim import start

                self._sim = start()
                url = self._sim.pty
            link = ArmLink(url)
            link.open()
        except (LinkError, ValueError) as exc:
            if link is not None:
                link.close()
            self._close_link()
            raise SourceError(f"cannot talk to the arm's front end at {url}: {exc}; check the cable and the port "
                              f"('neurogrip doctor --port PORT' checks permissions), or {FLASH_FIX}") from None
        return link

    def _close_link(self) -> None:
        if self._owns_link and self.link is not None:
            self.link.close()
        if self._sim is not None:
            self._sim.stop()

    @staticmethod
    def same_port(port: str, arm: str | None) -> bool:
        """Whether ``--arm arm`` names the port ``port`` (then one link must serve both)."""
        if arm in (None, "", "none"):
            return False
        if port == arm:
            return True
        return "://" not in port + arm and SIM not in (port, arm) and os.path.realpath(port) == os.path.realpath(arm)

    @classmethod
    def check_spec(cls, target, params, spec):
        if not target.strip():
            raise SourceSpecError(f"source {spec!r} names no port; write arm:/dev/ttyACM0 (or arm:sim for the "
                                  "simulated arm)")
        return target.strip(), params

    @classmethod
    def from_spec(cls, target, options, spec):
        return cls(target, **options)

    def check_bundle(self, bundle) -> None:
        """Refuse a bundle the front end cannot serve (one line naming the fix), else name the inputs after
        its channels (in order, unless ``names=``)."""
        fs, n, wanted = float(bundle.fs), len(self.inputs), list(bundle.channels)
        if abs(fs - self.fs) > 1e-6 * fs:
            raise SourceError(f"{self.spec()} samples at {self.fs:g} Hz but the bundle's chain takes {fs:g} Hz "
                              f"(its own decimation runs from there): {self._rate_fix(fs)}")
        if not self._names_given:
            if len(wanted) > P.ADC_CHANNELS:
                raise SourceError(f"the bundle reads {len(wanted)} channels but the arm's front end has "
                                  f"{P.ADC_CHANNELS} analog inputs (A0-A{P.ADC_CHANNELS - 1}): use a bundle of "
                                  f"at most {P.ADC_CHANNELS} channels")
            if len(wanted) != n:
                top = len(wanted) - 1
                fix = self.spec(channels=inputs_text(range(top + 1)))
                raise SourceError(f"the bundle reads {len(wanted)} channels ({', '.join(wanted)}) but "
                                  f"{self.spec()} streams {n} input(s): use {fix} (its sensors on "
                                  f"A0{f'-A{top}' if top else ''}), or name the inputs with names=")
            if wanted != self.channels:
                log.info("arm inputs %s are the bundle's channels %s",
                         ", ".join(f"A{c}" for c in self.inputs), ", ".join(wanted))
            self.channels = wanted
        target = bundle_unit(bundle)
        problem = unit_problem(target, self.unit_out, self.vref, self.bias, self.gain)
        if problem is not None:
            why, fix = problem
            hint = f"use {self.spec(**fix)}" if fix else "use a bundle in myo or in a voltage unit"
            raise SourceError(f"{self.spec()} delivers {self.unit_out}: {why}; {hint}"
                              + (" with your sensor's gain" if fix.get("gain") == "GAIN" else ""))

    def _rate_fix(self, fs: float) -> str:
        rate = round(fs)
        if rate != fs or not 1 <= rate <= P.STREAM_RATE_MAX_HZ or P.STREAM_TICK_HZ % rate:
            return (f"the front end samples at divisors of {P.STREAM_TICK_HZ} Hz only (1000, 500, 250, 200, 125, "
                    "100 ...): use a bundle trained at one of those rates")
        budget = P.stream_budget(P.channel_mask(self.inputs), rate, self.link.baudrate)
        return f"at {rate} Hz {budget.problem}" if not budget.fits else f"use {self.spec(rate=rate)}"

    # -- reading -------------------------------------------------------------------------
    def set_scale(self, factors) -> None:
        """A factor to the bundle's unit (edge/signals/units.py) folds into the count → value scale."""
        super().set_scale(factors)
        m, q = adc_scale(self.vref, self.bias, self.gain, self.unit_out)
        f = np.ones(len(self.inputs)) if self.factors is None else self.factors
        self._m, self._q = m * f, q * f

    def read(self, timeout: float = 0.0) -> Chunk | None:
        self._check_open()
        try:
            blocks = self._take(timeout)
        except LinkError as exc:  # the firmware refused to start the stream again: it has ended
            return self._stream_failed(exc, timeout)
        if not blocks:
            self._check_stall()
            return None
        first = blocks[0]
        gap = bool(first.lost_before or first.restarted)
        if first.restarted:
            self._clock.reanchor()
        self.counters.dropped += first.lost_before
        for b in blocks:
            self._clock.add(b.next_sample - 1, b.t_arrival)
        counts = np.array([scan for b in blocks for scan in b.scans], dtype=np.float64)
        stamps = self._clock.stamps(first.first_sample, len(counts), not gap)
        return self._deliver(counts * self._m + self._q, stamps, gap)

    def _take(self, timeout: float) -> list:
        """The next block (waiting up to ``timeout``) and those queued after it, up to a gap or the chunk size."""
        first, self._pending = self._pending, None
        if first is None and (first := self.stream.read(timeout)) is None:
            return []
        blocks, n = [first], first.n_scans
        while n < self._max_chunk:
            try:
                b = self.stream.read(0)
            except LinkError:
                break  # the blocks before it are delivered; the next read says it
            if b is None:
                break
            if b.lost_before or b.restarted:
                self._pending = b
                break
            blocks.append(b)
            n += b.n_scans
        return blocks

    def _stream_failed(self, exc: LinkError, timeout: float) -> None:
        why = (f"the arm's ADC stream ended: its firmware refused to start it again ({exc}); {FLASH_FIX}, "
               "then start again")
        if self._owns_link:
            raise SourceError(why) from None
        if not self._failed:  # the link's owner (the runtime) takes STREAM_FAILED: REST, the fault, the stop
            self._failed = True
            log.error("%s", why)
        time.sleep(max(0.0, timeout))  # nothing will come: a stall, without spinning the caller's loop
        self._check_stall()

    def report(self) -> dict:
        st = self.stream.stats
        return {**super().report(), "lost_samples": st.lost_samples, "stream_gaps": st.gaps,
                "restarts": st.restarts, "overruns": st.overruns, "frames_lost": st.frames_lost,
                "rejected_frames": st.rejected_frames, "clock_ppm": round(self._clock.ppm, 1)}

    def close(self) -> None:
        if not self.closed:
            try:
                self.stream.close()
            except LinkError:
                pass  # the port went: the next HELLO ends the firmware's stream
            self._close_link()
        super().close()

    def __repr__(self) -> str:
        return (f"<ArmSource {self.link.url if self.link else self.port} inputs "
                f"{','.join(f'A{c}' for c in self.inputs)} @ {self.fs:g} Hz in {self.unit_out}>")
