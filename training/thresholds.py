"""Decision thresholds chosen on validation data (training only; the edge reads them from the bundle).

The chosen values become :attr:`edge.decision.DecisionPolicy.thresholds` in the bundle manifest.
"""

from __future__ import annotations

import numpy as np

from edge._checks import check_number, check_option
from edge.errors import DecisionError


def choose_thresholds(y_true: np.ndarray, scores: np.ndarray, target: str = "youden",
                      max_fpr: float = 0.05) -> np.ndarray:
    """Pick one threshold per label on validation data (a window is "on" when ``score >= threshold``).

    Candidate thresholds are the distinct scores of each column.

    * ``target="youden"``: maximise Youden's J = TPR - FPR; among equal J the highest threshold
      (fewest false positives) wins.
    * ``target="fpr"``: the lowest threshold whose false-positive rate is <= ``max_fpr``, i.e. the
      highest TPR at that FPR budget.  If even the top score exceeds the budget, the threshold is
      just above the top score (the label never fires on this data); it is capped at 1.0 when the
      scores are probabilities.

    Parameters
    ----------
    y_true : bool array, shape (n, k)
    scores : float array, shape (n, k)
    target : {"youden", "fpr"}
    max_fpr : float in [0, 1), used by ``target="fpr"``

    Returns
    -------
    float64 array, shape (k,)

    Raises
    ------
    DecisionError
        Shapes differ, NaN scores, or a label without positives or without negatives.
    """
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if s.ndim == 1:
        s = s[:, None]
    if y.shape != s.shape or y.ndim != 2 or y.shape[0] == 0:
        raise DecisionError(f"y_true and scores must both have shape (n_windows, n_labels), got "
                            f"{np.shape(y_true)} and {np.shape(scores)}")
    if not np.all(np.isfinite(s)):
        raise DecisionError("scores contain NaN or inf: drop those windows first")
    check_option(target, "target", ("youden", "fpr"), exc=DecisionError)
    if target == "fpr":
        check_number(max_fpr, "max_fpr", lo=0.0, hi=1.0, exc=DecisionError)
    y = y.astype(bool)
    probabilities = bool(np.all((s >= 0.0) & (s <= 1.0)))
    out = np.empty(y.shape[1])
    for j in range(y.shape[1]):
        yj, sj = y[:, j], s[:, j]
        n_pos = int(yj.sum())
        n_neg = yj.size - n_pos
        if n_pos == 0 or n_neg == 0:
            raise DecisionError(f"label column {j} has {'no positive' if n_pos == 0 else 'no negative'} windows "
                                f"in the validation data: thresholds need both; use a longer validation set")
        order = np.argsort(-sj, kind="stable")
        ss, yy = sj[order], yj[order]
        tp = np.cumsum(yy)
        fp = np.cumsum(~yy)
        last = np.r_[ss[1:] != ss[:-1], True]  # last index of each run of equal scores
        thr, tpr, fpr = ss[last], tp[last] / n_pos, fp[last] / n_neg
        if target == "youden":
            out[j] = thr[int(np.argmax(tpr - fpr))]  # argmax: first = highest threshold on ties
        else:
            okk = np.nonzero(fpr <= max_fpr)[0]
            if okk.size:
                out[j] = thr[okk[-1]]
            else:
                above = float(np.nextafter(ss[0], np.inf))
                out[j] = min(above, 1.0) if probabilities else above
    return out
