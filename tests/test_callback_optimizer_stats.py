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
