"""GradientNormLogger: which steps are logged, across fits, executions and faults."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from conftest import load_events, load_scalars
from test_callback_gradient_norm import (
    RTOL,
    WeightRecorder,
    check_step,
    make_data,
    mlp,
    norm,
    tape_grads,
)

import keras_initzoo as kiz
from keras_initzoo.callbacks.capture import capture_for
from keras_initzoo.callbacks.options import LoggerOptions

LAYERS = ("hidden1", "hidden2", "out")


def steps_of(log_dir, tag="grad_norm/global"):
    return [s for s, _ in load_scalars(log_dir)[tag]]


def fit(model, x, y, cb, **kw):
    kw = {"batch_size": 8, "shuffle": False, "verbose": 0} | kw
    return model.fit(x, y, callbacks=[cb] if cb else [], **kw)


@pytest.mark.parametrize(
    ("update_freq", "expected"), [(3, [1, 4, 7]), ("batch", list(range(1, 9)))]
)
def test_update_freq_logs_first_step_then_every_nth(tmp_path, update_freq, expected):
    x, y = make_data(64)
    model = mlp()
    model.compile("sgd", "mse")
    fit(model, x, y, kiz.GradientNormLogger(tmp_path, update_freq=update_freq))
    assert steps_of(tmp_path) == expected


def test_update_freq_grid_holds_across_fits(tmp_path):
    x, y = make_data(32)  # 4 steps per fit
    model = mlp()
    model.compile("sgd", "mse")
    cb = kiz.GradientNormLogger(tmp_path, update_freq=3)
    for _ in range(3):
        # The 2nd and 3rd fits start off the grid (steps 5 and 9): their first
        # step is recorded to trace the recording function early, but not logged.
        fit(model, x, y, cb)
    assert steps_of(tmp_path) == [1, 4, 7, 10]


@pytest.mark.parametrize("update_freq", [1, 3])
def test_keras_train_function_is_given_back_untouched(tmp_path, update_freq):
    x, y = make_data(32)
    model = mlp()
    model.compile("sgd", "mse")
    fit(model, x, y, None)
    keras_function = model.train_function
    fit(model, x, y, kiz.GradientNormLogger(tmp_path, update_freq=update_freq))
    assert steps_of(tmp_path) == [s for s in range(5, 9) if (s - 1) % update_freq == 0]
    # The next fit without the logger reuses Keras' traced function, which
    # trains exactly like a fresh model's and logs nothing more.
    assert model.train_function is keras_function
    fresh = mlp()
    fresh.compile("sgd", "mse")
    fresh.set_weights(model.get_weights())
    fit(model, x, y, None)
    fit(fresh, x, y, None)
    for a, b in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert steps_of(tmp_path) == [s for s in range(5, 9) if (s - 1) % update_freq == 0]


@pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="Keras' PyTorch trainer refuses steps_per_execution > 1",
)
@pytest.mark.parametrize("update_freq", [1, 2])
def test_steps_per_execution(tmp_path, update_freq):
    x, y = make_data(56)  # 7 steps: the last execution runs only one of 3
    model = mlp()
    model.compile("sgd", "mse", steps_per_execution=3)
    rec = WeightRecorder()  # sees one begin per execution: weights before its first step
    cb = kiz.GradientNormLogger(tmp_path, update_freq=update_freq)
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[rec, cb])
    assert steps_of(tmp_path) == list(range(1, 8, update_freq))
    logged = load_scalars(tmp_path)
    layers = {n: model.get_layer(n) for n in LAYERS}
    # Steps 1, 4 and 7 open an execution, so their weights are known.
    for step, weights in zip((1, 4, 7), rec.weights, strict=True):
        if (step - 1) % update_freq:
            continue
        b = step - 1
        check_step(
            logged,
            model,
            layers,
            tape_grads(model, weights, x[8 * b : 8 * b + 8], y[8 * b : 8 * b + 8]),
            step,
        )


def test_fit_twice_and_initial_epoch_continue_steps(tmp_path):
    x, y = make_data(32)  # 4 steps per epoch
    model = mlp()
    model.compile("adam", "mse")
    cb = kiz.GradientNormLogger(tmp_path, update_freq=1)
    fit(model, x, y, cb, epochs=2)
    rec = WeightRecorder()
    model.fit(
        x, y, batch_size=8, shuffle=False, verbose=0, epochs=3, initial_epoch=2, callbacks=[rec, cb]
    )
    # A second callback instance on a third fit, as after a restart.
    fit(model, x, y, kiz.GradientNormLogger(tmp_path, update_freq=2))
    # Strictly increasing: nothing logged twice, nothing purged by TensorBoard.
    assert steps_of(tmp_path) == list(range(1, 13)) + [13, 15]
    logged = load_scalars(tmp_path)
    layers = {n: model.get_layer(n) for n in LAYERS}
    check_step(logged, model, layers, tape_grads(model, rec.weights[0], x[:8], y[:8]), 9)


def test_a_later_fit_reuses_the_traced_functions_until_recompiled(tmp_path, monkeypatch):
    x, y = make_data(32)  # 4 steps per fit
    model = mlp()
    model.compile("adam", "mse")
    made = []  # each recording variant the callback asks its backend's capture for
    capture_class = type(capture_for(model, LoggerOptions(tmp_path), rows=1))
    make = capture_class.train_function
    monkeypatch.setattr(
        capture_class,
        "train_function",
        lambda self, record: made.append(record) or make(self, record),
    )
    cb = kiz.GradientNormLogger(tmp_path, update_freq=2)
    layers = {n: model.get_layer(n) for n in LAYERS}

    def fit_and_check(first_step):
        rec = WeightRecorder()
        model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[rec, cb])
        grads = tape_grads(model, rec.weights[2], x[16:24], y[16:24])  # the fit's 3rd step
        check_step(load_scalars(tmp_path), model, layers, grads, first_step + 2)

    fit_and_check(1)
    assert len(made) == 1  # the recording variant; Keras made the other
    fit_and_check(5)
    assert len(made) == 1  # nothing traced again
    fit(model, x, y, None)  # a fit without the callback runs Keras' own function
    model.compile(model.optimizer, "mse")  # a new Keras train function: trace again
    fit_and_check(13)
    assert len(made) == 2
    assert steps_of(tmp_path) == [1, 3, 5, 7, 13, 15]


def test_no_trainable_weights_warns_and_trains(tmp_path):
    model = mlp()
    model.trainable = False
    model.compile("sgd", "mse")
    x, y = make_data(16)
    with pytest.warns(UserWarning, match="no trainable weights"):
        fit(model, x, y, kiz.GradientNormLogger(tmp_path))
    assert "grad_norm/global" not in load_scalars(tmp_path)


def test_several_callbacks_and_runs_in_one_process(tmp_path):
    x, y = make_data(16)
    results = {}
    for scheme in ("zoo_he", "zoo_small"):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(8, activation="relu", kernel_initializer=scheme, name="a"),
                keras.layers.Dense(1, kernel_initializer=scheme, name="b"),
            ]
        )
        model.compile("sgd", "mse")
        rec = WeightRecorder()
        model.fit(
            x,
            y,
            batch_size=8,
            shuffle=False,
            verbose=0,
            callbacks=[rec, kiz.GradientNormLogger(tmp_path / scheme)],
        )
        grads = tape_grads(model, rec.weights[0], x[:8], y[:8])
        results[scheme] = norm(grads, model.get_layer("a").trainable_variables)
    for scheme, expected in results.items():
        logged = load_scalars(tmp_path / scheme)
        np.testing.assert_allclose(dict(logged["grad_norm/a"])[1], expected, rtol=RTOL)
    # The small init's first layer gets a far smaller gradient: the demo's lesson.
    assert results["zoo_small"] < 0.1 * results["zoo_he"]


def failing_batches(x, y, fail_at: int):
    """Batches of 8, then an exception while the train step fetches batch ``fail_at``."""
    for start in range(0, len(x), 8):
        if start // 8 == fail_at:
            raise RuntimeError("interrupted")
        yield x[start : start + 8], y[start : start + 8]


class FailingLayer(keras.layers.Layer):
    """Raises in its 4th training call: an error inside PyTorch's (eager) train step."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def call(self, x, training=False):
        self.calls += int(bool(training))
        if self.calls == 4:
            raise RuntimeError("interrupted")
        return x


def test_exception_in_the_train_step_keeps_every_finished_step(tmp_path):
    x, y = make_data(64)
    if keras.backend.backend() == "torch":
        # Keras' PyTorch trainer fetches batches outside the train function, so
        # the error is raised by a layer inside the step instead.
        model = keras.Sequential([keras.Input((6,)), FailingLayer(), keras.layers.Dense(1)])
        data = {"x": x, "y": y, "batch_size": 8, "shuffle": False}
    else:
        # The train function pulls the batch; TensorFlow re-raises the
        # generator's error as an UnknownError naming it.
        model = mlp()
        data = {"x": failing_batches(x, y, fail_at=3), "steps_per_epoch": 8}
    model.compile("sgd", "mse")
    with pytest.raises(Exception, match="interrupted"):
        model.fit(**data, verbose=0, callbacks=[kiz.GradientNormLogger(tmp_path)])
    assert steps_of(tmp_path) == [1, 2, 3]


class Boom(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 2:
            raise RuntimeError("interrupted")


def test_exception_in_another_callback_leaves_readable_events(tmp_path):
    x, y = make_data(64)
    model = mlp()
    model.compile("sgd", "mse")
    cb = kiz.GradientNormLogger(tmp_path)
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, batch_size=8, verbose=0, callbacks=[cb, Boom()])
    # The file is readable at once: the layout and every step read so far.
    events = load_events(tmp_path)
    assert events.Tags()["tensors"], "the custom-scalars layout is missing"
    logged = load_scalars(tmp_path).get("grad_norm/global", [])
    assert [s for s, _ in logged] == list(range(1, len(logged) + 1))
    # Steps still on the device are logged when the callback is used again.
    fit(model, x, y, cb)
    assert steps_of(tmp_path) == list(range(1, 3 + 8 + 1))


@pytest.mark.parametrize("count", [True, False])
def test_nonfinite_gradients_stop_training_right_after_the_bad_step(tmp_path, count):
    x, y = make_data(64)
    x[20, 0] = np.nan  # batch 3 (steps of 8)
    model = mlp()
    model.compile("sgd", "mse")
    cb = kiz.GradientNormLogger(tmp_path, count_nonfinite=count, stop_on_nonfinite=True)
    what = r"\d+ non-finite gradient values" if count else "a non-finite gradient norm"
    with pytest.warns(UserWarning, match=rf"{what} at step 3 .*hidden1.*Stopping training"):
        history = fit(model, x, y, cb, epochs=3)
    assert len(history.history["loss"]) == 1  # stopped in the first epoch
    # Stopped right after the bad step: nothing later was run or logged.
    assert steps_of(tmp_path) == [1, 2, 3]
    logged = load_scalars(tmp_path)
    assert np.isnan(dict(logged["grad_norm/hidden1"])[3])
    if not count:
        assert "grad_nonfinite/count" not in logged  # counting is opt-in
        return
    # The NaN sample's error term is NaN in every layer, and each weight's
    # gradient sums over the batch: every entry is NaN.
    n_params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert dict(logged["grad_nonfinite/count"]) == {1: 0, 2: 0, 3: n_params}


def test_nonfinite_without_stop_keeps_training(tmp_path):
    x, y = make_data(16)
    x[0, 0] = np.inf
    model = mlp()
    model.compile("sgd", "mse")
    cb = kiz.GradientNormLogger(tmp_path, count_nonfinite=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = fit(model, x, y, cb, epochs=2)
    assert len(history.history["loss"]) == 2
    assert sum("non-finite gradient" in str(w.message) for w in caught) == 1  # warned once
    assert all(v > 0 for _, v in load_scalars(tmp_path)["grad_nonfinite/count"])


def test_run_eagerly(tmp_path):
    x, y = make_data(16)
    model = mlp()
    model.compile("sgd", "mse", run_eagerly=True)
    rec = WeightRecorder()
    model.fit(x, y, batch_size=16, verbose=0, callbacks=[rec, kiz.GradientNormLogger(tmp_path)])
    layers = {n: model.get_layer(n) for n in LAYERS}
    check_step(load_scalars(tmp_path), model, layers, tape_grads(model, rec.weights[0], x, y), 1)


def test_events_flushed_at_epoch_end(tmp_path):
    x, y = make_data(16)
    model = mlp()
    model.compile("sgd", "mse")
    seen = []

    class Peek(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(load_events(tmp_path).Tags()["scalars"])

    model.fit(x, y, batch_size=16, verbose=0, callbacks=[kiz.GradientNormLogger(tmp_path), Peek()])
    assert "grad_norm/global" in seen[0]


@pytest.mark.parametrize("update_freq", [1, 2])
def test_gradient_accumulation_logs_the_applied_gradient_once_per_update(tmp_path, update_freq):
    """``gradient_accumulation_steps=4``, 16 micro-batches: the optimizer updates 4 times,
    each with the mean of 4 micro-batch gradients taken at the same weights. One event per
    logged update, at the update's step, with that mean's norm. (Before: every micro-batch
    was logged, several at one step, and the applied mean never.)"""
    x, y = make_data(128)
    model = mlp()
    model.compile(keras.optimizers.SGD(0.1, gradient_accumulation_steps=4), "mse")
    recorder = WeightRecorder()
    cb = kiz.GradientNormLogger(tmp_path, update_freq=update_freq)
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[recorder, cb])
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4
    events = load_scalars(tmp_path)["grad_norm/global"]
    expected_steps = [1, 2, 3, 4] if update_freq == 1 else [1, 3]
    assert [step for step, _ in events] == expected_steps
    for step, value in events:
        first = 4 * (step - 1)  # the update's first micro-batch
        weights = recorder.weights[first]
        micro = [
            tape_grads(model, weights, x[8 * b : 8 * b + 8], y[8 * b : 8 * b + 8])
            for b in range(first, first + 4)
        ]
        variables = model.trainable_variables
        applied = {id(v): np.mean([np.asarray(m[id(v)]) for m in micro], axis=0) for v in variables}
        assert value == pytest.approx(norm(applied, variables), rel=RTOL)
        # control: the last micro-batch's own norm, what was logged before, is not it
        assert abs(norm(micro[-1], variables) / norm(applied, variables) - 1) > 10 * RTOL


def test_stop_on_nonfinite_holds_between_logged_steps(tmp_path):
    """update_freq=10 logs steps 1 and 11; a NaN sample in batch 3 stops training right
    after step 3 (the loss, read between logged steps), not at step 11 (control:
    without the flag all 16 steps run)."""
    x, y = make_data(128)
    x[20, 0] = np.nan  # batch 3 (steps of 8)
    model = mlp()
    model.compile("sgd", "mse")
    cb = kiz.GradientNormLogger(tmp_path, update_freq=10, stop_on_nonfinite=True)
    with pytest.warns(UserWarning, match=r"non-finite loss \(nan\) by step 3"):
        fit(model, x, y, cb, epochs=1)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 3
    assert steps_of(tmp_path) == [1]
    control = mlp()
    control.compile("sgd", "mse")
    fit(control, x, y, kiz.GradientNormLogger(tmp_path / "control", update_freq=10), epochs=1)
    assert int(keras.ops.convert_to_numpy(control.optimizer.iterations)) == 16
