"""GradientNormLogger(detect_spikes=True): a spike is flagged once, at its step, where it started.

The injected fault: one layer's kernel scaled 50x between two fits of the same
model and logger (a JAX fit keeps its own state, whatever a callback assigns
mid-fit). Its own output and everything downstream jump, nothing upstream.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from conftest import load_events

import keras_initzoo as kiz
from keras_initzoo.callbacks import spikes

LAYERS = ("h1", "h2", "h3", "out")


def model_and_data():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,))]
        + [keras.layers.Dense(16, activation="relu", name=n) for n in LAYERS[:3]]
        + [keras.layers.Dense(1, name="out")]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse")
    rng = np.random.default_rng(0)
    return (
        model,
        rng.normal(size=(160, 8)).astype("float32"),
        rng.normal(size=(160, 1)).astype("float32"),
    )


def spike_texts(log_dir) -> list[tuple[int, str]]:
    events = load_events(log_dir)
    if "spikes" not in events.Tags()["tensors"]:
        return []
    return [(e.step, e.tensor_proto.string_val[0].decode()) for e in events.Tensors("spikes")]


@pytest.mark.parametrize("activation_stats", [True, False])
def test_a_scaled_kernel_is_flagged_at_its_step_and_traced_to_its_layer(tmp_path, activation_stats):
    model, x, y = model_and_data()
    logger = kiz.GradientNormLogger(tmp_path, detect_spikes=True, activation_stats=activation_stats)
    options = {"batch_size": 8, "shuffle": False, "verbose": 0, "callbacks": [logger]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=1, **options)  # steps 1-20: the running statistics
        quiet = spike_texts(tmp_path)
        kernel = model.get_layer("h2").kernel
        kernel.assign(kernel * 50.0)
        model.fit(x[:40], y[:40], epochs=1, **options)  # steps 21-25
    flagged = spike_texts(tmp_path)
    assert quiet == []  # control: 20 healthy steps raise no flag
    assert [step for step, _ in flagged] == [21], flagged  # once, at the step, not again
    if activation_stats:
        assert "started in `h2`" in flagged[0][1], flagged  # its own output jumped first
    else:
        # Gradients alone blame upstream: h2's scale multiplies h1's gradient too.
        assert "started in `h1`" in flagged[0][1], flagged
    assert [w for w in caught if "spike, started in" in str(w.message)]


def test_stop_on_spike_stops_at_the_flagged_step(tmp_path):
    model, x, y = model_and_data()
    logger = kiz.GradientNormLogger(tmp_path, stop_on_spike=True, activation_stats=True)
    options = {"batch_size": 8, "shuffle": False, "verbose": 0, "callbacks": [logger]}
    model.fit(x, y, epochs=1, **options)
    kernel = model.get_layer("h3").kernel
    kernel.assign(kernel * 50.0)
    with pytest.warns(UserWarning, match="Stopping training"):
        history = model.fit(x, y, epochs=3, **options)
    assert len(history.history["loss"]) == 1  # stopped in the first epoch after the fault
    assert logger.detect_spikes  # stop_on_spike turns detection on


def test_the_rule_on_series():
    """The pure rule: a factor past the running median flags; noise, drift and a repeat
    of the same rise do not."""
    state = spikes.SpikeState(("grad_norm/global", "grad_norm/a"))
    rng = np.random.default_rng(0)
    drift = np.exp(np.linspace(0, 1, 30))  # e-fold over 30 steps: slow, not a spike
    for step, factor in enumerate(drift, start=1):
        noisy = factor * np.exp(rng.normal(0, 0.05, size=2))
        assert spikes.update(state, step, noisy, ["a"]) is None
    spike = spikes.update(state, 31, np.array([30.0, 30.0]), ["a"])
    assert spike is not None and spike.origin == "a" and dict(spike.jumped)["grad_norm/a"] > 5
    assert spikes.update(state, 32, np.array([40.0, 40.0]), ["a"]) is None  # the same rise
    assert spikes.update(state, 33, np.array([3.0, 3.0]), ["a"]) is None  # back down
    assert spikes.update(state, 34, np.array([np.inf, 3.0]), ["a"]).origin == "global"


def test_a_loss_jump_is_flagged_with_the_loss_among_what_jumped(tmp_path):
    """Targets scaled 30x between fits: the squared error (the step's own loss, carried in
    the row) jumps about 900x; the spike lists ``loss`` first."""
    model, x, y = model_and_data()
    logger = kiz.GradientNormLogger(tmp_path, detect_spikes=True)
    options = {"batch_size": 8, "shuffle": False, "verbose": 0, "callbacks": [logger]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, epochs=1, **options)
        model.fit(x[:16], 30.0 * y[:16], epochs=1, **options)
    flagged = spike_texts(tmp_path)
    assert [step for step, _ in flagged] == [21], flagged
    assert "Jumped past the running median: `loss` x" in flagged[0][1], flagged
