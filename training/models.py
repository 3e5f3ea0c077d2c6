"""Keras models small enough for a Raspberry Pi and convertible to full-integer (int8) TFLite.

Every model takes one window ``(window, n_channels)`` float32 whose **last** sample is the one
being labelled, and is causal: features at a time step never depend on later samples, so a
window can be scored the moment its last sample arrives and the same network could run
streaming.  Only ops that TFLite has int8 builtin kernels for are used (no Flex, no custom ops,
no TensorList loops), so :func:`training.convert.to_int8_tflite` gives a model the edge can run.

- :func:`build_cnn` — spatial mixing (1×1 conv) then causal dilated temporal convolutions with
  BatchNorm + ReLU, pooled over the last steps and over the whole window, Dense → outputs.
  The conv stack is a sub-model named ``"trunk"`` over *any* sequence length, so causality can
  be checked on sequences longer than the window.
- :func:`build_gru` — a strided causal conv front end that shortens the sequence, then a GRU
  written out step by step (:class:`UnrolledGRU`), Dense → outputs.
- :func:`build_feature_gru` — the seed's ``emotions.csv`` model: a feature vector reshaped to
  ``(steps, n_features / steps)`` → GRU → softmax.

All builders are deterministic after ``keras.utils.set_random_seed(seed)``.

Why :class:`UnrolledGRU` instead of ``keras.layers.GRU(unroll=True)``: the Keras cell multiplies the
all-zero initial state by the recurrent kernel; the converter folds that product into a
constant and leaves ``DEQUANTIZE → SPLIT (float32) → QUANTIZE`` in the int8 graph, a float
island on the main path.  :class:`UnrolledGRU` has the same weights and the same maths
(checked against ``keras.layers.GRU`` in the tests) but skips the recurrent terms at the
first step and projects the inputs of all steps with one matmul, so the int8 graph is all
integer and has fewer ops.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from edge._checks import check_int, check_option

OUTPUTS = ("sigmoid", "softmax")


# --------------------------------------------------------------------------- argument checks


def _int_tuple(name: str, value) -> tuple[int, ...]:
    try:
        out = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints, got {type(value).__name__}") from None
    if not out:
        raise ValueError(f"{name} must not be empty")
    return tuple(check_int(v, f"{name}[...]", lo=1) for v in out)


def _output(value: str) -> str:
    return check_option(value, "output", OUTPUTS,
                        fix="sigmoid: independent labels as in grasp-lift; softmax: one class as in emotion")


def _dropout(value: float) -> float:
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {value}")
    return float(value)


# --------------------------------------------------------------------------- CNN


def build_cnn(window: int, n_channels: int, n_outputs: int, *, output: str = "sigmoid",
              spatial_filters: int = 24, filters=(24, 32, 32, 48, 48), kernel_size: int = 5,
              dilations=(1, 2, 4, 8, 16), pool_last: int = 8, global_pool: bool = True,
              dropout: float = 0.1, name: str = "causal_cnn") -> keras.Model:
    """A small causal temporal CNN.

    Layers: ``Conv1D(spatial_filters, 1)`` mixes the channels (a learned spatial filter,
    like CSP, no activation); then one causal ``Conv1D(filters[i], kernel_size,
    dilation_rate=dilations[i])`` → BatchNorm → ReLU per block.  The receptive field is
    ``1 + (kernel_size - 1) * sum(dilations)`` samples (125 with the defaults, 1.25 s at
    100 Hz).  The head averages the features of the last ``pool_last`` steps (the most recent
    evidence; 0 disables) and, if ``global_pool``, of the whole window, concatenates them,
    applies dropout and a Dense layer with ``output`` activation.

    With the defaults: 33k parameters for 32 channels and 6 outputs, a 50 KB int8 file.

    Parameters
    ----------
    window, n_channels, n_outputs : int
        Input ``(window, n_channels)`` float32; output ``(n_outputs,)``.
    output : {"sigmoid", "softmax"}
        ``sigmoid`` for independent (overlapping) labels, ``softmax`` for one class.
    filters, dilations : sequences of int, same length
        One temporal block per entry.
    """
    window = check_int(window, "window", lo=1)
    n_channels = check_int(n_channels, "n_channels", lo=1)
    n_outputs = check_int(n_outputs, "n_outputs", lo=1)
    output = _output(output)
    spatial_filters = check_int(spatial_filters, "spatial_filters", lo=1)
    filters = _int_tuple("filters", filters)
    dilations = _int_tuple("dilations", dilations)
    kernel_size = check_int(kernel_size, "kernel_size", lo=1)
    if len(filters) != len(dilations):
        raise ValueError(f"filters and dilations need one entry per block, got {len(filters)} and {len(dilations)}")
    if isinstance(pool_last, bool) or not isinstance(pool_last, int) or not 0 <= pool_last <= window:
        raise ValueError(f"pool_last must be an int in [0, window={window}], got {pool_last!r}")
    if pool_last == 0 and not global_pool:
        raise ValueError("pool_last=0 with global_pool=False leaves the head no input; enable one of them")
    dropout = _dropout(dropout)

    trunk = cnn_trunk(n_channels, spatial_filters=spatial_filters, filters=filters,
                      kernel_size=kernel_size, dilations=dilations)
    inp = keras.Input((window, n_channels), name="eeg")
    seq = trunk(inp)
    pooled = []
    if pool_last:
        last = layers.Cropping1D((window - pool_last, 0), name="last_steps")(seq) if pool_last < window else seq
        pooled.append(layers.GlobalAveragePooling1D(name="pool_last")(last))
    if global_pool:
        pooled.append(layers.GlobalAveragePooling1D(name="pool_window")(seq))
    x = pooled[0] if len(pooled) == 1 else layers.Concatenate(name="pooled")(pooled)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_outputs, activation=output, name="probabilities")(x)
    return keras.Model(inp, out, name=name)


def cnn_trunk(n_channels: int, *, spatial_filters: int = 24, filters=(24, 32, 32, 48, 48),
              kernel_size: int = 5, dilations=(1, 2, 4, 8, 16)) -> keras.Model:
    """The CNN's conv stack as a sequence-to-sequence model over any length ``(None, n_channels)``.

    Output step ``t`` depends on input samples ``t - receptive_field + 1 .. t`` only.
    """
    inp = keras.Input((None, n_channels), name="sequence")
    x = layers.Conv1D(spatial_filters, 1, name="spatial")(inp)
    for i, (f, d) in enumerate(zip(filters, dilations)):
        x = layers.Conv1D(f, kernel_size, padding="causal", dilation_rate=d, use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
    return keras.Model(inp, x, name="trunk")


def receptive_field(kernel_size: int = 5, dilations=(1, 2, 4, 8, 16)) -> int:
    """Samples seen by one output step of :func:`cnn_trunk`."""
    return 1 + (kernel_size - 1) * sum(dilations)


# --------------------------------------------------------------------------- GRU


@keras.saving.register_keras_serializable(package="neurogrip")
class UnrolledGRU(layers.Layer):
    """A GRU over a fixed number of steps, written out step by step with plain ops.

    Weights and maths are those of ``keras.layers.GRU`` (``activation="tanh"``,
    ``recurrent_activation="sigmoid"``, gates ordered z, r, h, zero initial state), so
    ``set_weights`` works in both directions.  Differences are only in how the graph is laid
    out for TFLite: the input projection of all steps is one matmul, and the first step skips
    the recurrent matmul (the state is zero), which keeps the int8 graph free of float ops.

    Parameters
    ----------
    units : int
    reset_after : bool
        As in Keras: apply the reset gate after the recurrent matmul (Keras/CuDNN default,
        two bias vectors) or before it.  Both convert to builtin int8 ops.
    return_sequences : bool
        Return the state at every step ``(batch, steps, units)`` instead of the last one.
    """

    def __init__(self, units: int, reset_after: bool = True, return_sequences: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.units = check_int(units, "units", lo=1)
        self.reset_after = bool(reset_after)
        self.return_sequences = bool(return_sequences)

    def build(self, input_shape):
        steps, features = input_shape[-2], input_shape[-1]
        if steps is None:
            raise ValueError("UnrolledGRU needs a fixed number of steps; give the Input a fixed length")
        u = self.units
        self.kernel = self.add_weight(name="kernel", shape=(features, 3 * u), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(u, 3 * u),
                                                initializer="orthogonal")
        self.bias = self.add_weight(name="bias", shape=(2, 3 * u) if self.reset_after else (3 * u,),
                                    initializer="zeros")

    def call(self, x):
        u = self.units
        steps = x.shape[-2]
        if self.reset_after:
            b_in, b_rec = self.bias[0], self.bias[1]
        else:
            b_in, b_rec = self.bias, None
        # (batch, steps, 3u): the input part of every gate for every step, in one matmul.
        xp = ops.matmul(x, self.kernel) + b_in
        x_z, x_r, x_h = xp[:, :, :u], xp[:, :, u:2 * u], xp[:, :, 2 * u:]
        u_zr, u_h = self.recurrent_kernel[:, :2 * u], self.recurrent_kernel[:, 2 * u:]
        h = None
        states = []
        for t in range(steps):
            xz, xr, xh = x_z[:, t], x_r[:, t], x_h[:, t]
            if h is None:  # zero state: the recurrent matmuls vanish (only the recurrent bias remains)
                if self.reset_after:
                    z = ops.sigmoid(xz + b_rec[:u])
                    r = ops.sigmoid(xr + b_rec[u:2 * u])
                    hh = ops.tanh(xh + r * b_rec[2 * u:])
                else:
                    z = ops.sigmoid(xz)
                    hh = ops.tanh(xh)
                h = (1.0 - z) * hh
            else:
                if self.reset_after:
                    rec = ops.matmul(h, self.recurrent_kernel) + b_rec
                    z = ops.sigmoid(xz + rec[:, :u])
                    r = ops.sigmoid(xr + rec[:, u:2 * u])
                    hh = ops.tanh(xh + r * rec[:, 2 * u:])
                else:
                    rec = ops.matmul(h, u_zr)
                    z = ops.sigmoid(xz + rec[:, :u])
                    r = ops.sigmoid(xr + rec[:, u:])
                    hh = ops.tanh(xh + ops.matmul(r * h, u_h))
                h = hh + z * (h - hh)  # = z * h + (1 - z) * hh
            if self.return_sequences:
                states.append(h)
        return ops.stack(states, axis=1) if self.return_sequences else h

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "reset_after": self.reset_after,
                "return_sequences": self.return_sequences}


def _gru_layer(units: int, reset_after: bool, unroll: bool, return_sequences: bool, name: str):
    if unroll:
        return UnrolledGRU(units, reset_after=reset_after, return_sequences=return_sequences, name=name)
    # The library layer: same weights; fine for float training, but its while loop does not
    # convert to builtin int8 ops.
    return layers.GRU(units, reset_after=reset_after, return_sequences=return_sequences, name=name)


def front_end_strides(window: int, stride: int = 4, max_steps: int = 24) -> tuple[int, ...]:
    """Strides of the GRU's conv front end: stride-``stride`` convs until ≤ ``max_steps`` steps remain."""
    out, n = [], window
    while n > max_steps and n // stride >= 1:
        out.append(stride)
        n = (n - 2 * stride) // stride + 1 if n >= 2 * stride else 1
    return tuple(out)


def build_gru(window: int, n_channels: int, n_outputs: int, *, units: int = 32, output: str = "softmax",
              front_filters: int = 16, front_strides=None, reset_after: bool = True, unroll: bool = True,
              dropout: float = 0.1, return_sequences: bool = False, name: str = "causal_gru") -> keras.Model:
    """A conv front end that shortens the sequence, then a GRU, then Dense → outputs.

    The front end is one ``Conv1D(front_filters, 2 * s, strides=s)`` → BatchNorm → ReLU per
    stride ``s`` in ``front_strides`` (default :func:`front_end_strides`: stride-4 convs until at
    most 24 steps remain, e.g. 256 → 63 → 14 steps, 50 → 11).  Each strided conv first crops the oldest
    ``(n - kernel) % s`` samples so that its last output step ends exactly on the window's last
    sample; every step only sees samples up to its own end, so the model is causal.

    ``unroll=True`` uses :class:`UnrolledGRU` (converts to builtin int8 ops); ``unroll=False``
    the library ``keras.layers.GRU`` with identical weights (float only).
    ``return_sequences=True`` outputs ``(steps, n_outputs)``: the head applied at every GRU step,
    step ``j`` ending on sample ``window - 1 - (steps - 1 - j) * prod(front_strides)``.
    """
    window = check_int(window, "window", lo=1)
    n_channels = check_int(n_channels, "n_channels", lo=1)
    n_outputs = check_int(n_outputs, "n_outputs", lo=1)
    output = _output(output)
    units = check_int(units, "units", lo=1)
    front_filters = check_int(front_filters, "front_filters", lo=1)
    strides = front_end_strides(window) if front_strides is None else tuple(front_strides)
    for s in strides:
        check_int(s, "front_strides[...]", lo=1)
    dropout = _dropout(dropout)

    inp = keras.Input((window, n_channels), name="eeg")
    x, n = inp, window
    for i, s in enumerate(strides):
        k = 2 * s
        if n < k:
            raise ValueError(f"front_strides={strides} shorten window={window} below one step; "
                             "use fewer or smaller strides")
        crop = (n - k) % s
        if crop:
            x = layers.Cropping1D((crop, 0), name=f"align{i}")(x)
        x = layers.Conv1D(front_filters, k, strides=s, use_bias=False, name=f"front{i}")(x)
        x = layers.BatchNormalization(name=f"front_bn{i}")(x)
        x = layers.ReLU(name=f"front_relu{i}")(x)
        n = (n - crop - k) // s + 1
    x = _gru_layer(units, reset_after, unroll, return_sequences, "gru")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_outputs, activation=output, name="probabilities")(x)
    return keras.Model(inp, out, name=name)


def build_feature_gru(n_features: int, n_outputs: int = 3, *, steps: int = 1, units: int = 24,
                      output: str = "softmax", reset_after: bool = True, unroll: bool = True,
                      dropout: float = 0.1, name: str = "feature_gru") -> keras.Model:
    """The seed's ``emotions.csv`` model: feature vector → ``(steps, n_features // steps)`` → GRU → softmax.

    The seed used ``steps=1`` and 256 units; 24 units keep the int8 file for the 2548
    ``emotions.csv`` features near 190 KB (the bundle budget is 256 KB).  The features span
    many orders of magnitude: standardise them (per feature, statistics stored in the bundle)
    before the model, since int8 input quantisation has one scale for the whole vector.
    """
    n_features = check_int(n_features, "n_features", lo=1)
    n_outputs = check_int(n_outputs, "n_outputs", lo=1)
    steps = check_int(steps, "steps", lo=1)
    units = check_int(units, "units", lo=1)
    output = _output(output)
    dropout = _dropout(dropout)
    if n_features % steps:
        raise ValueError(f"steps={steps} must divide n_features={n_features}")
    inp = keras.Input((n_features,), name="features")
    x = layers.Reshape((steps, n_features // steps), name="as_steps")(inp)
    x = _gru_layer(units, reset_after, unroll, False, "gru")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_outputs, activation=output, name="probabilities")(x)
    return keras.Model(inp, out, name=name)
