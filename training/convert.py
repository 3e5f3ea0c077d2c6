"""Keras model → full-integer (int8) TFLite flatbuffer the edge can run, plus checks and runners.

The export is converted from a concrete function with a fixed ``[1, *input_shape]`` signature
(the edge sees static shapes), with variables frozen to constants first, and calibrated on a
deterministic shuffled subset of real windows.  :func:`check_builtin_int8` then proves the
result needs nothing but the builtin int8 kernels of ``tflite_runtime``/``ai_edge_litert``:
no Flex or custom ops, int8 input and output, no float32 tensor on any computing op.

Pitfalls handled here:

- Passing the Keras model as the converter's ``trackable_obj`` keeps its variables as
  ``READ_VARIABLE`` ops and calibration fails (``read_variable.cc ... variable != nullptr``);
  the variables are frozen with ``convert_variables_to_constants_v2`` instead.
- Op names are read with ``Interpreter._get_ops_details()`` **before** ``allocate_tensors``:
  afterwards the default XNNPACK delegate has replaced the nodes by ``DELEGATE``.  Both
  ``ai_edge_litert`` and ``tflite_runtime`` 2.14 interpreters expose ``_get_ops_details``.
"""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from edge.model.inference import dequantise
from edge.model.inputs import quantise  # the same rounding the edge uses
from training.errors import ConversionError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Ops that may legitimately touch float32 tensors (at the boundary of a float model).
_QUANT_OPS = {"QUANTIZE", "DEQUANTIZE"}
_CUSTOM_CODE = 32  # BuiltinOperator.CUSTOM in the TFLite schema


@dataclass(frozen=True)
class Int8Export:
    """A full-integer TFLite model and what the edge needs to feed it.

    ``real = (q - zero_point) * scale`` for input and output; shapes include the batch of 1.
    """

    tflite: bytes = field(repr=False)
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    ops: list[str]
    n_calibration: int = 0

    @property
    def size_bytes(self) -> int:
        return len(self.tflite)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        return quantise(x, self.input_scale, self.input_zero_point)

    def dequantize_output(self, q: np.ndarray) -> np.ndarray:
        return dequantise(q, self.output_scale, self.output_zero_point)


# --------------------------------------------------------------------------- conversion


def _tf():
    import tensorflow as tf

    return tf


def export_graph(model):
    """``model`` with every ``GlobalAveragePooling1D`` computed as an average pool over the whole axis.

    The same function with the same weights (the other layers are shared), but the TFLite
    export gets ``AVERAGE_POOL_2D`` instead of ``MEAN``: tflite-runtime 2.14 runs int8 MEAN through
    a slow generic kernel, about a quarter of the CNN's invoke time, while its int8 average pool
    is an optimised kernel.  Training keeps the Keras layer, so its results do not change.
    """
    import keras

    if not any(isinstance(layer, keras.layers.GlobalAveragePooling1D) for layer in model.layers):
        return model

    class TimeAverage(keras.layers.Layer):
        def call(self, x, mask=None):  # the cloned call passes GlobalAveragePooling1D's arguments
            if mask is not None:
                raise ValueError("a masked GlobalAveragePooling1D cannot be exported as an average pool")
            n = x.shape[1]
            return keras.ops.reshape(keras.ops.average_pool(x, n, strides=n, padding="valid"), (-1, x.shape[2]))

    def swap(layer):
        if isinstance(layer, keras.layers.GlobalAveragePooling1D):
            if layer.keepdims or layer.data_format != "channels_last":
                raise ValueError(f"{layer.name}: only channels_last GlobalAveragePooling1D without keepdims is "
                                 "exported as an average pool")
            return TimeAverage(name=layer.name)
        return layer

    return keras.models.clone_model(model, clone_function=swap)


def _frozen_function(model):
    """A concrete function of ``model`` (inference mode) with a static batch-1 input, variables frozen."""
    tf = _tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"model must have one input and one output, got {len(model.inputs)} and {len(model.outputs)}")
    model = export_graph(model)
    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"model input shape {(None, *shape)} must be static apart from the batch; "
                         "build the model with a fixed window length")
    spec = tf.TensorSpec((1, *shape), tf.float32, name="eeg")
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec], autograph=False)
    return convert_variables_to_constants_v2(fn.get_concrete_function())


def _calibration_windows(model, calibration, max_calibration: int, seed: int) -> np.ndarray:
    x = np.asarray(calibration)
    want = tuple(model.inputs[0].shape[1:])
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise ValueError(f"calibration must be windows of shape (n, {', '.join(map(str, want))}), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("calibration holds no windows; pass real training windows")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise ValueError("calibration must be finite numbers (NaN/inf would ruin the quantisation ranges)")
    if isinstance(max_calibration, bool) or not isinstance(max_calibration, int) or max_calibration < 1:
        raise ValueError(f"max_calibration must be an int >= 1, got {max_calibration!r}")
    rng = np.random.default_rng(seed)
    idx = rng.permutation(x.shape[0])[:max_calibration]
    return x[idx].astype(np.float32)


def to_int8_tflite(model, calibration: np.ndarray, *, max_calibration: int = 500, seed: int = 0) -> Int8Export:
    """Convert ``model`` to a full-integer TFLite model (int8 in, int8 out, builtin ops only).

    Parameters
    ----------
    model : keras.Model
        One input with a static shape apart from the batch, one output.
    calibration : ndarray (n, *input_shape)
        Real input windows (preprocessed exactly as at inference).  A shuffled subset of at
        most ``max_calibration`` (chosen with ``seed``, so deterministic) sets the ranges.

    Raises
    ------
    ConversionError
        The converter failed, or the result is not builtin-only full-integer.
    """
    tf = _tf()
    windows = _calibration_windows(model, calibration, max_calibration, seed)
    frozen = _frozen_function(model)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([w[None]] for w in windows)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    try:
        with warnings.catch_warnings():
            # "Statistics for quantized inputs were expected": the ranges come from calibration.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            flat = bytes(conv.convert())
    except Exception as exc:  # the converter raises many types (ConverterError, RuntimeError...)
        raise ConversionError(f"int8 conversion of {model.name!r} failed: {exc}") from exc
    check_builtin_int8(flat)
    interp = _interpreter(flat)
    ind, outd = interp.get_input_details()[0], interp.get_output_details()[0]
    (in_scale, in_zp), (out_scale, out_zp) = ind["quantization"], outd["quantization"]
    return Int8Export(tflite=flat, input_scale=float(in_scale), input_zero_point=int(in_zp),
                      output_scale=float(out_scale), output_zero_point=int(out_zp),
                      input_shape=tuple(int(d) for d in ind["shape"]),
                      output_shape=tuple(int(d) for d in outd["shape"]),
                      ops=list_ops(flat), n_calibration=len(windows))


def to_float_tflite(model) -> bytes:
    """The float32 TFLite peer of :func:`to_int8_tflite` (same static batch-1 signature, no quantisation)."""
    tf = _tf()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([_frozen_function(model)])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return bytes(conv.convert())
    except Exception as exc:
        raise ConversionError(f"float conversion of {model.name!r} failed: {exc}") from exc


# --------------------------------------------------------------------------- inspection


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = _tf().lite.Interpreter
    return Interpreter


def _interpreter(tflite_bytes: bytes, num_threads: int = 1):
    """Built as the edge builds it (:func:`edge.model.inference.new_interpreter`): built-in kernels without
    the default XNNPACK delegate, as the edge's interpreters are (equal int8 outputs under both; the
    optimised kernels may still differ by 1 LSB between x86-64 and aarch64, which the emulated Pi
    check measures with the reference kernels)."""
    cls = _interpreter_class()
    resolver = importlib.import_module(cls.__module__).OpResolverType
    return cls(model_content=bytes(tflite_bytes), num_threads=num_threads,
               experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def _flatbuffer_opcodes(tflite_bytes: bytes) -> list[tuple[int, str]]:
    """(builtin code, custom code) of every operator code in the flatbuffer, read with the TFLite schema."""
    schema = _schema()
    m = schema.Model.GetRootAsModel(bytearray(tflite_bytes), 0)
    out = []
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        custom = oc.CustomCode()
        out.append((code, custom.decode() if isinstance(custom, bytes) else (custom or "")))
    return out


def _flatbuffer_op_names(tflite_bytes: bytes) -> list[str]:
    """Sorted operator names from the flatbuffer alone (custom ops by their custom code)."""
    names = {v: k for k, v in vars(_schema().BuiltinOperator).items() if not k.startswith("_")}
    return sorted({custom if code == _CUSTOM_CODE else names.get(code, f"BUILTIN_{code}")
                   for code, custom in _flatbuffer_opcodes(tflite_bytes)})


def list_ops(tflite_bytes: bytes) -> list[str]:
    """Sorted names of the operators a TFLite model uses (``"CONV_2D"``, ``"FlexMatMul"``...).

    Read from the interpreter's node list before tensors are allocated (before delegates
    replace nodes).  Falls back to the flatbuffer's operator codes if the interpreter cannot
    load the model (e.g. unresolved Flex ops).
    """
    try:
        interp = _interpreter(tflite_bytes)
        return sorted({op["op_name"] for op in interp._get_ops_details()})
    except (ValueError, RuntimeError):
        return _flatbuffer_op_names(tflite_bytes)


def check_builtin_int8(tflite_bytes: bytes) -> None:
    """Raise :class:`ConversionError` unless the model is builtin-only full-integer with static batch-1 shapes.

    Checked: no custom/Flex operator codes; int8 input and output; static input/output
    shapes with batch 1; no float32 tensor read or written by any op other than
    QUANTIZE/DEQUANTIZE (a float island on the main path).
    """
    problems = []
    custom = sorted({c or "<unnamed>" for code, c in _flatbuffer_opcodes(tflite_bytes) if code == _CUSTOM_CODE})
    if custom:
        problems.append(f"custom/Flex ops {custom} (the edge has builtin kernels only)")
    else:
        interp = _interpreter(tflite_bytes)
        for kind, details in (("input", interp.get_input_details()), ("output", interp.get_output_details())):
            for d in details:
                if d["dtype"] != np.int8:
                    problems.append(f"{kind} {d['name']!r} is {np.dtype(d['dtype']).name}, not int8")
                sig = tuple(int(v) for v in d.get("shape_signature", d["shape"]))
                if any(v < 0 for v in sig) or sig[:1] != (1,):
                    problems.append(f"{kind} {d['name']!r} shape {sig} is not static with batch 1")
        tensors = {t["index"]: t for t in interp.get_tensor_details()}
        float_ops = set()
        for op in interp._get_ops_details():
            if op["op_name"] in _QUANT_OPS:
                continue
            for i in (*op["inputs"], *op["outputs"]):
                if i >= 0 and i in tensors and tensors[i]["dtype"] == np.float32:
                    float_ops.add(op["op_name"])
        if float_ops:
            problems.append(f"float32 tensors on ops {sorted(float_ops)}")
    if problems:
        raise ConversionError("not a builtin-only int8 model: " + "; ".join(problems))


# --------------------------------------------------------------------------- running


class _Runner:
    def __init__(self, tflite_bytes: bytes, num_threads: int = 1):
        self.interp = _interpreter(tflite_bytes, num_threads)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.in_shape = tuple(int(d) for d in self.inp["shape"])

    def windows(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        per = self.in_shape[1:]
        if tuple(x.shape) == per:
            x = x[None]
        if tuple(x.shape[1:]) != per:
            raise ValueError(f"x must be windows of shape (n, {', '.join(map(str, per))}), got {x.shape}")
        return x

    def run(self, x: np.ndarray) -> np.ndarray:
        outs = []
        for w in x:
            self.interp.set_tensor(self.inp["index"], w[None])
            self.interp.invoke()
            outs.append(self.interp.get_tensor(self.out["index"])[0].copy())
        return np.stack(outs) if outs else np.zeros((0, *self.out["shape"][1:]), self.out["dtype"])


def run_tflite(tflite_bytes: bytes, x: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
    """Run a TFLite model (int8 or float) one window at a time on float input; float output.

    For an int8 model the input is quantised with the model's own scale/zero point and the
    output dequantised.  ``x``: ``(n, *window_shape)`` or a single window.  Uses
    ``ai_edge_litert`` when importable, else ``tf.lite.Interpreter``.
    """
    r = _Runner(tflite_bytes, num_threads)
    x = r.windows(x)
    if r.inp["dtype"] == np.int8:
        scale, zp = r.inp["quantization"]
        x = quantise(x, scale, zp)
    else:
        x = x.astype(r.inp["dtype"])
    y = r.run(x)
    if r.out["dtype"] == np.int8:
        scale, zp = r.out["quantization"]
        return dequantise(y, scale, zp)
    return y.astype(np.float32)


def run_tflite_int8(tflite_bytes: bytes, xq: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
    """Raw int8-in/int8-out run of a full-integer model, one window at a time."""
    r = _Runner(tflite_bytes, num_threads)
    xq = r.windows(xq)
    if r.inp["dtype"] != np.int8 or xq.dtype != np.int8:
        raise TypeError(f"run_tflite_int8 needs an int8 model and int8 input, got model input "
                        f"{np.dtype(r.inp['dtype']).name} and x {xq.dtype}")
    return r.run(xq)


def seal_exported(out, manifest: dict, tflite: bytes):
    """Write the bundle of an export and return it loaded, through the edge's own checks (model tensors
    included), validated and hashed once (:func:`edge.bundle.loader.seal`).

    Signing comes later, on the workstation ('neurogrip sign'), so no signature is checked here and
    no 'unsigned' warning is logged for a bundle that was written a moment ago.
    """
    from edge.bundle.loader import seal
    from edge.bundle.trust import TrustPolicy

    return seal(out, manifest, tflite, trust=TrustPolicy())
