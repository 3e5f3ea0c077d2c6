"""Signal units: what a stream declares, what the bundle expects, and the factor between them.

A bundle's chain expects values in its manifest's ``signal.units`` ("uV" for EEG bundles; "myo"
for the Myo armband's own EMG values, which have no physical conversion).  A stream declares its
unit per channel in ``desc/channels/channel/unit`` (XDF meta-data), as a word ("microvolts", "uV",
"µV", "V", "mV", "nV"...) or, from MNE-based tools, as a power-of-ten exponent of the SI unit:
mne-lsl's ``StreamInfo.set_channel_info(raw.info)`` writes ``str(ch["unit_mul"])``, the FIFF unit
multiplier ("0" = V, "-6" = µV; src/mne_lsl/lsl/stream_info.py), and its ``PlayerLSL`` pushes
``raw[:, a:b]``, MNE's data in volts, unless ``set_channel_units`` rescaled it (player/_base.py);
its reader accepts "v", "mv", "uv", "volts", "microvolts"... or such an integer
(utils/meas_info.py).

:func:`prepare_source` is where a source meets a bundle (called by :class:`edge.runtime.Runtime`
before it builds the pipeline): it refuses non-signal streams and unconvertible units, gives the
source a per-channel factor when one is needed (``Source.set_scale``: an LSL source multiplies the
chunk it already copies, a replay scales its recording once; no factor, no cost), and, for a
channel that declares no unit, checks the amplitude of the first second of data before the loop
starts — so no command can leave before the check passed, and the data read for it is delivered
afterwards (the first decision waits at most that second).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field

import numpy as np

from edge.errors import SourceError, SourceSpecError
from edge.signals.channels import channel_map, check_signal_types

log = logging.getLogger(__name__)

#: µV per unit, for the words producers write (lower case, with µ/μ spelled u).
UV_PER_UNIT = {"v": 1e6, "volt": 1e6, "volts": 1e6, "mv": 1e3, "millivolt": 1e3, "millivolts": 1e3,
               "uv": 1.0, "microvolt": 1.0, "microvolts": 1.0, "nv": 1e-3, "nanovolt": 1e-3, "nanovolts": 1e-3}
#: Declared units that name no physical unit: values pass unchanged to a bundle in such units
#: (the Myo's "myo"), and cannot be converted to a physical one.
NON_PHYSICAL = frozenset({"myo", "raw", "counts", "count", "adc", "a.u.", "au", "arbitrary"})
UNDECLARED = frozenset({"", "none", "n/a", "na", "unknown"})
_FIFF_EXPONENTS = frozenset({-18, -15, -12, -9, -6, -3, -2, -1, 0, 1, 2, 3, 6, 9, 12, 15, 18})
_EXPONENT = re.compile(r"^[+-]?\d+$")
#: Plausible robust spread (median absolute deviation) of EEG/EMG in µV, checked over the first
#: CHECK_SECONDS of a channel that declares no unit; volts data is ~1e-6 of it.
PLAUSIBLE_MAD_UV = (0.5, 5000.0)
CHECK_SECONDS = 1.0
KNOWN = "V, mV, uV (µV, microvolts), nV, or an MNE power-of-ten exponent (-6 = µV, 0 = V)"


def _norm(text) -> str:
    return str(text).strip().replace("µ", "u").replace("μ", "u").lower()


def is_declared(text) -> bool:
    """A unit is declared (not None, empty, "none", "n/a" or "unknown")."""
    return text is not None and _norm(text) not in UNDECLARED


def parse_unit(text, *, exc: type[SourceError] = SourceError) -> float | None:
    """µV per unit of ``text`` ("V" → 1e6, "mV" → 1e3, "uV" → 1, "-6" → 1, "0" → 1e6).

    None when it names no physical unit: undeclared ("", "none") or non-physical ("myo", "raw",
    "counts").  An unknown unit raises ``exc`` naming it and the fix.
    """
    t = _norm("" if text is None else text)
    if t in UNDECLARED or t in NON_PHYSICAL:
        return None
    if t in UV_PER_UNIT:
        return UV_PER_UNIT[t]
    if _EXPONENT.match(t) and int(t) in _FIFF_EXPONENTS:
        return 10.0 ** (int(t) + 6)
    raise exc(f"unknown unit {str(text).strip()!r}; known: {KNOWN}, or {', '.join(sorted(NON_PHYSICAL))}; "
              "declare the right one with unit=uV in the source spec, or give the factor to the bundle's "
              "unit with scale=FACTOR")


def check_unit_options(unit, scale) -> tuple[str | None, float | None]:
    """The ``unit=`` and ``scale=`` options of a source spec, checked (either, not both)."""
    if unit is not None and scale is not None:
        raise SourceSpecError("give unit= (what the stream's values are in) or scale= (the factor to the "
                              "bundle's unit), not both")
    if unit is not None:
        if not is_declared(unit):
            raise SourceSpecError(f"unit={unit!r} declares no unit; write e.g. unit=uV or unit=V")
        parse_unit(unit, exc=SourceSpecError)
        unit = str(unit).strip()
    if scale is not None:
        scale = float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise SourceSpecError(f"scale must be a finite number > 0 (the factor to the bundle's unit), got {scale!r}")
    return unit, scale


def bundle_unit(bundle) -> str:
    """The unit the bundle's chain expects: the manifest's ``signal.units``, else its task's."""
    unit = (bundle.manifest.get("signal") or {}).get("units")
    if unit:
        return str(unit)
    try:
        return str(bundle.task_spec.unit)
    except Exception:  # noqa: BLE001 - an old or foreign manifest: the EEG default
        return "uV"


def spec_with(source, option: str) -> str:
    """The source's spec with ``option`` added (for the fix in a message)."""
    kind = getattr(source, "kind", "")
    if kind == "lsl":
        props = getattr(source, "props", {}) or {"name": getattr(source, "name", "NAME")}
        return "lsl:" + "&".join(f"{k}={v}" for k, v in props.items()) + f"&{option}"
    if hasattr(source, "recording"):
        return f"{kind}:{getattr(source.recording, 'source', 'FILE')}?{option}"
    return f"{kind}:...?{option}"


def describe(source) -> str:
    if getattr(source, "kind", "") == "lsl":
        return f"LSL stream {getattr(source, 'name', '?')!r}"
    return f"{getattr(source, 'kind', 'the')} source"


@dataclass
class UnitPlan:
    """How a source's channels feed a bundle (see :func:`plan_units`)."""

    idx: np.ndarray                       # source column of each bundle channel
    unit: str                             # the bundle's unit
    declared: list                        # the unit each bundle channel declares (after unit=), or None
    factor: list = field(default_factory=list)     # per bundle channel: × to the bundle's unit
    factors: np.ndarray | None = None     # per source channel, None when every factor is 1
    unchecked: list = field(default_factory=list)  # bundle channels whose amplitude is checked instead


def plan_units(source, bundle) -> UnitPlan:
    """Channel types, the channel map and each bundle channel's factor; raises SourceError when refused."""
    what, channels = describe(source), list(source.channels)
    n = len(channels)
    types = list(getattr(source, "channel_types", None) or [None] * n)
    check_signal_types(what, getattr(source, "stream_type", None), types, channels)
    idx = channel_map(channels, bundle.channels)
    check_signal_types(what, None, types, channels, idx.tolist())
    target = bundle_unit(bundle)
    t_uv = parse_unit(target, exc=SourceError)
    scale, override = getattr(source, "scale", None), getattr(source, "unit", None)
    units = list(getattr(source, "units", None) or [None] * n)
    plan = UnitPlan(idx, target, [override or units[j] for j in idx.tolist()])
    if scale is not None:  # the user's factor: no unit logic, no amplitude check
        plan.factor = [float(scale)] * len(idx)
    for k, (name, declared) in enumerate(zip(bundle.channels, plan.declared) if scale is None else ()):
        if not is_declared(declared):
            plan.factor.append(1.0)
            if t_uv is not None:
                plan.unchecked.append(k)
            continue
        ch = f"stream channel {channels[idx[k]]!r} (bundle channel {name})"
        try:
            u_uv = parse_unit(declared)
        except SourceError as exc:
            raise SourceError(f"{what}: {ch} declares an {exc}") from None
        if t_uv is None and u_uv is not None:
            raise SourceError(f"{what}: {ch} declares {declared!r}, but the bundle's signal is in {target!r}, "
                              "which has no physical conversion (the device's own values); stream its raw "
                              f"values (override a wrong declaration with {spec_with(source, f'unit={target}')}) "
                              "or use a bundle trained on physical units")
        if t_uv is not None and u_uv is None:
            raise SourceError(f"{what}: {ch} declares {declared!r}, which has no conversion to {target}; give "
                              f"the factor with {spec_with(source, 'scale=FACTOR')} ({target} per unit)")
        plan.factor.append(1.0 if u_uv is None else u_uv / t_uv)
    if any(f != 1.0 for f in plan.factor):
        plan.factors = np.ones(n)
        plan.factors[idx] = plan.factor
    return plan


def amplitude_problem(samples, unit: str, what: str, source) -> tuple[float, str | None]:
    """``(median absolute deviation, problem or None)`` of the first second of channels that declare no
    unit, for a bundle in ``unit`` (a physical one)."""
    unit_uv = parse_unit(unit)
    x = np.asarray(samples, dtype=np.float64)
    x = np.where(np.isfinite(x), x, np.nan)
    with np.errstate(all="ignore"):
        mad = float(np.nanmedian(np.nanmedian(np.abs(x - np.nanmedian(x, axis=0)), axis=0))) if x.size else math.nan
    lo, hi = (b / unit_uv for b in PLAUSIBLE_MAD_UV)
    if lo <= mad <= hi:
        return mad, None
    guess = next((u for u, f in (("V", 1e6), ("mV", 1e3), ("nV", 1e-3)) if lo <= mad * f / unit_uv <= hi), None)
    looks = f"it looks like {guess}: add unit={guess}" if guess else "add unit=UNIT"
    fix = spec_with(source, f"unit={guess or 'uV'}")
    return mad, (f"{what} declares no unit and its amplitude is implausible for EEG/EMG in {unit}: median absolute "
                 f"deviation {mad:.3g} over the first {CHECK_SECONDS:g} s (plausible {lo:g}..{hi:g}); {looks} "
                 f"to the source spec ({fix}), or give the factor to {unit} with scale=FACTOR")


def prepare_source(source, bundle) -> UnitPlan:
    """Make ``source`` deliver what ``bundle`` expects, or refuse it (see the module docstring).

    The source's own check comes first (``Source.check_bundle``: the arm's front end refuses a rate or
    channel count it cannot serve, and names its inputs after the bundle's channels).

    Raises
    ------
    SourceError
        A non-signal stream or picked channel, missing or ambiguous channels, an unknown or
        unconvertible unit, or (no unit declared) an implausible amplitude, naming the fix.
    """
    check = getattr(source, "check_bundle", None)
    if check is not None:  # a source that knows what it can serve says so first (the arm's front end: rate, inputs)
        check(bundle)
    plan = plan_units(source, bundle)
    set_scale = getattr(source, "set_scale", None)
    if set_scale is not None:
        set_scale(plan.factors)
    if plan.factors is not None:
        log.info("%s: values × %s to %s (declared %s)", describe(source),
                 ", ".join(sorted({f"{f:g}" for f in plan.factor})), plan.unit,
                 ", ".join(sorted({str(d) for d in plan.declared})))
    first = getattr(source, "first_second", None)
    fs_ok = abs(float(source.fs) - float(bundle.fs)) <= 1e-6 * float(bundle.fs)  # else the Pipeline refuses it
    x = first() if plan.unchecked and first is not None and fs_ok else None
    if x is not None:
        cols = plan.idx[plan.unchecked]
        mad, problem = amplitude_problem(x[:, cols], plan.unit, describe(source), source)
        if problem:
            raise SourceError(problem)
        log.info("%s declares no unit for %d channel(s); amplitude plausible for %s (MAD %.3g)",
                 describe(source), len(cols), plan.unit, mad)
    return plan
