"""GradientNormLogger(optimizer_stats=True): update RMS and Adam's epsilon share per group.

Both equal a NumPy computation from the weights before and after each step and
from the optimizer's own second moments after it, on whichever Keras backend
runs the file (``test_backends.py`` runs it on all).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import load_scalars

import keras_initzoo as kiz
from keras_initzoo import _keras_internals as internals


class Trace(keras.callbacks.Callback):
    """Weights before every step, and weights and Adam's second moments after it."""

    def __init__(self):
        super().__init__()
        self.before, self.after, self.velocities = [], [], []

    def _weights(self):
        return [keras.ops.convert_to_numpy(v) for v in self.model.trainable_variables]

    def on_train_batch_begin(self, batch, logs=None):
        self.before.append(self._weights())

    def on_train_batch_end(self, batch, logs=None):
        self.after.append(self._weights())
        velocities = internals.adam_velocities(self.model.optimizer) or []
        self.velocities.append([keras.ops.convert_to_numpy(v) for v in velocities])


def fit(tmp_path, optimizer, steps=3):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(1, name="out"),
        ]
    )
    model.compile(optimizer, "mse")
    trace = Trace()
    logger = kiz.GradientNormLogger(tmp_path, optimizer_stats=True)
    callbacks = [trace, logger]
    model.fit(x, y, batch_size=32, epochs=steps, shuffle=False, verbose=0, callbacks=callbacks)
    return load_scalars(tmp_path), trace


def flat(arrays):
    return np.concatenate([a.ravel() for a in arrays])


GROUPS = {"hidden": slice(0, 2), "out": slice(2, 4)}  # kernel and bias of each layer


@pytest.mark.parametrize("epsilon", [1e-3, 1e-1, 1e-12])
def test_update_rms_and_epsilon_share_equal_numpy(tmp_path, epsilon):
    logged, trace = fit(tmp_path, keras.optimizers.Adam(1e-2, epsilon=epsilon))
    for step in (1, 2, 3):
        for group, part in GROUPS.items():
            update = flat(trace.after[step - 1][part]) - flat(trace.before[step - 1][part])
            assert logged[f"update_rms/{group}"][step - 1] == (
                step,
                pytest.approx(np.sqrt(np.mean(update**2)), rel=1e-4),
            )
            v = flat(trace.velocities[step - 1][part])
            share = np.mean(np.sqrt(v) < epsilon)
            assert logged[f"adam_eps_share/{group}"][step - 1] == (step, pytest.approx(share))
    shares = [value for _, value in logged["adam_eps_share/hidden"]]
    # Control: the share tells the epsilons apart (all of a layer, none, or some).
    if epsilon == 1e-1:
        assert min(shares) > 0.9
    if epsilon == 1e-12:
        assert max(shares) == 0.0


def test_sgd_logs_update_rms_only(tmp_path):
    logged, trace = fit(tmp_path, keras.optimizers.SGD(0.1), steps=2)
    assert not [t for t in logged if t.startswith("adam_eps_share/")]
    update = flat(trace.after[0][GROUPS["out"]]) - flat(trace.before[0][GROUPS["out"]])
    assert logged["update_rms/out"][0] == (1, pytest.approx(np.sqrt(np.mean(update**2)), rel=1e-4))


def test_off_by_default(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    logger = kiz.GradientNormLogger(tmp_path)
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0, callbacks=[logger])
    assert not [t for t in load_scalars(tmp_path) if t.startswith(("update_rms", "adam_eps"))]


# -- spectral update size ------------------------------------------------------------------------
def test_spectral_update_size_is_within_a_tenth_of_a_percent_of_numpy(tmp_path):
    """``update_spectral/<kernel>`` is ``||dW||_2 / sqrt(fan_out / fan_in)``: against
    ``numpy.linalg.norm(dW, 2)`` of the same update, at each logged step, for a Dense and
    a Conv2D kernel (its matrix: receptive field and input channels by output channels,
    its fans the walk's ``kh kw in`` and ``kh kw out``). Adam's updates are full rank."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6, 6, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="relu", name="dense"),
            keras.layers.Dense(1, name="out"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    trace = Trace()
    logger = kiz.GradientNormLogger(tmp_path, spectral_updates=True)
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[trace, logger])
    logged = load_scalars(tmp_path)
    # Tagged by the variable's path (``<model>/conv/kernel``), as per_variable's norms are.
    prefix = f"update_spectral/{model.name}/"
    spectral = sorted(t for t in logged if t.startswith("update_spectral/"))
    assert spectral == [f"{prefix}{k}/kernel" for k in ("conv", "dense", "out")]
    fans = {"conv": (3 * 3 * 3, 3 * 3 * 4), "dense": (64, 5), "out": (5, 1)}
    kernels = {"conv": 0, "dense": 2, "out": 4}  # positions among the trainable variables
    for step in (1, 2, 3):
        for name, position in kernels.items():
            update = trace.after[step - 1][position] - trace.before[step - 1][position]
            matrix = update.reshape(-1, update.shape[-1])
            fan_in, fan_out = fans[name]
            expected = np.linalg.norm(matrix, 2) / np.sqrt(fan_out / fan_in)
            logged_step, value = logged[f"{prefix}{name}/kernel"][step - 1]
            assert logged_step == step and value == pytest.approx(expected, rel=1e-3)


def test_lanczos_on_hard_spectra():
    """Two singular values 10 % apart (slow for the power method), a dense sign matrix
    (Adam-like: a flat top of the spectrum) and a rank-2 matrix (the Krylov space ends
    early): LANCZOS_STEPS steps are within 0.1 % of numpy, and never above it, apart
    and zero-padded into one batch. Control: one step (the power method's first
    estimate) is well off."""
    from keras_initzoo.callbacks.capture.base import LANCZOS_STEPS, spectral_norms

    rng = np.random.default_rng(3)
    u, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    v, _ = np.linalg.qr(rng.normal(size=(30, 30)))
    singular = np.concatenate([[1.0, 0.9], np.linspace(0.5, 0.01, 28)])
    gapped = (u[:, :30] * singular) @ v.T
    signs = np.sign(rng.normal(size=(256, 128)))
    rank_two = rng.normal(size=(64, 2)) @ rng.normal(size=(2, 48))
    matrices = [gapped, signs, rank_two, np.zeros((8, 8))]
    expected = [np.linalg.norm(m, 2) for m in matrices]
    found = keras.ops.convert_to_numpy(spectral_norms(matrices, LANCZOS_STEPS))
    np.testing.assert_allclose(found, expected, rtol=1e-3)
    assert np.all(found <= np.asarray(expected) * (1 + 1e-5))
    # One padded batch: a matrix, its transpose and a larger one (at most twice the entries).
    mixed = [gapped, gapped.T, rank_two]
    found = keras.ops.convert_to_numpy(spectral_norms(mixed, LANCZOS_STEPS))
    np.testing.assert_allclose(found, [np.linalg.norm(m, 2) for m in mixed], rtol=1e-3)
    rough = keras.ops.convert_to_numpy(spectral_norms(matrices[:2], 1))
    assert np.all(rough < 0.98 * np.asarray(expected[:2]))
