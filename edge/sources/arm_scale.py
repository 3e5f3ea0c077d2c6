"""What the arm's front end's numbers mean (for :mod:`edge.sources.arm`): its inputs, and ADC counts → a unit.

The maths, here and nowhere else (:func:`adc_scale`)::

    volts = counts × vref / 1024                 the ATmega328P's conversion (PROTOCOL.md § 5.2; the
                                                 simulated arm's, mV × 1023 / 5000, reads 0.1 % lower)
    value = (volts − bias) / gain × per_volt     per_volt: V 1, mV 1e3, uV 1e6, nV 1e9; myo 256 / vref

``vref`` is the ADC's reference (the board's 5 V), ``bias`` the sensor's output at rest (2.5 V: a raw
EMG sensor's mid-supply; 0 for an envelope sensor), ``gain`` the sensor's gain.

``myo`` (the default unit) is the Myo armband's EMG unit, the one the gesture bundles are trained in:
signed 8-bit, −128..127 across the Myo's ADC range.  The front end's range is the sensor's 0..vref swing
around its bias, so a Myo unit is 1/256 of it — 4 counts, ``(counts − 512) / 4`` at the defaults (5 V,
2.5 V, gain 1), exact in floating point.  A raw sensor whose strongest contraction nearly fills 0–5 V
(docs/wiring.md sets its gain so) then lands where the Myo's strongest did, and the gesture bundle's
fixed per-channel scale (~10 units, its ``window.channel_scale``) is ~40 counts.  With ``unit=myo``,
``gain`` is a sensor's gain relative to that setting.

A voltage unit gives the voltage at the electrodes, so ``gain`` must be the sensor's own.  Checked when
a bundle in a voltage unit meets the source (:func:`unit_problem`) against the amplitudes
:mod:`edge.signals.units` finds plausible for EEG/EMG (:data:`~edge.signals.units.PLAUSIBLE_MAD_UV`, a
spread of 0.5–5000 µV): one count must be at most a tenth of the largest plausible spread (which then
spans ten counts or more: ``gain=1`` with ``unit=uV``, 4883 µV a count, is refused), and the ADC's half
range more than ten times the smallest.
"""

from __future__ import annotations

from edge.errors import SourceSpecError
from edge.signals.units import PLAUSIBLE_MAD_UV, parse_unit
from firmware_bridge import protocol as P

MYO = "myo"


def parse_inputs(channels) -> tuple[int, ...]:
    """ADC inputs from ``"0-7"``, ``"0,2,5"``, ``"A0-A3,A6"`` or an iterable of ints; ascending, each once."""
    out: list[int] = []
    try:
        if isinstance(channels, str):
            for part in channels.replace(" ", "").upper().replace("A", "").split(","):
                lo, dash, hi = part.partition("-")
                out += range(int(lo), int(hi) + 1) if dash else [int(lo)]
        else:
            out = [int(c) for c in channels]
    except (TypeError, ValueError):
        raise SourceSpecError(f"channels={channels!r} is not a list of ADC inputs; write e.g. channels=0-7, "
                              "channels=0,2,5 or channels=A0-A3") from None
    if not out or any(not 0 <= c < P.ADC_CHANNELS for c in out) or out != sorted(set(out)):
        raise SourceSpecError(f"channels={channels!r}: give ADC inputs 0..{P.ADC_CHANNELS - 1} (A0-A"
                              f"{P.ADC_CHANNELS - 1}) in ascending order, each once (scans hold them so), "
                              "e.g. channels=0-7")
    return tuple(out)


def inputs_text(inputs) -> str:
    """The ``channels=`` text of ADC inputs (``0-7``, ``0,2,5``)."""
    inputs = list(inputs)
    if len(inputs) > 2 and inputs == list(range(inputs[0], inputs[-1] + 1)):
        return f"{inputs[0]}-{inputs[-1]}"
    return ",".join(map(str, inputs))


def check_unit(unit) -> str:
    """The ``unit=`` option: ``myo`` or a voltage unit (:func:`edge.signals.units.parse_unit`'s words)."""
    text = str(unit).strip()
    try:
        volts = parse_unit(text, exc=SourceSpecError) is not None
    except SourceSpecError:
        volts = False
    if not volts and text.lower() != MYO:
        raise SourceSpecError(f"unit={text!r}: the arm's front end delivers myo (the Myo armband's units, the "
                              "gesture bundles') or a voltage at the electrodes (V, mV, uV, nV; with gain=)")
    return text


def adc_scale(vref: float, bias: float, gain: float, unit: str) -> tuple[float, float]:
    """``(m, q)`` with ``value = counts × m + q`` in ``unit`` (the module docstring's maths)."""
    if unit.lower() == MYO:  # per_volt = 256 / vref, written so that the defaults are exact (0.25, -128)
        return 256.0 / 1024.0 / gain, -bias * 256.0 / vref / gain
    per_volt = 1e6 / parse_unit(unit)
    return vref / 1024.0 * per_volt / gain, -bias * per_volt / gain


def unit_problem(target: str, unit: str, vref: float, bias: float, gain: float) -> tuple[str, dict] | None:
    """Why values in ``unit`` cannot feed a bundle in ``target``: ``(the problem, the options that fix it)``,
    or None when they can (edge/signals/units.py then converts between voltage units)."""
    if parse_unit(target) is None:  # the device's own units: only the Myo's has a scale here
        if target.lower() == unit.lower():
            return None
        if target.lower() == MYO:
            return f"the bundle's signal is in {target!r}, not {unit}", {"unit": MYO, "gain": None}
        return f"the bundle's signal is in {target!r}, to which the front end has no scale", {}
    if unit.lower() == MYO:
        return f"the bundle's signal is in {target}, not in the Myo's units", {"unit": target, "gain": "GAIN"}
    lo, hi = PLAUSIBLE_MAD_UV
    step_uv, half_uv = vref / 1024 / gain * 1e6, max(bias, vref - bias) / gain * 1e6
    if step_uv > hi / 10:
        return (f"at gain={gain:g} one ADC count is {step_uv:.3g} µV at the electrodes, so even the largest "
                f"plausible EMG/EEG (a spread of {hi:g} µV) spans fewer than ten counts"), {"gain": 1000.0}
    if half_uv < 10 * lo:
        return f"at gain={gain:g} the ADC's range is ±{half_uv:.3g} µV at the electrodes", {"gain": 1000.0}
    return None
