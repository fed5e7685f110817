"""Lesson 2, gradient descent by hand on f(x) = 5x^2 + 3x - 4, starting from x = 4.

The update is x <- x - lr * f'(x) with f'(x) = 10x + 3 (checked in float64 against
the Keras backend's own autodiff). The error shrinks by |1 - 10 lr| per step, so any lr in (0, 0.2)
converges to the minimum x* = -0.3, lr = 0.1 lands on it in one step, and lr > 0.2
diverges. A bad start (x = 1000) converges too, only later.

    python examples/02_gradient_descent.py [--logdir runs/examples/gradient_descent]
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence

import keras
import numpy as np

from keras_initzoo.experiments import fresh_run_dir, write_scalar_series
from keras_initzoo.experiments.plotting import plot_curves, pyplot, save_figure
from keras_initzoo.experiments.scripts import example_parser, finish
from keras_initzoo.models.signal import layer_signals

X_MIN = -0.3  # f'(x) = 0


def f(x: float) -> float:
    return 5 * x**2 + 3 * x - 4


def f_prime(x: float) -> float:
    return 10 * x + 3


def descend(x0: float, lr: float, steps: int) -> list[float]:
    """The path x_0, x_1, ..., x_steps of plain gradient descent."""
    path = [x0]
    for _ in range(steps):
        path.append(path[-1] - lr * f_prime(path[-1]))
    return path


def steps_to_converge(path: Sequence[float], tol: float = 1e-3) -> int | None:
    """First step at which |x - x*| < tol (None if it never gets there)."""
    return next((i for i, x in enumerate(path) if abs(x - X_MIN) < tol), None)


class Polynomial(keras.layers.Layer):
    """f as a Keras layer, elementwise, with its coefficients (5, 3, -4) as weights."""

    def build(self, input_shape):
        self.coefficients = self.add_weight(
            shape=(3,), initializer=keras.initializers.Constant([5.0, 3.0, -4.0])
        )

    def call(self, x):
        a, b, c = (self.coefficients[i] for i in range(3))
        return a * x**2 + b * x + c


def float64_scope() -> contextlib.AbstractContextManager:
    """JAX computes in float64 only with 64-bit values enabled; the others always can."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


def check_derivative(points: Sequence[float]) -> float:
    """Largest gap between the hand derivative and the backend's autodiff at ``points``.

    The autodiff is the package's per-layer pass: the gradient of sum_i f(x_i)
    with respect to the output of the layer that hands x on is f'(x_i), point by point.
    """
    x = np.asarray(points, dtype="float64")[None, :]
    with float64_scope():
        model = keras.Sequential(
            [
                keras.Input(x.shape[1:], dtype="float64"),
                keras.layers.Identity(dtype="float64", name="x"),
                Polynomial(dtype="float64", name="f"),
            ]
        )
        rows = layer_signals(
            model,
            x,
            np.zeros_like(x),
            loss=lambda _, fx: keras.ops.sum(fx),
            output_gradients=True,
            keep=x.size,
        )
    autodiff = next(row["out grad sample"] for row in rows if row["layer"].endswith("x"))
    return float(np.max(np.abs(autodiff - [f_prime(p) for p in points])))


def main(argv: Sequence[str] | None = None) -> dict:
    args = example_parser("gradient_descent", __doc__.splitlines()[0]).parse_args(argv)
    start = time.perf_counter()
    steps = 30  # instant either way, so --quick changes nothing here
    gap = check_derivative([-10.0, -0.3, 0.0, 4.0, 1000.0])
    print(f"f'(x) = 10x + 3 agrees with {keras.backend.backend()}'s autodiff to {gap:.1e}")

    runs = {f"x0=4, lr={lr}": descend(4.0, lr, steps) for lr in (0.01, 0.05, 0.1, 0.19, 0.21)}
    runs["x0=1000, lr=0.05"] = descend(1000.0, 0.05, steps)
    print(f"{'run':18} {'x after 5':>11} {'x final':>12} {'f(x final)':>12}  steps to |x-x*|<1e-3")
    for name, path in runs.items():
        print(
            f"{name:18} {path[5]:11.4f} {path[-1]:12.4g} {f(path[-1]):12.4g}  "
            f"{steps_to_converge(path)}"
        )
        run_dir = fresh_run_dir(os.path.join(args.logdir, name.replace(", ", "_")))
        write_scalar_series(run_dir, {"gd/x": path, "gd/f": [f(x) for x in path]})
    print(
        f"minimum: x* = {X_MIN}, f(x*) = {f(X_MIN):.2f}; lr > 0.2 makes |1 - 10 lr| > 1: "
        "each step overshoots further"
    )

    figures = [
        _plot_paths(runs, os.path.join(args.outdir, "02_gd_paths.png")),
        plot_curves(
            {k: [abs(x - X_MIN) for x in v] for k, v in runs.items()},
            os.path.join(args.outdir, "02_gd_error.png"),
            xlabel="step + 1",
            ylabel="|x - x*|",
            title="Distance to the minimum by step",
        ),
    ]
    finish(start, args.logdir, figures)
    return {
        "runs": runs,
        "derivative_gap": gap,
        "steps_to_converge": {k: steps_to_converge(v) for k, v in runs.items()},
        "figures": figures,
    }


def _plot_paths(runs: dict[str, list[float]], path: str) -> str:
    fig, ax = pyplot().subplots(figsize=(6.4, 4.0))
    shown = ("x0=4, lr=0.01", "x0=4, lr=0.05", "x0=4, lr=0.19", "x0=4, lr=0.21")
    reach = max(abs(x) for name in shown for x in runs[name][:12])
    grid = np.linspace(-reach, reach, 300)
    ax.plot(grid, f(grid), color="black", lw=1, label="f(x) = 5x² + 3x - 4")
    for name in shown:
        xs = np.asarray(runs[name][:12])
        ax.plot(xs, f(xs), marker="o", ms=3, lw=0.8, label=name)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title("Gradient descent paths (first 12 steps)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


if __name__ == "__main__":
    main(sys.argv[1:])
