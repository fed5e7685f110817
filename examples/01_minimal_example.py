"""Lesson 1, the minimal example: one Dense unit learns targets = 2x - 3z + 5 + noise.

1,000 observations, weights and bias initialized with ``zoo_uniform`` (U[-0.1, 0.1]),
plain SGD on the mean squared error. Training recovers weights near (2, -3) and a
bias near 5; the closed-form least-squares fit is printed next to it as the yardstick.

    python examples/01_minimal_example.py [--logdir runs/examples/minimal] [--outdir runs/figures]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import keras
import numpy as np

import keras_initzoo  # noqa: F401  (registers the zoo_* aliases)
from keras_initzoo.experiments import EpochScalars, fresh_run_dir, set_seed
from keras_initzoo.experiments.plotting import plot_curves
from keras_initzoo.experiments.scripts import example_parser, finish

TRUE_WEIGHTS = (2.0, -3.0)
TRUE_BIAS = 5.0


def make_data(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The course's data: x, z ~ U(-10, 10), noise ~ U(-1, 1)."""
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-10, 10, size=(n, 2))
    noise = rng.uniform(-1, 1, size=(n, 1))
    targets = inputs @ np.array([[TRUE_WEIGHTS[0]], [TRUE_WEIGHTS[1]]]) + TRUE_BIAS + noise
    return inputs.astype("float32"), targets.astype("float32")


def main(argv: Sequence[str] | None = None) -> dict:
    args = example_parser("minimal", __doc__.splitlines()[0]).parse_args(argv)
    start = time.perf_counter()
    inputs, targets = make_data(seed=args.seed)
    set_seed(args.seed)
    layer = keras.layers.Dense(
        1, kernel_initializer="zoo_uniform", bias_initializer="zoo_uniform", name="output"
    )
    model = keras.Sequential([keras.Input((2,)), layer])
    initial = [float(v) for v in np.concatenate([layer.kernel.numpy().ravel(), layer.bias.numpy()])]
    # lr 0.02 is the course's; x and z reach +-10, so much larger steps diverge.
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.02), loss="mse")
    run_dir = fresh_run_dir(os.path.join(args.logdir, "zoo_uniform"))
    epochs = 30 if args.quick else 100
    history = model.fit(
        inputs, targets, epochs=epochs, batch_size=32, verbose=0, callbacks=[EpochScalars(run_dir)]
    )
    weights = [float(w) for w in layer.kernel.numpy().ravel()]
    bias = float(layer.bias.numpy()[0])
    design = np.hstack([inputs, np.ones((len(inputs), 1), dtype="float32")])
    ols = np.linalg.lstsq(design.astype("float64"), targets.astype("float64"), rcond=None)[0]

    print(
        f"initial (zoo_uniform): w = ({initial[0]:+.4f}, {initial[1]:+.4f}), b = {initial[2]:+.4f}"
    )
    print(
        f"after {epochs} epochs of SGD: w = ({weights[0]:.4f}, {weights[1]:.4f}), "
        f"b = {bias:.4f}, final loss {history.history['loss'][-1]:.4f}"
    )
    print(f"least squares:            w = ({ols[0, 0]:.4f}, {ols[1, 0]:.4f}), b = {ols[2, 0]:.4f}")
    print(
        f"truth:                    w = {TRUE_WEIGHTS}, b = {TRUE_BIAS}; noise variance "
        "1/3 is the best loss reachable"
    )
    figure = plot_curves(
        {"zoo_uniform, SGD lr=0.02": history.history["loss"]},
        os.path.join(args.outdir, "01_minimal_loss.png"),
        title="Minimal example: training loss (MSE)",
    )
    finish(start, args.logdir, [figure])
    return {
        "weights": weights,
        "bias": bias,
        "initial": initial,
        "least_squares": [float(v) for v in ols.ravel()],
        "loss": history.history["loss"],
        "figures": [figure],
    }


if __name__ == "__main__":
    main(sys.argv[1:])
