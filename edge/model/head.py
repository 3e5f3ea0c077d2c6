"""The model's last layer as a float *head*: what a calibrated bundle's manifest carries and the
runtime applies after the int8 trunk (:class:`edge.model.inference.Int8Model`).

Every neurogrip model ends in ``features → FULLY_CONNECTED → SOFTMAX | LOGISTIC``
(:mod:`training.models`).  :func:`find_head` locates that layer in a TFLite graph and reads its
weights back as floats (the base head); calibration (:mod:`edge.calibration.head`) re-fits it on one
person's features.  A head may also read the log time-domain features of the int8 input window
(:func:`edge.model.inputs.log_td_features`, ``td_lengths``): the EMG calibration's LDA expert fused
into the same linear layer (docs/design.md § 7).  This module is the runtime's: the live path never
imports the calibration package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.errors import InferenceError
from edge.model.inputs import log_td_features

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
        """The manifest's ``head`` section (already checked by :mod:`edge.bundle.schema`)."""
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
        # input tensor are no longer the interpreter's own.  edge.model.inference.new_interpreter builds none.
        raise InferenceError("the interpreter runs this model through a delegate, which hides its last layer; "
                             "build it with edge.model.inference.new_interpreter (no default delegate)")
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
