"""Shared fixtures: read event files back with TensorBoard's own reader.

Also puts ``tools/`` on ``sys.path``: the TensorBoard-server plumbing the tests
share with ``tools/screenshot_dashboard.py`` lives there (``tools/tb_server.py``),
not in the library.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing import event_accumulator as ea

TOOLS = str(Path(__file__).resolve().parent.parent / "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)


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
