"""GradientNormLogger: logged norms against the backend's own autodiff.

Every value check recomputes the gradient with the running backend's autodiff
(``tf.GradientTape``, ``jax.grad``, ``torch.autograd``; see ``autodiff.py``) on
the same batch and the same weights (recorded at ``on_train_batch_begin``), and reads the
logged value with TensorBoard's EventAccumulator. Tolerance 1e-5 relative: both
sides run the same float32 kernels; what differs is summation order (~1e-7) and
TensorBoard's float32 ``simple_value`` storage (~6e-8).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from autodiff import gradients
from conftest import load_events, load_scalars
from tensorboard.plugins.custom_scalar import layout_pb2

import keras_initzoo as kiz

RTOL = 1e-5


class WeightRecorder(keras.callbacks.Callback):
    """Keeps the trainable weights as they are before every step."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_begin(self, batch, logs=None):
        self.weights.append([v.numpy() for v in self.model.trainable_variables])


def make_data(n=64, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = rng.normal(size=(n, 1)).astype("float32")
    return x, y


def mlp(d=6, name="mlp"):
    keras.utils.set_random_seed(1)
    inp = keras.Input((d,))
    h = keras.layers.Dense(8, activation="tanh", name="hidden1")(inp)
    h = keras.layers.Dense(8, activation="tanh", name="hidden2")(h)
    out = keras.layers.Dense(1, name="out")(h)
    return keras.Model(inp, out, name=name)


def tape_grads(model, weights, x, y, loss_fn=None):
    """Gradients of the compiled-style mean loss at ``weights``; {id(var): grad}."""
    loss_fn = loss_fn or keras.losses.MeanSquaredError()
    for v, w in zip(model.trainable_variables, weights, strict=True):
        v.assign(w)
    grads = gradients(model, x, y, loss_fn)
    return {id(v): g for v, g in zip(model.trainable_variables, grads, strict=True)}


def norm(grads, variables):
    return float(np.sqrt(sum(np.sum(np.square(grads[id(v)].astype("float64"))) for v in variables)))


def fit_logged(model, x, y, log_dir, batch_size=16, **cb_kwargs):
    """Fit in order with a GradientNormLogger; return the weight recorder and the scalars."""
    rec = WeightRecorder()
    cb = kiz.GradientNormLogger(log_dir, **cb_kwargs)
    model.fit(x, y, batch_size=batch_size, shuffle=False, verbose=0, callbacks=[rec, cb])
    return rec, load_scalars(log_dir)


def check_step(logged, model, layers, grads, step, rtol=RTOL):
    """Compare every ``grad_norm/<layer>`` and the global norm at ``step``."""
    for name, layer in layers.items():
        value = dict(logged[f"grad_norm/{name}"])[step]
        np.testing.assert_allclose(value, norm(grads, layer.trainable_variables), rtol=rtol)
    value = dict(logged["grad_norm/global"])[step]
    np.testing.assert_allclose(value, norm(grads, model.trainable_variables), rtol=rtol)


def test_norms_match_gradient_tape_every_step(tmp_path):
    x, y = make_data()
    model = mlp()
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    rec = WeightRecorder()
    cb = kiz.GradientNormLogger(tmp_path, update_freq=1, count_nonfinite=True)
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, callbacks=[rec, cb], verbose=0)
    logged = load_scalars(tmp_path)
    assert [s for s, _ in logged["grad_norm/global"]] == list(range(1, 9))
    assert [v for _, v in logged["grad_nonfinite/count"]] == [0] * 8
    layers = {n: model.get_layer(n) for n in ("hidden1", "hidden2", "out")}
    for step, weights in enumerate(rec.weights, start=1):
        b = (step - 1) % 4
        grads = tape_grads(model, weights, x[16 * b : 16 * b + 16], y[16 * b : 16 * b + 16])
        check_step(logged, model, layers, grads, step)


def test_layout_puts_global_alone_then_layers_in_depth_order(tmp_path):
    x, y = make_data(16)
    model = mlp()
    model.compile("sgd", "mse")
    model.fit(x, y, batch_size=16, callbacks=[kiz.GradientNormLogger(tmp_path)], verbose=0)
    acc = load_events(tmp_path)
    (event,) = acc.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
    charts = [list(c.multiline.tag) for cat in layout.category for c in cat.chart]
    assert charts == [
        ["^grad_norm/global$"],
        ["^grad_norm/hidden1$", "^grad_norm/hidden2$", "^grad_norm/out$"],
    ]
    tags = [t for t in acc.Tags()["scalars"] if t.startswith("grad_norm/")]
    assert sorted(tags) == [
        "grad_norm/global",
        "grad_norm/hidden1",
        "grad_norm/hidden2",
        "grad_norm/out",
    ]


def test_nested_shared_and_frozen_layers_resolve_to_real_layers(tmp_path):
    keras.utils.set_random_seed(2)
    inner = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5, name="inner_a"),
            keras.layers.Dense(6, name="inner_b"),
        ],
        name="block",
    )
    shared = keras.layers.Dense(6, activation="tanh", name="shared")
    frozen = keras.layers.Dense(6, name="frozen")
    frozen.trainable = False
    inp = keras.Input((6,))
    h = shared(inner(inp))
    h = shared(frozen(h))  # used twice: its gradient sums both uses, logged once
    out = keras.layers.Dense(1, name="head")(h)
    model = keras.Model(inp, out)
    model.compile("sgd", "mse")
    x, y = make_data(16)
    rec, logged = fit_logged(model, x, y, tmp_path)
    names = sorted(t.split("/", 1)[1] for t in logged if t.startswith("grad_norm/"))
    # a nested model's layers by their path inside the model
    assert names == ["block/inner_a", "block/inner_b", "global", "head", "shared"]
    layers = {f"block/{n}": inner.get_layer(n) for n in ("inner_a", "inner_b")}
    layers |= {"shared": shared, "head": model.get_layer("head")}
    check_step(logged, model, layers, tape_grads(model, rec.weights[0], x, y), 1)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="sub")
        self.body = keras.layers.Dense(7, activation="relu", name="body")
        self.head = keras.layers.Dense(1, name="head")

    def build(self, input_shape):
        # A weight owned by the model itself: logged under the model's name.
        self.gain = self.add_weight(shape=(), initializer="ones", name="gain")
        super().build(input_shape)

    def call(self, x):
        return self.head(self.body(x)) * self.gain


def test_subclassed_model(tmp_path):
    keras.utils.set_random_seed(3)
    model = Subclassed()
    model.compile("sgd", "mse")
    x, y = make_data(32)
    rec, logged = fit_logged(model, x, y, tmp_path)
    layers = {"body": model.body, "head": model.head}
    grads = tape_grads(model, rec.weights[1], x[16:], y[16:])
    check_step(logged, model, layers, grads, 2)
    np.testing.assert_allclose(
        dict(logged["grad_norm/sub"])[2], abs(grads[id(model.gain)]), rtol=RTOL
    )


@pytest.mark.parametrize("clip", [{"global_clipnorm": 1e-3}, {"clipnorm": 1e-3}])
def test_logs_gradients_before_clipping(tmp_path, clip):
    x, y = make_data(16)
    model = mlp()
    model.compile(keras.optimizers.SGD(0.1, **clip), "mse")
    rec, logged = fit_logged(model, x, y, tmp_path)
    grads = tape_grads(model, rec.weights[0], x, y)
    layers = {n: model.get_layer(n) for n in ("hidden1", "hidden2", "out")}
    check_step(logged, model, layers, grads, 1)
    # The clip really acted: the raw norm is far above the clip value.
    assert dict(logged["grad_norm/global"])[1] > 100 * 1e-3


@pytest.mark.parametrize(
    "clip", [{"global_clipnorm": 0.05}, {"clipnorm": 0.02}, {"clipvalue": 0.01}]
)
def test_log_clipped_gives_the_norms_after_the_optimizers_clipping(tmp_path, clip):
    """Independent clipping of GradientTape gradients: Keras' rules, written out."""
    x, y = make_data(16)
    model = mlp()
    model.compile(keras.optimizers.SGD(0.1, **clip), "mse")
    rec, logged = fit_logged(model, x, y, tmp_path, log_clipped=True)
    grads = tape_grads(model, rec.weights[0], x, y)
    total = norm(grads, model.trainable_variables)
    if "global_clipnorm" in clip:  # every gradient scaled by min(1, c / global norm)
        factor = min(1.0, clip["global_clipnorm"] / total)
        clipped = {k: g * factor for k, g in grads.items()}
    elif "clipnorm" in clip:  # each tensor scaled to norm <= c on its own
        c = clip["clipnorm"]
        clipped = {k: g * min(1.0, c / np.linalg.norm(g)) for k, g in grads.items()}
    else:  # each entry clipped to [-c, c]
        c = clip["clipvalue"]
        clipped = {k: np.clip(g, -c, c) for k, g in grads.items()}
    assert dict(logged["grad_norm/global"])[1] == pytest.approx(total, rel=RTOL)
    after = dict(logged["grad_norm_clipped/global"])[1]
    assert after == pytest.approx(norm(clipped, model.trainable_variables), rel=RTOL)
    assert after < total  # the clip really acted
    if "global_clipnorm" in clip:
        assert after == pytest.approx(min(total, clip["global_clipnorm"]), rel=RTOL)
    for name in ("hidden1", "hidden2", "out"):
        variables = model.get_layer(name).trainable_variables
        value = dict(logged[f"grad_norm_clipped/{name}"])[1]
        assert value == pytest.approx(norm(clipped, variables), rel=RTOL)


def test_log_clipped_off_writes_no_clipped_tags(tmp_path):
    x, y = make_data(16)
    model = mlp()
    model.compile(keras.optimizers.SGD(0.1, global_clipnorm=0.05), "mse")
    _, logged = fit_logged(model, x, y, tmp_path)
    assert not [t for t in logged if t.startswith("grad_norm_clipped/")]


@pytest.fixture
def mixed_float16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_mixed_precision_logs_unscaled_gradients(tmp_path, mixed_float16):
    x, y = make_data(32)
    model = mlp()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    rec, logged = fit_logged(model, x, y, tmp_path)
    assert [s for s, _ in logged["grad_norm/global"]] == [1, 2]
    # Reference: the same loss scaling as the optimizer, then unscaled, so the
    # float16 backward pass rounds identically; without unscaling the logged
    # norm would be 32768x larger.
    scale = float(model.optimizer.initial_scale)
    mse = keras.losses.MeanSquaredError()  # computes in float32, like compile's loss
    ref = tape_grads(
        model, rec.weights[0], x[:16], y[:16], loss_fn=lambda yt, yp: mse(yt, yp) * scale
    )
    ref = {k: g / scale for k, g in ref.items()}
    layers = {n: model.get_layer(n) for n in ("hidden1", "hidden2", "out")}
    # float16's own precision (2**-10): JAX's compiled backward need not round as the
    # reference's does (3.8e-4 apart on JAX 0.10.2 at XLA optimization level 0); the
    # unscaling the test is for is a factor 32768
    check_step(logged, model, layers, ref, 1, rtol=1e-3)
