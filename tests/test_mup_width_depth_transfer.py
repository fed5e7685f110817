"""Width and depth together: the base's best Adam rate at 4x the width and 4x the depth.

The issue's claim: a model at 4x the base width and 4x the base depth trains
at the base's best learning rate within 2 % of the best loss a sweep finds at
that size. The benchmark (``benchmarks/mup_width_depth_transfer.py``,
figures in ``benchmarks/RESULTS_mup_depth.md``) does **not** find that on
digits: width 16 x 2 blocks to 64 x 8, 3 epochs, 3 seeds, PyTorch, the base's
best rate is 2^-5 and CompleteP's 64 x 8 model reaches 0.139 there against its
best 0.104 (at 2^-7), a ratio of 1.35; width-only muP 1.41; Keras' standard
parametrization 11.0 (its best moves four grid points).

So this asserts what holds, at a size that fits CI (``SMALL``: the same
sizes, 2 epochs, seeds 0 and 1, rates 2^-9 .. 2^-3): under
``kiz.mup.parametrize`` (CompleteP, width and depth in one call) the target at
the base's best rate is within ``WITHIN`` (1.5x) of the target's own best on
the grid, and under the standard parametrization (the control) it is more
than ``CONTROL_OVER`` (2x) away. It does not assert 2 %. Measured (ratio;
base best -> target best):

==========  ================  ================  ================
rule        JAX               TensorFlow        PyTorch
==========  ================  ================  ================
completep   1.40; -5 -> -7    1.22; -5 -> -6    1.19; -6 -> -7
none        1.41; -5 -> -7    1.90; -5 -> -7    1.22; -6 -> -7
standard    6.48; -5 -> -9    2.53; -6 -> -9    2.71; -6 -> -9
==========  ================  ================  ================

Width-only muP (``depth=None``) is no control here: it too stays within 1.5x
on two backends. What separates it from CompleteP is above the base's best
rate (the benchmark's 2^-3: 0.60 against 0.16), not at it.

The 2 % does hold in the benchmark from a base of width 64 (64 x 2 -> 256 x 8)
under ``depth="depth_mup"`` trained 8 epochs: 1.000 over 6 seeds on PyTorch
and over 3 on JAX and TensorFlow, against CompleteP's 2.9-5.2 and width-only
muP's 1.9-6.6 (``benchmarks/RESULTS_mup_depth.md``). No test repeats it: at
a size CI can afford (seeds 0 and 1, rates 2^-10 .. 2^-8, about 2 minutes a
backend) depth-muP held 1.000 on every backend, but the controls did not
separate everywhere: under JAX with ``--xla_backend_optimization_level=0``
(how ``tests/test_backends.py`` runs it) width-only muP and the standard
parametrization also read 1.000 there (2.58 for width-only muP with XLA's
default optimization, 2.03 on PyTorch), so the test could not show its
control failing. At 8 epochs the losses are near 0.01, and two seeds'
rounding moves an optimum.
"""

from __future__ import annotations

import numpy as np
import pytest

from keras_initzoo.mup._depth_transfer import (
    best,
    digits,
    final_loss,
    optimum,
    sweep,
    transfer,
)

# base width x depth -> target at 4x both; rates 2**e; the first LIMIT digits
SMALL = {
    "base": (16, 2),
    "target": (64, 8),
    "exponents": tuple(range(-9, -2)),
    "seeds": (0, 1),
    "epochs": 2,
    "limit": None,
}
WITHIN = 1.5  # CompleteP's target at the base's best rate, over its own best
CONTROL_OVER = 2.0  # the standard parametrization's must exceed this


def run(rule: str) -> dict:
    """:func:`transfer` of ``rule`` from the base to the target, each swept over ``SMALL``."""
    x, y = digits(SMALL["limit"])
    (base_width, base_depth), grid = SMALL["base"], SMALL["exponents"]
    sizes = {"base_width": base_width, "base_depth": base_depth, "epochs": SMALL["epochs"]}
    runs = [
        sweep(rule, width, depth, grid, SMALL["seeds"], x, y, **sizes)
        for width, depth in (SMALL["base"], SMALL["target"])
    ]
    return transfer(*runs, grid)


@pytest.mark.slow
def test_base_rate_holds_at_4x_width_and_depth_under_completep_not_standard():
    completep, standard = run("completep"), run("standard")
    assert completep["ratio"] <= WITHIN, completep
    # the base's best must be inside the grid, or an edge would decide it
    assert SMALL["exponents"][0] < completep["base_best"] < SMALL["exponents"][-1], completep
    assert standard["ratio"] > CONTROL_OVER, standard  # the control


@pytest.mark.slow
def test_sweep_trains_each_rate_as_a_fresh_model_would():
    """The sweep reuses one compiled model per seed; each rate's loss is a fresh model's."""
    x, y = digits(128)
    kwargs = {"base_width": 8, "base_depth": 1, "epochs": 1, "batch_size": 32}
    swept = sweep("completep", 16, 2, (-9, -5), (3,), x, y, **kwargs)
    fresh = [final_loss("completep", 16, 2, 2.0**e, 3, x, y, **kwargs) for e in (-9, -5)]
    # a sweep that put the weights back but not Adam's state read 2.2167 against 2.2368 at 2^-5
    assert swept[0].tolist() == pytest.approx(fresh, rel=1e-5)


def test_optimum_is_the_vertex_between_grid_points():
    exponents = list(range(-10, -4))
    vertex = -7.3
    # log loss a parabola in the exponent: its vertex is found exactly, off the grid
    runs = np.exp(0.4 * (np.array([exponents, exponents], dtype=float) - vertex) ** 2)
    assert optimum(runs, exponents) == pytest.approx(vertex, abs=1e-9)
    assert best(runs) == exponents.index(-7)
    # at the grid's edge there is no neighbour to bend with: the edge itself
    assert optimum(runs[:, 3:], exponents[3:]) == exponents[3]
    found = transfer(runs, np.exp(0.4 * (np.array([exponents]) - (vertex - 0.5)) ** 2), exponents)
    assert found["optimum_shift"] == pytest.approx(-0.5, abs=1e-9)
    assert found["shift"] == -1 and found["ratio"] > 1.0
