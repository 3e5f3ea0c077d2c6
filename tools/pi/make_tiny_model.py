"""Write a tiny int8 TFLite model for tools/pi-check's self-check (run with .venv-train's Python).

    make_tiny_model.py OUT.tflite

The model has the layer structure of training.models.build_cnn (so the op types of the
real bundles: CONV_2D, PAD, STRIDED_SLICE, AVERAGE_POOL_2D, CONCATENATION, FULLY_CONNECTED, LOGISTIC),
fully quantised to int8 with int8 input and output, so the self-check exercises the same integer
kernels (and their aarch64 code paths) as the real model.  Its weights are random but
seeded; the file is generated once and the very same bytes are run on both architectures,
so whether TensorFlow reproduces it bit for bit does not matter.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

WINDOW, CHANNELS, OUTPUTS = 64, 32, 6


def build(rng: np.random.Generator) -> tf.keras.Model:
    """The shape of training.models.build_cnn, small: spatial 1x1 conv, causal conv blocks with
    (random, non-trivial) batch norm, average-pooled heads, concatenation, dense + sigmoid."""
    L = tf.keras.layers
    inp = tf.keras.Input((WINDOW, CHANNELS), batch_size=1, name="eeg")
    x = L.Conv1D(16, 1, name="spatial")(inp)
    for i, (f, d) in enumerate([(16, 1), (24, 2), (24, 4)]):
        x = L.Conv1D(f, 5, padding="causal", dilation_rate=d, use_bias=False, name=f"conv{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}")(x)
        x = L.ReLU(name=f"relu{i}")(x)
    last = L.Flatten(name="pool_last")(L.AveragePooling1D(8)(L.Cropping1D((WINDOW - 8, 0))(x)))
    x = L.Concatenate()([last, L.Flatten(name="pool_window")(L.AveragePooling1D(WINDOW)(x))])
    head = L.Dense(OUTPUTS, activation="sigmoid", name="probabilities",  # small: outputs off the rails
                   kernel_initializer=tf.keras.initializers.RandomNormal(0.0, 0.02))
    model = tf.keras.Model(inp, head(x))
    for i in range(3):  # as if trained: per-channel scales and offsets differ
        bn = model.get_layer(f"bn{i}")
        n = bn.gamma.shape[0]
        bn.set_weights([rng.uniform(0.5, 2.0, n), rng.normal(0.0, 0.3, n),
                        rng.normal(0.0, 0.5, n), rng.uniform(0.5, 4.0, n)])
    return model


def main(out: str) -> None:
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = build(rng)

    def representative():  # band-passed EEG is tens of µV
        for _ in range(64):
            yield [rng.normal(0.0, 20.0, (1, WINDOW, CHANNELS)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    data = conv.convert()
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_model.py OUT.tflite")
    main(sys.argv[1])
