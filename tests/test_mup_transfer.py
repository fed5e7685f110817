"""Learning-rate transfer on sklearn's digits: muP keeps the best Adam rate, Keras' defaults do not.

The benchmark (``benchmarks/mup_lr_transfer.py``: widths 64, 256, 1024, rates
``2**-12 .. 2**-4``, 6 epochs, 3 seeds) takes 26 minutes; this is the same
sweep (``keras_initzoo.mup._transfer``) made small: widths 64 and 1024 only,
one epoch (21 Adam steps of batch 64 on the 1,348 training digits), rates
``2**-9 .. 2**-5``, seeds 0, 1, 2; the best rate is the one with the lowest
final training loss, mean over the seeds.

Why this discriminates, measured on TensorFlow with seeds 0-3 and rates
``2**-13 .. 2**-5`` (best log2 rate of the mean over seeds; per seed):

==============  ==========  ============================  =====
                1 epoch     per seed                      shift
==============  ==========  ============================  =====
standard 64     -6          -6, -5, -6, -6
standard 1024   -9          -9, -9, -10, -9               3
muP 64          -6          -6, -6, -6, -5
muP 1024        -6          -6, -6, -6, -6                0
==============  ==========  ============================  =====

(2 epochs: standard -7 to -11, muP -6 to -7; 3 epochs: -7 to -11 and -7 to
-8.) Under the standard parametrization Adam moves a hidden layer's output by
about ``lr * fan_in`` per step, so at 16 times the width the best rate is 8
times smaller; under muP it stays. On the grid here (seeds 0-2), the mean
final losses at ``2**-9 .. 2**-5`` are standard 64: 1.72, 1.25, 0.88,
**0.75**, 0.79; standard 1024: **0.56**, 0.77, 1.73, 5.4, 32; muP 64: 1.77,
1.23, 0.96, **0.73**, 0.83; muP 1024: 1.67, 1.15, 0.76, **0.64**, 0.66.

The grid is cut at ``2**-9``, which is the standard 1024's best on it (its best
on the full grid too): an edge there can only make the standard shift look
smaller, so ``shift >= 2`` stays sound; muP's best must be inside the grid, so
that ``shift <= 1`` is not an edge's doing.
"""

from __future__ import annotations

import pytest

from keras_initzoo.experiments.data import get_dataset
from keras_initzoo.mup._transfer import best_index, sweep

WIDTHS = (64, 1024)
EXPONENTS = tuple(range(-9, -4))
SEEDS = (0, 1, 2)


@pytest.mark.slow
def test_best_learning_rate_transfers_under_mup_not_under_standard():
    data = get_dataset("digits")
    runs = sweep(WIDTHS, EXPONENTS, SEEDS, data, epochs=1, base_width=WIDTHS[0])
    best = {p: [best_index(runs[p][w]) for w in WIDTHS] for p in runs}
    log2 = {p: [EXPONENTS[i] for i in indices] for p, indices in best.items()}
    narrow, wide = best["mup"]
    assert all(0 < i < len(EXPONENTS) - 1 for i in best["mup"]), log2
    assert abs(wide - narrow) <= 1, log2
    narrow, wide = best["standard"]
    assert narrow - wide >= 2, log2  # the standard best rate falls with width
