"""The simple baseline every neural model must beat: filter-bank log-variance + logistic regression.

Features are computed causally (each window uses only samples up to its last
one, filters run forward only) and never across a gap between segments.  A
window is labelled by its last sample, as the Kaggle rule and the edge
runtime do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfilt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from edge.recordings import Recording

# Slow band (movement-related potentials), sampled at several lags to see the recent history,
# and the band-power (log-variance) bands of mu and beta (de)synchronisation.  Hz.
SLOW_BAND = (0.3, 3.0)
SLOW_LAGS_S = (0.0, 0.1, 0.2, 0.4, 0.6, 0.9, 1.2, 1.6, 2.0)
POWER_BANDS = ((8.0, 13.0), (13.0, 30.0))
POWER_WINDOW_S = 0.5


@dataclass
class FeatureSet:
    X: np.ndarray  # (n_windows, n_features)
    y: np.ndarray | None  # (n_windows, n_labels)


def filter_bank_features(rec: Recording, stride: int = 25) -> FeatureSet:
    """Causal features for every ``stride``-th sample once 2 s of history exist in its segment.

    Per channel: the slow band at ``SLOW_LAGS_S`` before the window's last sample,
    and the log-variance of each power band over the last ``POWER_WINDOW_S``.
    """
    lags = np.round(np.asarray(SLOW_LAGS_S) * rec.fs).astype(int)
    pw = int(POWER_WINDOW_S * rec.fs)
    history = max(int(lags.max()) + 1, pw)
    X, y = [], []
    for seg_x, seg_y in rec.segment_arrays():
        if seg_x.shape[0] < history:
            continue
        # Remove the segment's first sample so the filters do not ring on the DC step;
        # only a past sample is used, so this stays causal.
        x0 = seg_x - seg_x[0]
        slow = sosfilt(butter(2, SLOW_BAND, "bandpass", fs=rec.fs, output="sos"), x0, axis=0)
        powers = [sosfilt(butter(2, b, "bandpass", fs=rec.fs, output="sos"), x0, axis=0) ** 2
                  for b in POWER_BANDS]
        # Running mean of the squared band signal over the power window (causal).
        means = []
        for p in powers:
            c = np.cumsum(np.vstack([np.zeros((1, p.shape[1])), p]), axis=0)
            means.append((c[pw:] - c[:-pw]) / pw)  # means[i] covers samples [i, i+pw)
        ends = np.arange(history - 1, seg_x.shape[0], stride)  # index of each window's last sample
        feats = [slow[ends - lag] for lag in lags]
        feats += [np.log(m[ends - pw + 1] + 1e-3) for m in means]
        X.append(np.concatenate(feats, axis=1))
        if seg_y is not None:
            y.append(seg_y[ends])
    if not X:
        raise ValueError(f"rec: no segment of {rec.source} is {history} samples long")
    return FeatureSet(np.concatenate(X), np.concatenate(y) if y else None)


def mean_columnwise_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The Kaggle metric: mean over label columns of the ROC AUC (columns with one class skipped)."""
    aucs = [roc_auc_score(y_true[:, j], scores[:, j]) for j in range(y_true.shape[1])
            if 0 < y_true[:, j].sum() < y_true.shape[0]]
    if not aucs:
        raise ValueError("y_true: every label column has a single class; AUC is undefined")
    return float(np.mean(aucs))


class FilterBankBaseline:
    """One standardised logistic regression per label column over filter-bank features."""

    def __init__(self, stride: int = 25, C: float = 0.1):
        self.stride, self.C = stride, C
        self.models = []

    def _features(self, recordings) -> tuple[np.ndarray, np.ndarray]:
        fs = [filter_bank_features(r, self.stride) for r in recordings]
        return np.concatenate([f.X for f in fs]), np.concatenate([f.y for f in fs])

    def fit(self, recordings) -> FilterBankBaseline:
        X, y = self._features(recordings)
        self.models = [make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=500))
                       .fit(X, y[:, j]) for j in range(y.shape[1])]
        return self

    def score(self, recordings) -> tuple[np.ndarray, np.ndarray]:
        X, y = self._features(recordings)
        p = np.column_stack([m.predict_proba(X)[:, 1] for m in self.models])
        return y, p

    def auc(self, recordings) -> float:
        return mean_columnwise_auc(*self.score(recordings))
