"""The demo says what its numbers show: the lesson's claims, tested on the numbers themselves.

``initzoo demo`` claims that He trains and keeps the gradient level across depth,
Glorot lags under ReLU, small weights and zeros stall, and large weights explode.
Its table measures the backward signal ``|dL/dh|`` at init and its change per layer
(He reads ~1: the He et al. 2015 prediction ``sqrt(n Var(W) / 2)`` is 1 for He,
0.71 for Glorot, 0.04 for 0.01 N(0, 1) and 40 for 10 N(0, 1) at width 32), and each
row is read in words by fixed thresholds. Here ``demo --quick``'s settings run on
the current backend (the suite runs on TensorFlow, JAX and PyTorch) with its seed 0,
and every claim is checked with a threshold; ``tests/test_cli.py`` checks the full
demo's printed table the same way.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from keras_initzoo.experiments import (
    ExperimentConfig,
    format_table,
    per_layer_change,
    reading,
    run_comparison,
)
from keras_initzoo_cli.settings import DEMO_QUICK_SETTINGS, DEMO_SCHEMES


def check_the_lesson(results, he_accuracy: float) -> None:
    """Every claim the demo prints, as thresholds on its results (shared with test_cli.py)."""
    by = {r.scheme: r for r in results}
    he, glorot, small, large, zeros = (by[s] for s in DEMO_SCHEMES)
    best = min(r.final_loss for r in results if math.isfinite(r.final_loss))
    readings = {name: reading(r, best) for name, r in by.items()}
    assert readings == {
        "zoo_he": "trains, signal level",
        "zoo_glorot": "lags, signal vanishing",
        "zoo_small": "stalled, signal vanishing",
        "zoo_large": "exploded, signal exploding",
        "zoo_zeros": "stalled, signal none",
    }, format_table(results)
    # He trains and keeps the gradient level: ~1 per layer (theory 1; 0.95-1.05 measured).
    assert he.test_accuracy >= he_accuracy and he.final_loss == best
    assert 0.9 <= he.signal_per_layer <= 1.1
    assert 0.5 <= he.signal_ratio <= 2.0  # the whole way from L12 to L1, too
    # Glorot under ReLU: half He's variance, so 1/sqrt(2) per layer, and training lags.
    assert 0.6 <= glorot.signal_per_layer <= 0.8
    assert glorot.final_loss >= 1.5 * he.final_loss
    assert glorot.test_accuracy <= he.test_accuracy - 0.05
    # Small weights and zeros stall at chance (a loss of ln 4 for 4 classes).
    for stalled in (small, zeros):
        assert abs(stalled.final_loss - math.log(4)) < 0.01
    assert small.signal_per_layer < 0.1 and zeros.init_stats[-2].backprop_norm == 0
    # Large weights explode: the signal grows ~40x per layer and the loss overflows.
    assert large.signal_per_layer > 10 and not math.isfinite(large.final_loss)


@pytest.fixture
def one_torch_thread():
    """As the command line runs (keras_initzoo_cli.commands.one_thread_on_torch), restored."""
    import keras

    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_quick_demo_teaches_its_lesson():
    """``demo --quick`` (seed 0) on this backend: He 0.91-0.97 accuracy, 0.97-1.01 per layer;
    Glorot 0.69, loss 2.5-3.8x He's. Control: the old quick settings (512 samples in
    batches of 64) leave He at 0.48-0.56 accuracy; the old column (weight-gradient norms,
    L1/L12) reads 0.23 for He and 0.39 for Glorot, which the per-layer bounds refuse."""
    config = ExperimentConfig(seed=0, **DEMO_QUICK_SETTINGS)
    check_the_lesson(run_comparison(DEMO_SCHEMES, config), he_accuracy=0.8)


def _run(loss, factor, last_norm=0.5, layers=3):
    stats = [SimpleNamespace(backprop_norm=last_norm)] * layers
    return SimpleNamespace(
        final_loss=loss, chance_loss=math.log(4), signal_per_layer=factor, init_stats=stats
    )


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        (_run(0.1, 0.97), "trains, signal level"),
        (_run(0.15, 1.2), "trains, signal level"),  # within 1.5x the best: trains
        (_run(0.16, 0.79), "lags, signal vanishing"),
        (_run(1.38, 0.04), "stalled, signal vanishing"),  # 0.996 of ln 4
        (_run(1.386, math.nan, last_norm=0.0), "stalled, signal none"),
        (_run(math.nan, 38.0), "exploded, signal exploding"),
        (_run(math.inf, math.nan), "exploded, signal exploding"),  # the signal overflowed
        (_run(0.1, 1.3), "trains, signal exploding"),
        (_run(0.1, math.nan, layers=2), "trains, signal one layer"),
    ],
)
def test_reading_follows_its_thresholds(run, expected):
    assert reading(run, best_loss=0.1) == expected


def test_per_layer_change_is_the_geometric_mean_over_hidden_layers():
    # Hidden layers 1..4 (the output layer is left out): 8 -> 1 over 3 steps is x2 per layer.
    stats = [SimpleNamespace(backprop_norm=v) for v in (8.0, 4.0, 2.0, 1.0, 123.0)]
    assert per_layer_change(stats) == pytest.approx(2.0)
    assert math.isnan(per_layer_change(stats[:2]))  # one hidden layer: nothing to compare
    dead = [SimpleNamespace(backprop_norm=v) for v in (0.0, 0.0, 0.0)]
    assert math.isnan(per_layer_change(dead))
