"""edge.evaluation.metrics against cases worked out by hand: ties, single-class columns, perfect and inverse
scores, absent classes.  (tests/training/test_metrics_vs_sklearn.py compares with scikit-learn.)"""

import numpy as np
import pytest

from edge.evaluation import metrics as m


def _rank_auc(y, s):
    """P(positive scores above negative), ties counting one half: the definition of the ROC AUC."""
    y, s = np.asarray(y, bool), np.asarray(s, float)
    pos, neg = s[y], s[~y]
    return ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))


def test_roc_curve_of_scikit_learns_documented_example():
    # sklearn.metrics.roc_curve's docstring: y = [1, 1, 2, 2] (positive 2), scores [0.1, 0.4, 0.35, 0.8]
    fpr, tpr, thr = m.roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    np.testing.assert_array_equal(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_array_equal(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])
    assert m.auc(fpr, tpr) == 0.75


def test_perfect_and_inverse_scores():
    y = [0, 0, 0, 1, 1]
    s = [0.1, 0.2, 0.3, 0.8, 0.9]
    assert m.roc_auc_score(y, s) == 1.0
    assert m.roc_auc_score(y, [-v for v in s]) == 0.0
    fpr, tpr, thr = m.roc_curve(y, s)  # the corners only: (0,0) (0,1/2) (0,1) (1,1)
    np.testing.assert_array_equal(fpr, [0, 0, 0, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 1, 1])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.8, 0.1])


def test_tied_scores_share_one_threshold_and_count_one_half():
    # scores 0.9 (one positive, one negative), 0.5 (one of each), 0.1 (a negative): the tied pairs
    # move the curve diagonally; AUC = (2.5 + 1.5) / 6
    y, s = [1, 0, 1, 0, 0], [0.9, 0.9, 0.5, 0.5, 0.1]
    fpr, tpr, thr = m.roc_curve(y, s)
    np.testing.assert_allclose(fpr, [0, 1 / 3, 2 / 3, 1], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(tpr, [0, 0.5, 1, 1])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.5, 0.1])
    assert m.roc_auc_score(y, s) == pytest.approx(4 / 6, abs=1e-15)
    # all scores equal: one step from (0,0) to (1,1), chance
    fpr, tpr, thr = m.roc_curve([0, 1, 0, 1], [0.5] * 4)
    np.testing.assert_array_equal(fpr, [0, 1])
    np.testing.assert_array_equal(tpr, [0, 1])
    assert m.roc_auc_score([0, 1, 0, 1], [0.5] * 4) == 0.5


def test_auc_equals_the_rank_statistic_on_coarse_int8_like_scores():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 300))
        y = rng.random(n) < rng.uniform(0.05, 0.95)
        if y.all() or not y.any():
            continue
        s = np.round(rng.random(n) + 0.4 * y, 1)  # many ties, as int8 outputs have
        assert m.roc_auc_score(y, s) == pytest.approx(_rank_auc(y, s), abs=1e-12)
        full = m.roc_curve(y, s, drop_intermediate=False)
        assert m.auc(*full[:2]) == pytest.approx(_rank_auc(y, s), abs=1e-12)
        assert len(full[2]) == len(np.unique(s)) + 1  # one point per distinct score, plus (0, 0)


def test_drop_intermediate_keeps_only_corners():
    y, s = [1, 1, 1, 0, 0, 0], [6, 5, 4, 3, 2, 1]
    fpr, tpr, thr = m.roc_curve(y, s)  # the points at 5 (between two positives) and 3, 2 are dropped
    np.testing.assert_array_equal(fpr, [0, 0, 0, 1])
    np.testing.assert_array_equal(tpr, [0, 1 / 3, 1, 1])
    np.testing.assert_array_equal(thr, [np.inf, 6, 4, 1])
    fpr, tpr, thr = m.roc_curve(y, s, drop_intermediate=False)
    assert len(fpr) == 7 and m.auc(fpr, tpr) == 1.0


def test_single_class_truth():
    fpr, tpr, _ = m.roc_curve([0, 0, 0], [0.1, 0.2, 0.3])  # no positive: the true positive rate is undefined
    assert np.isnan(tpr).all() and not np.isnan(fpr).any()
    fpr, tpr, _ = m.roc_curve([True, True], [0.1, 0.2])
    assert np.isnan(fpr).all()
    assert np.isnan(m.roc_auc_score([1, 1, 1], [0.1, 0.2, 0.3]))


def test_columnwise_auc_skips_single_class_columns():
    y = np.array([[0, 1, 0], [1, 1, 0], [0, 1, 0], [1, 1, 0]], np.uint8)  # column 1 all 1, column 2 all 0
    s = np.array([[0.1, 0.5, 0.2], [0.9, 0.4, 0.3], [0.2, 0.3, 0.1], [0.3, 0.2, 0.9]])
    assert m.columnwise_auc(y, s) == [1.0, None, None]
    assert m.mean_columnwise_auc(y, s) == 1.0
    s2, y2 = s.copy(), y.copy()
    y2[:, 2] = [1, 0, 0, 0]  # column 2 now two-class: its positive (0.2) is above 0.1 only of 0.3, 0.1, 0.9
    assert m.columnwise_auc(y2, s2) == [1.0, None, pytest.approx(1 / 3)]
    assert m.mean_columnwise_auc(y2, s2) == pytest.approx((1 + 1 / 3) / 2)
    with pytest.raises(ValueError, match="no column has both classes"):
        m.mean_columnwise_auc(y[:, 1:], s[:, 1:])


def test_classification_metrics_by_hand():
    t, p = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]  # class 3 is neither true nor predicted
    assert m.accuracy(t, p) == 0.6
    np.testing.assert_array_equal(m.confusion_matrix(t, p, 4),
                                  [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    # F1 per class: 2·1/(2+2) = 0.5, 2·2/(2+3) = 0.8, 0 (no true positive), 0 (absent)
    assert m.macro_f1(t, p, 4) == pytest.approx((0.5 + 0.8) / 4, abs=1e-15)
    assert m.macro_f1(t, t, 3) == 1.0
    out = m.classification_metrics(np.array(t), np.array(p), 4)
    assert out == {"accuracy": 0.6, "macro_f1": pytest.approx(0.325), "confusion": m.confusion_matrix(t, p, 4).tolist()}


def test_task_metrics_by_mode():
    y = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], np.uint8)
    s = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.2]])
    out = m.task_metrics("grasp-lift", np.tile(y, (1, 3)), np.tile(s, (1, 3)), 6)
    assert out["auc"] == 1.0 and out["auc_per_label"] == [1.0] * 6
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]])
    out = m.task_metrics("emotion", np.array([0, 2, 2]), probs, 3)
    assert out["accuracy"] == pytest.approx(2 / 3) and out["confusion"] == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]


@pytest.mark.parametrize("call, match", [
    (lambda: m.roc_curve([0, 2, 1], [0.1, 0.2, 0.3]), "0/1 or bool"),
    (lambda: m.roc_curve([0, 1], [0.1, np.nan]), "NaN"),
    (lambda: m.roc_curve([0, 1], [0.1]), "one score per sample"),
    (lambda: m.auc([0, 1, 0.5], [0, 1, 1]), "neither increasing nor decreasing"),
    (lambda: m.confusion_matrix([0, 3], [0, 1], 3), "class indices 0..2"),
    (lambda: m.macro_f1([0, 1], [0, -1], 2), "class indices 0..1"),
    (lambda: m.columnwise_auc(np.zeros((3, 2)), np.zeros((3, 3))), "one shape"),
])
def test_bad_input_is_refused_with_the_reason(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_auc_of_a_decreasing_curve_is_positive():
    assert m.auc([1, 0.5, 0], [1, 1, 0]) == m.auc([0, 0.5, 1], [0, 1, 1]) == 0.75
