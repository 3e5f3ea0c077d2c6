"""Models convert to builtin-only full-integer TFLite, stay causal, and int8 tracks float."""

import os

import numpy as np
import pytest

# Two shared cores: keep TensorFlow to one thread each (must be set before TF starts).
for _var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

tf = pytest.importorskip("tensorflow")
try:
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
except RuntimeError:
    pass  # TF already initialised by another test module

import keras
from sklearn.metrics import roc_auc_score

from training import convert, models
from training.convert import ConversionError, Int8Export

# The builtin kernels these models may use; anything else (Flex*, custom) fails the export.
BUILTIN_OPS = {"ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "FULLY_CONNECTED", "LOGISTIC", "MEAN", "MUL",
               "PAD", "RESHAPE", "SOFTMAX", "STRIDED_SLICE", "SUB", "TANH"}


def _eeg_like(n, window, channels, seed=0):
    return np.random.default_rng(seed).normal(size=(n, window, channels)).astype(np.float32)


def _assert_builtin_int8(export: Int8Export, input_shape, output_shape):
    assert isinstance(export.tflite, bytes)
    assert export.input_shape == input_shape and export.output_shape == output_shape
    assert set(export.ops) <= BUILTIN_OPS, export.ops
    assert not any(op.startswith("Flex") for op in export.ops)
    convert.check_builtin_int8(export.tflite)  # raises on custom ops / float tensors / dynamic shapes
    interp = convert._interpreter(export.tflite)
    (ind,), (outd,) = interp.get_input_details(), interp.get_output_details()
    assert ind["dtype"] == np.int8 and outd["dtype"] == np.int8
    assert tuple(ind["shape_signature"]) == input_shape and tuple(outd["shape_signature"]) == output_shape
    assert (ind["quantization"][0], ind["quantization"][1]) == (export.input_scale, export.input_zero_point)
    # The op list the edge would see, from the interpreter, agrees with the flatbuffer's operator codes.
    assert export.ops == convert._flatbuffer_op_names(export.tflite)


# --------------------------------------------------------------------------- conversion


def test_default_cnn_200x32_is_builtin_int8_and_fits_the_bundle():
    keras.utils.set_random_seed(0)
    model = models.build_cnn(200, 32, 6)
    export = convert.to_int8_tflite(model, _eeg_like(64, 200, 32))
    print(f"\ncnn (200, 32) -> 6: {model.count_params()} params, int8 {export.size_bytes} B, ops {export.ops}")
    assert model.count_params() <= 50_000
    assert export.size_bytes <= 256 * 1024
    assert export.output_scale == pytest.approx(1 / 256) and export.output_zero_point == -128
    _assert_builtin_int8(export, (1, 200, 32), (1, 6))


def test_cnn_head_exports_its_time_averages_as_average_pool_not_mean():
    """tflite-runtime 2.14 runs int8 MEAN through a slow generic kernel (a quarter of the CNN's
    invoke time): the export computes GlobalAveragePooling1D as AVERAGE_POOL_2D, the same function."""
    keras.utils.set_random_seed(0)
    model = models.build_cnn(50, 8, 3, spatial_filters=8, filters=(8, 8), dilations=(1, 2))
    export = convert.to_int8_tflite(model, _eeg_like(64, 50, 8))
    assert "AVERAGE_POOL_2D" in export.ops and "MEAN" not in export.ops, export.ops
    x = _eeg_like(4, 50, 8, seed=3)
    same = convert.export_graph(model)
    assert same is not model and same.count_params() == model.count_params()
    np.testing.assert_allclose(same(x, training=False).numpy(), model(x, training=False).numpy(), rtol=1e-5, atol=1e-7)
    assert any(isinstance(layer, keras.layers.GlobalAveragePooling1D) for layer in model.layers)  # training: untouched


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_256x4_is_builtin_int8(reset_after):
    keras.utils.set_random_seed(0)
    model = models.build_gru(256, 4, 3, reset_after=reset_after)
    export = convert.to_int8_tflite(model, _eeg_like(64, 256, 4))
    print(f"\ngru (256, 4) -> 3 reset_after={reset_after}: {model.count_params()} params, "
          f"int8 {export.size_bytes} B, ops {export.ops}")
    assert export.size_bytes <= 256 * 1024
    _assert_builtin_int8(export, (1, 256, 4), (1, 3))
    assert {"LOGISTIC", "TANH", "FULLY_CONNECTED", "SOFTMAX"} <= set(export.ops)


def test_feature_gru_on_emotions_csv_features_is_builtin_int8():
    keras.utils.set_random_seed(0)
    model = models.build_feature_gru(2548)
    cal = np.random.default_rng(0).normal(size=(64, 2548)).astype(np.float32)
    export = convert.to_int8_tflite(model, cal)
    print(f"\nfeature gru 2548 -> 3: {model.count_params()} params, int8 {export.size_bytes} B, ops {export.ops}")
    assert export.size_bytes <= 256 * 1024
    _assert_builtin_int8(export, (1, 2548), (1, 3))


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_a_float_island_inside_an_int8_model_is_rejected():
    # Int8 in and out, but SIN has no int8 kernel: with TFLITE_BUILTINS allowed the converter
    # keeps it in float between DEQUANTIZE and QUANTIZE.  (keras.layers.GRU(unroll=True) does
    # the same, but only in some runs: the converter sometimes folds its zero-state matmul to a
    # constant and leaves DEQUANTIZE -> SPLIT(float32) -> QUANTIZE.  UnrolledGRU avoids it.)
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 4))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.ops.sin(keras.layers.Dense(4)(inp))))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([convert._frozen_function(model)])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    cal = _eeg_like(16, 8, 4)
    conv.representative_dataset = lambda: ([w[None]] for w in cal)
    conv.inference_input_type = conv.inference_output_type = tf.int8
    flat = conv.convert()
    assert "SIN" in convert.list_ops(flat)
    with pytest.raises(ConversionError, match=r"float32 tensors on ops \['SIN'\]"):
        convert.check_builtin_int8(flat)


def test_float_peer_and_flex_ops_are_rejected_by_the_int8_check():
    keras.utils.set_random_seed(0)
    model = models.build_cnn(32, 4, 2, spatial_filters=4, filters=(4, 4), dilations=(1, 2))
    flat = convert.to_float_tflite(model)
    x = _eeg_like(4, 32, 4)
    np.testing.assert_allclose(convert.run_tflite(flat, x), model.predict(x, verbose=0), atol=1e-5)
    with pytest.raises(ConversionError, match="float32"):
        convert.check_builtin_int8(flat)

    det = tf.function(tf.linalg.det, input_signature=[tf.TensorSpec([1, 3, 3], tf.float32)])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([det.get_concrete_function()])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    flex = conv.convert()
    assert any(op.startswith("Flex") for op in convert.list_ops(flex))
    with pytest.raises(ConversionError, match="Flex"):
        convert.check_builtin_int8(flex)


def test_export_is_deterministic_and_runners_agree():
    keras.utils.set_random_seed(1)
    a = models.build_cnn(32, 4, 2, spatial_filters=4, filters=(4, 4), dilations=(1, 2))
    keras.utils.set_random_seed(1)
    b = models.build_cnn(32, 4, 2, spatial_filters=4, filters=(4, 4), dilations=(1, 2))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    cal = _eeg_like(700, 32, 4, seed=2)
    ea, eb = convert.to_int8_tflite(a, cal), convert.to_int8_tflite(b, cal)
    assert ea.n_calibration == 500
    assert (ea.input_scale, ea.input_zero_point) == (eb.input_scale, eb.input_zero_point)
    x = cal[:20]
    qa = convert.run_tflite_int8(ea.tflite, ea.quantize_input(x))
    np.testing.assert_array_equal(qa, convert.run_tflite_int8(eb.tflite, eb.quantize_input(x)))
    assert qa.dtype == np.int8 and qa.shape == (20, 2)
    np.testing.assert_allclose(convert.run_tflite(ea.tflite, x), ea.dequantize_output(qa))
    np.testing.assert_allclose(convert.run_tflite(ea.tflite, x[0]), ea.dequantize_output(qa[:1]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="window"):
        models.build_cnn(0, 32, 6)
    with pytest.raises(ValueError, match="output"):
        models.build_gru(64, 4, 3, output="relu")
    with pytest.raises(ValueError, match="steps"):
        models.build_feature_gru(10, steps=3)
    model = models.build_cnn(32, 4, 2, spatial_filters=4, filters=(4,), dilations=(1,))
    with pytest.raises(ValueError, match="calibration"):
        convert.to_int8_tflite(model, np.zeros((10, 31, 4), np.float32))
    with pytest.raises(ValueError, match="calibration"):
        convert.to_int8_tflite(model, np.full((10, 32, 4), np.nan, np.float32))


# --------------------------------------------------------------------------- causality and GRU equivalence


def test_cnn_trunk_is_causal():
    keras.utils.set_random_seed(0)
    model = models.build_cnn(100, 8, 3)
    trunk = model.get_layer("trunk")
    x = _eeg_like(1, 300, 8)
    t = 150
    later = x.copy()
    later[:, t + 1:] = _eeg_like(1, 300 - t - 1, 8, seed=5) * 10
    a, b = trunk(x, training=False).numpy(), trunk(later, training=False).numpy()
    np.testing.assert_array_equal(a[:, :t + 1], b[:, :t + 1])
    assert not np.allclose(a[:, t + 1:], b[:, t + 1:])
    # An earlier change reaches step t only within the receptive field.
    rf = models.receptive_field()
    early = x.copy()
    early[:, t - rf] += 5.0
    np.testing.assert_array_equal(trunk(early, training=False).numpy()[:, t], a[:, t])


def test_gru_is_causal_per_step():
    keras.utils.set_random_seed(0)
    window, stride = 128, 16
    seq = models.build_gru(window, 4, 3, front_strides=(4, 4), units=8, return_sequences=True)
    x = _eeg_like(1, window, 4)
    y = seq(x, training=False).numpy()[0]
    n = y.shape[0]
    ends = window - 1 - (n - 1 - np.arange(n)) * stride  # last input sample of each step
    assert ends[-1] == window - 1 and n >= 4
    p = int(ends[n // 2])
    later = x.copy()
    later[:, p + 1:] = 3.0
    y2 = seq(later, training=False).numpy()[0]
    np.testing.assert_array_equal(y[ends <= p], y2[ends <= p])
    assert not np.allclose(y[ends > p], y2[ends > p])
    # The fixed-window model's output is the last step of the sequence model.
    last = models.build_gru(window, 4, 3, front_strides=(4, 4), units=8)
    last.set_weights(seq.get_weights())
    np.testing.assert_allclose(last(x, training=False).numpy()[0], y[-1], atol=1e-6)


@pytest.mark.parametrize("reset_after", [True, False])
def test_unrolled_gru_matches_keras_gru(reset_after):
    keras.utils.set_random_seed(0)
    ours = models.build_gru(64, 4, 3, units=8, reset_after=reset_after)
    lib = models.build_gru(64, 4, 3, units=8, reset_after=reset_after, unroll=False)
    rng = np.random.default_rng(0)
    ours.set_weights([w + 0.1 * rng.normal(size=w.shape).astype(np.float32) for w in ours.get_weights()])
    lib.set_weights(ours.get_weights())
    x = _eeg_like(3, 64, 4)
    np.testing.assert_allclose(ours(x, training=False).numpy(), lib(x, training=False).numpy(), atol=1e-5)

    f_ours = models.build_feature_gru(12, steps=3, units=5, reset_after=reset_after)
    f_lib = models.build_feature_gru(12, steps=3, units=5, reset_after=reset_after, unroll=False)
    f_ours.set_weights([w + 0.1 * rng.normal(size=w.shape).astype(np.float32) for w in f_ours.get_weights()])
    f_lib.set_weights(f_ours.get_weights())
    v = rng.normal(size=(3, 12)).astype(np.float32)
    np.testing.assert_allclose(f_ours(v, training=False).numpy(), f_lib(v, training=False).numpy(), atol=1e-5)


# --------------------------------------------------------------------------- float / int8 parity


def _bursts(n, window=64, channels=4, fs=100.0, seed=0):
    """Class 0: noise; class 1: a 10 Hz burst; class 2: a 25 Hz burst — in the last 0.4 s, random phase/mixing."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, window, channels)).astype(np.float32)
    t = np.arange(window) / fs
    env = (t >= t[-1] - 0.4).astype(np.float32)
    for i in np.flatnonzero(y):
        f = 10.0 if y[i] == 1 else 25.0
        burst = env * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        x[i] += 0.8 * burst[:, None] * rng.uniform(0.5, 1.5, channels)[None, :]
    return x, y


@pytest.fixture(scope="module")
def bursts():
    return _bursts(600, seed=0), _bursts(300, seed=1)


@pytest.mark.parametrize("kind", ["cnn", "gru"])
def test_int8_tracks_float_on_a_trained_model(kind, bursts):
    (xtr, ytr), (xte, yte) = bursts
    keras.utils.set_random_seed(0)
    if kind == "cnn":  # independent labels: "10 Hz burst", "25 Hz burst"
        model = models.build_cnn(64, 4, 2, spatial_filters=8, filters=(8, 8, 8), dilations=(1, 2, 4))
        target = np.stack([ytr == 1, ytr == 2], axis=1).astype(np.float32)
        model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    else:
        model = models.build_gru(64, 4, 3, units=8, front_filters=8)
        target = ytr
        model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(xtr, target, epochs=3, batch_size=32, verbose=0)
    export = convert.to_int8_tflite(model, xtr)
    p_float = model.predict(xte, verbose=0)
    p_int8 = convert.run_tflite(export.tflite, xte)
    diff = np.abs(p_int8 - p_float)
    if kind == "cnn":
        truth = np.stack([yte == 1, yte == 2], axis=1)
        score_f = np.mean([roc_auc_score(truth[:, j], p_float[:, j]) for j in range(2)])
        score_q = np.mean([roc_auc_score(truth[:, j], p_int8[:, j]) for j in range(2)])
        name = "AUC"
    else:
        score_f, score_q = np.mean(p_float.argmax(1) == yte), np.mean(p_int8.argmax(1) == yte)
        name = "accuracy"
    print(f"\n{kind}: float {name} {score_f:.4f}, int8 {score_q:.4f}; |p_int8 - p_float| "
          f"mean {diff.mean():.4f} max {diff.max():.4f}; int8 {export.size_bytes} B")
    assert score_f > 0.8  # the problem was learnt, so the comparison means something
    assert diff.mean() < 0.02
    assert abs(score_q - score_f) < 0.02
