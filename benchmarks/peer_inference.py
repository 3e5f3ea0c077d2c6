"""The inference peers, measured in the training environment (TensorFlow + ai_edge_litert)::

    .venv-train/bin/python -m benchmarks.peer_inference --bundle B [--windows W.npy] [--repeats N] --json -

Peers of the bundle's int8 model (batch 1, 1 thread, the same int8 windows the edge measured,
given by ``--windows``; default: windows from the shared recording):

* ``ai_edge_litert_int8``     the bundle's int8 model under ai_edge_litert;
* ``float_tflite``            ``<bundle>.report/model_float.tflite`` under ai_edge_litert, fed the
                              dequantised windows;
* ``keras_call``              ``<bundle>.report/model.keras``, ``model(x, training=False)``;
* ``keras_predict_on_batch``  the same model, ``model.predict_on_batch(x)``.

Prints ``{"peers": {name: {"version", "latency_ms": {...}, "max_abs_diff_vs_int8"} |
{"skipped": reason}}, "python", "threads"}``.  Float peers also report how far their outputs are
from the int8 model's dequantised outputs on the same windows (``max_abs_diff_vs_int8``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np


def _time(fn, xs, repeats):
    from benchmarks.inference import time_calls

    return time_calls(fn, xs, repeats)


def _custom_objects(tf) -> dict:
    """The project's own Keras layers (training.models), which the saved model names but does not register."""
    try:
        import training.models as tm
    except ImportError:
        return {}
    return {name: obj for name, obj in vars(tm).items()
            if isinstance(obj, type) and issubclass(obj, tf.keras.layers.Layer)}


def _guard(peers: dict, names, fn) -> None:
    """Run one peer's measurement; a failure becomes ``skipped`` with the reason, never hides the others."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - reported per peer
        for name in names:
            if "latency_ms" not in peers.get(name, {}):
                peers[name] = {"skipped": f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}


def measure(bundle_path, windows: np.ndarray | None, repeats: int) -> dict:
    from benchmarks.common import BundleRef, Context, int8_windows, recording_for
    from edge.bundle import load_bundle
    from edge.model.inference import InferenceError, Int8Model, dequantise, interpreter_backend

    bundle = load_bundle(bundle_path, check_model=False)
    ref = BundleRef(Path(bundle_path), bundle.task, "given")
    if windows is None:
        from edge.recordings import read_recording

        path, _ = recording_for(Context(quick=True), bundle.task)
        windows = int8_windows(bundle, read_recording(path), 256)
    xf = dequantise(windows, *bundle.input_quant)  # what the float model sees
    peers: dict = {}
    state: dict = {"int8_probs": None}

    def litert_int8():
        try:
            _, version, _ = interpreter_backend(prefer="ai_edge_litert")
        except InferenceError as exc:
            peers["ai_edge_litert_int8"] = {"skipped": f"ai_edge_litert is not installed here ({exc})"}
            return
        m = Int8Model(bundle.model_bytes, num_threads=1, backend="ai_edge_litert")
        peers["ai_edge_litert_int8"] = {"version": version, "latency_ms": _time(m.run_int8, windows, repeats)}
        state["int8_probs"] = dequantise(m.run_batch_int8(windows), *bundle.output_quant)

    def float_tflite():
        path = ref.report_dir / "model_float.tflite"
        if not path.is_file():
            peers["float_tflite"] = {"skipped": f"no float TFLite model ({ref.report_dir.name}/model_float.tflite "
                                                "missing; bundles made by 'neurogrip train' have one)"}
            return
        try:
            from ai_edge_litert import __version__ as litert_version
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            peers["float_tflite"] = {"skipped": f"ai_edge_litert is not installed here ({exc})"}
            return
        it = Interpreter(model_path=str(path), num_threads=1)
        it.allocate_tensors()
        i_in, i_out = it.get_input_details()[0], it.get_output_details()[0]
        shape = tuple(i_in["shape"])

        def run_float(x, it=it, i_in=i_in["index"], i_out=i_out["index"], shape=shape):
            it.set_tensor(i_in, x.reshape(shape))
            it.invoke()
            return it.get_tensor(i_out)[0].copy()

        peers["float_tflite"] = {"version": litert_version, "latency_ms": _time(run_float, xf, repeats)}
        if state["int8_probs"] is not None:
            fp = np.stack([run_float(x) for x in xf])
            peers["float_tflite"]["max_abs_diff_vs_int8"] = float(np.abs(fp - state["int8_probs"]).max())

    def keras():
        path = ref.report_dir / "model.keras"
        names = ("keras_call", "keras_predict_on_batch")
        if not path.is_file():
            why = (f"no float Keras model ({ref.report_dir.name}/model.keras missing; bundles made by "
                   "'neurogrip train' have one)")
            peers.update({n: {"skipped": why} for n in names})
            return
        try:
            import tensorflow as tf
        except ImportError as exc:
            peers.update({n: {"skipped": f"TensorFlow is not installed here ({exc})"} for n in names})
            return
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        model = tf.keras.models.load_model(path, compile=False, custom_objects=_custom_objects(tf))
        xb = xf[:, None]  # (n, 1, length, channels): batch 1 each
        n = max(50, repeats // 10)  # eager Keras is slow: fewer calls

        def call(x, model=model):
            return model(x, training=False)

        peers["keras_call"] = {"version": tf.__version__, "latency_ms": _time(call, xb, n)}
        peers["keras_predict_on_batch"] = {"version": tf.__version__,
                                           "latency_ms": _time(model.predict_on_batch, xb, n)}
        if state["int8_probs"] is not None:
            kp = np.concatenate([np.asarray(call(x)) for x in xb])
            peers["keras_call"]["max_abs_diff_vs_int8"] = float(np.abs(kp - state["int8_probs"]).max())

    _guard(peers, ("ai_edge_litert_int8",), litert_int8)
    _guard(peers, ("float_tflite",), float_tflite)
    _guard(peers, ("keras_call", "keras_predict_on_batch"), keras)
    return {"peers": peers, "python": platform.python_version(), "threads": 1, "bundle": str(bundle_path)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.peer_inference", description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--windows", help="int8 windows (.npy, shape (n, length, channels)); default: from a recording")
    ap.add_argument("--repeats", type=int, default=3000)
    ap.add_argument("--json", default="-", help="output file, '-' for stdout")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    windows = np.load(args.windows) if args.windows else None
    result = measure(args.bundle, windows, args.repeats)
    text = json.dumps(result, indent=1)
    if args.json == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
