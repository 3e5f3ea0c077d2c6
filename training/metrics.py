"""Evaluation metrics (sklearn) and the window-level baseline every run is compared with.

The baseline is filter-bank log-variance (plus the slow trend) per channel, from
:mod:`edge.model_input`, and a logistic regression (one per label for multi-label tasks).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from edge.model_input import normalise_windows, window_features
from edge.tasks import get_task


def mean_columnwise_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The Kaggle Grasp-and-Lift metric: ROC AUC per event column, averaged.

    Columns with a single class in ``y_true`` are skipped (their AUC is undefined).
    """
    aucs = columnwise_auc(y_true, scores)
    valid = [a for a in aucs if a is not None]
    if not valid:
        raise ValueError("y_true: no column has both classes; the AUC is undefined")
    return float(np.mean(valid))


def columnwise_auc(y_true, scores) -> list[float | None]:
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    return [float(roc_auc_score(y_true[:, k], scores[:, k])) if 0 < y_true[:, k].sum() < len(y_true) else None
            for k in range(y_true.shape[1])]


def classification_metrics(y_true, y_pred, n_classes: int) -> dict:
    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=list(range(n_classes)),
                                       zero_division=0)),
            "confusion": confusion_matrix(y_true, y_pred, labels=list(range(n_classes))).tolist()}


def task_metrics(task: str, y_true, scores, n_labels: int) -> dict:
    """The task's headline metrics from scores (probabilities), by its mode (:mod:`edge.tasks`)."""
    if get_task(task).multilabel:
        return {"auc": mean_columnwise_auc(y_true, scores), "auc_per_label": columnwise_auc(y_true, scores)}
    return classification_metrics(y_true, np.argmax(scores, axis=1), n_labels)


# --------------------------------------------------------------------------- baseline

def baseline_features(X: np.ndarray, fs: float, channel_scale) -> np.ndarray:
    """The baseline's inputs: :func:`edge.model_input.window_features` of the normalised windows."""
    return window_features(normalise_windows(X, channel_scale), fs)


def logistic_regression(C: float = 0.1):
    """The baseline's classifier: standardisation + logistic regression (sklearn)."""
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
