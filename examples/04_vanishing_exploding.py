"""Lesson 4, simple initializations: small random weights vanish, large ones explode.

A deep tanh net (20 layers of 64) under ``zoo_small`` (0.01·N(0,1)), ``zoo_large``
(10·N(0,1)) and, for reference, ``zoo_glorot``. At initialization the small scheme
shrinks activations and the gradient sent back down to nothing within a few layers;
the large one saturates every tanh unit and multiplies the gradient on its way to
the input. Glorot keeps both level. A sigmoid net shows the same, then each scheme
is trained briefly so TensorBoard shows the per-layer gradient norms during training.

    python examples/04_vanishing_exploding.py [--logdir runs/examples/vanishing_exploding]
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

from keras_initzoo.experiments import (
    ExperimentConfig,
    LayerStats,
    build_mlp,
    depth_ratio,
    get_dataset,
    layer_stats,
    run_comparison,
    set_seed,
)
from keras_initzoo.experiments.plotting import (
    plot_activation_histograms,
    plot_curves,
    plot_depth_profiles,
)
from keras_initzoo.experiments.scripts import example_parser, finish

SCHEMES = ("zoo_small", "zoo_large", "zoo_glorot")


def init_profiles(config: ExperimentConfig, data, keep: int = 0) -> dict[str, list[LayerStats]]:
    """Per-layer statistics at initialization, one model per scheme, same seed."""
    profiles = {}
    for scheme in SCHEMES:
        set_seed(config.seed)
        model = build_mlp(config, scheme, data.input_dim, data.n_classes)
        profiles[scheme] = layer_stats(
            model, data.x_train[:256], data.y_train[:256], keep_activations=keep
        )
    return profiles


def main(argv: Sequence[str] | None = None) -> dict:
    args = example_parser("vanishing_exploding", __doc__.splitlines()[0]).parse_args(argv)
    start = time.perf_counter()
    depth = 10 if args.quick else 20
    data = get_dataset("blobs", seed=args.seed, n_samples=1024 if args.quick else None)
    tanh = ExperimentConfig(
        depth=depth, width=64, activation="tanh", epochs=2 if args.quick else 5, seed=args.seed
    )
    sigmoid = ExperimentConfig(depth=depth, width=64, activation="sigmoid", seed=args.seed)
    profiles = {
        "tanh": init_profiles(tanh, data, keep=4096),
        "sigmoid": init_profiles(sigmoid, data),
    }

    print(
        f"tanh, {depth} layers x 64 at init: activation std | backprop |dL/dh| "
        "per layer (1 = next to the input)"
    )
    print("layer " + "".join(f"{s:>26}" for s in SCHEMES))
    for i in range(depth):
        cells = (
            f"{p[i].activation_std:11.2e} | {p[i].backprop_norm:9.2e}"
            for p in profiles["tanh"].values()
        )
        print(f"{i + 1:5} " + "".join(f"{c:>26}" for c in cells))
    growth = {
        act: {s: depth_ratio(p) for s, p in by_scheme.items()}
        for act, by_scheme in profiles.items()
    }
    for act, by_scheme in growth.items():
        print(
            f"{act}: backprop norm layer 1 / layer {depth}: "
            + ", ".join(f"{s} {g:.1e}" for s, g in by_scheme.items())
        )
    print(
        "small: vanishes (ratio << 1); large: explodes (>> 1) while every tanh unit "
        "saturates at +-1; glorot: within an order of magnitude of 1 for tanh "
        "(sigmoid's mean of 0.5 still makes it vanish)"
    )

    results = run_comparison(SCHEMES, tanh, logdir=args.logdir)
    for r in results:
        print(
            f"trained {r.scheme:10}: final loss {r.final_loss:.4f}, "
            f"test accuracy {r.test_accuracy:.3f}"
        )
    out = args.outdir
    figures = [
        plot_depth_profiles(
            profiles["tanh"],
            os.path.join(out, "04_tanh_depth_profile.png"),
            title=f"{depth}-layer tanh net at initialization",
        ),
        plot_depth_profiles(
            profiles["sigmoid"],
            os.path.join(out, "04_sigmoid_depth_profile.png"),
            title=f"{depth}-layer sigmoid net at initialization",
        ),
        plot_activation_histograms(
            profiles["tanh"],
            os.path.join(out, "04_tanh_activation_histograms.png"),
            title="tanh activations by layer at initialization",
        ),
        plot_curves(
            {r.scheme: r.history["loss"] for r in results},
            os.path.join(out, "04_tanh_loss.png"),
            title=f"{depth}-layer tanh net",
        ),
    ]
    finish(start, args.logdir, figures)
    return {
        "profiles": profiles,
        "growth": growth,
        "results": {r.scheme: r for r in results},
        "figures": figures,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
