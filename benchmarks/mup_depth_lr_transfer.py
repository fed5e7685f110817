"""Learning-rate transfer across depth on sklearn's digits: CompleteP, depth-muP, width-only muP.

Pre-LN residual MLP blocks (LayerNorm, Dense+ReLU, Dense, Add) of width 64,
an embedding Dense and a readout; each model is parametrized against the
2-block one (``kiz.mup.parametrize(model, base, depth=...)``) and trained
with ``kiz.mup.Adam`` by ``model.fit`` on the 1,797 digits (batch 64). For
each rule (``completep``; ``depth_mup``; ``none``: muP for width only, the control), depth
and rate ``2**e`` the final training loss is kept per seed; the best rate is
the one with the lowest mean over seeds. CompleteP should keep it within one
grid point from the shallowest depth to the deepest; width-only muP should
move it by two or more. The model and the runs are
``keras_initzoo.mup._depth_transfer``'s: per seed one model is built,
parametrized and compiled, and trained at every rate from the same start
(weights and Adam's state put back, the same order of batches).

``--plot PATH`` draws a panel per rule (CompleteP | depth-muP | width-only muP): the mean final
loss over seeds against the log2 rate, one curve per depth, the best rate of
each starred; losses above 2.5, and diverged runs, are drawn at 2.5.
``--from-json FILE`` runs nothing and reads a sweep this script wrote.

Usage::

    KERAS_BACKEND=jax python benchmarks/mup_depth_lr_transfer.py \
        --depths 2 8 32 --exponents -12 -4 --seeds 0 1 --epochs 3 --out results.json \
        --plot lr_depth.png
    python benchmarks/mup_depth_lr_transfer.py --from-json results.json --plot lr_depth.png
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import numpy as np

from keras_initzoo.mup._depth_transfer import best, digits, optimum, plot_sweep, sweep

# losses at or above this (and diverged runs) are drawn at it
CLIP = 2.5


def plot(results: dict, path: str) -> None:
    """A panel per rule: mean final loss against log2 rate, one curve per depth, each
    curve's best rate marked (``_depth_transfer.plot_sweep``)."""
    args = results["args"]
    depths = sorted({int(d) for bests in results["losses"].values() for d in bests})
    title = (
        f"digits, pre-LN residual MLP width {args['width']}, base depth "
        f"{args.get('base_depth') or min(depths)}, {args['epochs']} epochs, "
        f"{results.get('backend', '?')}; losses above {CLIP} clipped"
    )
    plot_sweep(results, path, title, clip=CLIP)


def summarize(results: dict) -> None:
    """Prints each rule's best log2 rate per depth, on the grid and between its points."""
    for rule, bests in results["best"].items():
        values = list(bests.values())
        between = {
            depth: round(optimum(np.array(runs), results["exponents"]), 2)
            for depth, runs in results["losses"][rule].items()
        }
        print(f"{rule}: best log2 rate per depth {bests}; moves {max(values) - min(values)}; "
              f"between grid points {between}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--exponents", type=int, nargs=2, default=[-12, -4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--rules", nargs="+", default=["completep", "depth_mup", "none"])
    parser.add_argument("--base-depth", type=int, default=None, help="default: the shallowest")
    parser.add_argument("--out", default="mup_depth_lr_transfer.json")
    parser.add_argument("--plot", default=None, help="draw the sweep's picture to this path")
    parser.add_argument(
        "--from-json", default=None, help="no sweep: read this JSON (with --plot: draw it)"
    )
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json) as handle:
            results = json.load(handle)
        if args.plot:
            plot(results, args.plot)
        summarize(results)
        return
    x, y = digits()
    exponents = list(range(args.exponents[0], args.exponents[1] + 1))
    results = {
        "args": vars(args),
        "backend": keras.backend.backend(),
        "exponents": exponents,
        "losses": {},
        "best": {},
    }
    base_depth = args.base_depth or min(args.depths)
    start = time.time()
    for rule in args.rules:
        for depth in args.depths:
            runs = sweep(
                rule, args.width, depth, exponents, args.seeds, x, y,
                base_width=args.width, base_depth=base_depth, epochs=args.epochs,
            )  # fmt: skip
            best_rate = exponents[best(runs)]
            results["losses"].setdefault(rule, {})[depth] = runs.tolist()
            results["best"].setdefault(rule, {})[depth] = best_rate
            means = " ".join(f"{v:.3f}" for v in runs.mean(axis=0))
            print(f"{rule:9s} depth {depth:3d}: best 2^{best_rate}  means {means}  "
                  f"({time.time() - start:.0f} s)", flush=True)  # fmt: skip
            with open(args.out, "w") as handle:
                json.dump(results, handle, indent=1)
    summarize(results)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
