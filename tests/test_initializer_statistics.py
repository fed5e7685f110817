"""Moments and bounds of every random scheme on large draws.

Tolerances: a draw of N = 1,000,000 values with variance s**2 has a sample
mean with standard deviation s / 1000 and a sample variance with relative
standard deviation sqrt(2 / N) = 0.0014 (normal; smaller for uniform and
truncated normal). Checking the mean to 0.01 s and the variance to 1.5 %
leaves more than 10 standard deviations of room, and the seeds are fixed, so
the checks cannot fail by chance while a wrong constant (e.g. truncation
not corrected, 0.88**2 = 0.77) still fails them by far.
"""

import math

import keras
import numpy as np
import pytest
from conftest import float64_scope

import keras_initzoo as kiz
from keras_initzoo.initializers.variance_scaling import TRUNCATED_NORMAL_STDDEV

SHAPE = (1000, 1000)  # fan_in = fan_out = fan_avg = 1000
FAN = 1000.0

# (initializer, expected variance, half-width of the support or None)
CASES = {
    "SimpleUniform": (kiz.SimpleUniform(seed=1), 0.1**2 / 3, 0.1),
    "SimpleUniform(0.5)": (kiz.SimpleUniform(limit=0.5, seed=1), 0.5**2 / 3, 0.5),
    "SimpleNormal": (kiz.SimpleNormal(seed=2), 0.01, None),
    "SmallRandom": (kiz.SmallRandom(seed=3), 1e-4, None),
    "LargeRandom": (kiz.LargeRandom(seed=4), 100.0, None),
    "StandardNormal": (kiz.StandardNormal(seed=5), 1.0, None),
    "EpsilonUniform": (kiz.EpsilonUniform(seed=6), 1 / FAN, math.sqrt(6 / (2 * FAN))),
    "EpsilonUniform(0.2)": (kiz.EpsilonUniform(epsilon=0.2, seed=6), 0.04 / 3, 0.2),
    "GlorotUniform": (kiz.GlorotUniform(seed=7), 1 / FAN, math.sqrt(3 / FAN)),
    "GlorotNormal": (kiz.GlorotNormal(seed=8), 1 / FAN, 2 * math.sqrt(1 / FAN) / 0.8796),
    "HeNormal": (kiz.HeNormal(seed=9), 2 / FAN, 2 * math.sqrt(2 / FAN) / 0.8796),
    "HeNormal(leaky 0.2)": (kiz.HeNormal(negative_slope=0.2, seed=9), 2 / 1.04 / FAN, None),
    "HeUniform": (kiz.HeUniform(seed=10), 2 / FAN, math.sqrt(6 / FAN)),
    "LecunNormal": (kiz.LecunNormal(seed=11), 1 / FAN, 2 * math.sqrt(1 / FAN) / 0.8796),
    "LecunUniform": (kiz.LecunUniform(seed=12), 1 / FAN, math.sqrt(3 / FAN)),
    "GlorotUniform(gain 5/3)": (kiz.GlorotUniform(gain=5 / 3, seed=7), (5 / 3) ** 2 / FAN, None),
    "VarianceScaling(normal)": (
        kiz.VarianceScaling(scale=3.0, mode="fan_avg", distribution="normal", seed=13),
        3 / FAN,
        None,
    ),
    "Orthogonal": (kiz.Orthogonal(seed=14), 1 / FAN, None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_mean_and_variance_match_the_formula(name):
    initializer, variance, half_width = CASES[name]
    with float64_scope("float64"):
        values = keras.ops.convert_to_numpy(initializer(SHAPE, dtype="float64"))
    std = math.sqrt(variance)
    assert abs(values.mean()) < 0.01 * std
    assert values.var() == pytest.approx(variance, rel=0.015)
    if half_width is not None:
        assert np.abs(values).max() <= half_width * (1 + 1e-6)


def test_truncated_normal_draws_stay_within_two_standard_deviations():
    """On every backend, including PyTorch, whose Keras sampler leaves 4.3e-6 of its
    draws untruncated: 17 expected in 4,000,000, none allowed."""
    scale = math.sqrt(2 / 2000) / TRUNCATED_NORMAL_STDDEV  # He: the normal before truncation
    for initializer, bound in [
        (kiz.TruncatedNormal(stddev=1.0, seed=1), 2.0),
        (kiz.HeNormal(seed=2), 2.0 * scale),
    ]:
        values = keras.ops.convert_to_numpy(initializer((2000, 2000)))
        assert np.abs(values).max() <= bound * (1 + 1e-6), type(initializer).__name__


def test_truncated_normal_constant_is_the_stddev_of_the_truncated_unit_normal():
    # Monte Carlo independent of keras: N(0,1) restricted to [-2, 2].
    rng = np.random.default_rng(0)
    z = rng.standard_normal(4_000_000)
    assert TRUNCATED_NORMAL_STDDEV == pytest.approx(z[np.abs(z) <= 2].std(), rel=1e-3)
    assert TRUNCATED_NORMAL_STDDEV == pytest.approx(0.87962566103423978, rel=1e-12)


def test_fan_out_mode_uses_the_output_dimension():
    with float64_scope("float64"):
        values = kiz.HeNormal(mode="fan_out", seed=0)((250, 4000), dtype="float64")
    values = keras.ops.convert_to_numpy(values)
    assert values.var() == pytest.approx(2 / 4000, rel=0.015)


@pytest.mark.parametrize("shape", [(64, 64), (200, 50), (50, 200), (3, 3, 16, 32), (3, 3, 64, 8)])
@pytest.mark.parametrize("gain", [1.0, 1.7])
def test_orthogonal_columns_or_rows_are_orthonormal(shape, gain):
    w = np.asarray(kiz.Orthogonal(gain=gain, seed=3)(shape)).reshape(-1, shape[-1])
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram / gain**2, np.eye(gram.shape[0]), atol=1e-5)


def test_orthogonal_column_axis():
    w = np.asarray(kiz.Orthogonal(column_axis=0, seed=3)((6, 4, 5)))
    flat = np.moveaxis(w, 0, -1).reshape(-1, 6)
    np.testing.assert_allclose(flat.T @ flat, np.eye(6), atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_every_float_dtype_is_honoured(dtype):
    for info in kiz.list_initializers():
        with float64_scope(dtype):
            value = kiz.get(info.alias)((8, 8), dtype=dtype)
        assert keras.backend.standardize_dtype(value.dtype) == dtype
        assert np.isfinite(np.asarray(keras.ops.convert_to_numpy(value), dtype="float64")).all()


def test_constant_schemes():
    np.testing.assert_array_equal(kiz.Zeros()((3, 4)), np.zeros((3, 4)))
    np.testing.assert_array_equal(kiz.Constant(0.25)((2, 5)), np.full((2, 5), 0.25))
