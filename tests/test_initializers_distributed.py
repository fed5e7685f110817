"""Initializers under a real tf.distribute.MirroredStrategy on two logical CPUs."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np, keras_initzoo as kiz

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    shared = kiz.HeNormal(seed=1)
    model = keras.Sequential([
        keras.Input((16,)),
        keras.layers.Dense(16, activation="relu", kernel_initializer=shared),
        keras.layers.Dense(16, activation="relu", kernel_initializer=shared),
        keras.layers.Dense(1, kernel_initializer="zoo_orthogonal"),
    ])
    model.compile(optimizer="sgd", loss="mse")
for layer in model.layers:
    replicas = [v.numpy() for v in layer.kernel.value.values]
    assert len(replicas) == 2
    np.testing.assert_array_equal(replicas[0], replicas[1])  # one value, mirrored
assert not np.allclose(model.layers[0].kernel.numpy(), model.layers[1].kernel.numpy())
history = model.fit(np.ones((64, 16)), np.ones((64, 1)), epochs=2, verbose=0)
assert np.isfinite(history.history["loss"]).all()
print("OK")
"""


@pytest.mark.slow
@pytest.mark.tensorflow_only(reason="tf.distribute.MirroredStrategy")
def test_initializers_build_identical_replicas_under_mirrored_strategy():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stderr[-3000:]
