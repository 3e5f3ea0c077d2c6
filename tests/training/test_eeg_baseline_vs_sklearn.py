"""The FB+LR peer's logistic regression (benchmarks/eeg_baseline.py: Newton's method in numpy, since the
bench's environment has no scikit-learn) gives scikit-learn's LogisticRegression: the same penalised
objective, so the same coefficients and probabilities once both have converged."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from benchmarks.eeg_baseline import Baseline, fit_logistic


@pytest.mark.parametrize("n, d, C, seed", [(300, 20, 1.0, 0), (2000, 224, 1.0, 1), (500, 50, 0.01, 2),
                                           (100, 150, 10.0, 3), (400, 8, 1.0, 4)])
def test_fit_logistic_equals_sklearn(n, d, C, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ (0.3 * rng.standard_normal(d)) - 1.0)))).astype(np.uint8)
    w, b = fit_logistic(X, y, C)
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=100_000).fit(X, y)
    p = 1 / (1 + np.exp(-(X @ w + b)))
    np.testing.assert_allclose(p, ref.predict_proba(X)[:, 1], atol=1e-5)
    np.testing.assert_allclose(w, ref.coef_[0], atol=1e-4)
    assert abs(b - ref.intercept_[0]) < 1e-4


def test_baseline_equals_a_standardised_sklearn_model_per_column():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(7)
    F = rng.standard_normal((600, 30)) * 3 + 5
    Y = (F[:, :6] + rng.normal(0, 2, (600, 6)) > 5).astype(np.uint8)
    ours = Baseline().fit(F[:400], Y[:400]).predict(F[400:])
    for j in range(Y.shape[1]):
        ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=1e-12, max_iter=100_000))
        np.testing.assert_allclose(ours[:, j], ref.fit(F[:400], Y[:400, j]).predict_proba(F[400:])[:, 1], atol=1e-5)
