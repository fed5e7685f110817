"""The symmetry lesson: constant kernels keep hidden units identical; random ones do not."""

import keras
import numpy as np
import pytest

import keras_initzoo  # noqa: F401  (registers the zoo_* aliases used by name below)


def _train_two_layer_net(kernel_initializer):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 5)).astype("float32")
    y = (x @ rng.normal(size=(5, 1)) + np.sin(x[:, :1])).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(8, activation="tanh", kernel_initializer=kernel_initializer),
            keras.layers.Dense(1, kernel_initializer=kernel_initializer),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0, shuffle=False)
    return model.layers[0].get_weights(), history.history["loss"]


def test_constant_initialization_keeps_every_hidden_unit_identical():
    (kernel, bias), losses = _train_two_layer_net("zoo_constant")
    # the weights did change: this is not a model that never trained
    assert not np.allclose(kernel, 0.0) and losses[-1] < losses[0]
    # ...yet every hidden unit (column) is still the same as the first one
    np.testing.assert_allclose(kernel, np.repeat(kernel[:, :1], 8, axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, np.full(8, bias[0]), rtol=1e-5, atol=1e-6)
    assert np.linalg.matrix_rank(kernel, tol=1e-4) == 1


@pytest.mark.parametrize("alias", ["zoo_he", "zoo_glorot", "zoo_uniform"])
def test_random_initialization_breaks_symmetry(alias):
    (kernel, _), _ = _train_two_layer_net(alias)
    distances = np.abs(kernel[:, :, None] - kernel[:, None, :]).max(axis=0)
    assert (distances[~np.eye(8, dtype=bool)] > 1e-3).all()
    assert np.linalg.matrix_rank(kernel, tol=1e-4) == 5
