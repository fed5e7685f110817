"""The whole suite, run again under JAX and PyTorch.

Keras fixes its backend when it is first imported, so each backend gets a
pytest of its own in a subprocess, with ``KERAS_BACKEND`` set, over every
test file and docstring example. A test that cannot run there carries
``tensorflow_only`` or ``drives_backends`` with its reason (``conftest.py``
skips it, and refuses the marker without one). Besides the exit status,
each run must report the backend it ran on and a floor of passed tests, so
that a run that collected nothing, or ran on TensorFlow after all, cannot pass.

Importing the package on JAX or PyTorch, and using every alias and every
model tool there, must not load TensorFlow (``test_no_tensorflow_loaded``).
``tests/test_cross_backend.py`` loads each backend's ``.keras`` files on the
others.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Under JAX or PyTorch (test_backends.py) this would repeat its own runs.
pytestmark = pytest.mark.drives_backends(reason="runs the whole suite under JAX and PyTorch itself")

ROOT = Path(__file__).resolve().parent.parent
# What each backend needs imported; the runner skips (or, under CI, fails) without it.
MODULES = {"jax": "jax", "torch": "torch"}
# The whole suite passes over 1,100 tests on each backend; a run far below that lost files.
MIN_PASSED = 1000
TIMEOUT_S = 1800
# pytest-xdist: two workers (this machine's two cores), each file on one worker so
# that its module fixtures (a model, a fit, a server) are built once.
WORKERS = ("-n", "2", "--dist", "loadfile")
# XLA compiles each eager JAX operation for every new shape, and these tests run
# thousands of small operations once each, so compilation is most of the JAX run:
# without optimizing the compiled code the run takes half the time (the same
# operations, so the same results up to rounding; every check has a tolerance or
# compares runs within the one process).
XLA_FLAGS = "--xla_backend_optimization_level=0"


def require_backend(backend: str) -> None:
    """Skips when ``backend``'s package is missing; fails instead under ``CI=true``."""
    module = MODULES.get(backend)
    if module is None or importlib.util.find_spec(module) is not None:
        return
    reason = f"the {backend} backend needs `{module}`, which is not installed"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: every backend must run)")
    pytest.skip(reason)


def backend_env(backend: str) -> dict[str, str]:
    """The environment of a subprocess on ``backend``, with no pytest options inherited."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env.update(KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    return env


def summary_counts(output: str) -> dict[str, int]:
    """``{"passed": 517, "skipped": 3, ...}`` from pytest's last summary line."""
    lines = [line for line in output.splitlines() if re.search(r"\bin [\d.]+s\b", line)]
    if not lines:
        return {}
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", lines[-1])}


def suite_env(backend: str) -> dict:
    """The environment a suite runs in under ``backend`` (skips, or fails under CI,
    without its package); JAX compiles without optimizing (see ``XLA_FLAGS``)."""
    require_backend(backend)
    env = backend_env(backend)
    if backend == "jax":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_FLAGS}".strip()
    return env


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_whole_suite_passes(backend):
    """Every test file, slow tests included, under ``backend``.

    There is no list of files: what cannot run there says so with a marker
    and a reason (``tensorflow_only``, ``drives_backends``; ``conftest.py``).
    """
    env = suite_env(backend)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *WORKERS]
    start = time.monotonic()
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    seconds = time.monotonic() - start
    output = done.stdout + done.stderr
    tail = output[-6000:]
    assert done.returncode == 0, f"pytest under KERAS_BACKEND={backend} failed:\n{tail}"
    assert f"keras backend: {backend}" in done.stdout, f"not run on {backend}:\n{tail}"
    counts = summary_counts(done.stdout)
    assert counts.get("passed", 0) >= MIN_PASSED, f"too few tests passed: {counts}\n{tail}"
    assert not counts.get("failed") and not counts.get("errors"), tail
    print(f"{backend}: {counts} in {seconds:.0f} s")


NO_TENSORFLOW = """
import json, sys
import keras
import numpy as np

def tensorflow_modules():
    return sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))

loaded = {"backend": keras.backend.backend()}
import keras_initzoo as kiz
loaded["import keras_initzoo"] = tensorflow_modules()

for info in kiz.list_initializers():
    layer = keras.layers.Dense(4, kernel_initializer=info.alias)
    layer.build((None, 3))
    config = layer.kernel_initializer.get_config()
    assert type(layer.kernel_initializer).from_config(config) == layer.kernel_initializer
kiz.gain("tanh"), kiz.calculate_gain("selu"), kiz.compute_fans((3, 3, 4, 8))
loaded["every alias on a layer"] = tensorflow_modules()

seed = keras.random.SeedGenerator(0)
model = keras.Sequential([
    keras.Input((8, 8, 3)),
    keras.layers.Conv2D(8, 3, activation="relu", kernel_initializer="zoo_delta_orthogonal"),
    keras.layers.BatchNormalization(),
    keras.layers.Flatten(),
    keras.layers.Dense(16, activation="gelu", kernel_initializer="zoo_gelu"),
    keras.layers.Dense(4, kernel_initializer="zoo_orthogonal"),
])
x = keras.ops.convert_to_numpy(keras.random.normal((32, 8, 8, 3), seed=seed))
y = keras.ops.convert_to_numpy(keras.random.normal((32, 4), seed=seed))
reports = [
    kiz.models.walk(model).kernels,
    kiz.reinitialize(model, kiz.HeNormal(seed=1), biases=True),
    kiz.auto_initialize(model),
    kiz.auto_initialize(model, x),
    kiz.lsuv(model, x),
    kiz.signal_report(model, x),
    kiz.signal_report(model, x, y),
]
assert all(len(report) for report in reports)
str(reports[-1])
loaded["every model tool"] = tensorflow_modules()

def mlp(width):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(width, activation="relu"),
                             keras.layers.Dense(2)])
wide = mlp(16)
kiz.mup.parametrize(wide, base=mlp(8))
wide.compile(kiz.mup.Adam(), "mse")
wide.fit(y, y[:, :2], batch_size=8, epochs=1, verbose=0)
import tempfile
check = kiz.mup.coord_check(mlp, [8, 16], y, y[:, :2], steps=1, seeds=1)
check.write_tensorboard(tempfile.mkdtemp())
loaded["kiz.mup"] = tensorflow_modules()

model.compile("adam", "mse")
log_dir = tempfile.mkdtemp()
model.fit(x, y, batch_size=8, epochs=2, verbose=0,
          callbacks=[kiz.GradientNormLogger(log_dir, histogram_freq=2, log_clipped=True)])
assert any(name.startswith("events.out.tfevents") for name in __import__("os").listdir(log_dir))
loaded["fit with GradientNormLogger"] = tensorflow_modules()
print(json.dumps(loaded))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_no_tensorflow_loaded(backend):
    """The package, its aliases and its model tools need no TensorFlow on another backend.

    Not checked: ``keras.saving.serialize_keras_object`` (so ``model.save``),
    which imports TensorFlow wherever it is installed, for Keras' own objects
    as for the zoo's (to test for a ``tf.TensorShape``).
    """
    require_backend(backend)
    done = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW],
        cwd=ROOT,
        env=backend_env(backend),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {
        "backend": backend,
        "import keras_initzoo": [],
        "every alias on a layer": [],
        "every model tool": [],
        "kiz.mup": [],
        "fit with GradientNormLogger": [],
    }
