"""Synthetic EEG that looks like the real recordings: the generators (numpy).

Writing a recording in a file layout is :mod:`edge.recordings`' job (:func:`~edge.recordings.write_grasp_lift`,
:func:`~edge.recordings.write_muse`); :func:`synthesize_grasp_lift` uses the first to write a
whole Kaggle-layout data set.

Two generators, both deterministic from ``(seed, subject, series/state)``:

* :func:`grasp_lift_series` — 32 channels at 500 Hz in the Kaggle
  Grasp-and-Lift layout.  Trial timing is resampled from the real events
  files (:class:`TrialTiming`); the signal is a spatially correlated 1/f
  background fitted per channel group to the real recordings, alpha/mu and
  beta rhythms with movement-related desynchronisation and post-movement beta
  rebound, a movement-related potential and per-event evoked potentials over
  sensorimotor channels, EMG bursts, eye blinks on frontal channels, 50 Hz
  mains, slow electrode drift and DC offsets.  Everything that carries label
  information (topographies, latencies, ERD depth, amplitudes) is drawn per
  *subject*, so decoding across subjects is genuinely harder than within.
  The task-locked potentials are large (40–70 µV) on purpose: they stand for
  the cortical potentials *plus* the movement and muscle artefacts that real
  grasp-and-lift recordings carry time-locked to the same events, which is
  much of what decoders pick up on the real data.
* :func:`muse_recording` — 4-channel Muse-like streams at 256 Hz whose band
  power depends on a labelled mental state.

The spectra were fitted to ``shared/data/grasp_lift_segments`` (subjects 1–6,
series 1–3; log-PSD of 150-sample Hann segments, 6–45 Hz) and are checked
against them by ``tests/edge/test_synthetic.py``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge._checks import check_int, check_option, check_positive
from edge.recordings import (
    GRASP_LIFT_CHANNELS,
    GRASP_LIFT_EVENTS,
    GRASP_LIFT_FS,
    MUSE_COLUMNS,
    MUSE_FS,
    Recording,
    read_grasp_lift_events,
    write_grasp_lift,
)
from edge.recordings.base import event_labels

# Approximate 10-20 positions (x: left→right, y: back→front) on the unit disc.
CHANNEL_POSITIONS = {
    "Fp1": (-0.3, 0.95), "Fp2": (0.3, 0.95), "F7": (-0.8, 0.55), "F3": (-0.4, 0.5), "Fz": (0.0, 0.5),
    "F4": (0.4, 0.5), "F8": (0.8, 0.55), "FC5": (-0.65, 0.25), "FC1": (-0.2, 0.25), "FC2": (0.2, 0.25),
    "FC6": (0.65, 0.25), "T7": (-0.95, 0.0), "C3": (-0.45, 0.0), "Cz": (0.0, 0.0), "C4": (0.45, 0.0),
    "T8": (0.95, 0.0), "TP9": (-0.95, -0.3), "CP5": (-0.65, -0.25), "CP1": (-0.2, -0.25),
    "CP2": (0.2, -0.25), "CP6": (0.65, -0.25), "TP10": (0.95, -0.3), "P7": (-0.8, -0.55),
    "P3": (-0.4, -0.5), "Pz": (0.0, -0.5), "P4": (0.4, -0.5), "P8": (0.8, -0.55), "PO9": (-0.6, -0.85),
    "O1": (-0.3, -0.9), "Oz": (0.0, -0.95), "O2": (0.3, -0.9), "PO10": (0.6, -0.85),
}

CHANNEL_GROUPS = {
    "frontal": ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8"),
    "central": ("FC5", "FC1", "FC2", "FC6", "C3", "Cz", "C4", "CP5", "CP1", "CP2", "CP6"),
    "temporal": ("T7", "T8", "TP9", "TP10"),
    "posterior": ("P7", "P3", "Pz", "P4", "P8", "PO9", "O1", "Oz", "O2", "PO10"),
}

# Background PSD per group, S(f) = 10**log_p1 * f**-beta + 10**log_floor  [µV²/Hz],
# least-squares fits to the real segments (see module docstring).
BACKGROUND_FIT = {
    "frontal": (3.58, 1.56, 0.67),
    "central": (3.47, 1.64, -1.0),
    "temporal": (3.95, 1.57, 1.30),
    "posterior": (4.13, 1.71, 0.40),
}

# Trial timing summary of the 12 real events files (408 trials), used when no
# events files are given: event centre offsets from HandStart in ms (mean, sd),
# inter-trial interval HandStart→HandStart in s (min, max), lead-in and tail in samples.
# The real spectra flatten below a few Hz instead of rising as 1/f all the way down.
SPECTRAL_KNEE_HZ = 2.0
DRIFT_CORNER_HZ = 0.05

DEFAULT_OFFSETS_MS = ((0, 0), (727, 128), (794, 128), (1011, 223), (4032, 310), (4216, 353))
DEFAULT_ITI_S = (5.56, 9.14)
DEFAULT_LEAD_IN = 1200
DEFAULT_TAIL = 1300
EVENT_HALF_WIDTH = 75  # Kaggle labels are 1 within ±150 ms (±75 samples at 500 Hz) of each event


@dataclass
class TrialTiming:
    """A pool of real trial timings to resample from.

    Attributes
    ----------
    offsets : ndarray, shape (n_trials, 6), int
        Event centre sample of each event relative to HandStart (500 Hz).
    iti : ndarray, shape (n_intervals,), int
        Samples from one HandStart to the next.
    lead_in, tail : int
        Samples before the first HandStart and after the last BothReleased.
    """

    offsets: np.ndarray
    iti: np.ndarray
    lead_in: int = DEFAULT_LEAD_IN
    tail: int = DEFAULT_TAIL

    @classmethod
    def from_events_files(cls, paths) -> TrialTiming:
        """Collect real trial timing from Kaggle ``*_events.csv[.gz]`` files (contiguous ids)."""
        offsets, iti, leads, tails = [], [], [], []
        for path in paths:
            index, labels = read_grasp_lift_events(path)
            onsets = []
            for j in range(labels.shape[1]):
                rise = np.flatnonzero(np.diff(np.r_[0, labels[:, j].astype(np.int8)]) > 0)
                onsets.append(rise + EVENT_HALF_WIDTH)
            n = min(len(o) for o in onsets)
            if n == 0:
                continue
            centres = np.stack([o[:n] for o in onsets], axis=1)
            offsets.append(centres - centres[:, :1])
            iti.append(np.diff(centres[:, 0]))
            leads.append(int(centres[0, 0]))
            tails.append(int(index.size - centres[-1, -1]))
        if not offsets:
            raise ValueError("paths: no events file with complete trials was given")
        return cls(np.concatenate(offsets), np.concatenate(iti),
                   int(np.median(leads)), int(np.median(tails)))

    @classmethod
    def default(cls, rng: np.random.Generator | None = None, n: int = 400) -> TrialTiming:
        """Timing drawn from the summary statistics of the real events files."""
        rng = np.random.default_rng(0) if rng is None else rng
        mean = np.array([m for m, _ in DEFAULT_OFFSETS_MS], float)
        sd = np.array([s for _, s in DEFAULT_OFFSETS_MS], float)
        raw = mean + sd * rng.standard_normal((n, 6))
        raw[:, 0] = 0
        # Events are ordered within a trial; keep at least 20 ms between them.
        offsets = np.maximum.accumulate(np.maximum(raw, 0), axis=1) + np.arange(6) * 20
        iti = rng.uniform(*DEFAULT_ITI_S, n) * 1000
        return cls((offsets / 2).astype(int), (iti / 2).astype(int))


def _positions(channels) -> np.ndarray:
    return np.array([CHANNEL_POSITIONS[c] for c in channels], float)


def _blob(centre, width, pos) -> np.ndarray:
    d2 = ((pos - np.asarray(centre)) ** 2).sum(axis=1)
    return np.exp(-d2 / (2 * width**2))


def _shaped_noise(rng, n, psd, fs, mixing=None) -> np.ndarray:
    """Gaussian noise with one-sided PSD ``psd(f)`` per channel (n, n_ch)."""
    white = rng.standard_normal((n, psd.shape[1]))
    if mixing is not None:
        white = white @ mixing.T
    spec = np.fft.rfft(white, axis=0)
    spec *= np.sqrt(psd * fs / 2.0)
    return np.fft.irfft(spec, n=n, axis=0)


def _band_noise(rng, n, fs, f0, bw, n_ch=1) -> np.ndarray:
    """Unit-variance narrow-band noise around ``f0`` (Gaussian spectral bump of width ``bw``)."""
    f = np.fft.rfftfreq(n, 1 / fs)
    shape = np.exp(-0.5 * ((f - f0) / bw) ** 2)[:, None] * np.ones((1, n_ch))
    x = _shaped_noise(rng, n, shape, fs)
    return x / x.std(axis=0, keepdims=True)


def _smooth_step(t: np.ndarray, width: float) -> np.ndarray:
    """0 → 1 raised-cosine ramp over ``[0, width]``."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(t / width, 0.0, 1.0))


@dataclass
class _Subject:
    """Per-subject physiology: everything that makes subjects differ."""

    gain: dict
    beta_shift: float
    alpha_f: float
    beta_f: float
    mu_f: float
    motor_topo: np.ndarray
    erd_topo: np.ndarray
    erd_depth: float
    rebound: float
    bp_amp: float
    erp_amp: np.ndarray
    erp_lat: np.ndarray
    erp_width: np.ndarray
    erp_topos: np.ndarray
    mains_uv: float
    emg_prob: float
    blink_rate: float


def _subject(seed: int, subject: int, pos: np.ndarray) -> _Subject:
    rng = np.random.default_rng([seed, subject, 7919])
    centre_l = np.array([-0.45, 0.0]) + rng.normal(0, 0.12, 2)
    motor_topo = _blob(centre_l, 0.35 + rng.uniform(-0.05, 0.1), pos) - 0.3 * _blob(
        centre_l + rng.normal([0.3, 0.4], 0.15), 0.4, pos)
    erd_topo = 0.8 * _blob(centre_l, 0.3, pos) + 0.4 * _blob(-centre_l + rng.normal(0, 0.1, 2), 0.3, pos)
    erp_topos = np.stack([
        _blob(np.array([0.0, 0.1]) + rng.normal(0, 0.25, 2), 0.3 + rng.uniform(0, 0.2), pos)
        * rng.choice([-1.0, 1.0]) for _ in range(6)
    ])
    return _Subject(
        gain={g: 10 ** rng.normal(0, 0.15) for g in CHANNEL_GROUPS},
        beta_shift=rng.normal(0, 0.1),
        alpha_f=rng.uniform(8.5, 11.5),
        beta_f=rng.uniform(17, 24),
        mu_f=rng.uniform(9, 12),
        motor_topo=motor_topo,
        erd_topo=erd_topo,
        erd_depth=rng.uniform(0.35, 0.7),
        rebound=rng.uniform(0.1, 0.4),
        bp_amp=rng.uniform(30, 50),
        erp_amp=rng.uniform(40, 70, 6),
        erp_lat=rng.uniform(0.03, 0.2, 6),
        erp_width=rng.uniform(0.1, 0.25, 6),
        erp_topos=erp_topos,
        mains_uv=10 ** rng.uniform(-0.3, 1.3),
        emg_prob=rng.uniform(0.4, 0.9),
        blink_rate=rng.uniform(10, 25) / 60,
    )


def _trial_onsets(rng, timing: TrialTiming, n_trials: int) -> tuple[np.ndarray, int]:
    pick = rng.integers(0, len(timing.offsets), n_trials)
    offsets = timing.offsets[pick]
    iti = timing.iti[rng.integers(0, len(timing.iti), n_trials)]
    starts = timing.lead_in + np.concatenate(([0], np.cumsum(iti[:-1])))
    # A trial's last event must come before the next HandStart (real data holds this).
    for i in range(1, n_trials):
        starts[i] = max(starts[i], starts[i - 1] + offsets[i - 1, -1] + 500)
    centres = starts[:, None] + offsets
    n_samples = int(centres[-1, -1] + timing.tail)
    return centres.astype(np.int64), n_samples


def grasp_lift_series(subject: int, series: int, seed: int = 0, n_trials: int = 34,
                      timing: TrialTiming | None = None) -> Recording:
    """Generate one continuous Grasp-and-Lift series (32 ch, 500 Hz, 6 event labels).

    Parameters
    ----------
    subject, series : int
        Identify the subject (physiology) and the series (this recording's noise).
    seed : int
        Master seed; the same arguments always give the same recording.
    n_trials : int
        Trials in the series (the real series have 34).
    timing : TrialTiming, optional
        Pool of real trial timings; default: the embedded summary of the real files.

    Returns
    -------
    Recording
        Integer-valued samples in µV (as the Kaggle files store them), contiguous.
    """
    n_trials = check_int(n_trials, "n_trials", lo=1)
    fs = GRASP_LIFT_FS
    channels = GRASP_LIFT_CHANNELS
    pos = _positions(channels)
    subj = _subject(seed, subject, pos)
    rng = np.random.default_rng([seed, subject, series])
    timing = TrialTiming.default() if timing is None else timing
    centres, n = _trial_onsets(rng, timing, n_trials)
    t = np.arange(n) / fs
    f = np.fft.rfftfreq(n, 1 / fs)

    # 1/f background, spatially correlated by volume conduction (nearby electrodes mix).
    psd = np.empty((f.size, len(channels)))
    group_of = {c: g for g, chs in CHANNEL_GROUPS.items() for c in chs}
    for i, c in enumerate(channels):
        log_p1, beta, log_floor = BACKGROUND_FIT[group_of[c]]
        jitter = 10 ** rng.normal(0, 0.05)
        psd[:, i] = subj.gain[group_of[c]] * jitter * (
            10**log_p1 * (f**2 + SPECTRAL_KNEE_HZ**2) ** (-(beta + subj.beta_shift) / 2) + 10**log_floor)
    psd[f < 0.1] = 0.0
    dist2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    mixing = np.exp(-dist2 / (2 * 0.25**2))
    mixing /= np.linalg.norm(mixing, axis=1, keepdims=True)
    x = _shaped_noise(rng, n, psd, fs, mixing)

    # Movement envelope per sample: 1 during reach-grasp-lift-hold-replace, ramped.
    move = np.zeros(n)
    rebound = np.zeros(n)
    for ev in centres:
        start, stop = ev[0] - 0.3 * fs, ev[5] + 0.2 * fs
        idx = np.arange(max(0, int(start - 0.4 * fs)), min(n, int(stop + 0.4 * fs)))
        ramp = _smooth_step(idx - (start - 0.4 * fs), 0.4 * fs) * (1 - _smooth_step(idx - stop, 0.4 * fs))
        move[idx] = np.maximum(move[idx], ramp)
        ridx = np.arange(int(stop + 0.3 * fs), min(n, int(stop + 1.8 * fs)))
        rebound[ridx] = np.maximum(rebound[ridx], np.sin(np.pi * (ridx - ridx[0]) / max(1, len(ridx))))

    # Rhythms: posterior alpha; sensorimotor mu and beta with ERD/ERS.
    alpha_topo = _blob((0.0, -0.8), 0.45, pos)
    alpha = _band_noise(rng, n, fs, subj.alpha_f, 0.8)[:, 0] * 6.0 * subj.gain["posterior"]
    x += alpha[:, None] * alpha_topo[None, :] * (1 - 0.3 * move)[:, None]
    mu = _band_noise(rng, n, fs, subj.mu_f, 0.7)[:, 0] * 15.0
    beta = _band_noise(rng, n, fs, subj.beta_f, 2.0)[:, 0] * 10.0
    modulation = 1 - subj.erd_depth * move + subj.rebound * rebound
    x += ((mu + beta) * modulation)[:, None] * subj.erd_topo[None, :]

    # Movement-related potential (readiness potential) and per-event evoked potentials.
    mrp = np.zeros(n)
    for ev in centres:
        a, b = int(ev[0] - 1.5 * fs), int(ev[0] + 0.5 * fs)
        idx = np.arange(max(0, a), min(n, b))
        rise = np.clip((idx - a) / (1.5 * fs), 0, 1)
        fall = 1 - _smooth_step(idx - ev[0], 0.5 * fs)
        mrp[idx] -= subj.bp_amp * rise**2 * fall
    x += mrp[:, None] * subj.motor_topo[None, :]
    for k in range(6):
        wave = np.zeros(n)
        for ev in centres:
            c = ev[k] / fs + subj.erp_lat[k] + rng.normal(0, 0.02)
            lo, hi = int((c - 4 * subj.erp_width[k]) * fs), int((c + 4 * subj.erp_width[k]) * fs)
            idx = np.arange(max(0, lo), min(n, hi))
            u = (t[idx] - c) / subj.erp_width[k]
            wave[idx] += subj.erp_amp[k] * rng.uniform(0.6, 1.4) * (1 - u**2) * np.exp(-0.5 * u**2)
        x += wave[:, None] * subj.erp_topos[k][None, :]

    # EMG: broadband bursts over temporal/frontal muscles, more likely while lifting.
    emg_topo = np.array([1.0 if c in ("T7", "T8", "TP9", "TP10", "F7", "F8") else 0.15 for c in channels])
    emg_gate = np.zeros(n)
    bursts = [(ev[1], ev[4]) for ev in centres if rng.random() < subj.emg_prob]
    for _ in range(rng.poisson(n / fs / 30)):
        s0 = rng.integers(0, n)
        bursts.append((s0, s0 + int(rng.uniform(0.5, 2.0) * fs)))
    for a, b in bursts:
        idx = np.arange(max(0, int(a)), min(n, int(b)))
        emg_gate[idx] = np.maximum(emg_gate[idx], rng.uniform(5, 20))
    if emg_gate.any():
        emg = _shaped_noise(rng, n, ((f > 20) & (f < 150)).astype(float)[:, None], fs)[:, 0]
        emg /= emg.std()
        x += (emg * emg_gate)[:, None] * emg_topo[None, :]

    # Eye blinks: frontal, decaying backwards.
    blink_topo = np.exp(-((pos[:, 1] - 1.0) ** 2) / (2 * 0.3**2))
    blinks = np.zeros(n)
    shape_t = np.arange(int(0.4 * fs)) / fs
    shape = (shape_t / 0.1) * np.exp(1 - shape_t / 0.1)  # alpha function, peak at 100 ms
    for s0 in np.flatnonzero(rng.random(n) < subj.blink_rate / fs):
        m = min(n - s0, shape.size)
        blinks[s0:s0 + m] += rng.uniform(80, 200) * shape[:m]
    x += blinks[:, None] * blink_topo[None, :]

    # 50 Hz mains with a little third harmonic; slow electrode drift; DC offsets.
    ch_mains = subj.mains_uv * 10 ** rng.normal(0, 0.3, len(channels))
    phase = rng.uniform(0, 2 * np.pi)
    mains = np.sin(2 * np.pi * 50 * t + phase)[:, None] + 0.1 * np.sin(2 * np.pi * 150 * t + 3 * phase)[:, None]
    x += mains * (ch_mains * np.sqrt(2))[None, :]
    # Electrode drift: a squared-Lorentzian spectrum below DRIFT_CORNER_HZ, 50–200 µV rms.
    drift_rms = 10 ** rng.uniform(np.log10(50), np.log10(200), len(channels))
    drift_shape = 1.0 / (1.0 + (f / DRIFT_CORNER_HZ) ** 2) ** 2
    drift_psd = drift_shape[:, None] * (drift_rms**2 / (DRIFT_CORNER_HZ * np.pi / 4))[None, :]
    x += _shaped_noise(rng, n, drift_psd, fs)
    x += rng.normal(250, 250, len(channels))[None, :]

    labels = event_labels(n, [(c, k) for ev in centres for k, c in enumerate(ev)], len(GRASP_LIFT_EVENTS),
                          EVENT_HALF_WIDTH)

    return Recording(
        samples=np.round(x),
        channels=channels,
        fs=fs,
        segments=np.array([[0, n]], dtype=np.int64),
        sample_index=np.arange(n, dtype=np.int64),
        labels=labels,
        label_names=GRASP_LIFT_EVENTS,
        subject=str(subject),
        session=str(series),
    )


def synthesize_grasp_lift(directory: str | Path, subjects=(1, 2), series=range(1, 9), seed: int = 0,
                          n_trials: int = 34, timing: TrialTiming | None = None) -> list[Path]:
    """Write a whole synthetic Kaggle-layout data set; returns the data files written."""
    written = []
    for s in subjects:
        for m in series:
            rec = grasp_lift_series(s, m, seed=seed, n_trials=n_trials, timing=timing)
            written.append(write_grasp_lift(rec, directory)[0])
    return written


# --------------------------------------------------------------------------- Muse

MUSE_STATE_BANDS = {
    # relative amplitude of (theta, alpha, beta, high-frequency/EMG) per state
    "relaxed": (1.0, 2.2, 0.8, 0.6),
    "neutral": (1.0, 1.4, 1.0, 1.0),
    "concentrating": (1.2, 0.8, 1.5, 1.8),
}


def muse_recording(subject: str = "a", state: str = "neutral", duration_s: float = 60.0,
                   seed: int = 0, states=MUSE_STATE_BANDS) -> Recording:
    """Generate a Muse-like recording (TP9, AF7, AF8, TP10, Right AUX at 256 Hz).

    Band power depends on ``state`` (a key of ``states``): relaxed → more alpha,
    concentrating → more beta and frontal muscle activity.
    """
    check_option(state, "state", sorted(states))
    duration_s = check_positive(duration_s, "duration_s")
    fs = MUSE_FS
    n = int(duration_s * fs)
    subj_rng = np.random.default_rng([seed, zlib.crc32(str(subject).encode()), 31])
    rng = np.random.default_rng([seed, zlib.crc32(f"{subject}/{state}".encode()), 37])
    theta, alpha, beta, hf = np.asarray(states[state]) * subj_rng.uniform(0.8, 1.25, 4)
    f = np.fft.rfftfreq(n, 1 / fs)
    fsafe = np.maximum(f, 0.3)
    base = 10**2.6 * fsafe**-1.5 + 2.0
    psd = np.repeat(base[:, None], 4, axis=1)
    x = _shaped_noise(rng, n, psd, fs)
    temporal = np.array([1.0, 0.4, 0.4, 1.0])  # TP9/TP10 see occipital alpha better
    frontal = np.array([0.5, 1.0, 1.0, 0.5])
    x += 8 * alpha * _band_noise(rng, n, fs, subj_rng.uniform(9, 11), 1.0)[:, :1] * temporal
    x += 6 * theta * _band_noise(rng, n, fs, 6.0, 1.2)[:, :1] * frontal
    x += 4 * beta * _band_noise(rng, n, fs, 20.0, 4.0)[:, :1] * np.ones(4)
    emg = _shaped_noise(rng, n, ((f > 25) & (f < 110)).astype(float)[:, None] * np.ones((1, 4)), fs)
    x += 3 * hf * emg / emg.std(axis=0)
    x += subj_rng.normal(20, 10, 4)
    aux = rng.normal(0, 35, n)  # the floating AUX input, as in the real files
    t = 1_533_059_192.5 + np.arange(n) / fs
    samples = np.column_stack([x, aux])
    return Recording(
        samples=np.round(samples, 3),
        channels=MUSE_COLUMNS[1:],
        fs=fs,
        segments=np.array([[0, n]], dtype=np.int64),
        sample_index=np.arange(n, dtype=np.int64),
        label_names=tuple(states),
        state=state,
        subject=str(subject),
        session="1",
        timestamps=np.round(t, 3),
    )
