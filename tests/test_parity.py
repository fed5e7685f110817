"""The vocabulary users bring from Keras, PyTorch and JAX, each with the property it promises."""

import math

import keras
import numpy as np
import pytest
from conftest import float64_scope

import keras_initzoo as kiz
from keras_initzoo.initializers.simple import truncated_normal_moments

N = 400_000  # samples per statistic: relative std of a variance estimate ~ sqrt(2/N) = 0.2 %


def _draw(initializer, shape=(N // 100, 100)):
    with float64_scope("float64"):
        return keras.ops.convert_to_numpy(initializer(shape, dtype="float64"))


def test_simple_normal_takes_a_mean():
    values = _draw(kiz.SimpleNormal(stddev=0.5, mean=3.0, seed=1))
    assert values.mean() == pytest.approx(3.0, abs=0.005)  # 6 standard errors (0.5/sqrt(N))
    assert values.std() == pytest.approx(0.5, rel=0.01)


def test_simple_uniform_takes_minval_and_maxval():
    init = kiz.SimpleUniform(minval=-1.0, maxval=3.0, seed=1)
    values = _draw(init)
    assert values.min() >= -1.0 and values.max() < 3.0
    assert values.var() == pytest.approx(16 / 12, rel=0.01)
    assert init.limit is None and (init.minval, init.maxval) == (-1.0, 3.0)


@pytest.mark.parametrize(
    "arguments, named",
    [
        ({"limit": 0.2, "minval": -1.0, "maxval": 1.0}, "limit"),
        ({"minval": -1.0}, "maxval"),
        ({"minval": 1.0, "maxval": 1.0}, "minval"),
    ],
)
def test_simple_uniform_rejects_mixed_or_empty_intervals(arguments, named):
    with pytest.raises(ValueError, match=f"`{named}`"):
        kiz.SimpleUniform(**arguments)


def test_constant_takes_an_array_and_checks_its_shape():
    value = np.arange(6, dtype="float64").reshape(2, 3)
    init = kiz.Constant(value)
    np.testing.assert_array_equal(init((2, 3)), value)
    np.testing.assert_array_equal(kiz.Constant([1.0, 2.0, 3.0])((2, 3)), [[1, 2, 3]] * 2)
    assert kiz.Constant.from_config(init.get_config()) == init
    with pytest.raises(ValueError, match=r"`value` of shape \(2, 3\) does not broadcast"):
        init((3, 2))
    for bad in ([1.0, float("nan")], [["a"]], [[1.0], [2.0, 3.0]]):
        with pytest.raises(ValueError, match="`value`"):
            kiz.Constant(bad)


def test_ones():
    np.testing.assert_array_equal(kiz.Ones()((2, 2)), np.ones((2, 2)))


@pytest.mark.parametrize(
    "cls",
    [
        kiz.GlorotUniform,
        kiz.GlorotNormal,
        kiz.HeNormal,
        kiz.HeUniform,
        kiz.LecunNormal,
        kiz.LecunUniform,
        kiz.EpsilonUniform,
        kiz.GainScaled,
        kiz.VarianceScaling,
    ],
)
def test_every_fan_scaled_preset_takes_batch_axes(cls):
    """Five stacked (64, 32) kernels have the variance of one, not of a (5*64, 32) one."""
    init = cls(batch_axes=[0], seed=3)
    stacked = _draw(init, (5, 64, 32))
    single = cls(seed=3).variance((64, 32))
    assert init.variance((5, 64, 32)) == single
    assert stacked.var() == pytest.approx(single, rel=0.05)  # 10240 samples: 3.5 std errors


def test_untruncated_normal_is_keras_spelling_of_normal():
    keras_spelling = kiz.VarianceScaling(2.0, distribution="untruncated_normal", seed=0)
    values = _draw(keras_spelling, (N // 50, 50))
    # untruncated: tails beyond 2 sigma exist (4.55 % of a normal's mass)
    sigma = math.sqrt(2.0 / (N // 50))  # fan_in of a (N/50, 50) kernel
    assert np.mean(np.abs(values) > 2 * sigma) == pytest.approx(0.0455, abs=0.002)
    assert keras_spelling.get_config()["distribution"] == "untruncated_normal"


def test_fan_geo_avg_is_the_geometric_mean_of_the_fans():
    init = kiz.VarianceScaling(1.0, mode="fan_geo_avg", distribution="normal", seed=0)
    assert init.variance((16, 64)) == pytest.approx(1 / 32)
    assert _draw(init, (400, 1000)).var() == pytest.approx(1 / math.sqrt(400_000), rel=0.01)


@pytest.mark.parametrize("lower, upper", [(-2.0, 2.0), (-1.0, 1.0), (-1.0, 0.5), (0.0, math.inf)])
def test_truncated_normal_keeps_its_bounds_and_stated_moments(lower, upper):
    init = kiz.TruncatedNormal(mean=1.0, stddev=0.5, lower=lower, upper=upper, seed=2)
    values = _draw(init)
    assert values.min() >= 1.0 + 0.5 * lower and values.max() <= 1.0 + 0.5 * upper
    mean, variance = truncated_normal_moments(lower, upper)
    # 400k samples: standard error of the mean < 0.001, of the variance < 0.5 %
    assert values.mean() == pytest.approx(1.0 + 0.5 * mean, abs=0.004)
    assert values.var() == pytest.approx(0.25 * variance, rel=0.02)


def test_truncated_normal_variance_matches_keras_constant():
    from keras_initzoo.initializers.variance_scaling import TRUNCATED_NORMAL_STDDEV

    assert TRUNCATED_NORMAL_STDDEV == pytest.approx(0.87962566103423978)  # Keras' constant


def test_truncated_normal_maps_pytorch_absolute_bounds():
    """trunc_normal_(mean=0, std=0.02, a=-0.04, b=0.04) is TruncatedNormal(0, 0.02, -2, 2)."""
    mean, std, a, b = 0.0, 0.02, -0.04, 0.04
    init = kiz.TruncatedNormal(mean, std, lower=(a - mean) / std, upper=(b - mean) / std, seed=0)
    values = _draw(init)
    assert values.min() >= a and values.max() <= b


def test_depthwise_axes_count_one_channel_per_output():
    assert kiz.compute_fans((3, 3, 32, 2), **kiz.depthwise_axes()) == (9, 18)
    assert kiz.compute_fans((5, 8, 1), **kiz.depthwise_axes(1)) == (5, 5)
    layer = keras.layers.DepthwiseConv2D(
        3, depthwise_initializer=kiz.HeNormal(**kiz.depthwise_axes())
    )
    layer.build((None, 16, 16, 256))
    variance = float(np.var(layer.kernel))
    assert variance == pytest.approx(2 / 9, rel=0.1)  # 2304 samples: std error 3 %
    wrong = keras.layers.DepthwiseConv2D(3, depthwise_initializer="zoo_he")
    wrong.build((None, 16, 16, 256))
    assert float(np.var(wrong.kernel)) == pytest.approx(2 / (9 * 256), rel=0.1)


def test_calculate_gain_and_gain_are_exported():
    assert kiz.gain("relu") == pytest.approx(math.sqrt(2))
    assert kiz.calculate_gain("conv2d") == 1.0
