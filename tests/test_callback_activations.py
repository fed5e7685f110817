"""GradientNormLogger(activation_stats=True): each group's output, measured in the real train step.

Every check compares the logged values with an independent NumPy forward
pass on the same batch with the weights of that step (recorded before it),
on whichever Keras backend runs the file (``test_backends.py`` runs it on all).
"""

from __future__ import annotations

import io

import keras
import numpy as np
import PIL.Image
import pytest
from conftest import WeightsBeforeEachStep, load_events, load_scalars

import keras_initzoo as kiz

RTOL = 1e-5


def data(n=32, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


def mlp(dead_units: int = 0) -> keras.Model:
    """relu -> Dense + tanh Activation -> linear head; ``dead_units`` of the relu layer's
    8 units get a zero kernel column and a bias of -1, so they are zero on every input."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu", name="relu"),
            keras.layers.Dense(8, name="pre_tanh"),
            keras.layers.Activation("tanh", name="tanh"),
            keras.layers.Dense(2, name="head"),
        ]
    )
    if dead_units:
        kernel, bias = model.get_layer("relu").get_weights()
        kernel[:, :dead_units] = 0.0
        bias[:dead_units] = -1.0
        model.get_layer("relu").set_weights([kernel, bias])
    return model


def forward(weights: list[np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """Each group's output by NumPy: relu, tanh (after pre_tanh) and head."""
    k1, b1, k2, b2, k3, b3 = weights
    relu = np.maximum(x @ k1 + b1, 0.0)
    tanh = np.tanh(relu @ k2 + b2)
    return {"relu": relu, "pre_tanh": tanh, "head": tanh @ k3 + b3}


def fit_logged(tmp_path, model, x, y, steps=3, **options):
    recorder = WeightsBeforeEachStep()
    logger = kiz.GradientNormLogger(tmp_path, activation_stats=True, **options)
    model.compile(keras.optimizers.SGD(0.5), "mse")
    model.fit(
        x,
        y,
        batch_size=len(x),
        epochs=steps,
        shuffle=False,
        verbose=0,
        callbacks=[recorder, logger],
    )
    return load_scalars(tmp_path), [list(w.values()) for w in recorder.weights]


def test_statistics_equal_an_independent_forward_pass_at_every_logged_step(tmp_path):
    x, y = data()
    logged, weights = fit_logged(tmp_path, mlp(), x, y, steps=3)
    for step in (1, 2, 3):
        outputs = forward(weights[step - 1], x)
        for group, out in outputs.items():
            assert logged[f"act_rms/{group}"][step - 1] == (
                step,
                pytest.approx(np.sqrt(np.mean(out**2)), rel=RTOL),
            )
            assert logged[f"act_mean/{group}"][step - 1][1] == pytest.approx(
                np.mean(out), rel=RTOL, abs=1e-7
            )
            assert logged[f"act_dead/{group}"][step - 1][1] == np.mean(np.all(out == 0, axis=0))
        tanh = outputs["pre_tanh"]
        assert logged["act_saturated/pre_tanh"][step - 1][1] == pytest.approx(
            np.mean(np.abs(tanh) > 0.99)
        )
    # The weights moved (SGD at 0.5), so a logger reporting step 1 throughout fails.
    assert logged["act_rms/head"][0][1] != pytest.approx(logged["act_rms/head"][2][1], rel=1e-3)
    # Only the saturating output has act_saturated.
    assert {t for t in logged if t.startswith("act_saturated/")} == {"act_saturated/pre_tanh"}


def test_outputs_of_one_shape_reduced_together_keep_their_own_statistics(tmp_path):
    """Four relu layers of one width (stacked and reduced in one set of ops), two with
    dead units of their own, and two tanh layers (stacked apart: another kind): each
    group reads its own output."""
    keras.utils.set_random_seed(2)
    layers = [keras.layers.Dense(8, activation="relu", name=f"relu_{i}") for i in range(4)]
    layers += [keras.layers.Dense(8, activation="tanh", name=f"tanh_{i}") for i in range(2)]
    model = keras.Sequential([keras.Input((6,)), *layers, keras.layers.Dense(2, name="head")])
    for name, dead in (("relu_1", 2), ("relu_3", 5)):
        kernel, bias = model.get_layer(name).get_weights()
        kernel[:, :dead], bias[:dead] = 0.0, -1.0
        model.get_layer(name).set_weights([kernel, bias])
    x, y = data()
    logged, weights = fit_logged(tmp_path, model, x, y, steps=1)
    h, outputs = x, {}
    pairs = zip(weights[0][0::2], weights[0][1::2], strict=True)
    for layer, (kernel, bias) in zip(model.layers, pairs, strict=True):
        h = h @ kernel + bias
        h = (
            np.maximum(h, 0.0)
            if "relu" in layer.name
            else np.tanh(h)
            if "tanh" in layer.name
            else h
        )
        outputs[layer.name] = h
    for name, out in outputs.items():
        assert logged[f"act_rms/{name}"][0][1] == pytest.approx(np.sqrt(np.mean(out**2)), rel=RTOL)
        assert logged[f"act_dead/{name}"][0][1] == np.mean(np.all(out == 0, axis=0))
    for name in ("tanh_0", "tanh_1"):
        expected = np.mean(np.abs(outputs[name]) > 0.99)
        assert logged[f"act_saturated/{name}"][0][1] == pytest.approx(expected)
    # Control: the four relu layers' values are apart, so rows swapped in the table fail
    # the comparisons above; the dead units made on purpose are among those read.
    rms = sorted(np.sqrt(np.mean(outputs[f"relu_{i}"] ** 2)) for i in range(4))
    assert all(b > 1.01 * a for a, b in zip(rms, rms[1:], strict=False))
    assert logged["act_dead/relu_1"][0][1] >= 2 / 8 and logged["act_dead/relu_3"][0][1] >= 5 / 8


def test_a_dead_relu_layer_reads_its_true_dead_fraction(tmp_path):
    x, y = data()
    logged, weights = fit_logged(tmp_path, mlp(dead_units=3), x, y, steps=2)
    assert logged["act_dead/relu"][0] == (1, 3 / 8)
    relu = forward(weights[1], x)["relu"]
    assert logged["act_dead/relu"][1][1] == np.mean(np.all(relu == 0, axis=0))
    # Control: the same model without dead units reads 0.
    control, _ = fit_logged(tmp_path / "control", mlp(), x, y, steps=1)
    assert control["act_dead/relu"][0] == (1, 0.0)


def test_saturation_of_a_tanh_driven_hard(tmp_path):
    x, y = data()
    model = mlp()
    kernel, bias = model.get_layer("pre_tanh").get_weights()
    model.get_layer("pre_tanh").set_weights([kernel * 50.0, bias])
    logged, weights = fit_logged(tmp_path, model, x, y, steps=1)
    tanh = forward(weights[0], x)["pre_tanh"]
    expected = np.mean(np.abs(tanh) > 0.99)
    assert expected > 0.5  # control: this is a saturated layer
    assert logged["act_saturated/pre_tanh"][0] == (1, pytest.approx(expected))


def test_the_depth_heatmap_and_layout_are_written(tmp_path):
    x, y = data()
    fit_logged(tmp_path, mlp(), x, y, steps=2)
    events = load_events(tmp_path)
    images = {}
    for tag in ("act_rms_by_depth", "grad_norm_by_depth"):
        width, height, encoded = events.Tensors(tag)[-1].tensor_proto.string_val
        with PIL.Image.open(io.BytesIO(encoded)) as image:  # a PNG of the declared size
            assert image.format == "PNG" and image.size == (int(width), int(height))
        images[tag] = encoded
    assert images["act_rms_by_depth"] != images["grad_norm_by_depth"]
    layout = events.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
    assert b"act_rms/relu" in layout and b"act_saturated/pre_tanh" in layout


def test_off_by_default_and_free_when_off(tmp_path):
    """No act_* tag, and no layer's call is routed, without the switch."""
    x, y = data()
    model = mlp()
    seen = []

    class Inspect(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(any("call" in layer.__dict__ for layer in model.layers))

    model.compile(keras.optimizers.SGD(0.1), "mse")
    logger = kiz.GradientNormLogger(tmp_path)
    model.fit(x, y, batch_size=len(x), epochs=2, verbose=0, callbacks=[logger, Inspect()])
    assert not [t for t in load_scalars(tmp_path) if t.startswith("act_")]
    assert seen == [False, False]
    # Control: with the switch the calls are routed during the fit (on PyTorch only around
    # the recording call: see the next test), measured, and restored after it.
    on = kiz.GradientNormLogger(tmp_path / "on", activation_stats=True)
    seen.clear()
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, callbacks=[on, Inspect()])
    assert seen == [keras.backend.backend() != "torch"]
    assert [t for t in load_scalars(tmp_path / "on") if t.startswith("act_rms/")]
    assert not any("call" in layer.__dict__ for layer in model.layers)


class RoutedSpy(keras.layers.Dense):
    """A Dense layer that notes, at each call, whether the probe's route is on it."""

    routed: list = []

    def call(self, inputs):
        RoutedSpy.routed.append("call" in self.__dict__)
        return super().call(inputs)


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="eager steps: PyTorch")
def test_eager_steps_that_log_nothing_run_no_route(tmp_path):
    """On PyTorch every step runs the layers' Python: the routes are on only during the
    steps that record (1, 3, 5 at update_freq=2), so the others pay nothing for them.
    Control: the logged steps' forwards do see the route."""
    x, y = data()
    model = keras.Sequential([keras.Input((6,)), RoutedSpy(4, name="spy"), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    RoutedSpy.routed = []
    logger = kiz.GradientNormLogger(tmp_path, update_freq=2, activation_stats=True)
    model.fit(x, y, batch_size=len(x), epochs=5, verbose=0, callbacks=[logger])
    # (fit may call the model once before the first step, to build its metrics)
    assert RoutedSpy.routed[-5:] == [True, False, True, False, True]
    assert not any(RoutedSpy.routed[:-5])
    assert [step for step, _ in load_scalars(tmp_path)["act_rms/spy"]] == [1, 3, 5]


class Subclassed(keras.Model):
    """Built in its first step, inside the trace: the capture is built there too."""

    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu", name="hidden")
        self.head = keras.layers.Dense(2, name="head")

    def call(self, x):
        return self.head(self.hidden(x))


def test_a_model_built_in_its_first_step_logs_from_the_next_one(tmp_path):
    x, y = data()
    keras.utils.set_random_seed(2)
    model = Subclassed()
    logged, weights = fit_logged(tmp_path, model, x, y, steps=3)
    rms = logged.get("act_rms/hidden")
    assert rms is not None, sorted(logged)
    k1, b1 = weights[2][:2]
    hidden = np.maximum(x @ k1 + b1, 0.0)
    assert rms[-1] == (3, pytest.approx(np.sqrt(np.mean(hidden**2)), rel=RTOL))
