"""Self-contained edge computation for tools/pi-check, run on x86-64 and on emulated aarch64.

    selfcheck.py --out DIR [--model TINY.tflite] [--info-only]

Writes, into DIR, the integer (and integer-valued) arrays that must be identical on every
architecture, plus ``info.json`` describing the interpreter that made them:

* ``synthetic.npy``   float64  a synthetic grasp-lift series generated in this process
                               (integer-valued µV; checks edge.recordings.synthetic is deterministic);
* ``recording.npy``   float64  the same series written as a Kaggle CSV and read back with
                               edge.recordings (the replay input path);
* ``dsp.npy``         int64    edge.chain.dsp.FixedPointSOS output (35 fractional bits) with the
                               backend edge.chain.dsp picks here (the C kernel when it loads);
* ``dsp_numpy.npy``   int64    the same with the numpy reference kernel forced;
* ``tflite_in.npy``   int8     windows of the filtered signal quantised to the model input;
* ``tflite_out_default.npy``  int8  the raw int8 outputs of the model through the installed
                               interpreter (tflite_runtime or ai_edge_litert) built as the edge
                               builds it (optimised built-in kernels, per architecture);
* ``tflite_out_ref.npy``      int8  the same with OpResolverType.BUILTIN_REF (the portable
                               reference kernels).

Only numpy, a TFLite interpreter, pyserial and the repository's ``edge`` package are needed
(no scipy: the filter's float design is a literal below).  The caller compares the files.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

# scipy.signal.butter(2, [0.5, 30.0], btype="bandpass", fs=500.0, output="sos"), computed on
# the host once (scipy is not part of the edge environment).  The 0.5 Hz section has poles at
# radius ~0.996, which exercises the kernel's feedback-remainder path.
SOS_BANDPASS_0P5_30_FS500 = [
    [0.027038151622029133, 0.054076303244058266, 0.027038151622029133, 1.0, -1.4886956151094644, 0.5974236370669678],
    [1.0, -2.0, 1.0, 1.0, -1.9911229432317203, 0.9911635391030644],
]
WINDOW_STRIDE = 64


def describe() -> dict:
    """Interpreter, platform and package versions, and the DSP backend edge.chain.dsp selected."""
    import numpy
    import serial

    import edge.chain.dsp
    from edge.model.inference import interpreter_backend

    backend, backend_version, _ = interpreter_backend()

    info = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "byteorder": sys.byteorder,
        "numpy": numpy.__version__,
        "tflite_runtime": f"{backend} {backend_version}",
        "pyserial": serial.__version__,
        "dsp_backends": list(edge.chain.dsp.available_backends()),
        "dsp_backend": edge.chain.dsp.FixedPointSOS(SOS_BANDPASS_0P5_30_FS500, 1).backend,
    }
    try:
        from importlib.metadata import version

        info["pylsl"] = version("pylsl")
    except Exception:  # noqa: BLE001
        info["pylsl"] = "not installed"
    else:
        try:
            import pylsl

            info["pylsl"] += f" (liblsl {pylsl.library_version()})"
        except Exception as exc:  # noqa: BLE001 - pylsl raises RuntimeError without liblsl
            reason = "no liblsl" if "library file was not found" in str(exc) else type(exc).__name__
            info["pylsl"] += f" ({reason}: LSL unusable)"
    return info


def run(out: Path, model: Path | None) -> dict:
    from edge.chain.dsp import STATE_FRAC_BITS, FixedPointSOS
    from edge.model.inference import new_interpreter
    from edge.recordings import read_recording, write_grasp_lift
    from edge.recordings.synthetic import grasp_lift_series

    info = describe()

    # (b) synthetic series → CSV → reader → fixed-point filter
    rec = grasp_lift_series(subject=1, series=1, seed=0, n_trials=2)
    np.save(out / "synthetic.npy", rec.samples)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        data_path, _ = write_grasp_lift(rec, tmp, compress=False)
        back = read_recording(data_path)
    np.save(out / "recording.npy", back.samples)
    filt = FixedPointSOS(SOS_BANDPASS_0P5_30_FS500, n_channels=back.samples.shape[1])
    y = filt.process_int(filt.quantise_input(back.samples))
    np.save(out / "dsp.npy", y)
    info["dsp_backend_used"] = filt.backend
    info["dsp_saturations"] = filt.saturations
    if filt.backend != "numpy":
        ref = FixedPointSOS(SOS_BANDPASS_0P5_30_FS500, n_channels=back.samples.shape[1], backend="numpy")
        np.save(out / "dsp_numpy.npy", ref.process_int(ref.quantise_input(back.samples)))
    else:
        np.save(out / "dsp_numpy.npy", y)

    # (c) int8 TFLite on windows of the filtered signal, with the interpreter's default kernels
    # (what Interpreter(model, num_threads=1) gives) and with its reference kernels
    if model is not None:
        x = y * (1.0 / (1 << STATE_FRAC_BITS))  # exact: a power-of-two scale
        q_in = None
        for suffix, ref in (("default", False), ("ref", True)):
            # the edge's own construction (edge.model.inference.new_interpreter): built-in kernels, no delegate
            interp, _, _ = new_interpreter(Path(model).read_bytes(), reference_kernels=ref)
            inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
            if inp["dtype"] != np.int8 or outp["dtype"] != np.int8:
                raise SystemExit(f"selfcheck: {model} is not an int8-in/int8-out model")
            if q_in is None:
                _, window, n_ch = inp["shape"]
                scale, zero = inp["quantization"]
                starts = range(0, x.shape[0] - window + 1, WINDOW_STRIDE)
                q_in = np.empty((len(starts), window, n_ch), np.int8)
                for i, s in enumerate(starts):
                    q_in[i] = np.clip(np.round(x[s:s + window, :n_ch] / scale) + zero, -128, 127)
                np.save(out / "tflite_in.npy", q_in)
                info["tflite_windows"] = len(starts)
            q_out = np.empty((len(q_in),) + tuple(outp["shape"][1:]), np.int8)
            for i, w in enumerate(q_in):
                interp.set_tensor(inp["index"], w[None])
                interp.invoke()
                q_out[i] = interp.get_tensor(outp["index"])[0]
            np.save(out / f"tflite_out_{suffix}.npy", q_out)
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", type=Path, help="int8 .tflite model (skip the TFLite stage without it)")
    ap.add_argument("--info-only", action="store_true", help="write info.json only")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    info = describe() if args.info_only else run(args.out, args.model)
    (args.out / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
