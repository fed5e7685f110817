"""Fans against hand computations, and the fans Keras layers really pass."""

import keras
import numpy as np
import pytest
from conftest import float64_scope

import keras_initzoo as kiz
from keras_initzoo.fans import scaled_variance


@pytest.mark.parametrize(
    "shape, fans",
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((20, 30), (20, 30)),
        ((5, 16, 32), (5 * 16, 5 * 32)),  # Conv1D, kernel 5
        ((3, 3, 16, 32), (9 * 16, 9 * 32)),  # Conv2D, 3x3
        ((2, 3, 4, 8, 6), (24 * 8, 24 * 6)),  # Conv3D, 2x3x4
    ],
)
def test_fans_match_hand_computation(shape, fans):
    assert kiz.compute_fans(shape) == fans


def test_explicit_axes():
    assert kiz.compute_fans((64, 8, 16), input_axes=[0], output_axes=[1, 2]) == (64, 128)
    assert kiz.compute_fans((8, 16, 64), input_axes=[0, 1], output_axes=[-1]) == (128, 64)


def test_batch_axes_are_left_out_of_both_fans():
    assert kiz.compute_fans((5, 64, 32), batch_axes=[0]) == (64, 32)
    assert kiz.compute_fans((3, 3, 16, 32, 4), batch_axes=[-1]) == (9 * 16, 9 * 32)
    stacked = kiz.VarianceScaling(2.0, distribution="normal", batch_axes=[0], seed=4)
    with float64_scope("float64"):
        values = keras.ops.convert_to_numpy(stacked((10, 500, 100), dtype="float64"))
    assert values.var() == pytest.approx(2 / 500, rel=0.02)


def test_conv_transpose_axes_count_input_channels_towards_fan_in():
    # Conv2DTranspose kernels are (kh, kw, filters, in_channels)
    axes = kiz.conv_transpose_axes(2)
    assert axes == {"input_axes": [0, 1, 3], "output_axes": [0, 1, 2]}
    assert kiz.compute_fans((3, 3, 32, 16), **axes) == (9 * 16, 9 * 32)


def test_conv_transpose_layer_gets_the_right_variance():
    init = kiz.HeNormal(seed=0, **kiz.conv_transpose_axes(2))
    layer = keras.layers.Conv2DTranspose(256, 5, kernel_initializer=init)
    layer.build((None, 8, 8, 128))
    kernel = np.asarray(layer.kernel, dtype="float64")
    assert kernel.shape == (5, 5, 256, 128)
    assert kernel.var() == pytest.approx(2 / (25 * 128), rel=0.02)


@pytest.mark.parametrize(
    "layer, input_shape, fan_in",
    [
        (keras.layers.Dense(300), (None, 400), 400),
        (keras.layers.Conv1D(128, 5), (None, 50, 96), 5 * 96),
        (keras.layers.Conv2D(96, 3), (None, 16, 16, 80), 9 * 80),
        (keras.layers.Conv3D(96, 3), (None, 8, 8, 8, 24), 27 * 24),
    ],
)
def test_layers_kernels_have_variance_2_over_fan_in(layer, input_shape, fan_in):
    layer.kernel_initializer = kiz.HeNormal(seed=1)
    layer.build(input_shape)
    kernel = np.asarray(layer.kernel, dtype="float64")
    # at least 50,000 values: the variance is within 2 % with > 4 sigma to spare
    assert kernel.size >= 50_000
    assert kernel.var() == pytest.approx(2 / fan_in, rel=0.02)


def test_einsum_dense_passes_its_axes():
    layer = keras.layers.EinsumDense(
        "abc,cde->abde", output_shape=(None, 16, 32), kernel_initializer=kiz.HeNormal(seed=2)
    )
    layer.build((None, 10, 512))
    kernel = np.asarray(layer.kernel, dtype="float64")
    assert kernel.shape == (512, 16, 32)
    # fan_in is 512 (axis c), not 16 as the (in, out) layout would have it
    assert kernel.var() == pytest.approx(2 / 512, rel=0.02)


def test_multi_head_attention_projections_use_model_dim_as_fan_in_and_differ():
    mha = keras.layers.MultiHeadAttention(
        num_heads=8, key_dim=32, kernel_initializer=kiz.LecunNormal(seed=5)
    )
    x = np.zeros((1, 4, 256), dtype="float32")
    mha(x, x)
    q, k, v = (
        np.asarray(d.kernel, dtype="float64")
        for d in (mha._query_dense, mha._key_dense, mha._value_dense)
    )
    for kernel in (q, k, v):
        assert kernel.var() == pytest.approx(1 / 256, rel=0.03)
    assert not np.allclose(q, k) and not np.allclose(k, v)


def test_scaled_variance_modes_and_empty_fans():
    assert scaled_variance(2.0, "fan_in", 4, 8) == 0.5
    assert scaled_variance(2.0, "fan_out", 4, 8) == 0.25
    assert scaled_variance(2.0, "fan_avg", 4, 8) == pytest.approx(1 / 3)
    assert scaled_variance(2.0, "fan_geo_avg", 2, 8) == pytest.approx(0.5)
    assert scaled_variance(2.0, "fan_in", 0, 0) == 2.0  # empty tensor: finite, no NaN
