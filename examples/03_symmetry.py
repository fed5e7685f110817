"""Lesson 3, the symmetry problem: zero or constant weights keep hidden units identical.

A one-hidden-layer sigmoid net (8 units) is trained three times on the same data: with
``zoo_zeros``, with ``zoo_constant`` (value 0.5) and with ``zoo_glorot``. Every unit of
a zero- or constant-initialized layer computes the same output, receives the same
gradient and so makes the same update: after training all 8 units are still one unit
(identical rows, weight matrix of rank 1). Random initialization breaks the tie.

    python examples/03_symmetry.py [--logdir runs/examples/symmetry] [--outdir runs/figures]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from keras_initzoo.experiments import ExperimentConfig, get_dataset, train_scheme
from keras_initzoo.experiments.plotting import plot_matrices
from keras_initzoo.experiments.scripts import example_parser, finish

SCHEMES = {
    "zoo_zeros": "zoo_zeros",
    "zoo_constant_0.5": {"class_name": "zoo_constant", "config": {"value": 0.5}},
    "zoo_glorot": "zoo_glorot",
}
# float32 training leaves round-off of about 1e-7 relative; a singular value below
# 1e-5 of the largest is noise, not a direction the units actually differ in.
RANK_TOL = 1e-5


def numerical_rank(matrix: np.ndarray) -> int:
    singular = np.linalg.svd(matrix.astype("float64"), compute_uv=False)
    return int(np.sum(singular > RANK_TOL * max(singular[0], 1e-30)))


def main(argv: Sequence[str] | None = None) -> dict:
    args = example_parser("symmetry", __doc__.splitlines()[0]).parse_args(argv)
    start = time.perf_counter()
    # sigmoid, not relu/tanh: with zero weights relu and tanh output exactly 0, every
    # gradient is 0 and nothing moves at all; sigmoid outputs 0.5, so units do train,
    # just all in lockstep.
    config = ExperimentConfig(
        depth=1,
        width=8,
        activation="sigmoid",
        epochs=5 if args.quick else 20,
        learning_rate=0.1,
        seed=args.seed,
    )
    data = get_dataset("blobs", seed=args.seed, n_samples=1024 if args.quick else None)
    report, matrices = {}, {}
    for label, scheme in SCHEMES.items():
        result = train_scheme(
            scheme, config, data, log_dir=os.path.join(args.logdir, label), keep_model=True
        )
        units = result.model.get_layer("dense_01").kernel.numpy().T  # one row per unit
        spread = float(np.max(np.ptp(units, axis=0)))  # largest difference between units
        report[label] = {
            "rows": units,
            "rank": numerical_rank(units),
            "spread": spread,
            "test_accuracy": result.test_accuracy,
            "loss": result.history["loss"],
        }
        matrices[f"{label}: rank {report[label]['rank']}"] = units
        np.set_printoptions(precision=4, suppress=True, linewidth=110)
        print(f"\n{label}: hidden weights after training (row = unit, first 6 inputs)")
        print(units[:, :6])
        print(
            f"  largest difference between units: {spread:.2e}; rank "
            f"{report[label]['rank']} of {min(units.shape)}; test accuracy "
            f"{result.test_accuracy:.3f}"
        )
    figure = plot_matrices(
        matrices,
        os.path.join(args.outdir, "03_symmetry_weights.png"),
        title="Hidden-layer weights after training (rows = units)",
    )
    finish(start, args.logdir, [figure])
    return {"schemes": report, "figures": [figure]}


if __name__ == "__main__":
    main(sys.argv[1:])
