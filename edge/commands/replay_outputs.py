"""``neurogrip replay-outputs``: the int8 outputs of every window of a recording through the live pipeline,
saved as ``.npy`` (the platform checks compare them across CPUs and interpreters: docs/pi-check.md)."""

from __future__ import annotations


def replay_outputs(args) -> int:
    """Write ``args.out`` (default kernels) and ``args.reference_out`` (TFLite's reference kernels)."""
    import numpy as np

    from edge.bundle import load_bundle
    from edge.model.inference import interpreter_backend
    from edge.runtime import replay_outputs as outputs_of

    bundle = load_bundle(args.bundle)
    name, version, _ = interpreter_backend()
    for path, ref in ((args.out, False), (args.reference_out, True)):
        if path:
            outs, _idx = outputs_of(bundle, args.recording, chunk=args.chunk, reference_kernels=ref)
            np.save(path, outs)
            print(f"{len(outs)} windows x {outs.shape[1]} int8 outputs -> {path} ({name} {version}, "
                  f"{'reference' if ref else 'default'} kernels)")
    return 0
