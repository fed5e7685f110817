"""Shared fixtures: read event files back with TensorBoard's own reader.

Also puts ``tools/`` on ``sys.path``: the TensorBoard-server plumbing the tests
share with ``tools/screenshot_dashboard.py`` lives there (``tools/tb_server.py``),
not in the library. On a Keras backend other than TensorFlow (``test_backends.py``
runs the backend-neutral files under JAX and PyTorch) the tests marked
``tensorflow_only`` are skipped, with the reason.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import keras
import pytest
from tensorboard.backend.event_processing import event_accumulator as ea

TOOLS = str(Path(__file__).resolve().parent.parent / "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)


# The markers that keep a test off the JAX and PyTorch runs; each use must say why.
OFF_OTHER_BACKENDS = {
    "tensorflow_only": "needs TensorFlow itself",
    "drives_backends": "starts its own runs on named backends",
}


def pytest_collection_modifyitems(config, items):
    """On JAX and PyTorch, skips what :data:`OFF_OTHER_BACKENDS` marks, with its reason.

    A marker without ``reason="..."`` is a usage error on every backend, so
    no test leaves the other backends' runs without saying why.
    """
    import keras

    backend = keras.backend.backend()
    for item in items:
        for name, meaning in OFF_OTHER_BACKENDS.items():
            marker = item.get_closest_marker(name)
            if marker is None:
                continue
            reason = marker.kwargs.get("reason")
            if not isinstance(reason, str) or not reason:
                raise pytest.UsageError(
                    f'{item.nodeid}: @pytest.mark.{name} needs reason="..." saying why'
                )
            if backend != "tensorflow":
                why = f"{name} ({meaning}: {reason}); Keras runs on {backend}"
                item.add_marker(pytest.mark.skip(reason=why))


def pytest_terminal_summary(terminalreporter):
    """Names the backend the tests ran on (``test_backends.py`` checks it)."""
    import keras

    terminalreporter.write_line(f"keras backend: {keras.backend.backend()}")


def float64_scope(dtype):
    """Where a test asks for ``dtype``: JAX has float64 only with 64-bit values enabled.

    Without them JAX (and so Keras on JAX) gives float32 for a float64
    request, for Keras' own initializers as for the zoo's; the zoo's promise
    to honour float64 is tested there with them enabled for the draw.
    """
    import keras

    if dtype == "float64" and keras.backend.backend() == "jax":
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


def load_events(log_dir) -> ea.EventAccumulator:
    """An EventAccumulator over ``log_dir`` keeping every event (no sampling)."""
    acc = ea.EventAccumulator(
        str(log_dir), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0, ea.HISTOGRAMS: 0}
    )
    acc.Reload()
    return acc


def load_scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` for every scalar tag in ``log_dir``."""
    acc = load_events(log_dir)
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


@pytest.fixture
def scalars():
    return load_scalars


@pytest.fixture
def events():
    return load_events


def skip_if_backend(given_backend, reason):
    """Keras' own test helper of this name: its test modules, run by
    ``test_keras_suite.py``, import it from ``conftest``."""
    import keras

    return pytest.mark.skipif(keras.backend.backend() == given_backend, reason=reason)


class WeightsBeforeEachStep(keras.callbacks.Callback):
    """Every weight of the model before each train step: ``weights[step - 1]``,
    ``{variable path: NumPy array}`` in the model's order."""

    def __init__(self):
        super().__init__()
        self.weights: list[dict] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.weights.append({v.path: keras.ops.convert_to_numpy(v) for v in self.model.weights})


def keras_hub_backbone(name: str, **sizes):
    """A small KerasHub backbone (``"GPT2Backbone"``, ``"BertBackbone"``...) from a config,
    with random weights; skips where keras_hub is missing. ``sizes`` override the defaults."""
    keras_hub = pytest.importorskip("keras_hub")
    config = {
        "vocabulary_size": 32,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 16,
        "intermediate_dim": 32,
        "max_sequence_length": 8,
    }
    return getattr(keras_hub.models, name)(**{**config, **sizes})
