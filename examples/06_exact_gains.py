"""Lesson 6, exact gains: a fixed point of the variance map is not always a stable one.

In a bias-free MLP with weights N(0, g²/fan_in) the pre-activation second moment
maps as q -> g² E[f(√q z)²], z ~ N(0, 1). kiz.gain gives the g that makes q = 1
a fixed point. For relu the map is linear, so the signal stays level at any depth.
For tanh the fixed point attracts (slope < 1): the exact 1.5925 and PyTorch's 5/3
both settle. GELU and SiLU are ~x/2 near 0 and ~relu far out, so E[f(√q z)²]/q
grows with q: the fixed point repels (slope > 1). With the exact gain the signal
drifts up from the input's q = g² > 1; with He's √2 it vanishes. No constant gain
keeps them level; data-driven calibration (LSUV) does. Measured with NumPy over
several seeds, next to the infinite-width prediction from the same quadrature.

    python examples/06_exact_gains.py [--depth 50] [--width 256] [--quick]
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np

from keras_initzoo.experiments import fresh_run_dir, write_scalar_series
from keras_initzoo.experiments.plotting import plot_curves
from keras_initzoo.experiments.scripts import example_parser, finish
from keras_initzoo.gains import calculate_gain, gain

# (row key, activation, which gain, gain value)
CONFIGS = (
    ("relu/exact", "relu", "exact", gain("relu")),
    ("tanh/exact", "tanh", "exact", gain("tanh")),
    ("tanh/pytorch", "tanh", "pytorch 5/3", calculate_gain("tanh")),
    ("gelu/exact", "gelu", "exact", gain("gelu")),
    ("gelu/he", "gelu", "he sqrt(2)", calculate_gain("relu")),
    ("silu/exact", "silu", "exact", gain("silu")),
    ("silu/he", "silu", "he sqrt(2)", calculate_gain("relu")),
)


def numpy_activation(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """Keras' own activation on float64 NumPy arrays: the very function kiz.gain integrates."""
    fn = keras.activations.get(name)
    return lambda x: keras.ops.convert_to_numpy(fn(x))


def second_moment(f: Callable[[np.ndarray], np.ndarray], q: float) -> float:
    """E[f(√q z)²] by kiz.gain's quadrature (no sampling)."""
    return gain(lambda z: f(math.sqrt(q) * z)) ** -2


def mean_field(f: Callable[[np.ndarray], np.ndarray], g: float, depth: int) -> list[float]:
    """Infinite-width second moment of each layer's output, input x ~ N(0, 1)."""
    q, moments = g * g, []
    for _ in range(depth):
        moments.append(second_moment(f, q))
        q = g * g * moments[-1]
    return moments


def fixed_point_slope(f: Callable[[np.ndarray], np.ndarray], g: float, eps: float = 1e-3) -> float:
    """d q'/d q at q = 1: < 1 attracts, > 1 repels (central difference, error O(eps²))."""
    return g * g * (second_moment(f, 1 + eps) - second_moment(f, 1 - eps)) / (2 * eps)


def measure(depth: int, width: int, batch: int, seed: int) -> dict[str, np.ndarray]:
    """Second moment of each layer's output for every config, sharing one set of weights.

    Every config sees the same standard-normal kernels, scaled by g/√width, so the
    gains are compared on identical draws.
    """
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((batch, width))
    acts = {key: numpy_activation(name) for key, name, _, _ in CONFIGS}
    xs = {key: x0 for key, *_ in CONFIGS}
    moments = {key: np.empty(depth) for key, *_ in CONFIGS}
    for layer in range(depth):
        kernel = rng.standard_normal((width, width)) / math.sqrt(width)
        for key, _, _, g in CONFIGS:
            xs[key] = acts[key](g * (xs[key] @ kernel))
            moments[key][layer] = np.mean(xs[key] ** 2)
    return moments


def main(argv: Sequence[str] | None = None) -> dict:
    parser = example_parser("exact_gains", __doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=50, help="layers (default: %(default)s)")
    parser.add_argument("--width", type=int, help="units per layer (default: 256, quick 128)")
    parser.add_argument("--batch", type=int, help="inputs per seed (default: 128, quick 64)")
    parser.add_argument("--seeds", type=int, help="seeds averaged (default: 5, quick 4)")
    args = parser.parse_args(argv)
    width = args.width or (128 if args.quick else 256)
    batch = args.batch or (64 if args.quick else 128)
    seeds = [args.seed + i for i in range(args.seeds or (4 if args.quick else 5))]
    depth = args.depth
    start = time.perf_counter()

    runs = [measure(depth, width, batch, seed) for seed in seeds]
    rows, curves = {}, {}
    for key, name, which, g in CONFIGS:
        log2 = np.log2([run[key] / run[key][0] for run in runs])  # seeds x layers
        f = numpy_activation(name)
        predicted = mean_field(f, g, depth)
        curves[key] = log2.mean(axis=0)
        rows[key] = {
            "activation": name,
            "gain_kind": which,
            "gain": g,
            "log2_ratio": float(log2[:, -1].mean()),
            "log2_ratio_min": float(log2[:, -1].min()),
            "log2_ratio_max": float(log2[:, -1].max()),
            "log2_ratio_mean_field": math.log2(predicted[-1] / predicted[0]),
            "fixed_point_slope": fixed_point_slope(f, g) if which == "exact" else None,
        }
        run_dir = fresh_run_dir(os.path.join(args.logdir, key.replace("/", "_")))
        write_scalar_series(run_dir, {"signal/log2_second_moment": curves[key]}, start_step=1)

    print(
        f"depth {depth}, width {width}, batch {batch}, seeds {seeds[0]}..{seeds[-1]}: "
        f"log2(E[x²] at layer {depth} / at layer 1)"
    )
    print(
        f"{'activation':10} {'gain':>12} {'':>7}  {'measured':>8} {'(min..max)':>16}  "
        f"{'infinite width':>14}  {'slope at q=1':>12}"
    )
    for row in rows.values():
        slope = row["fixed_point_slope"]
        spread = f"({row['log2_ratio_min']:+6.1f}..{row['log2_ratio_max']:+6.1f})"
        print(
            f"{row['activation']:10} {row['gain_kind']:>12} {row['gain']:7.4f}  "
            f"{row['log2_ratio']:+8.1f} {spread:>16}  {row['log2_ratio_mean_field']:+14.1f}  "
            f"{'' if slope is None else f'{slope:12.3f}'}"
        )
    print(
        "slope > 1: the exact gain's fixed point repels, so no constant gain keeps the "
        "signal level; calibrate on data (LSUV) instead."
    )

    os.makedirs(args.outdir, exist_ok=True)
    json_path = os.path.join(args.outdir, "exact_gains.json")
    with open(json_path, "w") as file:
        setup = {"depth": depth, "width": width, "batch": batch, "seeds": seeds}
        json.dump({**setup, "rows": rows}, file, indent=2)
    figures = [
        plot_curves(
            {f"{r['activation']}, {r['gain_kind']}": curves[k] for k, r in rows.items()},
            os.path.join(args.outdir, "06_exact_gains_drift.png"),
            title=f"Second moment through depth (width {width}, mean of {len(seeds)} seeds)",
            xlabel="layer",
            ylabel="log2(E[x²] / E[x²] at layer 1)",
            log=False,
        )
    ]
    print(f"figures as JSON: {json_path}")
    finish(start, args.logdir, figures)
    return {"rows": rows, "curves": curves, "json": json_path, "figures": figures}


if __name__ == "__main__":
    main(sys.argv[1:])
