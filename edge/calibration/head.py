"""Re-fitting the model's last layer on one person's session, without TensorFlow (docs/design.md § 7).

:func:`fit_head` re-fits the base head (:class:`edge.model.head.Head`, read from the graph by
:func:`edge.model.head.find_head`) on one person's features, pulled towards it by an L2 penalty, with
Newton's method in numpy (the Pi has no scipy or scikit-learn).  For EMG, :func:`fit_lda` fits a
Ledoit-Wolf shrinkage LDA on the log time-domain features of the int8 input windows and
:func:`fuse` adds its logits to the re-fitted layer's (a product of the two experts, still one
linear softmax layer) — the on-device adaptation chosen on the development participants
(``tools/gesture-dev-cv``).
"""

from __future__ import annotations

import numpy as np

from edge.errors import CalibrationError
from edge.model.head import Head

# --------------------------------------------------------------------------- fitting


def _newton(loss_grad_hess, theta0: np.ndarray, iters: int) -> np.ndarray:
    """Damped Newton: a convex, twice-differentiable loss; backtracking keeps every step a descent."""
    theta = theta0.copy()
    f, g, h = loss_grad_hess(theta, True)
    for _ in range(iters):
        try:
            step = np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            step = g
        t = 1.0
        while t > 1e-4:
            cand = theta - t * step
            fc = loss_grad_hess(cand, False)[0]
            if fc <= f - 1e-4 * t * float(g @ step):
                break
            t *= 0.5
        else:
            break
        theta = cand
        if float(np.abs(t * step).max()) < 1e-7:
            break
        f, g, h = loss_grad_hess(theta, True)
    return theta


def fit_head(features: np.ndarray, targets: np.ndarray, prior: Head, lam: float, *, iters: int = 25) -> Head:
    """Re-fit ``prior``'s weights on one person's windows, penalised towards ``prior``.

    Minimises ``mean cross-entropy + lam/2 · ||θ − θ_prior||²`` over the weights and biases of the
    standardised features (so one ``lam`` means the same for every feature's scale).  ``lam`` → ∞
    returns the prior; small ``lam`` fits the person's data alone.

    Parameters
    ----------
    features : ndarray (n, n_features)
        Dequantised feature tensors of the person's windows.
    targets : ndarray
        Class indices (n,) for a softmax head; 0/1 labels (n, n_outputs) for a sigmoid head.
    prior : Head
        The base bundle's head (also gives the activation and the tensor).
    lam : float > 0
    """
    if not lam > 0:
        raise CalibrationError(f"the penalty must be > 0, got {lam!r}")
    X = np.asarray(features, np.float64)
    n, d = X.shape
    if n < 2 or d != prior.weights.shape[0]:
        raise CalibrationError(f"need >= 2 windows of {prior.weights.shape[0]} features, got {X.shape}")
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd = np.where(sd > 1e-8, sd, 1.0)  # a feature constant on this person's data carries no evidence
    Xs = np.hstack([(X - mu) / sd, np.ones((n, 1))])
    # the prior in standardised coordinates: logits = Xs @ [W0·sd; b0 + mu·W0]
    W0 = np.vstack([prior.weights * sd[:, None], prior.bias + mu @ prior.weights])
    k = W0.shape[1]
    if prior.activation == "softmax":
        Y = np.eye(k)[np.asarray(targets, np.int64)]
    else:
        Y = np.asarray(targets, np.float64).reshape(n, k)
    theta = np.empty_like(W0)
    if prior.activation == "softmax":
        theta = _newton(_softmax_objective(Xs, Y, W0, lam), W0.ravel(order="F"), iters).reshape(W0.shape, order="F")
    else:
        for j in range(k):  # independent labels: one small problem each
            theta[:, j] = _newton(_logistic_objective(Xs, Y[:, j], W0[:, j], lam), W0[:, j], iters)
    weights = theta[:-1] / sd[:, None]
    bias = theta[-1] - mu @ weights
    return Head(prior.tensor, prior.tensor_name, weights, bias, prior.activation)


def _softmax_objective(Xs, Y, W0, lam):
    n, d1 = Xs.shape
    k = Y.shape[1]

    def f(theta, need):
        W = theta.reshape(d1, k, order="F")
        Z = Xs @ W
        Z -= Z.max(axis=1, keepdims=True)
        logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        diff = theta - W0.ravel(order="F")
        loss = -float((Y * logp).sum()) / n + 0.5 * lam * float(diff @ diff)
        if not need:
            return loss, None, None
        P = np.exp(logp)
        g = (Xs.T @ (P - Y) / n).ravel(order="F") + lam * diff
        H = np.empty((d1 * k, d1 * k))
        for a in range(k):
            for b in range(a, k):
                w = P[:, a] * ((a == b) - P[:, b])
                blk = (Xs * w[:, None]).T @ Xs / n
                H[a * d1:(a + 1) * d1, b * d1:(b + 1) * d1] = blk
                H[b * d1:(b + 1) * d1, a * d1:(a + 1) * d1] = blk
        H[np.diag_indices_from(H)] += lam
        return loss, g, H
    return f


def _logistic_objective(Xs, y, w0, lam):
    n = Xs.shape[0]

    def f(w, need):
        z = Xs @ w
        loss_i = np.logaddexp(0.0, z) - y * z
        diff = w - w0
        loss = float(loss_i.mean()) + 0.5 * lam * float(diff @ diff)
        if not need:
            return loss, None, None
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        g = Xs.T @ (p - y) / n + lam * diff
        H = (Xs * (p * (1 - p))[:, None]).T @ Xs / n
        H[np.diag_indices_from(H)] += lam
        return loss, g, H
    return f


# --------------------------------------------------------------------------- the time-domain expert


def ledoit_wolf(residuals: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit & Wolf's (2004) shrunk covariance of zero-mean rows: ``(1 − a)·S + a·μ·I``.

    Returns the covariance and the shrinkage ``a`` (the formula of
    ``sklearn.covariance.ledoit_wolf_shrinkage``, which the Pi does not have).
    """
    r = np.asarray(residuals, np.float64)
    n, d = r.shape
    s = r.T @ r / n
    mu = float(np.trace(s)) / d
    r2 = r * r
    beta = float(((r2.T @ r2) / n - s * s).sum()) / n
    delta = float(((s - mu * np.eye(d)) ** 2).sum())
    a = 1.0 if delta <= 0 else min(beta, delta) / delta
    return (1.0 - a) * s + a * mu * np.eye(d), a


def fit_lda(features: np.ndarray, classes: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A linear discriminant with a Ledoit-Wolf shrunk pooled covariance, as logits weights.

    The classic per-person EMG classifier (Hudgins' features + LDA, Englehart & Hudgins 2003),
    fitted on standardised features so that the shrinkage target treats every feature alike.
    Returns ``(weights (d, k), bias (k,))`` with ``features @ weights + bias`` the log posterior up
    to a per-window constant (class priors from the session).  A class without windows gets a
    bias of −inf-like magnitude (−1e3), so it is never chosen.
    """
    X = np.asarray(features, np.float64)
    y = np.asarray(classes, np.int64)
    n, d = X.shape
    if n < 2 or y.shape != (n,):
        raise CalibrationError(f"need >= 2 windows with one class each, got {X.shape} and {y.shape}")
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    z = (X - mu) / sd
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    means = np.zeros((n_classes, d))
    np.add.at(means, y, z)
    means[present] /= counts[present, None]
    residuals = z - means[y]
    if float((residuals * residuals).mean()) < 1e-12:
        # every feature constant within its class (a flat or all-zero session): no covariance to estimate
        raise CalibrationError("the session's time-domain features do not vary within a gesture (a flat or "
                               "disconnected signal?); check the electrodes and record again")
    cov, _ = ledoit_wolf(residuals)
    p = np.linalg.solve(cov, means.T)  # (d, k)
    bias = -0.5 * np.einsum("kd,dk->k", means, p) + np.log(np.where(present, counts, 1.0) / n)
    bias[~present] = -1e3
    w = p / sd[:, None]
    return w, bias - mu @ w


def fuse(head: Head, lda_weights: np.ndarray, lda_bias: np.ndarray, td_lengths, td_threshold: float) -> Head:
    """One softmax layer over [trunk features, TD features]: the re-fitted head's logits plus the
    LDA's.  The product of the two experts' posteriors, normalised — still one linear layer, so the
    runtime applies it exactly as any calibrated head."""
    if head.activation != "softmax":
        raise CalibrationError("only a softmax head can be fused with the time-domain LDA")
    w = np.vstack([head.weights, lda_weights])
    return Head(head.tensor, head.tensor_name, w, head.bias + lda_bias, head.activation,
                tuple(int(n) for n in td_lengths), float(td_threshold))
