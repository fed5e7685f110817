"""bfloat16 and float16 kernels: full resolution, the scheme's variance, bounds kept.

Every random scheme draws in float32 and rounds once
(``keras_initzoo/initializers/sampling.py``). A draw made in the 16-bit dtype
itself (Keras' on JAX, and its uniforms on TensorFlow and PyTorch) has 128
distinct bfloat16 values (1,024 float16) in a 100 x 100 kernel; a float32 draw
rounded once has about 1,400 (5,000). The bars are PyTorch's
(``test/nn/test_init.py``, ``test_trunc_normal_unique_values``): more than
1,000 distinct of 10,000 bfloat16 draws, more than 3,000 float16.
"""

import math

import keras
import numpy as np
import pytest

import keras_initzoo as kiz
from keras_initzoo.initializers.simple import truncated_normal_variance
from keras_initzoo.initializers.variance_scaling import TRUNCATED_NORMAL_STDDEV

RANDOM = [info for info in kiz.list_initializers() if info.cls.draws_randomly]
DTYPES = ("bfloat16", "float16")
MIN_DISTINCT = {"bfloat16": 1000, "float16": 3000}  # of 10,000 values, PyTorch's bars
# Sparse zeroes 90 % of each column: 1,000 x 100 keeps 10,000 non-zero values.
SHAPES = {"zoo_sparse": (1000, 100)}
SHAPE = (100, 100)


def _values(initializer, shape, dtype):
    tensor = initializer(shape, dtype=dtype)
    assert keras.backend.standardize_dtype(tensor.dtype) == dtype
    return keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32")).astype(np.float64)


def _second_moment(initializer, shape):
    """``E[W**2]`` of the scheme (every default here has mean 0)."""
    if hasattr(initializer, "variance"):
        return initializer.variance(shape)
    name = type(initializer).__name__
    if name == "SimpleUniform":
        return (initializer.high - initializer.low) ** 2 / 12
    if name == "TruncatedNormal":
        return initializer.stddev**2 * truncated_normal_variance(
            initializer.lower, initializer.upper
        )
    if name in ("Orthogonal", "DeltaOrthogonal"):  # 2-D: W^T W = gain**2 I exactly
        return initializer.gain**2 / max(shape)
    if name == "Sparse":
        nonzero = shape[0] - math.ceil(initializer.sparsity * shape[0])
        return nonzero / shape[0] * initializer.stddev**2
    return initializer.stddev**2  # the normals


def _truncation_bound(initializer, shape):
    """The largest ``|W|`` the scheme allows, or None."""
    distribution = getattr(initializer, "distribution", None)
    if distribution == "truncated_normal":
        return 2.0 * math.sqrt(initializer.variance(shape)) / TRUNCATED_NORMAL_STDDEV
    if distribution == "uniform":
        return math.sqrt(3.0 * initializer.variance(shape))
    name = type(initializer).__name__
    if name == "TruncatedNormal":
        return initializer.stddev * max(-initializer.lower, initializer.upper)
    if name == "SimpleUniform":
        return max(-initializer.low, initializer.high)
    return None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alias", [info.alias for info in RANDOM])
def test_every_random_scheme_draws_16_bit_kernels_at_full_resolution(alias, dtype):
    info = next(info for info in RANDOM if info.alias == alias)
    initializer, shape = info.make(seed=3), SHAPES.get(alias, SHAPE)
    values = _values(initializer, shape, dtype)
    nonzero = values[values != 0]
    assert len(np.unique(nonzero)) > MIN_DISTINCT[dtype]

    # E[W**2] to 5 standard errors, the standard error estimated from the
    # sample's own fourth moment (so it suits normal, uniform and sparse alike),
    # plus 1 % for rounding to 16 bits (at most 2 * 2**-9 of each value squared
    # in bfloat16): a wrong constant (0.77 for an uncorrected truncation, a
    # factor 2 of He's) misses by far more.
    squares = values**2
    expected = _second_moment(initializer, shape)
    standard_error = math.sqrt(squares.var() / squares.size)
    assert abs(squares.mean() - expected) <= 5 * standard_error + 0.01 * expected

    bound = _truncation_bound(initializer, shape)
    if bound is not None:
        assert np.abs(values).max() <= bound


@pytest.mark.parametrize("dtype", DTYPES)
def test_rounding_cannot_step_outside_a_truncation_bound(dtype):
    # 1.005 lies between bfloat16's 1.0 and 1.0078125, above their midpoint
    # 1.00390625: a value in (1.0039, 1.005] rounds to nearest at 1.0078, outside.
    # Of 200,000 draws about 50 fall there (density 0.057 / stddev at 2 stddevs,
    # a window of 0.0022 stddevs, both tails); float16 has its own such window.
    stddev = 1.005 / 2.0
    values = _values(kiz.TruncatedNormal(stddev=stddev, seed=1), (200, 1000), dtype)
    assert np.abs(values).max() <= 2 * stddev
    he = kiz.HeNormal(seed=2)
    bound = 2.0 * math.sqrt(he.variance((7, 1000))) / TRUNCATED_NORMAL_STDDEV
    assert np.abs(_values(he, (7, 1000), dtype)).max() <= bound


@pytest.mark.parametrize("policy", ["bfloat16", "float16"])
def test_a_dense_layer_under_a_16_bit_policy_gets_a_full_resolution_kernel(policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        layer = keras.layers.Dense(100, kernel_initializer=kiz.HeUniform(seed=4))
        layer.build((None, 100))
        kernel = layer.kernel
        assert keras.backend.standardize_dtype(kernel.dtype) == policy
        values = keras.ops.convert_to_numpy(keras.ops.cast(kernel, "float32"))
    finally:
        keras.config.set_dtype_policy(previous)
    assert len(np.unique(values)) > MIN_DISTINCT[policy]


def test_the_keras_seed_internals_the_draws_use_still_behave():
    """``sampling`` draws its seed with Keras' private ``draw_seed`` (as ``keras.random``
    does) and, on PyTorch, makes its generator with ``torch_seed_generator``."""
    from keras.src.random.seed_generator import draw_seed

    generator = keras.random.SeedGenerator(5)
    first, second = (keras.ops.convert_to_numpy(draw_seed(generator)) for _ in range(2))
    assert first.shape == (2,) and not np.array_equal(first, second)
    if keras.backend.backend() == "torch":
        import torch
        from keras.src.backend.torch.random import torch_seed_generator

        assert isinstance(torch_seed_generator(generator), torch.Generator)
