"""edge.evaluation.metrics (numpy only, runs on the Pi) gives scikit-learn's numbers, to 1e-12, on random data
with ties: the reports of `neurogrip evaluate` (edge) and of training (workstation) are the same metric."""

import warnings

import numpy as np
import pytest
from sklearn import metrics as sk

from edge.evaluation import metrics as m

TOL = {"rtol": 0, "atol": 1e-12}


def _cases(seed: int, n_cases: int = 150):
    """(y, scores): sizes 2..400, positives 1 %..99 %, scores continuous, rounded (ties) or int8 levels."""
    rng = np.random.default_rng(seed)
    for i in range(n_cases):
        n = int(rng.integers(2, 400))
        y = (rng.random(n) < rng.uniform(0.01, 0.99)).astype(rng.choice([np.int64, np.uint8, bool]))
        s = rng.random(n) + rng.uniform(0, 1) * y
        kind = i % 3
        if kind == 1:
            s = np.round(s, int(rng.integers(0, 3)))  # coarse: many ties, across both classes
        elif kind == 2:
            s = (np.clip(np.round(s * 60), -128, 127).astype(np.int8).astype(np.int16) + 128) / 255.0  # int8 levels
        yield y, s.astype(rng.choice([np.float32, np.float64]))


@pytest.mark.parametrize("drop", [True, False])
def test_roc_curve_equals_sklearn(drop):
    n = 0
    for y, s in _cases(1):
        if y.all() or not y.any():
            continue
        ours, ref = m.roc_curve(y, s, drop_intermediate=drop), sk.roc_curve(y, s, drop_intermediate=drop)
        for a, b, name in zip(ours, ref, ("fpr", "tpr", "thresholds")):
            assert a.shape == b.shape, (name, a, b)
            np.testing.assert_allclose(a, b, **TOL, err_msg=name)
        n += 1
    assert n > 100


def test_roc_auc_score_equals_sklearn():
    for y, s in _cases(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn warns on a single class (and returns NaN)
            ref = sk.roc_auc_score(y, s) if 0 < y.sum() < len(y) else float("nan")
        ours = m.roc_auc_score(y, s)
        assert (np.isnan(ours) and np.isnan(ref)) or abs(ours - ref) <= 1e-12, (ours, ref)


def test_single_class_roc_curve_is_nan_as_sklearn():
    y, s = np.zeros(5, int), np.linspace(0, 1, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sk.roc_curve(y, s)
    for a, b in zip(m.roc_curve(y, s), ref):
        np.testing.assert_array_equal(a, b)  # NaN where scikit-learn has NaN


def test_mean_columnwise_auc_equals_sklearn_over_two_class_columns():
    rng = np.random.default_rng(3)
    for _ in range(30):
        n, k = int(rng.integers(5, 300)), int(rng.integers(1, 7))
        y = (rng.random((n, k)) < rng.uniform(0.0, 0.3, k)).astype(np.uint8)
        y[:, 0] = 0  # always one single-class column
        s = np.round(rng.random((n, k)) + 0.5 * y, 1)
        ref = [sk.roc_auc_score(y[:, j], s[:, j]) if 0 < y[:, j].sum() < n else None for j in range(k)]
        ours = m.columnwise_auc(y, s)
        assert [a is None for a in ours] == [b is None for b in ref]
        valid = [b for b in ref if b is not None]
        for a, b in zip(ours, ref):
            if b is not None:
                assert abs(a - b) <= 1e-12
        if valid:
            assert abs(m.mean_columnwise_auc(y, s) - float(np.mean(valid))) <= 1e-12
        else:
            with pytest.raises(ValueError):
                m.mean_columnwise_auc(y, s)


@pytest.mark.filterwarnings("ignore:A single label was found")  # scikit-learn's note on one-class inputs
def test_classification_metrics_equal_sklearn():
    rng = np.random.default_rng(4)
    for _ in range(200):
        n, c = int(rng.integers(1, 200)), int(rng.integers(1, 8))
        t = rng.integers(0, c, n)
        p = np.where(rng.random(n) < rng.uniform(0, 1), t, rng.integers(0, c, n))  # some right, some absent classes
        if rng.random() < 0.3:
            p[:] = rng.integers(0, c)  # one class predicted everywhere: the others' F1 is 0/0
        labels = list(range(c))
        assert abs(m.accuracy(t, p) - sk.accuracy_score(t, p)) <= 1e-12
        np.testing.assert_array_equal(m.confusion_matrix(t, p, c), sk.confusion_matrix(t, p, labels=labels))
        ref = sk.f1_score(t, p, average="macro", labels=labels, zero_division=0)
        assert abs(m.macro_f1(t, p, c) - ref) <= 1e-12, (t, p)


def test_the_devices_ledoit_wolf_is_scikit_learns():
    """edge.calibration.head.ledoit_wolf (numpy, for the Pi) against sklearn.covariance.ledoit_wolf."""
    import numpy as np
    from sklearn.covariance import ledoit_wolf as sk_ledoit_wolf

    from edge.calibration.head import ledoit_wolf

    rng = np.random.default_rng(0)
    for n, d in ((60, 20), (500, 8), (15, 30)):
        x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
        cov, a = ledoit_wolf(x)
        want, want_a = sk_ledoit_wolf(x, assume_centered=True)
        assert abs(a - want_a) < 1e-12 and np.allclose(cov, want, rtol=1e-10, atol=1e-10)
