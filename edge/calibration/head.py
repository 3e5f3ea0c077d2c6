"""The model's last layer as a small float *head* that calibration can re-fit without TensorFlow.

Every neurogrip model ends in ``features → FULLY_CONNECTED → SOFTMAX | LOGISTIC``
(:mod:`training.models`).  The int8 trunk up to ``features`` is what pre-training on many people
learnt; the last layer is the part that a new person's short session can re-fit
(docs/design.md §7).  :func:`find_head` locates that layer in a TFLite graph and reads its weights
back as floats (the base head); :func:`fit_head` re-fits it on one person's features, pulled
towards the base head by an L2 penalty, with Newton's method in numpy (the Pi has no scipy or
scikit-learn); :class:`Head` is what a calibrated bundle's manifest carries, applied by
:class:`edge.inference.Int8Model` after the int8 trunk.

A head may also read the log time-domain features of the int8 input window
(:func:`edge.model_input.log_td_features`, ``td_lengths``): :func:`fit_lda` fits a shrinkage LDA on
them and :func:`fuse` adds its logits to the re-fitted layer's (a product of the two experts,
still one linear softmax layer) — the on-device adaptation chosen on the development
participants (docs/design.md § 7, ``tools/gesture-dev-cv``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.errors import CalibrationError, InferenceError
from edge.model_input import log_td_features

ACTIVATION_OPS = {"SOFTMAX": "softmax", "LOGISTIC": "sigmoid"}


@dataclass(frozen=True)
class Head:
    """A float last layer: ``activation(features @ weights + bias)``.

    Attributes
    ----------
    tensor : int
        Index of the feature tensor (the input of the model's last FULLY_CONNECTED) in the
        TFLite graph; ``tensor_name`` guards against a different graph.
    weights : ndarray, shape (n_features, n_outputs), float64
    bias : ndarray, shape (n_outputs,), float64
    activation : {"softmax", "sigmoid"}
    td_lengths : tuple of int
        Window tails (samples) whose log time-domain features of the int8 input follow the trunk's
        features in the head's input (the weights' last rows); empty: the trunk's features only.
    td_threshold : float
        Their zero-crossing / slope-change threshold, in int8 input steps.
    """

    tensor: int
    tensor_name: str
    weights: np.ndarray
    bias: np.ndarray
    activation: str
    td_lengths: tuple[int, ...] = ()
    td_threshold: float = 0.0

    def inputs(self, trunk: np.ndarray, xq: np.ndarray | None, zero_point: int = 0) -> np.ndarray:
        """The head's input: the trunk's features, then the int8 windows' TD features if it reads them."""
        if not self.td_lengths:
            return trunk
        return np.hstack([trunk, log_td_features(xq, zero_point, self.td_lengths, self.td_threshold)])

    def logits(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weights + self.bias

    def apply(self, features: np.ndarray) -> np.ndarray:
        """Features (n, n_features) → probabilities (n, n_outputs)."""
        return activate(self.logits(features), self.activation)

    def to_manifest(self) -> dict:
        m = {"tensor": int(self.tensor), "tensor_name": self.tensor_name, "activation": self.activation,
             "weights": [[float(v) for v in row] for row in self.weights],
             "bias": [float(v) for v in self.bias]}
        if self.td_lengths:
            m["td"] = {"lengths": [int(n) for n in self.td_lengths], "threshold": float(self.td_threshold)}
        return m

    @classmethod
    def from_manifest(cls, h: dict) -> Head:
        """The manifest's ``head`` section (already checked by :mod:`edge.manifest_schema`)."""
        td = h.get("td") or {}
        return cls(int(h["tensor"]), str(h["tensor_name"]), np.asarray(h["weights"], np.float64),
                   np.asarray(h["bias"], np.float64), str(h["activation"]),
                   tuple(int(n) for n in td.get("lengths", ())), float(td.get("threshold", 0.0)))


def activate(z: np.ndarray, activation: str) -> np.ndarray:
    if activation == "softmax":
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function without overflow


def _per_channel(t: dict, n: int) -> np.ndarray:
    scales = np.asarray(t["quantization_parameters"]["scales"], np.float64)
    zeros = np.asarray(t["quantization_parameters"]["zero_points"], np.float64)
    if scales.size == 1:
        scales, zeros = np.full(n, scales[0]), np.full(n, zeros[0] if zeros.size else 0.0)
    return scales, zeros


def find_head(interpreter) -> Head:
    """The base head of a model: its last FULLY_CONNECTED and activation, as floats.

    ``interpreter`` must have been built with ``experimental_preserve_all_tensors=True``.

    Raises
    ------
    InferenceError
        The graph does not end in FULLY_CONNECTED → SOFTMAX/LOGISTIC.
    """
    ops = interpreter._get_ops_details()  # public in all TFLite Python APIs since 2.5, named with _
    if any(o["op_name"] == "DELEGATE" for o in ops):
        # A delegate (ai_edge_litert's default XNNPACK) fuses the graph's nodes: the last layer and its
        # input tensor are no longer the interpreter's own.  edge.inference.new_interpreter builds none.
        raise InferenceError("the interpreter runs this model through a delegate, which hides its last layer; "
                             "build it with edge.inference.new_interpreter (no default delegate)")
    out = interpreter.get_output_details()[0]["index"]
    last = [o for o in ops if out in list(o["outputs"])]
    if len(last) != 1 or last[0]["op_name"] not in ACTIVATION_OPS:
        raise InferenceError("the model does not end in SOFTMAX or LOGISTIC; it cannot be calibrated on the "
                             "device (re-export it with 'neurogrip train')")
    fc_out = int(last[0]["inputs"][0])
    fc = [o for o in ops if fc_out in list(o["outputs"])]
    if len(fc) != 1 or fc[0]["op_name"] != "FULLY_CONNECTED" or len(fc[0]["inputs"]) < 2:
        raise InferenceError("the model's last layer is not FULLY_CONNECTED; it cannot be calibrated on the device")
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    feat, w_idx = int(fc[0]["inputs"][0]), int(fc[0]["inputs"][1])
    b_idx = int(fc[0]["inputs"][2]) if len(fc[0]["inputs"]) > 2 else -1
    wq = interpreter.get_tensor(w_idx).astype(np.float64)  # (n_outputs, n_features)
    if wq.ndim != 2:
        raise InferenceError(f"the last FULLY_CONNECTED has weights of shape {wq.shape}; expected 2-D")
    s, z = _per_channel(details[w_idx], wq.shape[0])
    weights = ((wq - z[:, None]) * s[:, None]).T
    bias = np.zeros(wq.shape[0])
    if b_idx >= 0:
        bs, bz = _per_channel(details[b_idx], wq.shape[0])
        bias = (interpreter.get_tensor(b_idx).astype(np.float64) - bz) * bs
    return Head(feat, details[feat]["name"], weights, bias, ACTIVATION_OPS[last[0]["op_name"]])


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
