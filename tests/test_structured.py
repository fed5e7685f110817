"""Identity, Dirac, DeltaOrthogonal, ZerO and Sparse: each scheme's defining property."""

import json
import math

import keras
import numpy as np
import pytest
import scipy.linalg
from conftest import float64_scope

from keras_initzoo.initializers.sparse import Sparse
from keras_initzoo.initializers.structured import (
    DeltaOrthogonal,
    Dirac,
    Identity,
    ZerO,
    _sylvester_hadamard,
)

INSTANCES = [
    Identity(gain=2.0),
    Dirac(groups=2),
    DeltaOrthogonal(gain=1.5, seed=3),
    ZerO(),
    Sparse(sparsity=0.5, stddev=0.1, seed=4),
]
# A shape each scheme accepts, with in and out divisible by Dirac's 2 groups.
SHAPES = {Identity: (4, 6), Sparse: (8, 6)}
CONV_SHAPE = (3, 3, 4, 6)


def np_(tensor) -> np.ndarray:
    """The tensor's values in float64, widened in NumPy (Keras on JAX has no float64)."""
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype="float64")


def channel_norms(x) -> np.ndarray:
    return np.linalg.norm(np_(x), axis=-1)


@pytest.mark.parametrize("init", INSTANCES, ids=lambda init: type(init).__name__)
def test_config_round_trips_through_json(init):
    config = json.loads(json.dumps(init.get_config()))
    assert type(init).from_config(config) == init


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("init", INSTANCES, ids=lambda init: type(init).__name__)
def test_dtype_is_kept(init, dtype):
    shape = SHAPES.get(type(init), CONV_SHAPE)
    with float64_scope(dtype):
        tensor = init(shape, dtype=dtype)
    assert keras.backend.standardize_dtype(tensor.dtype) == dtype
    assert tuple(tensor.shape) == shape


@pytest.mark.parametrize("init", [Dirac(), DeltaOrthogonal(), ZerO(), Sparse()])
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 3, 3), (2, 0, 3, 3)])
def test_empty_shapes_give_empty_tensors(init, shape):
    assert tuple(init(shape).shape) == shape


def test_only_the_random_schemes_draw_randomly():
    assert [type(init).draws_randomly for init in INSTANCES] == [False, False, True, False, True]


# Identity


def test_identity_is_gain_times_the_leading_identity_block():
    for shape in [(3, 3), (2, 4), (4, 2)]:
        expected = keras.initializers.Identity(gain=2.5)(shape, dtype="float32")
        np.testing.assert_array_equal(np_(Identity(gain=2.5)(shape)), np_(expected))
    np.testing.assert_array_equal(np_(Identity()((2, 3))), np.eye(2, 3))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Identity()((3,)), "`shape`"),
        (lambda: Identity()((3, 3, 2)), "`shape`"),
        (lambda: Identity(gain=0.0), "`gain`"),
        (lambda: Identity(gain=float("nan")), "`gain`"),
    ],
)
def test_identity_rejects(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# Dirac


@pytest.mark.parametrize(
    "layer, input_shape",
    [
        (keras.layers.Conv1D, (2, 7, 6)),
        (keras.layers.Conv2D, (2, 5, 6, 6)),
        (keras.layers.Conv3D, (2, 4, 5, 3, 6)),
    ],
)
def test_dirac_conv_is_the_identity(layer, input_shape):
    x = keras.random.normal(input_shape, seed=1)
    conv = layer(6, 3, padding="same", kernel_initializer=Dirac())
    np.testing.assert_array_equal(np_(conv(x)), np_(x))


@pytest.mark.parametrize("groups", [2, 3, 6])
def test_dirac_grouped_conv_is_the_identity(groups):
    x = keras.random.normal((2, 5, 5, 6), seed=2)
    conv = keras.layers.Conv2D(
        6, 3, padding="same", groups=groups, kernel_initializer=Dirac(groups=groups)
    )
    np.testing.assert_array_equal(np_(conv(x)), np_(x))


def test_dirac_keeps_min_in_out_channels_per_group():
    # 2 groups of 2 inputs and 3 outputs: output j copies group input j mod 3 if there is one.
    x = keras.random.normal((1, 4, 4, 4), seed=3)
    conv = keras.layers.Conv2D(6, 3, padding="same", groups=2, kernel_initializer=Dirac(groups=2))
    y, x = np_(conv(x)), np_(x)
    np.testing.assert_array_equal(y[..., [0, 1, 3, 4]], x)
    np.testing.assert_array_equal(y[..., [2, 5]], 0.0)


def test_dirac_even_kernel_puts_the_one_at_k_over_2():
    kernel = np_(Dirac()((4, 2, 2)))
    assert kernel.sum() == 2.0
    np.testing.assert_array_equal(kernel[2], np.eye(2))


def test_dirac_dense_kernel_is_an_identity_block_per_group():
    np.testing.assert_array_equal(np_(Dirac()((3, 3))), np.eye(3))
    np.testing.assert_array_equal(np_(Dirac(groups=2)((2, 4))), np.hstack([np.eye(2)] * 2))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Dirac(groups=0), "`groups`"),
        (lambda: Dirac(groups=1.5), "`groups`"),
        (lambda: Dirac(groups=4)((3, 3, 2, 6)), "`groups`"),
        (lambda: Dirac()((6,)), "`shape`"),
        (lambda: Dirac()((1, 1, 1, 1, 2, 2)), "`shape`"),
    ],
)
def test_dirac_rejects(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# DeltaOrthogonal


def test_delta_orthogonal_is_orthogonal_at_the_centre_and_zero_elsewhere():
    kernel = np_(DeltaOrthogonal(gain=2.0, seed=5)((3, 5, 4, 6)))
    centre = kernel[1, 2].copy()
    kernel[1, 2] = 0.0
    assert not kernel.any()
    # in < out: orthonormal rows, up to float32 QR's rounding.
    np.testing.assert_allclose(centre @ centre.T, 4.0 * np.eye(4), atol=1e-5)


def test_delta_orthogonal_dense_kernel_is_orthogonal():
    kernel = np_(DeltaOrthogonal(seed=6)((6, 4)))
    np.testing.assert_allclose(kernel.T @ kernel, np.eye(4), atol=1e-5)


def test_delta_orthogonal_draws_a_new_matrix_each_call():
    init = DeltaOrthogonal(seed=7)
    assert not np.array_equal(np_(init((3, 3, 4, 4))), np_(init((3, 3, 4, 4))))


@pytest.mark.parametrize("channels_in, channels_out", [(8, 8), (8, 12), (12, 8)])
def test_delta_orthogonal_conv_preserves_or_projects_channel_norms(channels_in, channels_out):
    x = keras.random.normal((2, 6, 6, channels_in), seed=8)
    conv = keras.layers.Conv2D(
        channels_out, 3, padding="same", kernel_initializer=DeltaOrthogonal(seed=9)
    )
    before, after = channel_norms(x), channel_norms(conv(x))
    if channels_in <= channels_out:  # orthonormal rows: an isometry (float32 rounding: 1e-5)
        np.testing.assert_allclose(after, before, rtol=1e-5)
    else:  # orthonormal columns: a projection, never longer, shorter on average
        assert np.all(after <= before * (1 + 1e-5))
        assert after.mean() < 0.95 * before.mean()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: DeltaOrthogonal(gain=-1.0), "`gain`"),
        (lambda: DeltaOrthogonal()((4,)), "`shape`"),
        (lambda: DeltaOrthogonal()((1, 1, 1, 1, 2, 2)), "`shape`"),
    ],
)
def test_delta_orthogonal_rejects(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ZerO


def test_zero_is_the_same_on_every_call():
    init = ZerO()
    np.testing.assert_array_equal(np_(init((3, 3, 5, 12))), np_(init((3, 3, 5, 12))))
    np.testing.assert_array_equal(np_(init((5, 12))), np_(ZerO(seed=1)((5, 12))))


def test_zero_square_is_exactly_identity_and_decreasing_is_partial_identity():
    np.testing.assert_array_equal(np_(ZerO()((7, 7))), np.eye(7))
    np.testing.assert_array_equal(np_(ZerO()((7, 3))), np.eye(7, 3))


@pytest.mark.parametrize("fan_in, fan_out", [(1, 2), (3, 5), (5, 8), (20, 33), (40, 64)])
def test_zero_increasing_is_a_scaled_hadamard_block_of_full_rank(fan_in, fan_out):
    kernel = np_(ZerO()((fan_in, fan_out)))
    m = math.ceil(math.log2(fan_out))
    c = 2.0 ** (-(m - 1) / 2)
    np.testing.assert_allclose(kernel, c * scipy.linalg.hadamard(2**m)[:fan_in, :fan_out])
    assert set(np.unique(np.abs(kernel))) == {float(np.float32(c))}
    assert np.linalg.matrix_rank(kernel) == fan_in
    if fan_out == 2**m:  # rows orthogonal with squared norm c² 2^m = 2
        np.testing.assert_allclose(kernel @ kernel.T, 2.0 * np.eye(fan_in))


def test_sylvester_hadamard_matches_scipy():
    for n in [1, 2, 4, 16, 128]:
        np.testing.assert_array_equal(_sylvester_hadamard(n, n), scipy.linalg.hadamard(n))


def test_zero_conv_kernel_holds_the_matrix_at_the_centre():
    kernel = np_(ZerO()((3, 3, 4, 8)))
    np.testing.assert_array_equal(kernel[1, 1], np_(ZerO()((4, 8))))
    kernel[1, 1] = 0.0
    assert not kernel.any()


def test_zero_network_propagates_a_signal():
    # Widths up and down: Hadamard (16 -> 48), identity, partial identity (48 -> 24 -> 10).
    model = keras.Sequential(
        [keras.Input((16,))]
        + [
            keras.layers.Dense(width, activation="relu", kernel_initializer=ZerO())
            for width in (48, 48, 24)
        ]
        + [keras.layers.Dense(10, kernel_initializer=ZerO())]
    )
    y = np_(model(keras.random.normal((32, 16), seed=10)))
    assert np.all(np.isfinite(y))
    assert np.abs(y).sum(axis=1).min() > 0.0  # every sample reaches the output


def test_zero_rejects_a_vector_shape():
    with pytest.raises(ValueError, match="`shape`"):
        ZerO()((4,))


# Sparse


def test_sparse_zeroes_exactly_ceil_sparsity_rows_per_column():
    kernel = np_(Sparse(sparsity=0.9, stddev=0.5, seed=11)((1000, 100)))
    np.testing.assert_array_equal((kernel == 0).sum(axis=0), 900)
    # The zeros lie in different rows in different columns: each row is zero in
    # Binomial(100, 0.9) columns, std 3; 0.6 to 1.0 is over 10 stds wide.
    row_zeros = (kernel == 0).mean(axis=1)
    assert 0.6 < row_zeros.min() and row_zeros.max() <= 1.0 and row_zeros.std() > 0.0
    # 10,000 non-zero N(0, 0.25) samples: the sample std has relative error
    # 1/sqrt(2n) = 0.7 %, so 5 % is 7 of those; the mean's error is 0.005.
    nonzero = kernel[kernel != 0]
    assert nonzero.size == 10_000
    assert nonzero.std() == pytest.approx(0.5, rel=0.05)
    assert abs(nonzero.mean()) < 0.025


def test_sparse_counts_zeros_from_the_decimal_sparsity():
    # 0.7 * 10 is 7.000000000000001 in floats; 7 zeros, not 8.
    kernel = np_(Sparse(sparsity=0.7, seed=12)((10, 5)))
    np.testing.assert_array_equal((kernel == 0).sum(axis=0), 7)
    assert np.all(np_(Sparse(sparsity=0.0, seed=12)((10, 5))) != 0)


def test_sparse_conv_kernel_counts_zeros_over_each_output_channel_fan_in():
    kernel = np_(Sparse(seed=13)((3, 3, 16, 8))).reshape(-1, 8)
    np.testing.assert_array_equal((kernel == 0).sum(axis=0), math.ceil(0.9 * 144))


def test_sparse_same_seed_same_kernel_after_clear_session():
    kernels = []
    for _ in range(2):
        keras.backend.clear_session()
        kernels.append(np_(Sparse(seed=14)((50, 20))))
    np.testing.assert_array_equal(*kernels)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Sparse(sparsity=1.0), "`sparsity`"),
        (lambda: Sparse(sparsity=-0.1), "`sparsity`"),
        (lambda: Sparse(sparsity="0.5"), "`sparsity`"),
        (lambda: Sparse(stddev=0.0), "`stddev`"),
        (lambda: Sparse()((10,)), "`shape`"),
    ],
)
def test_sparse_rejects(make, match):
    with pytest.raises(ValueError, match=match):
        make()
