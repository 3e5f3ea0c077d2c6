"""The synthetic generator: deterministic, in the real layouts, with real timing and a real-looking spectrum."""

import numpy as np
import pytest
from scipy.signal import welch

from edge.recordings import GRASP_LIFT_CHANNELS, read_grasp_lift, read_muse, write_grasp_lift, write_muse
from edge.recordings.synthetic import CHANNEL_GROUPS, TrialTiming, grasp_lift_series, muse_recording

# Stated tolerance of the realism check: the synthetic log10-PSD (µV²/Hz), averaged per channel
# group over subjects, stays within these of the real segments' over 1–40 Hz.
PSD_MEAN_ABS_TOL = 0.15  # ≈ a factor 1.4 on average
PSD_MAX_ABS_TOL = 0.35  # ≈ a factor 2.2 at any frequency bin


@pytest.fixture(scope="module")
def short_series():
    return grasp_lift_series(3, 2, seed=5, n_trials=4)


def test_deterministic_from_seed(short_series):
    again = grasp_lift_series(3, 2, seed=5, n_trials=4)
    assert np.array_equal(again.samples, short_series.samples)
    assert np.array_equal(again.labels, short_series.labels)
    other = grasp_lift_series(3, 2, seed=6, n_trials=4)
    assert not np.array_equal(other.samples[:1000], short_series.samples[:1000])


def test_layout_roundtrip_through_the_real_reader(tmp_path, short_series):
    data, _ = write_grasp_lift(short_series, tmp_path)
    assert data.name == "subj3_series2_data.csv.gz"
    rec = read_grasp_lift(data)
    assert np.array_equal(rec.samples, short_series.samples)
    assert np.array_equal(rec.labels, short_series.labels)
    assert rec.segments.tolist() == [[0, short_series.n_samples]]


def test_events_in_order_with_150_sample_labels():
    rec = grasp_lift_series(1, 1, seed=0)
    centres = []
    for k in range(6):
        col = rec.labels[:, k].astype(int)
        rise = np.flatnonzero(np.diff(np.r_[0, col]) > 0)
        fall = np.flatnonzero(np.diff(np.r_[col, 0]) < 0) + 1
        assert np.all(fall - rise == 150)
        centres.append(rise + 75)
    centres = np.stack(centres, axis=1)
    assert centres.shape == (34, 6)  # 34 trials per series, as in the real files
    assert np.all(np.diff(centres, axis=1) > 0)  # events in their natural order
    iti = np.diff(centres[:, 0]) / 500
    assert 4.5 < np.median(iti) < 9.5
    assert rec.n_samples / 500 / 60 == pytest.approx(4.0, abs=0.6)  # real series last ~4 min


def test_timing_from_real_events_files(shared_data):
    files = sorted((shared_data / "grasp_lift_events").glob("*.csv.gz"))
    timing = TrialTiming.from_events_files(files)
    assert timing.offsets.shape == (408, 6)
    rec = grasp_lift_series(1, 1, seed=0, n_trials=6, timing=timing)
    rise = np.flatnonzero(np.diff(np.r_[0, rec.labels[:, 3].astype(int)]) > 0)
    assert len(rise) == 6


def _grouped_log_psd(recordings, length=150):
    """Welch log-PSD on 150-sample pieces (the length of the real windows), per channel group."""
    out = {g: [] for g in CHANNEL_GROUPS}
    for rec in recordings:
        pieces = []
        for start, stop in rec.segments:
            for k in range(start, stop - length + 1, length):
                x = rec.samples[k:k + length]
                f, p = welch(x - x.mean(0), fs=rec.fs, nperseg=length, axis=0)
                pieces.append(p)
        p = np.mean(pieces, axis=0)
        for g, chans in CHANNEL_GROUPS.items():
            idx = [GRASP_LIFT_CHANNELS.index(c) for c in chans]
            out[g].append(np.log10(p[:, idx]).mean(axis=1))
    return f, {g: np.mean(v, axis=0) for g, v in out.items()}


def test_spectrum_matches_the_real_recordings(shared_data):
    seg = shared_data / "grasp_lift_segments"
    real = [read_grasp_lift(seg / f"subj{s}_series{m}_data.csv.gz") for s in range(1, 7) for m in (7, 8)]
    synth = [grasp_lift_series(s, m, seed=11, n_trials=8) for s in range(1, 7) for m in (7, 8)]
    f, r = _grouped_log_psd(real)
    _, s = _grouped_log_psd(synth)
    band = (f >= 1) & (f <= 40)
    for group in CHANNEL_GROUPS:
        diff = np.abs(s[group][band] - r[group][band])
        assert diff.mean() <= PSD_MEAN_ABS_TOL, (group, diff.round(2))
        assert diff.max() <= PSD_MAX_ABS_TOL, (group, diff.round(2))


def test_muse_state_changes_band_power(tmp_path):
    def alpha_ratio(state):
        rec = muse_recording("a", state, duration_s=30, seed=1)
        f, p = welch(rec.samples[:, :4], fs=rec.fs, nperseg=512, axis=0)
        return p[(f >= 8) & (f <= 12)].mean() / p[(f >= 14) & (f <= 30)].mean()

    assert alpha_ratio("relaxed") > 1.5 * alpha_ratio("neutral") > 1.5 * alpha_ratio("concentrating")
    rec = muse_recording("b", "neutral", duration_s=5, seed=2)
    back = read_muse(write_muse(rec, tmp_path / "subjectb-neutral-1.csv"))
    assert back.state == "neutral" and back.samples.shape == (1280, 5)
    assert np.allclose(back.samples, rec.samples, atol=1e-3)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="n_trials"):
        grasp_lift_series(1, 1, n_trials=0)
    with pytest.raises(ValueError, match="state"):
        muse_recording("a", "sleepy")
