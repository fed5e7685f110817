"""Lesson 5, Glorot vs He vs LeCun: match the scheme to the activation.

A 30-layer ReLU net on sklearn's bundled digits (no download). ReLU zeroes half of
its inputs, so Glorot's variance 1/fan_avg halves the signal at every layer, forward
and backward; He's 2/fan_in makes up for it. With plain SGD the He net trains and the
Glorot and small-random nets stall at chance (loss ln 10 = 2.30). SELU with LeCun's
1/fan_in is self-normalizing: activations keep mean ~0 and variance ~1 at every depth.

    python examples/05_glorot_he_lecun.py [--logdir runs/examples/glorot_he_lecun]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

from keras_initzoo.experiments import (
    ExperimentConfig,
    depth_ratio,
    get_dataset,
    train_scheme,
)
from keras_initzoo.experiments.plotting import plot_curves, plot_depth_profiles
from keras_initzoo.experiments.scripts import example_parser, finish

RELU_SCHEMES = ("zoo_he", "zoo_glorot", "zoo_small")


def main(argv: Sequence[str] | None = None) -> dict:
    args = example_parser("glorot_he_lecun", __doc__.splitlines()[0]).parse_args(argv)
    start = time.perf_counter()
    data = get_dataset("digits", seed=args.seed)
    relu = ExperimentConfig(
        depth=30,
        width=64,
        activation="relu",
        dataset="digits",
        epochs=6 if args.quick else 15,
        batch_size=32,
        learning_rate=0.01,
        clipnorm=1.0,
        seed=args.seed,
    )
    selu = ExperimentConfig(**{**relu.__dict__, "activation": "selu"})
    runs = {s: (s, relu) for s in RELU_SCHEMES}
    runs["zoo_lecun+selu"] = ("zoo_lecun", selu)
    results = {}
    for label, (scheme, config) in runs.items():
        results[label] = train_scheme(
            scheme, config, data, log_dir=os.path.join(args.logdir, label)
        )
        r = results[label]
        print(
            f"{label:15} {config.activation:5}: loss {r.history['loss'][0]:.3f} -> "
            f"{r.final_loss:.3f}, test accuracy {r.test_accuracy:.3f}, "
            f"backprop |dL/dh| layer 1 / layer 30 at init "
            f"{depth_ratio(r.init_stats):.1e}"
        )
    lecun = results["zoo_lecun+selu"].init_stats[:-1]
    print("SELU + zoo_lecun at init, activation mean / variance by layer:")
    print(
        "  "
        + ", ".join(
            f"L{i + 1} {s.activation_mean:+.2f}/{s.activation_std**2:.2f}"
            for i, s in enumerate(lecun)
            if i == 0 or (i + 1) % 5 == 0
        )
    )

    out = args.outdir
    figures = [
        plot_curves(
            {k: r.history["loss"] for k, r in results.items()},
            os.path.join(out, "05_deep_loss_curves.png"),
            title="30-layer net on digits: training loss by scheme",
        ),
        plot_depth_profiles(
            {k: r.init_stats for k, r in results.items()},
            os.path.join(out, "05_deep_depth_profile.png"),
            title="30-layer net at initialization",
        ),
        plot_depth_profiles(
            {"zoo_lecun+selu": results["zoo_lecun+selu"].init_stats},
            os.path.join(out, "05_selu_lecun_profile.png"),
            title="SELU + LeCun: self-normalizing at init",
            panels=("activation_mean", "activation_std"),
        ),
    ]
    finish(start, args.logdir, figures)
    return {"results": results, "figures": figures}


if __name__ == "__main__":
    main(sys.argv[1:])
