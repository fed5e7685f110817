"""kiz.layers: ResidualGain and scaled weight standardization, on every backend.

The WS checks compare with a NumPy transcription of DeepMind's
``WSConv2D.standardize_weight`` (``nfnets/base.py``): ``(W - mean) *
rsqrt(maximum(N * var, eps)) * gain``. Controls: the raw kernel gives
another output (so a layer that skipped standardization fails), a kernel
whose ``N * var`` is below ``eps`` tells ``maximum`` from ``+ eps``, and the
saved models hold non-default gains and alphas, which a loader that dropped
them would not reproduce.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_initzoo as kiz
from keras_initzoo.layers import ResidualGain, WSConv2D, WSDense, standardize_kernel

ATOL = 1e-5


def np_standardize(w: np.ndarray, axes: tuple[int, ...], gain=1.0, eps: float = 1e-4):
    mean = w.mean(axis=axes, keepdims=True)
    var = w.var(axis=axes, keepdims=True)
    fan_in = np.prod([w.shape[a] for a in axes])
    return (w - mean) / np.sqrt(np.maximum(var * fan_in, eps)) * gain


def numpy(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x).astype("float64")


# -- ResidualGain ------------------------------------------------------------------------------
def test_residual_gain_starts_as_zero_and_learns():
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    inputs = keras.Input((4,))
    branch = keras.layers.Dense(4, name="branch")(inputs)
    outputs = keras.layers.Add()([inputs, ResidualGain(name="alpha")(branch)])
    model = keras.Model(inputs, outputs)
    np.testing.assert_allclose(numpy(model(x)), x, atol=1e-6)  # the block is the identity
    layer = model.get_layer("alpha")
    assert [tuple(w.shape) for w in layer.trainable_weights] == [()]
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, 2.0 * x, batch_size=8, epochs=1, verbose=0)
    # Control: alpha's gradient is <f(x), dL/dy>, not zero, so it moved.
    assert abs(float(numpy(layer.alpha))) > 1e-4


def test_residual_gain_config_round_trip():
    layer = ResidualGain(initial=0.25, name="g")
    config = layer.get_config()
    assert config["initial"] == 0.25 and config["name"] == "g"
    again = ResidualGain.from_config(config)
    assert again.get_config() == config
    out = again(np.ones((2, 3), "float32"))
    np.testing.assert_allclose(numpy(out), 0.25 * np.ones((2, 3)))
    assert keras.saving.get_registered_object("keras_initzoo>ResidualGain") is ResidualGain


@pytest.mark.parametrize("initial", [float("nan"), float("inf"), "0", True, None])
def test_residual_gain_bad_initial_raises(initial):
    with pytest.raises(ValueError, match="`initial` must be a finite number"):
        ResidualGain(initial=initial)


# -- standardize_kernel ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, axes",
    [((5, 3), (0,)), ((3, 3, 2, 4), (0, 1, 2)), ((4, 3, 3, 2), (1, 2, 3)), ((3, 5, 6), (0, 1))],
)
def test_standardize_kernel_matches_numpy(shape, axes):
    rng = np.random.default_rng(1)
    w = rng.normal(size=shape)
    units = tuple(1 if i in axes else d for i, d in enumerate(shape))
    gain = rng.uniform(0.5, 2.0, size=int(np.prod(units)))
    expected = np_standardize(w, axes, gain.reshape(units))
    np.testing.assert_allclose(numpy(standardize_kernel(w, axes, gain=gain)), expected, atol=ATOL)
    # Each unit: mean 0 and N * var = gain^2 (the scaled form).
    out = numpy(standardize_kernel(w, axes))
    fan_in = np.prod([shape[a] for a in axes])
    np.testing.assert_allclose(out.mean(axis=axes), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.var(axis=axes) * fan_in, 1.0, rtol=1e-4)


def test_standardize_kernel_eps_is_a_floor_inside_the_root():
    """``maximum(N var, eps)``, not ``N var + eps``: the two differ where N var ~ eps."""
    w = np.array([[0.0, 1.0], [0.004, -1.0]])  # column 0: N var = 2 * 4e-6 = 8e-6 < 1e-4
    out = numpy(standardize_kernel(w, (0,)))
    np.testing.assert_allclose(out[:, 0], np.array([-0.002, 0.002]) / np.sqrt(1e-4), atol=1e-6)
    added = np.array([-0.002, 0.002]) / np.sqrt(8e-6 + 1e-4)
    assert np.abs(out[:, 0] - added).max() > 1e-3  # control: the "+ eps" form is elsewhere
    # A constant kernel gives zeros, not NaN.
    assert np.all(numpy(standardize_kernel(np.ones((3, 2)), (0,))) == 0.0)


def test_standardize_kernel_keeps_dtype_and_assigns_in_place():
    layer = keras.layers.Dense(3)
    layer.build((None, 5))
    layer.kernel.assign(standardize_kernel(layer.kernel, (0,), gain=kiz.nf_gamma("relu")))
    kernel = numpy(layer.kernel)
    np.testing.assert_allclose(kernel.var(axis=0) * 5, kiz.nf_gamma("relu") ** 2, rtol=1e-4)
    half = standardize_kernel((np.ones((4, 2)) * np.arange(4)[:, None]).astype("float16"), (0,))
    assert keras.backend.standardize_dtype(half.dtype) == "float16"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fan_in_axes": ()}, "`fan_in_axes` must name at least one axis"),
        ({"fan_in_axes": (2,)}, "`fan_in_axes` has axis 2, out of range"),
        ({"fan_in_axes": (0, 0)}, "`fan_in_axes` repeats an axis"),
        ({"fan_in_axes": 0}, "`fan_in_axes` must be a list of integer axes"),
        ({"eps": 0.0}, "`eps` must be a finite number > 0"),
        ({"gain": np.ones(3)}, "`gain` must be a number or hold one value per output unit"),
        ({"gain": float("nan")}, "`gain` must be a finite number"),
        ({"gain": [1.0, float("inf")]}, "`gain` must hold finite numbers"),
    ],
)
def test_standardize_kernel_bad_arguments_raise(kwargs, match):
    arguments = {"kernel": np.ones((4, 2)), "fan_in_axes": (0,), **kwargs}
    with pytest.raises(ValueError, match=match):
        standardize_kernel(**arguments)


def test_standardize_kernel_rejects_integer_kernels():
    with pytest.raises(ValueError, match="`kernel` must hold floating-point numbers"):
        standardize_kernel(np.ones((4, 2), "int32"), (0,))


# -- WSDense, WSConv2D -------------------------------------------------------------------------
def test_ws_dense_output_matches_numpy():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 5)).astype("float32")
    layer = WSDense(3, gamma=1.5, activation=None)
    layer.build((None, 5))
    np.testing.assert_allclose(numpy(layer.gain), 1.5)  # starts at gamma
    gain = rng.uniform(0.5, 2.0, size=3).astype("float32")
    layer.gain.assign(gain)
    layer.bias.assign(rng.normal(size=3).astype("float32"))
    kernel, bias = numpy(layer.kernel), numpy(layer.bias)
    expected = x @ np_standardize(kernel, (0,), gain) + bias
    np.testing.assert_allclose(numpy(layer(x)), expected, atol=ATOL)
    assert np.abs(x @ kernel + bias - expected).max() > 100 * ATOL  # control: raw kernel


@pytest.mark.parametrize("groups", [1, 2])
def test_ws_conv2d_output_matches_numpy(groups):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    layer = WSConv2D(6, 3, groups=groups, gamma=1.7)
    layer.build(x.shape)
    gain = rng.uniform(0.5, 2.0, size=6).astype("float32")
    layer.gain.assign(gain)
    w_hat = np_standardize(numpy(layer.kernel), (0, 1, 2), gain).astype("float32")
    plain = keras.layers.Conv2D(6, 3, groups=groups)
    plain.build(x.shape)
    plain.set_weights([w_hat, numpy(layer.bias).astype("float32")])
    np.testing.assert_allclose(numpy(layer(x)), numpy(plain(x)), atol=1e-4)
    plain.set_weights([numpy(layer.kernel).astype("float32"), numpy(layer.bias)])
    assert np.abs(numpy(layer(x)) - numpy(plain(x))).max() > 1e-2  # control: raw kernel


def test_ws_layers_train_their_gain_and_kernel():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, 5, 5, 2)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((5, 5, 2)),
            WSConv2D(4, 3, gamma=kiz.nf_gamma("relu"), activation="relu", name="conv"),
            keras.layers.GlobalAveragePooling2D(),
            WSDense(2, name="dense"),
        ]
    )
    names = ("conv/kernel", "conv/gain", "dense/kernel", "dense/gain")
    variables = [next(w for w in model.weights if w.path.endswith(n)) for n in names]
    before = [numpy(w) for w in variables]
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for name, variable, value in zip(names, variables, before, strict=True):
        assert np.abs(numpy(variable) - value).max() > 1e-6, name


@pytest.mark.parametrize("cls, args", [(WSDense, (3,)), (WSConv2D, (3, 3))])
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"gamma": float("nan")}, "`gamma` must be a finite number"),
        ({"gamma": "1"}, "`gamma` must be a finite number"),
        ({"eps": 0.0}, "`eps` must be a finite number > 0"),
        ({"eps": -1.0}, "`eps` must be a finite number > 0"),
    ],
)
def test_ws_layers_bad_arguments_raise(cls, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(*args, **kwargs)


# -- saving ------------------------------------------------------------------------------------
def test_models_with_the_layers_save_and_load(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 6, 6, 3)).astype("float32")
    inputs = keras.Input((6, 6, 3))
    h = WSConv2D(4, 3, padding="same", gamma=1.7, eps=2e-4, name="conv")(inputs)
    h = keras.layers.Add()([h, ResidualGain(initial=0.1, name="skip")(h)])
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = WSDense(2, gamma=0.5, name="dense")(h)
    model = keras.Model(inputs, outputs)
    # Non-default values everywhere, so a lost gain or alpha shows in the output.
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype("float32"))
    model.compile(kiz.optimizers.adaptive_clipping(keras.optimizers.SGD(0.1)), "mse")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert [type(layer).__name__ for layer in loaded.layers[1:]] == [
        "WSConv2D",
        "ResidualGain",
        "Add",
        "GlobalAveragePooling2D",
        "WSDense",
    ]
    assert loaded.get_layer("conv").get_config() == model.get_layer("conv").get_config()
    assert loaded.get_layer("dense").eps == 1e-4 and loaded.get_layer("conv").eps == 2e-4
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(numpy(a), numpy(b))
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), atol=1e-6)
    # Control: the same architecture with fresh weights gives another output.
    fresh = keras.Model.from_config(model.get_config())
    assert np.abs(numpy(fresh(x)) - numpy(model(x))).max() > 1e-3
