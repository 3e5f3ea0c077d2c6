"""A recording as the simulated arm's analog inputs: the exact inverse of what the ``arm:`` source reads.

The ``arm:`` source turns ADC counts into a unit by :func:`edge.sources.arm_scale.adc_scale`
(``value = counts × m + q``, from the ADC's reference ``vref``, the sensor's ``bias`` and ``gain`` and the
``unit``).  A recording's value ``x`` in that unit is what a sensor with that gain, biased at ``bias``,
puts on an input, and what the ATmega328P reads for it is::

    counts = floor((x − q) / m),  clipped to 0..1023      (the real ADC truncates: Vin × 1024 / vref)

so counts → unit through the source gives ``x`` back up to the 10-bit quantisation: ``0 ≤ x − x' < m``
(one count, e.g. 0.25 Myo units; 4.9 µV at ``gain=1000`` with ``unit=uV``), and exactly for a Myo recording
at the defaults (a Myo unit is 4 counts).  The feed holds, per input, the smallest millivolts at which the
*simulated* ADC (AVcc 5 V, ``mV × 1023 // 5000``: PROTOCOL.md § 5.2) reads those counts, so the simulator's
own 0.1 % conversion error does not count.

**The declared gain** (:func:`choose_gain` when none is given): the largest of 1, 2, 5 × 10^k at which the
recording's extremes fit the input's range around the bias, so its strongest contraction uses between 40
and 100 % of a half range and nothing clips.  In the Myo's units that is gain 1 for a Myo session (its
8-bit −128..127 are the sensor's whole 0–5 V swing: the ``arm:`` source's defaults); a recording in µV of
raw EMG peaking at 2 mV gets 1000 (a MyoWare-class sensor's gain).  The ``arm:`` source must be told the
same (:meth:`FeedScale.spec_options`); ``neurogrip arm-sim --adc`` prints the spec to use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge._checks import check_number, check_positive
from edge.errors import SourceSpecError
from edge.signals.units import UNDECLARED
from edge.sources.arm_scale import MYO, adc_scale, check_unit, inputs_text
from firmware_bridge import protocol as P
from firmware_bridge.sim import ADC_VREF_MV, AdcFeed

ADC_MAX = 1023
#: The ``arm:`` source's defaults (edge/sources/arm.py): options equal to these are left out of a spec.
SOURCE_DEFAULTS = {"vref": 5.0, "bias": 2.5, "gain": 1.0, "unit": MYO}


@dataclass(frozen=True)
class FeedScale:
    """How a recording's values become ADC counts: the ``arm:`` source's ``vref``, ``bias``, ``gain``, ``unit``."""

    unit: str = MYO
    gain: float = 1.0
    bias: float = 2.5
    vref: float = 5.0

    @property
    def m_q(self) -> tuple[float, float]:
        """``(m, q)``: value = counts × m + q (:func:`edge.sources.arm_scale.adc_scale`)."""
        return adc_scale(self.vref, self.bias, self.gain, self.unit)

    def counts(self, x) -> tuple[np.ndarray, int]:
        """ADC counts (int, 0..1023) the front end reads for values ``x`` (non-finite: the bias), and how many
        of them clipped."""
        m, q = self.m_q
        x = np.asarray(x, np.float64)
        c = (np.where(np.isfinite(x), x, 0.0) - q) / m
        c = np.floor(c + 1e-9)  # (a value on a count's edge, as every Myo value is, stays on it)
        clipped = int(np.count_nonzero((c < 0) | (c > ADC_MAX)))
        return np.clip(c, 0, ADC_MAX).astype(np.int64), clipped

    def values(self, counts) -> np.ndarray:
        """What the ``arm:`` source delivers for ``counts`` (the inverse of :meth:`counts`)."""
        m, q = self.m_q
        return np.asarray(counts, np.float64) * m + q

    def spec_options(self) -> dict:
        """The ``arm:`` source options that read these counts back (defaults left out)."""
        return {k: v for k, v in (("unit", self.unit), ("gain", self.gain), ("bias", self.bias), ("vref", self.vref))
                if v != SOURCE_DEFAULTS[k] and not (k == "unit" and str(v).lower() == MYO)}


def feed_millivolts(counts) -> np.ndarray:
    """The smallest millivolts at which the simulated ADC (``mV × 1023 // 5000``) reads ``counts``."""
    return -(-np.asarray(counts, np.int64) * ADC_VREF_MV // ADC_MAX)


def recording_unit(units=(), unit: str | None = None) -> str:
    """``unit``, else the one unit every channel declares (a recording's ``units``), else ``myo`` (the Myo
    armband's files declare none; a recording in a voltage unit that declares none needs ``unit=``)."""
    if unit is not None:
        return check_unit(unit)
    declared = {str(u) for u in (units or ()) if str(u).strip().lower() not in UNDECLARED}
    if len(declared) > 1:
        raise SourceSpecError(f"the channels declare different units ({', '.join(sorted(declared))}); give the one "
                              "to feed with unit=")
    return check_unit(declared.pop()) if declared else MYO


def choose_gain(x, unit: str, bias: float = 2.5, vref: float = 5.0) -> float:
    """The declared gain for values ``x`` (module docstring): the largest 1, 2, 5 × 10^k at which they fit."""
    m1, q1 = adc_scale(vref, bias, 1.0, unit)  # at gain g: counts = (g·x − q1) / m1
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    hi, lo = (float(x.max()), float(x.min())) if x.size else (0.0, 0.0)
    limits = [(ADC_MAX * m1 + q1) / hi if hi > 0 else math.inf, q1 / lo if lo < 0 and q1 < 0 else math.inf]
    if lo < 0 and q1 >= 0:
        raise SourceSpecError(f"the recording goes negative but bias={bias:g} V puts 0 at the bottom of the range: "
                              "a raw (signed) signal needs a bias, e.g. bias=2.5")
    g_max = min(limits)
    if not math.isfinite(g_max):
        return 1.0
    k = math.floor(math.log10(g_max))
    return max(f * 10.0 ** k for f in (1, 2, 5) if f * 10.0 ** k <= g_max * (1 + 1e-12))


def feed_scale(samples, units=(), *, unit: str | None = None, gain: float | None = None, bias: float = 2.5,
               vref: float = 5.0) -> FeedScale:
    """The scale ``samples`` (declaring ``units``) are fed at (module docstring): the unit, the declared gain
    or the one :func:`choose_gain` picks for them."""
    unit = recording_unit(units, unit)
    for name, v in (("bias", bias), ("vref", vref)):
        check_number(v, name, lo=0.0, exc=SourceSpecError, fix="volts")
    if not 0 <= bias < vref:
        raise SourceSpecError(f"bias={bias:g} V must lie in the ADC's range 0..vref={vref:g} V")
    if gain is None:
        gain = choose_gain(samples, unit, bias, vref)
    else:
        check_positive(gain, "gain", exc=SourceSpecError, fix="the sensor's gain")
    return FeedScale(unit, float(gain), float(bias), float(vref))


@dataclass
class RecordingFeed:
    """A recording on the simulated arm's inputs: ``feed`` for :func:`firmware_bridge.sim.start`, its ``scale``,
    its ``counts`` (what the ADC reads, per row and channel) and the ``clipped`` values."""

    feed: AdcFeed
    scale: FeedScale
    counts: np.ndarray
    clipped: int
    rate_hz: float
    channels: tuple
    inputs: tuple = ()

    def spec(self, port: str = "sim", rate: int | None = None) -> str:
        """The ``arm:`` source spec that reads this feed back: inputs A0.., the scale, and the recording's rate
        (or the next the firmware can scan at, a divisor of 1000 Hz: it then holds each row until the next)."""
        inputs = self.inputs or tuple(range(len(self.channels)))
        if rate is None:
            rate = next((r for r in range(math.ceil(self.rate_hz - 1e-9), P.STREAM_TICK_HZ + 1)
                         if P.STREAM_TICK_HZ % r == 0), P.STREAM_TICK_HZ)
        opts = {"channels": inputs_text(inputs), "rate": rate,
                **{k: f"{v:g}" if isinstance(v, float) else v for k, v in self.scale.spec_options().items()}}
        return f"arm:{port}?" + "&".join(f"{k}={v}" for k, v in opts.items())

    def describe(self) -> str:
        s, n = self.scale, len(self.channels)
        on = "A" + inputs_text(self.inputs or range(n)).replace("-", "-A").replace(",", ",A")
        clip = f", {self.clipped} values clipped" if self.clipped else ", nothing clipped"
        return (f"{n} channel(s) ({', '.join(self.channels)}) on {on} at {self.rate_hz:g} Hz, "
                f"{len(self.counts) / self.rate_hz:.1f} s; {s.unit} at gain {s.gain:g} around a {s.bias:g} V bias "
                f"(vref {s.vref:g} V){clip}")


def recording_feed(recording, *, channels=None, inputs=None, seconds: float | None = None, **scale) -> RecordingFeed:
    """The feed of a recording (or the first ``seconds`` of it) (module docstring): its ``channels`` (names or
    indices, at most 8; default all) on the ADC ``inputs`` (ascending; default A0, A1 ...; the others held at
    the bias), scaled by :func:`feed_scale` (``unit``, ``gain``, ``bias``, ``vref``).  A multi-segment
    recording is fed end to end (its gaps are not marked)."""
    if isinstance(recording, str) or hasattr(recording, "__fspath__"):
        from edge.recordings import read_recording

        recording = read_recording(recording)
    names = list(recording.channels)
    picks = list(range(len(names))) if channels is None else \
        [names.index(c) if isinstance(c, str) and c in names else int(c) for c in channels]
    if not 1 <= len(picks) <= P.ADC_CHANNELS or not all(0 <= k < len(names) for k in picks):
        raise SourceSpecError(f"{recording.source}: {len(picks)} channel(s) to feed; the arm has {P.ADC_CHANNELS} "
                              f"analog inputs: pick 1-{P.ADC_CHANNELS} of {', '.join(names)}")
    rows = recording.n_samples if seconds is None else min(recording.n_samples, max(1, round(seconds * recording.fs)))
    x = np.asarray(recording.samples[:rows, picks], np.float64)
    s = feed_scale(x, [recording.units[k] for k in picks] if recording.units else (), **scale)
    counts, clipped = s.counts(x)
    inputs = list(range(len(picks))) if inputs is None else [int(i) for i in inputs]
    if len(inputs) != len(picks) or inputs != sorted(set(inputs)) or not 0 <= inputs[0] <= inputs[-1] < P.ADC_CHANNELS:
        raise SourceSpecError(f"{len(picks)} channel(s) to feed onto inputs {inputs}: give one input (0-"
                              f"{P.ADC_CHANNELS - 1}, ascending) per channel")
    on_inputs = np.full((len(counts), inputs[-1] + 1), s.counts(0.0)[0], np.int64)  # unused inputs: at rest
    on_inputs[:, inputs] = counts
    mv = feed_millivolts(on_inputs)
    return RecordingFeed(AdcFeed((r.tolist() for r in mv), recording.fs, on_inputs.shape[1]), s, counts, clipped,
                         float(recording.fs), tuple(names[k] for k in picks), tuple(inputs))
