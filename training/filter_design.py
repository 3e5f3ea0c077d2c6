"""Filter design at design time (workstation; needs scipy).  The Pi only loads the result.

A chain is described by :class:`FilterSpec` items, designed with scipy, cascaded
into one set of second-order sections and quantised by :class:`edge.chain.dsp.FixedPointSOS`.
The manifest entry produced here carries the design parameters, the integer
sections and, per section, the L1 gain bound used for the headroom proof.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edge.chain.dsp import (
    DEFAULT_INPUT_FRAC_BITS,
    STATE_FRAC_BITS,
    STATE_LIMIT,
    FixedPointSOS,
    sos_from_integers,
)
from edge.chain.signal_chain import SignalChain

KINDS = ("highpass", "lowpass", "bandpass", "notch")


@dataclass(frozen=True)
class FilterSpec:
    """One stage of a chain.

    Parameters
    ----------
    kind : {"highpass", "lowpass", "bandpass", "notch"}
    freqs : tuple of float
        Corner frequency (high/low-pass), (low, high) for band-pass, centre for notch; Hz.
    order : int
        Butterworth order (per edge for band-pass, as scipy counts it); ignored for notch.
    q : float
        Quality factor of a notch.
    """

    kind: str
    freqs: tuple
    order: int = 4
    q: float = 30.0

    def validate(self, fs: float) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        freqs = tuple(self.freqs)
        need = 2 if self.kind == "bandpass" else 1
        if len(freqs) != need:
            raise ValueError(f"freqs: a {self.kind} needs {need} frequency(ies), got {freqs}")
        if any(not 0 < f < fs / 2 for f in freqs):
            raise ValueError(f"freqs {freqs} must lie strictly between 0 and fs/2 = {fs / 2} Hz")
        if self.kind == "bandpass" and not freqs[0] < freqs[1]:
            raise ValueError(f"freqs: band-pass edges must increase, got {freqs}")
        if self.kind != "notch" and not 1 <= self.order <= 12:
            raise ValueError(f"order must be in 1..12, got {self.order}")
        if self.kind == "notch" and not self.q > 0:
            raise ValueError(f"q must be > 0, got {self.q}")


def design_sos(spec: FilterSpec, fs: float) -> np.ndarray:
    """The float second-order sections of one stage (scipy layout)."""
    spec.validate(fs)
    if spec.kind == "notch":
        from scipy import signal  # design time only: evaluating a bundle needs no scipy

        b, a = signal.iirnotch(spec.freqs[0], spec.q, fs=fs)
        return signal.tf2sos(b, a)
    freqs = spec.freqs if spec.kind == "bandpass" else spec.freqs[0]
    from scipy import signal

    return signal.butter(spec.order, freqs, btype=spec.kind, fs=fs, output="sos")


def design_chain(specs, fs: float) -> np.ndarray:
    """Cascade several stages into one (n_sections, 6) array."""
    specs = list(specs)
    if not specs:
        raise ValueError("specs: a chain needs at least one FilterSpec")
    return np.vstack([design_sos(s, fs) for s in specs])


def decimation_filter(factor: int, fs: float, order: int = 8) -> np.ndarray:
    """Anti-aliasing low-pass for decimating by ``factor``: Butterworth at 0.8 × the new Nyquist."""
    if factor < 2:
        raise ValueError(f"factor must be >= 2 for an anti-aliasing filter, got {factor}")
    from scipy import signal

    return signal.butter(order, 0.8 * fs / (2 * factor), "lowpass", fs=fs, output="sos")


def section_l1_gains(fixed: FixedPointSOS, n: int = 200_000) -> list[float]:
    """Σ|h| of the cascade up to each section, for the quantised coefficients.

    ``|y_k| <= L1_k · max|x|`` for any input, so these bound every section output.
    """
    from scipy import signal

    sos = sos_from_integers(fixed.coeffs, fixed.pre_shift, fixed.fb_shift)
    imp = np.zeros(n)
    imp[0] = 1.0
    gains = []
    for k in range(sos.shape[0]):
        imp = signal.sosfilt(sos[k:k + 1], imp)
        gains.append(float(np.abs(imp).sum()))
    return gains


def chain_manifest(specs, fs: float, n_channels: int,
                   input_frac_bits: int = DEFAULT_INPUT_FRAC_BITS) -> dict:
    """Design, quantise and describe a chain for a model bundle's manifest.

    The ``headroom`` entry proves the absence of overflow for in-range input: the largest
    section output for a full-scale input, ``max_in · max(L1)``, against the state limit.
    """
    specs = list(specs)
    fixed = FixedPointSOS(design_chain(specs, fs), n_channels, input_frac_bits)
    gains = section_l1_gains(fixed)
    max_in = (2**31 - 1) / 2**input_frac_bits
    worst = max_in * max(gains) * 2**STATE_FRAC_BITS
    entry = fixed.to_manifest()
    entry.update({
        "fs": fs,
        "design": [dict(asdict(s), freqs=list(s.freqs)) for s in specs],
        "l1_gains": gains,
        "headroom": {"max_input": max_in, "worst_state": worst, "state_limit": STATE_LIMIT,
                     "bits_to_spare": float(np.log2(STATE_LIMIT / worst))},
    })
    return entry


def design_signal_chain(specs, fs: float, n_channels: int, factor: int = 1,
                        input_frac_bits: int = DEFAULT_INPUT_FRAC_BITS) -> SignalChain:
    """Design a :class:`edge.chain.signal_chain.SignalChain` with scipy (workstation only) from :class:`FilterSpec` s.

    The chain's anti-aliasing corner is the lowest low-pass of ``specs``; the edge only ever
    rebuilds chains from a manifest's integers (:meth:`SignalChain.from_manifest`).
    """
    specs = list(specs)
    lows = [s.freqs[0] for s in specs if s.kind == "lowpass"]
    filt = FixedPointSOS(design_chain(specs, fs), n_channels, input_frac_bits)
    design = [dict(asdict(s), freqs=list(s.freqs)) for s in specs]
    return SignalChain(filt, fs, factor, min(lows) if lows else None, design)
