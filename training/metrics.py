"""The window-level baseline every run is compared with, and the metrics (re-exported from :mod:`edge.evaluation.metrics`).

The metrics are numpy-only (:mod:`edge.evaluation.metrics`, equal to scikit-learn's to 1e-12), so evaluating a
bundle needs no scikit-learn.  The baseline is filter-bank log-variance (plus the slow trend) per
channel, from :mod:`edge.model.inputs`, and a logistic regression (one per label for multi-label
tasks): scikit-learn, imported when a baseline is built.
"""

from __future__ import annotations

import numpy as np

from edge.evaluation.metrics import classification_metrics, columnwise_auc, mean_columnwise_auc, task_metrics
from edge.model.inputs import normalise_windows, window_features
from edge.tasks import get_task

__all__ = ["Baseline", "baseline_features", "classification_metrics", "columnwise_auc", "logistic_regression",
           "mean_columnwise_auc", "task_metrics"]


# --------------------------------------------------------------------------- baseline

def baseline_features(X: np.ndarray, fs: float, channel_scale) -> np.ndarray:
    """The baseline's inputs: :func:`edge.model.inputs.window_features` of the normalised windows."""
    return window_features(normalise_windows(X, channel_scale), fs)


def logistic_regression(C: float = 0.1):
    """The baseline's classifier: standardisation + logistic regression (sklearn)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500))


class Baseline:
    """Filter-bank log-variance + logistic regression (one per label for multi-label tasks)."""

    def __init__(self, task: str, fs: float, channel_scale, C: float = 0.1):
        self.task, self.fs, self.channel_scale, self.C = task, fs, channel_scale, C
        self.multilabel = get_task(task).multilabel
        self.models = []

    def _model(self):
        return logistic_regression(self.C)

    def fit(self, X, y) -> Baseline:
        F = baseline_features(X, self.fs, self.channel_scale)
        if self.multilabel:
            self.models = [self._model().fit(F, y[:, k]) for k in range(y.shape[1])]
        else:
            self.models = [self._model().fit(F, y)]
        return self

    def predict(self, X) -> np.ndarray:
        F = baseline_features(X, self.fs, self.channel_scale)
        if self.multilabel:
            return np.column_stack([m.predict_proba(F)[:, 1] for m in self.models])
        return self.models[0].predict_proba(F)
