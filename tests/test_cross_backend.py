"""A ``.keras`` file saved on one Keras backend loads on the others, zoo initializers and all.

Each backend builds the same model of zoo initializers (seeded aliases, a
preset ``GainScaled``, seeded instances) and saves it with an input batch and
its outputs; each other backend loads the file after ``import keras_initzoo``
and must give the same outputs and the same initializer classes and configs.
Every backend saves and every other loads: six pairs, in the process running
the tests and three subprocesses (see ``saved``).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from test_backends import MODULES, ROOT, backend_env, require_backend

import keras_initzoo as kiz

# Under JAX or PyTorch (test_backends.py) this would repeat its own runs.
pytestmark = pytest.mark.drives_backends(
    reason="saves and loads on each backend in a subprocess of its own"
)

BACKENDS = ("tensorflow", "jax", "torch")

SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from test_cross_backend import exchange
exchange(sys.argv[2], sys.argv[3], sys.argv[4:])
"""


def _alias(name: str, seed: int) -> dict:
    """An alias with a seed, in the form Keras resolves from a config."""
    return {"class_name": name, "config": {"seed": seed}}


def build() -> keras.Model:
    """Every kernel seeded; no global seed, which would import TensorFlow on the others."""
    layers = keras.layers
    inputs = keras.Input((8, 8, 3))
    h = layers.Conv2D(
        8,
        3,
        padding="same",
        activation="relu",
        kernel_initializer=kiz.DeltaOrthogonal(gain=1.2, seed=1),
        name="delta_orthogonal",
    )(inputs)
    h = layers.Conv2D(8, 3, activation="relu", kernel_initializer=_alias("zoo_he", 5), name="he")(h)
    h = layers.Flatten()(h)
    h = layers.Dense(32, "gelu", kernel_initializer=_alias("zoo_gelu", 6), name="gelu")(h)
    glorot = kiz.GlorotUniform(gain=5 / 3, seed=2)
    h = layers.Dense(16, "tanh", kernel_initializer=glorot, name="glorot")(h)
    h = layers.Dense(16, "selu", kernel_initializer=_alias("zoo_lecun", 7), name="lecun")(h)
    leaky = kiz.HeNormal(negative_slope=0.1, seed=3)
    h = layers.Dense(16, "relu", kernel_initializer=leaky, name="leaky_he")(h)
    head = kiz.Orthogonal(gain=0.5, seed=4)
    return keras.Model(inputs, layers.Dense(4, kernel_initializer=head, name="orthogonal")(h))


def _write(model: keras.Model, folder: Path, suffix: str) -> None:
    """The model's outputs on the folder's batch, and its kernel initializers."""
    x = np.load(folder / "x.npy")
    np.save(folder / f"y{suffix}.npy", keras.ops.convert_to_numpy(model(x)))
    initializers = {
        layer.name: [
            type(layer.kernel_initializer).__module__,
            type(layer.kernel_initializer).__qualname__,
            layer.kernel_initializer.get_config(),
        ]
        for layer in model.layers
        if hasattr(layer, "kernel_initializer")
    }
    (folder / f"initializers{suffix}.json").write_text(json.dumps(initializers))


def exchange(backend: str, save_to: str | None, load_from: list[str]) -> None:
    """On ``backend``: loads each folder's model, writing its outputs; then saves its own."""
    assert keras.backend.backend() == backend, keras.backend.backend()
    for folder in map(Path, load_from):
        _write(keras.models.load_model(folder / "model.keras"), folder, f"_{backend}")
    if save_to:
        folder = Path(save_to)
        model = build()
        model.save(folder / "model.keras")
        x = np.random.default_rng(0).standard_normal((16, 8, 8, 3), dtype="float32")
        np.save(folder / "x.npy", x)
        _write(model, folder, "")


def _installed(backend: str) -> bool:
    return backend not in MODULES or importlib.util.find_spec(MODULES[backend]) is not None


def _exchange_in_subprocess(backend: str, save_to: Path | None, load_from: list[Path]) -> None:
    command = [sys.executable, "-c", SCRIPT, str(Path(__file__).parent), backend]
    command += [str(save_to or ""), *map(str, load_from)]
    done = subprocess.run(
        command, cwd=ROOT, env=backend_env(backend), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"on {backend}:\n{(done.stdout + done.stderr)[-4000:]}"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """``{backend: folder}``, each folder loaded by every other installed backend.

    With the running backend first: each backend in turn loads the earlier ones'
    files and saves its own; then each loads the later ones' files.
    """
    here = keras.backend.backend()
    order = [here, *(b for b in BACKENDS if b != here and _installed(b))]
    folders = [tmp_path_factory.mktemp(f"saved_on_{b}") for b in order]
    exchange(here, str(folders[0]), [])
    for index, backend in enumerate(order[1:], start=1):
        _exchange_in_subprocess(backend, folders[index], folders[:index])
    exchange(here, None, [str(folder) for folder in folders[1:]])
    for index, backend in enumerate(order[1:-1], start=1):
        _exchange_in_subprocess(backend, None, folders[index + 1 :])
    return dict(zip(order, folders, strict=True))


@pytest.mark.parametrize(
    "source, target",
    [(s, t) for s in BACKENDS for t in BACKENDS if s != t],
    ids=lambda backend: backend,
)
def test_keras_file_saved_on_one_backend_loads_on_another(saved, source, target):
    require_backend(source)
    require_backend(target)
    folder = saved[source]
    # float32 throughout, outputs of order 1: the backends' convolution, matmul and
    # activation kernels sum and round in their own order, so they differ by rounding
    # (measured: at most 4.2e-7 absolute over the six pairs). atol = 1e-5 leaves 20x
    # room and is what binds for outputs near zero, where any rounding is a large
    # relative error; rtol = 1e-5 covers larger outputs the same way. A weight not
    # loaded or a kernel re-drawn on load moves the outputs by order 1e-1.
    np.testing.assert_allclose(
        np.load(folder / f"y_{target}.npy"), np.load(folder / "y.npy"), rtol=1e-5, atol=1e-5
    )
    original = json.loads((folder / "initializers.json").read_text())
    loaded = json.loads((folder / f"initializers_{target}.json").read_text())
    assert loaded == original
    assert {module for module, _, _ in original.values()} == {
        "keras_initzoo.initializers.orthogonal",
        "keras_initzoo.initializers.structured",
        "keras_initzoo.initializers.variance_scaling",
    }
