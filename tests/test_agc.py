"""Adaptive gradient clipping (kiz.optimizers) against a NumPy reference, on every backend.

Each numeric test computes the gradients of a tiny linear model in closed
form, clips them with an independent NumPy transcription of DeepMind's
``nfnets/agc_optax.py`` (unitwise norms, ``where(g_norm < max_norm, g,
g * max_norm / max(g_norm, 1e-6))``), applies the optimizer's update rule, and
compares with the weights after one real ``fit`` step. Controls: the data
make some units clip and others not (asserted on the reference), and the
unclipped update is asserted to differ from the clipped one by far more than
the tolerance, so an optimizer that skipped AGC, or clipped every unit,
fails. If Keras stopped calling ``_backend_apply_gradients`` or
``_clip_gradients`` (the private hooks AGC overrides), nothing would be
clipped and these tests would fail.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

import keras_initzoo as kiz
from keras_initzoo.optimizers import AGC, adaptive_clipping, agc_class, clip_unitwise

ATOL = 2e-5
CLIPPING = 0.05


# -- the NumPy reference -----------------------------------------------------------------------
def np_unitwise_norm(x: np.ndarray) -> np.ndarray:
    """agc_optax.unitwise_norm for Keras layouts: whole tensor for scalars and vectors."""
    if np.squeeze(x).ndim <= 1:
        return np.sqrt(np.sum(x**2))
    return np.sqrt(np.sum(x**2, axis=tuple(range(x.ndim - 1)), keepdims=True))


def np_agc(g: np.ndarray, w: np.ndarray, clipping: float, eps: float = 1e-3):
    """The clipped gradient and, per unit, whether it was clipped."""
    g_norm = np_unitwise_norm(g)
    max_norm = clipping * np.maximum(np_unitwise_norm(w), eps)
    clipped = g * (max_norm / np.maximum(g_norm, 1e-6))
    return np.where(g_norm < max_norm, g, clipped), np.atleast_1d(g_norm >= max_norm).ravel()


def data():
    """Output 0 is nearly fitted (small gradient, large weights: not clipped); output 1 is not."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    kernel = np.array([[3.0, 0.02], [4.0, -0.01], [0.0, 0.03]], "float32")
    bias = np.array([0.0, 0.5], "float32")
    y = x @ kernel + bias
    y[:, 0] += 0.05 * rng.normal(size=16)
    y[:, 1] = rng.normal(size=16)
    return x, y.astype("float32"), kernel, bias


def np_dense_grads(x, y, kernel, bias):
    """Gradients of Keras' mean squared error for y_pred = x @ kernel + bias."""
    dy = 2.0 * (x @ kernel + bias - y) / y.size
    return x.T @ dy, dy.sum(axis=0)


def dense_model(kernel, bias) -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    model.get_layer("dense").set_weights([kernel, bias])
    return model


# -- one real fit step -------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["graph", "eager", "loss_scale"])
def test_fit_step_matches_numpy_agc(variant):
    x, y, kernel, bias = data()
    model = dense_model(kernel, bias)
    optimizer = keras.optimizers.SGD(learning_rate=1.0)
    if variant == "loss_scale":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    returned = adaptive_clipping(optimizer, clipping=CLIPPING)
    assert returned is optimizer
    model.compile(optimizer=optimizer, loss="mse", run_eagerly=variant == "eager")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)

    g_kernel, g_bias = np_dense_grads(x, y, kernel, bias)
    c_kernel, kernel_clipped = np_agc(g_kernel, kernel, CLIPPING)
    c_bias, bias_clipped = np_agc(g_bias, bias, CLIPPING)
    assert kernel_clipped.tolist() == [False, True] and bias_clipped.tolist() == [True]  # control

    new_kernel, new_bias = model.get_layer("dense").get_weights()
    np.testing.assert_allclose(new_kernel, kernel - c_kernel, atol=ATOL)
    np.testing.assert_allclose(new_bias, bias - c_bias, atol=ATOL)
    # Control: without AGC the step is far from this one.
    assert np.abs(new_kernel - (kernel - g_kernel)).max() > 100 * ATOL


def test_exclude_leaves_matching_variables_unclipped():
    x, y, kernel, bias = data()
    model = dense_model(kernel, bias)
    optimizer = adaptive_clipping(keras.optimizers.SGD(1.0), CLIPPING, exclude=[r"dense/bias$"])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    g_kernel, g_bias = np_dense_grads(x, y, kernel, bias)
    new_kernel, new_bias = model.get_layer("dense").get_weights()
    np.testing.assert_allclose(
        new_kernel, kernel - np_agc(g_kernel, kernel, CLIPPING)[0], atol=ATOL
    )
    np.testing.assert_allclose(new_bias, bias - g_bias, atol=ATOL)
    # Control: the bias would have been clipped.
    assert np.abs(np_agc(g_bias, bias, CLIPPING)[0] - g_bias).max() > 100 * ATOL


def test_keras_clipping_applies_after_agc():
    x, y, kernel, bias = data()
    model = dense_model(kernel, bias)
    optimizer = adaptive_clipping(keras.optimizers.SGD(1.0, clipvalue=0.01), CLIPPING)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    g_kernel, _ = np_dense_grads(x, y, kernel, bias)
    expected = kernel - np.clip(np_agc(g_kernel, kernel, CLIPPING)[0], -0.01, 0.01)
    np.testing.assert_allclose(model.get_layer("dense").get_weights()[0], expected, atol=ATOL)


# -- with kiz.mup ------------------------------------------------------------------------------
def mup_mlp(width: int) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(width, name="hidden"),
            keras.layers.Dense(2, name="readout"),
        ]
    )


def test_mup_adam_with_agc_matches_numpy():
    """kiz.mup.Adam's per-variable multipliers and AGC together, after one fit step.

    Adam's first step is about ``lr * sign(g)``, blind to clipping; with
    ``epsilon = 1`` it is ``lr * s g / (s |g| + epsilon)`` (``s = sqrt(1 - beta_2)``),
    so the clipped gradient's size shows.
    """
    x, y, _, _ = data()
    model = mup_mlp(8)
    kiz.mup.parametrize(model, base=mup_mlp(4))
    before = [np.asarray(w, "float64") for w in model.get_weights()]
    optimizer = adaptive_clipping(kiz.mup.Adam(learning_rate=0.1, epsilon=1.0), clipping=0.02)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)

    w1, b1, w2, b2 = before
    h = x @ w1 + b1
    dy = 2.0 * (h @ w2 + b2 - y) / y.size
    dh = dy @ w2.T
    grads = [x.T @ dh, dh.sum(0), h.T @ dy, dy.sum(0)]
    config = model.optimizer.get_config()
    assert config["adaptive_clipping"] == {"clipping": 0.02, "eps": 0.001, "exclude": []}
    multipliers = config["multipliers"]
    assert len(multipliers) == 4 and any(m["learning_rate"] != 1.0 for m in multipliers)
    s = np.sqrt(1.0 - 0.999)

    def adam_step(w, g, entry):
        rate, eps = 0.1 * entry["learning_rate"], 1.0 * entry["epsilon"]
        return w - rate * s * g / (s * np.abs(g) + eps)

    clipped = [np_agc(g, w, 0.02) for g, w in zip(grads, before, strict=True)]
    assert any(flags.any() for _, flags in clipped)  # control: AGC acts here
    for after, w, (g, _), entry in zip(
        model.get_weights(), before, clipped, multipliers, strict=True
    ):
        np.testing.assert_allclose(after, adam_step(w, g, entry), atol=ATOL)
    # Control: the same update without AGC is far away.
    assert max(
        np.abs(adam_step(w, raw, e) - adam_step(w, g, e)).max()
        for w, (g, _), raw, e in zip(before, clipped, grads, multipliers, strict=True)
    ) > (100 * ATOL)


def test_mup_adam_with_agc_saves_and_loads(tmp_path):
    x, y, _, _ = data()
    model = mup_mlp(8)
    kiz.mup.parametrize(model, base=mup_mlp(4))
    model.compile(optimizer=adaptive_clipping(kiz.mup.Adam(1e-2), clipping=0.03), loss="mse")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer).__name__ == "AGC(keras_initzoo.mup>Adam)"
    assert isinstance(loaded.optimizer, (AGC, kiz.mup.MupOptimizer))
    assert loaded.optimizer.get_config() == model.optimizer.get_config()


# -- saving ------------------------------------------------------------------------------------
def test_save_load_trains_on_identically(tmp_path):
    """SGD with momentum: the second step depends on the saved momentum and on AGC's settings.

    Control: the settings are not the defaults, so a loader that lost them
    (or AGC) would build another optimizer and fail the config check.
    """
    x, y, kernel, bias = data()
    model = dense_model(kernel, bias)
    optimizer = keras.optimizers.SGD(0.5, momentum=0.9)
    model.compile(adaptive_clipping(optimizer, 0.03, eps=2e-3, exclude=["nothing"]), "mse")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer).__name__ == "AGC(SGD)"
    assert loaded.optimizer.get_config()["adaptive_clipping"] == {
        "clipping": 0.03,
        "eps": 2e-3,
        "exclude": ["nothing"],
    }
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for m in (model, loaded):
        m.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_config_is_strict():
    cls = agc_class(keras.optimizers.SGD)
    config = cls(0.1).get_config()
    assert cls.from_config(config).get_config() == config
    for bad in ({"clip": 0.1}, {"clipping": 0.0}, {"eps": -1.0}, {"exclude": "dense"}, 0.1):
        with pytest.raises(ValueError, match="clipping|eps|exclude"):
            cls.from_config({**config, "adaptive_clipping": bad})


def test_every_keras_optimizer_class_is_registered():
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Lion", "Nadam"):
        base = getattr(keras.optimizers, name)
        cls = keras.saving.get_registered_object(f"keras_initzoo>AGC({name})")
        assert cls is agc_class(base) and issubclass(cls, base)
        # The class Keras instantiates on this backend (PyTorch: its fused torch._foreach one).
        assert issubclass(cls, type(base()))
    assert keras.saving.get_registered_object("keras_initzoo>AGC(keras_initzoo.mup>SGD)") is (
        agc_class(kiz.mup.SGD)
    )


# -- GradientNormLogger(log_clipped=True) ------------------------------------------------------
# Where the logger asks: after the update (weight_norms=False) or before it with the
# weights (weight_norms=True); before the optimizer is built (Keras' TensorFlow trainer
# builds it inside the first traced step); under a LossScaleOptimizer (on JAX the
# update is traced inside a cond the logger is outside of).
SETUPS = {
    "after the update": {"weight_norms": False},
    "before the update": {"weight_norms": True},
    "before the optimizer is built": {"weight_norms": True, "build": False},
    "under a LossScaleOptimizer": {"weight_norms": True, "loss_scale": True},
}


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_logger_logs_agc_clipped_norms(tmp_path, scalars, setup):
    """``grad_norm_clipped/dense`` is the norm of the AGC-clipped kernel and bias gradients.

    In every setup the logger pairs the gradients with the weights from
    before the update, with no warning (two of these once omitted AGC with a
    warning). Control: the clipped norm is far below the raw one, so a logger
    that missed AGC fails.
    """
    options = {"build": True, "loss_scale": False, **SETUPS[setup]}
    x, y, kernel, bias = data()
    model = dense_model(kernel, bias)
    optimizer = keras.optimizers.SGD(1.0)
    if options["loss_scale"]:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(adaptive_clipping(optimizer, CLIPPING), "mse")
    if options["build"]:
        model.optimizer.build(model.trainable_variables)
    logger = kiz.GradientNormLogger(
        tmp_path, log_clipped=True, weight_norms=options["weight_norms"]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False, callbacks=[logger])
    assert not [w for w in caught if "AGC" in str(w.message)]
    logged = scalars(tmp_path)
    g_kernel, g_bias = np_dense_grads(x, y, kernel, bias)
    raw = np.sqrt(np.sum(g_kernel**2) + np.sum(g_bias**2))
    clipped = np.sqrt(
        np.sum(np_agc(g_kernel, kernel, CLIPPING)[0] ** 2)
        + np.sum(np_agc(g_bias, bias, CLIPPING)[0] ** 2)
    )
    assert logged["grad_norm/dense"][0] == (1, pytest.approx(raw, rel=1e-5))
    assert logged["grad_norm_clipped/dense"][0] == (1, pytest.approx(clipped, rel=1e-5))
    assert logged["grad_norm_clipped/global"][0] == (1, pytest.approx(clipped, rel=1e-5))
    assert clipped < raw / 5  # control
    # The update itself was clipped all the same.
    expected = kernel - np_agc(g_kernel, kernel, CLIPPING)[0]
    np.testing.assert_allclose(model.get_layer("dense").get_weights()[0], expected, atol=ATOL)


def test_clipping_outside_an_update_without_weights_warns_on_jax():
    """The one gap left: ``_clip_gradients`` called outside an update, with no weights
    to pair (JAX variables hold no traced value); elsewhere the variables serve."""
    if keras.backend.backend() != "jax":
        pytest.skip("TensorFlow and PyTorch read the weights from the variables")
    x, y, kernel, bias = data()
    model = dense_model(kernel, bias)
    optimizer = adaptive_clipping(keras.optimizers.SGD(1.0), CLIPPING)
    optimizer.build(model.trainable_variables)
    grads = [keras.ops.ones(v.shape) for v in model.trainable_variables]
    with pytest.warns(UserWarning, match="without AGC"):
        optimizer._clip_gradients(grads)


# -- the pure functions and bad arguments ------------------------------------------------------
def test_unitwise_norm_and_clip_unitwise_match_numpy():
    rng = np.random.default_rng(1)
    for shape in [(3, 3, 4, 5), (5, 4, 6), (7, 3), (6,), (), (1, 6)]:
        w = rng.normal(size=shape)
        g = rng.normal(size=shape) * 0.3
        norm = keras.ops.convert_to_numpy(kiz.optimizers.unitwise_norm(w))
        np.testing.assert_allclose(norm.ravel(), np.ravel(np_unitwise_norm(w)), rtol=1e-5)
        assert norm.ndim == w.ndim  # reduced axes kept, so it broadcasts against w
        out = keras.ops.convert_to_numpy(clip_unitwise(g, w, clipping=0.2))
        np.testing.assert_allclose(out, np_agc(g, w, 0.2)[0], rtol=1e-5, atol=1e-7)
    # (1, n) counts as a vector, as in the reference: one norm for the whole tensor.
    assert keras.ops.convert_to_numpy(kiz.optimizers.unitwise_norm(np.ones((1, 4)))).size == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"clipping": 0.0}, "`clipping` must be a finite number > 0"),
        ({"clipping": float("nan")}, "`clipping`"),
        ({"clipping": True}, "`clipping`"),
        ({"eps": 0.0}, "`eps` must be a finite number > 0"),
        ({"exclude": "dense"}, "`exclude` must be None or a list"),
        ({"exclude": [1]}, "`exclude` must list regular expressions"),
        ({"exclude": ["("]}, "not a regular expression"),
    ],
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adaptive_clipping(keras.optimizers.SGD(), **kwargs)


def test_bad_optimizers_raise():
    with pytest.raises(ValueError, match="`optimizer` must be a Keras optimizer"):
        adaptive_clipping(3)
    built = keras.optimizers.SGD()
    built.build([keras.Variable(np.zeros((2, 2)))])
    with pytest.raises(ValueError, match="`optimizer` is built already"):
        adaptive_clipping(built)
    with pytest.raises(ValueError, match="`optimizer_class` must be a subclass"):
        agc_class(int)
    with pytest.raises(ValueError, match="not the wrapper LossScaleOptimizer"):
        agc_class(keras.optimizers.LossScaleOptimizer)
    with pytest.raises(ValueError, match="`grad` and `weight` must have the same shape"):
        clip_unitwise(np.ones((2, 3)), np.ones((3, 2)))
    # A name works, and a LossScaleOptimizer gets AGC on the optimizer it wraps.
    assert type(adaptive_clipping("adam")).__name__ == "AGC(Adam)"
    scaled = adaptive_clipping(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()))
    assert isinstance(scaled.inner_optimizer, AGC)
