"""int8 TFLite inference without TensorFlow.

The Pi has one of two interpreters: ``tflite_runtime`` (Raspberry Pi OS Bookworm, Python 3.11,
numpy < 2) or its successor ``ai_edge_litert``.  :func:`interpreter_backend` picks whichever is
installed (``tflite_runtime`` first, since it is what Bookworm ships) and says which.

Both are built the same way (:func:`new_interpreter`): with TFLite's own built-in kernels and
**no default delegate**.  ``ai_edge_litert`` otherwise applies XNNPACK to every model, whose int8
kernels round differently (±1 LSB on a few percent of outputs against ``tflite_runtime``'s) and whose
fused ``DELEGATE`` nodes hide the graph that calibration reads (:func:`edge.model.head.find_head`).
Without it, the two interpreters give equal int8 outputs on the same inputs
(``tests/edge/test_interpreters.py``), so a bundle made under one runs the same under the other.

Quantisation follows TFLite's affine scheme, ``real = scale · (q − zero_point)``; the float → int8
step is :func:`quantise`, shared by training (to evaluate the int8 model through the edge path)
and the runtime, so both round identically.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np

from edge._checks import check_option
from edge.errors import InferenceError
from edge.model.inputs import quantise

_BACKENDS = (("tflite_runtime", "tflite_runtime.interpreter"), ("ai_edge_litert", "ai_edge_litert.interpreter"))


def interpreter_backend(prefer: str | None = None) -> tuple[str, str, type]:
    """Return ``(name, version, Interpreter class)`` of the installed TFLite interpreter.

    Parameters
    ----------
    prefer : {"tflite_runtime", "ai_edge_litert"}, optional
        Use this one (error if it is not installed); default: the first one installed.
    """
    if prefer is not None:
        check_option(prefer, "prefer", [b[0] for b in _BACKENDS])
    names = [b for b in _BACKENDS if prefer in (None, b[0])]
    errors = []
    for name, module in names:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        top = importlib.import_module(name)
        version = getattr(top, "__version__", None) or getattr(mod, "__version__", "unknown")
        return name, str(version), mod.Interpreter
    raise InferenceError("no TFLite interpreter is installed (" + "; ".join(errors) + "); "
                         "install one with: pip install 'neurogrip[edge]'")


def new_interpreter(content: bytes, *, num_threads: int = 1, backend: str | None = None,
                    reference_kernels: bool = False, preserve_all_tensors: bool = False):
    """A TFLite interpreter for ``content`` built the same way under either backend (tensors allocated).

    Parameters
    ----------
    content : bytes
        The ``.tflite`` flatbuffer.
    num_threads : int
    backend : {"tflite_runtime", "ai_edge_litert"}, optional
    reference_kernels : bool
        TFLite's portable reference kernels (``BUILTIN_REF``); otherwise its optimised built-in
        kernels without the default delegate (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``).
    preserve_all_tensors : bool
        Keep every intermediate tensor readable after ``invoke``.

    Returns
    -------
    (interpreter, backend name, backend version)

    Raises
    ------
    InferenceError
        No interpreter installed, or it cannot load the model.
    """
    name, version, interp_cls = interpreter_backend(backend)
    resolver = importlib.import_module(interp_cls.__module__).OpResolverType
    # Why no default delegate: see the module docstring (equal outputs under both backends).
    kwargs = {"experimental_op_resolver_type": resolver.BUILTIN_REF if reference_kernels
              else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    if preserve_all_tensors:
        kwargs["experimental_preserve_all_tensors"] = True
    try:
        with warnings.catch_warnings():
            # ai_edge_litert warns that preserving tensors is "for debugging"; calibrated bundles need
            # one tensor of it (the features), and the models are a few hundred kB.
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
            interp = interp_cls(model_content=bytes(content), num_threads=num_threads, **kwargs)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise InferenceError(f"the interpreter ({name} {version}) cannot load the model: {exc}; "
                             "re-export the bundle") from None
    return interp, name, version


def dequantise(q, scale: float, zero_point: int) -> np.ndarray:
    """int8 → float32, ``scale · (q − zero_point)``."""
    out = np.subtract(q, np.float32(zero_point), dtype=np.float32)
    out *= np.float32(scale)
    return out


class Int8Model:
    """A full-integer TFLite model with a static batch-1 input.

    Parameters
    ----------
    model : bytes or path
        The ``.tflite`` flatbuffer.
    num_threads : int
        Interpreter threads; 1 keeps the other core free for acquisition on a Pi.
    backend : str, optional
        Force ``"tflite_runtime"`` or ``"ai_edge_litert"``.
    reference_kernels : bool
        Use TFLite's portable reference kernels: bit-identical outputs on every architecture
        (the emulated Pi check uses them), several times slower than the default kernels.
    head : edge.model.head.Head, optional
        A calibrated bundle's float last layer: the outputs are then ``head(features)`` quantised
        with the model's own output quantisation, so everything after the model is unchanged.  A
        head that reads the int8 window's time-domain features gets them from the same input.
    keep_features : bool
        Keep every intermediate tensor readable after ``invoke`` (TFLite otherwise reuses their
        memory), for :meth:`run_features`; implied by ``head``.

    Attributes
    ----------
    backend, backend_version : str
    input_shape, output_shape : tuple
    input_quant, output_quant : tuple (scale, zero_point)
    input_dtype, output_dtype : numpy dtype
    """

    def __init__(self, model, num_threads: int = 1, backend: str | None = None, reference_kernels: bool = False,
                 head=None, keep_features: bool = False):
        content = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
        # reference kernels: TFLite's optimised int8 kernels round differently on x86-64 and aarch64
        # (±1 LSB in a few percent of outputs); the reference kernels are the same arithmetic everywhere.
        self.reference_kernels = reference_kernels
        self._interp, self.backend, self.backend_version = new_interpreter(
            content, num_threads=num_threads, backend=backend, reference_kernels=reference_kernels,
            preserve_all_tensors=head is not None or keep_features)
        ins, outs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise InferenceError(f"model has {len(ins)} inputs and {len(outs)} outputs; expected 1 and 1")
        self._in, self._out = ins[0]["index"], outs[0]["index"]
        self.input_shape = tuple(int(v) for v in ins[0]["shape"])
        self.output_shape = tuple(int(v) for v in outs[0]["shape"])
        self.input_dtype, self.output_dtype = np.dtype(ins[0]["dtype"]), np.dtype(outs[0]["dtype"])
        self.input_quant = (float(ins[0]["quantization"][0]), int(ins[0]["quantization"][1]))
        self.output_quant = (float(outs[0]["quantization"][0]), int(outs[0]["quantization"][1]))
        self.head = head
        self._feat = None
        if head is not None or keep_features:
            from edge.model.head import find_head

            self.base_head = find_head(self._interp)
            self._feat = self.base_head.tensor
            if head is not None and (head.tensor != self._feat or head.tensor_name != self.base_head.tensor_name
                                     or head.weights.shape != self._head_shape(head)):
                raise InferenceError(f"the calibrated head (tensor {head.tensor} {head.tensor_name!r}, weights "
                                     f"{head.weights.shape}) does not fit this model (tensor {self._feat}, "
                                     f"weights {self._head_shape(head)}); calibrate again from its base")
            # by index: get_tensor_details() leaves some tensors out, so a position is not an index
            detail = next(d for d in self._interp.get_tensor_details() if d["index"] == self._feat)
            self._feat_quant = detail["quantization"]

    def _head_shape(self, head) -> tuple[int, int]:
        """The weights a head must have on this model: the trunk's features, then 4 TD features per
        channel for each window tail it reads (which must fit the model's raw-window input)."""
        n, k = self.base_head.weights.shape
        if not head.td_lengths:
            return n, k
        if len(self.input_shape) != 3 or not all(3 <= m <= self.input_shape[1] for m in head.td_lengths):
            raise InferenceError(f"the calibrated head reads time-domain features over {list(head.td_lengths)} "
                                 f"samples, which this model's input {self.input_shape} cannot give; calibrate "
                                 "again from its base")
        return n + 4 * self.input_shape[2] * len(head.td_lengths), k

    def run_int8(self, x: np.ndarray) -> np.ndarray:
        """One window, int8 ``input_shape[1:]`` → int8 ``output_shape[1:]``."""
        if self.head is not None:
            return self.run_batch_int8(x.reshape((1,) + self.input_shape[1:]))[0]
        self._interp.set_tensor(self._in, x.reshape(self.input_shape))
        self._interp.invoke()
        return self._interp.get_tensor(self._out)[0].copy()

    def _features_int8(self, xs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Windows (n, ...) int8 → the int8 feature tensor of each (n, n_features); the graph's own
        outputs into ``out`` when given."""
        feats = np.empty((xs.shape[0], self.base_head.weights.shape[0]), np.int8)
        interp, inp, feat = self._interp, self._in, self._feat
        for i in range(xs.shape[0]):
            interp.set_tensor(inp, xs[i:i + 1].reshape(self.input_shape))
            interp.invoke()
            feats[i] = interp.get_tensor(feat).reshape(-1)
            if out is not None:
                out[i] = interp.get_tensor(self._out)[0]
        return feats

    def run_features(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows (n, ...) int8 → (dequantised features (n, n_features), the graph's own int8 outputs)."""
        if self._feat is None:
            raise InferenceError("run_features needs Int8Model(..., keep_features=True)")
        out = np.empty((xs.shape[0],) + self.output_shape[1:], self.output_dtype)
        return dequantise(self._features_int8(xs, out), *self._feat_quant), out

    def run_batch_int8(self, xs: np.ndarray) -> np.ndarray:
        """Windows (n, ...) int8 → (n, n_outputs) int8, one invoke per window (static batch 1)."""
        if self.head is not None:  # a calibrated bundle: its head on the trunk's features, quantised as the graph's
            feats = self.head.inputs(dequantise(self._features_int8(xs), *self._feat_quant), xs, self.input_quant[1])
            return quantise(self.head.apply(feats), *self.output_quant)
        out = np.empty((xs.shape[0],) + self.output_shape[1:], self.output_dtype)
        interp, inp, outp = self._interp, self._in, self._out
        for i in range(xs.shape[0]):  # run_int8 inlined: this is the runtime's per-window path
            interp.set_tensor(inp, xs[i:i + 1].reshape(self.input_shape))
            interp.invoke()
            out[i] = interp.get_tensor(outp)[0]
        return out

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Float windows (already normalised) → dequantised float outputs, via int8."""
        q = quantise(windows, *self.input_quant)
        return dequantise(self.run_batch_int8(q), *self.output_quant)
