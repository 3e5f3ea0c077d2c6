"""Decoding metrics in numpy alone: what ``neurogrip evaluate`` and the benchmarks report, on the Pi too.

The same numbers as scikit-learn's (``tests/training/test_metrics_vs_sklearn.py`` checks them to
1e-12 on random data with ties), without scikit-learn:

* :func:`roc_curve` — as ``sklearn.metrics.roc_curve``: one point per *distinct* score (tied
  scores move the curve diagonally, they are never split), highest first, the first threshold
  ``inf``; with ``drop_intermediate`` (the default, as scikit-learn's) collinear points are
  dropped.  A rate with no sample to divide by (no positives, or no negatives) is NaN.
* :func:`auc` — trapezoidal area under a curve (x increasing or decreasing), as ``sklearn.metrics.auc``.
* :func:`roc_auc_score` — binary ROC AUC, ``auc(*roc_curve(y, s)[:2])`` (ties count one half);
  NaN when ``y_true`` holds one class only (as scikit-learn ≥ 1.6, which also warns).
* :func:`columnwise_auc`, :func:`mean_columnwise_auc` — the Kaggle Grasp-and-Lift metric: ROC
  AUC per label column, averaged over the columns that hold both classes.
* :func:`accuracy`, :func:`confusion_matrix`, :func:`macro_f1` — for class indices
  ``0..n_classes-1``; a class that is neither true nor predicted has F1 0 (scikit-learn's
  ``zero_division=0``).  Unlike scikit-learn, an index outside ``0..n_classes-1`` is an error, not
  silently left out.
* :func:`classification_metrics`, :func:`task_metrics` — the dictionaries reports and bundle
  manifests carry (``auc``/``auc_per_label``, or ``accuracy``/``macro_f1``/``confusion``).
"""

from __future__ import annotations

import numpy as np

from edge._checks import check_int

__all__ = ["accuracy", "auc", "classification_metrics", "columnwise_auc", "confusion_matrix", "macro_f1",
           "mean_columnwise_auc", "roc_auc_score", "roc_curve", "task_metrics"]


def _binary_truth(y_true, name: str = "y_true") -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"{name} must be one label per sample (1-D), got shape {y.shape}")
    if y.dtype == bool:
        return y
    if not np.isin(y, (0, 1)).all():
        bad = np.unique(y[~np.isin(y, (0, 1))])[:5]
        raise ValueError(f"{name} must hold 0/1 or bool labels, got {bad.tolist()}")
    return y == 1


def _scores(y_score, n: int) -> np.ndarray:
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim != 1 or len(s) != n:
        raise ValueError(f"y_score must be one score per sample ({n}), got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("y_score holds NaN or infinite values")
    return s


def roc_curve(y_true, y_score, *, drop_intermediate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of binary labels ``y_true`` (0/1 or bool) against scores ``y_score``.

    Returns ``(fpr, tpr, thresholds)``: the false and true positive rates of "score ≥ threshold"
    for each threshold, thresholds decreasing from ``inf`` (no sample called positive).  Tied
    scores share one threshold.  As ``sklearn.metrics.roc_curve`` (same points, same order).
    """
    y = _binary_truth(y_true)
    s = _scores(y_score, len(y))
    if not len(y):
        raise ValueError("y_true is empty")
    order = np.argsort(s, kind="stable")[::-1]
    s, y = s[order], y[order]
    idx = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each run of equal scores
    tps = np.cumsum(y, dtype=np.float64)[idx]
    fps = 1.0 + idx.astype(np.float64) - tps
    thresholds = s[idx]
    if drop_intermediate and len(fps) > 2:  # keep the corners: where either rate changes slope
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, np.r_[np.inf, thresholds]


def auc(x, y) -> float:
    """Area under the curve through the points ``(x, y)`` by the trapezoidal rule; ``x`` must be
    monotonic (increasing, or decreasing: the area is then still positive)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {x.shape} and {y.shape}")
    if len(x) < 2:
        raise ValueError(f"at least 2 points are needed for an area, got {len(x)}")
    dx = np.diff(x)
    direction = 1.0
    if np.any(dx < 0):
        if not np.all(dx <= 0):
            raise ValueError("x is neither increasing nor decreasing")
        direction = -1.0
    return float(direction * np.add.reduce(dx * (y[1:] + y[:-1]) / 2.0))  # numpy's trapezoid, term for term


def roc_auc_score(y_true, y_score) -> float:
    """Binary ROC AUC: the probability that a random positive scores above a random negative, ties
    counting one half.  NaN when ``y_true`` holds a single class (the AUC is undefined)."""
    y = _binary_truth(y_true)
    if not (y.any() and not y.all()):
        _scores(y_score, len(y))
        return float("nan")
    fpr, tpr, _ = roc_curve(y, y_score)
    return auc(fpr, tpr)


def _label_matrix(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(y_true), np.asarray(scores)
    if y.ndim != 2 or y.shape != s.shape:
        raise ValueError(f"y_true and scores must be (samples, labels) arrays of one shape, got "
                         f"{y.shape} and {s.shape}")
    return y, s


def columnwise_auc(y_true, scores) -> list[float | None]:
    """ROC AUC of each label column of ``(samples, labels)`` arrays; None for a column whose truth
    holds a single class (its AUC is undefined)."""
    y, s = _label_matrix(y_true, scores)
    out: list[float | None] = []
    for k in range(y.shape[1]):
        col = _binary_truth(y[:, k], f"y_true[:, {k}]")
        out.append(roc_auc_score(col, s[:, k]) if col.any() and not col.all() else None)
    return out


def mean_columnwise_auc(y_true, scores) -> float:
    """The Kaggle Grasp-and-Lift metric: ROC AUC per label column, averaged over the columns that
    hold both classes (ValueError when none does)."""
    valid = [a for a in columnwise_auc(y_true, scores) if a is not None]
    if not valid:
        raise ValueError("y_true: no column has both classes; the AUC is undefined")
    return float(np.mean(valid))


def _classes(y_true, y_pred, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 1 or t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must be 1-D of one length, got shapes {t.shape} and {p.shape}")
    n_classes = check_int(n_classes, "n_classes", lo=1)
    for name, a in (("y_true", t), ("y_pred", p)):
        integral = np.issubdtype(a.dtype, np.integer) or a.dtype == bool
        if len(a) and (not integral or a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"{name} must hold class indices 0..{n_classes - 1}, got values "
                             f"{np.unique(a)[:8].tolist()}")
    return t.astype(np.int64), p.astype(np.int64)


def accuracy(y_true, y_pred) -> float:
    """The fraction of samples whose prediction equals the truth."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or not t.size:
        raise ValueError(f"y_true and y_pred must be non-empty and of one shape, got {t.shape} and {p.shape}")
    return float(np.mean(t == p))


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts: row = true class, column = predicted class."""
    t, p = _classes(y_true, y_pred, n_classes)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def macro_f1(y_true, y_pred, n_classes: int) -> float:
    """Unweighted mean over the classes ``0..n_classes-1`` of F1 = 2·TP / (2·TP + FP + FN); a class
    neither true nor predicted counts 0."""
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    tp = np.diag(cm)
    denom = cm.sum(axis=1) + cm.sum(axis=0)  # true + predicted = 2·TP + FN + FP
    f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(np.mean(f1))


def classification_metrics(y_true, y_pred, n_classes: int) -> dict:
    """``accuracy``, ``macro_f1`` and ``confusion`` (a list of rows) of class indices."""
    return {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred, n_classes),
            "confusion": confusion_matrix(y_true, y_pred, n_classes).tolist()}


def task_metrics(task: str, y_true, scores, n_labels: int) -> dict:
    """A task's headline metrics from model scores (probabilities), by its mode (:mod:`edge.tasks`):
    multi-label, ``auc`` (mean column-wise) and ``auc_per_label``; multi-class, those of
    :func:`classification_metrics` on the arg-max."""
    from edge.tasks import get_task

    if get_task(task).multilabel:
        return {"auc": mean_columnwise_auc(y_true, scores), "auc_per_label": columnwise_auc(y_true, scores)}
    return classification_metrics(y_true, np.argmax(np.asarray(scores), axis=1), n_labels)
