"""Width and depth together on sklearn's digits: does the base's best Adam rate hold at 4x both?

The base is a pre-LN residual MLP (``keras_initzoo.mup._depth_transfer``) of
``--base-width`` and ``--base-depth`` blocks, the target ``--width`` and
``--depth``. For each rule a factor-2 grid of rates ``2**e`` is swept at both
sizes over ``--seeds``; a run's result is its last epoch's training loss and
a rate's the mean over seeds. Reported per rule: the base's best rate, the
target's loss at that rate, the target's own best on the grid, their ratio
(the issue's claim: within 2 %, a ratio <= 1.02), the shift in grid
points, and the shift of the optimum between grid points (the vertex of a
parabola through the best rate and its neighbours, in log loss;
``_depth_transfer.optimum``). The rules:

* ``completep``: ``kiz.mup.parametrize(target, base)`` (width and depth);
* ``depth_mup``: the same with ``depth="depth_mup"`` (branches ``x 1/sqrt(m_L)``);
* ``none``: ``depth=None`` (muP for width only), the first control;
* ``standard``: Keras' own init and ``keras.optimizers.Adam``, the second.

Under the muP rules the base is parametrized against itself (every factor 1),
so they are the same model there and the base sweep is run once.

Usage::

    KERAS_BACKEND=torch python benchmarks/mup_width_depth_transfer.py \
        --exponents -12 -5 --seeds 0 1 2 --epochs 3 --out width_depth.json
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import numpy as np

from keras_initzoo.mup._depth_transfer import digits, sweep, transfer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-width", type=int, default=16)
    parser.add_argument("--base-depth", type=int, default=2)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--exponents", type=int, nargs=2, default=[-12, -5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N digits")
    parser.add_argument("--rules", nargs="+", default=["completep", "none", "standard"])
    parser.add_argument("--out", default="mup_width_depth_transfer.json")
    args = parser.parse_args()
    x, y = digits(args.limit)
    exponents = list(range(args.exponents[0], args.exponents[1] + 1))
    results = {
        "args": vars(args),
        "backend": keras.backend.backend(),
        "exponents": exponents,
        "losses": {},
        "transfer": {},
    }
    start = time.time()

    def run(rule, width, depth):
        runs = sweep(
            rule, width, depth, exponents, args.seeds, x, y,
            base_width=args.base_width, base_depth=args.base_depth, epochs=args.epochs,
        )  # fmt: skip
        means = " ".join(f"{v:.4f}" for v in runs.mean(axis=0))
        took = time.time() - start
        print(f"{rule:9s} width {width:3d} depth {depth:2d}: {means}  ({took:.0f} s)", flush=True)
        return runs

    shared_base = None
    for rule in args.rules:
        if rule == "standard" or shared_base is None:
            base = run(rule, args.base_width, args.base_depth)
            if rule != "standard":
                shared_base = base
        else:
            base = shared_base
        target = run(rule, args.width, args.depth)
        found = transfer(base, target, exponents)
        results["losses"][rule] = {"base": base.tolist(), "target": target.tolist()}
        results["transfer"][rule] = found
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)
    print(f"\nbase {args.base_width}x{args.base_depth} -> target {args.width}x{args.depth}, "
          f"{len(args.seeds)} seeds, {args.epochs} epochs, {keras.backend.backend()}")  # fmt: skip
    print("rule       base best  target@base best  target best (rate)  ratio   shift  "
          "optima between grid points")  # fmt: skip
    for rule, found in results["transfer"].items():
        print(f"{rule:9s}  2^{found['base_best']:<7d}  {found['at_base_best']:<16.4f}  "
              f"{found['target_min']:.4f} (2^{found['target_best']})    "
              f"{found['ratio']:.3f}   {found['shift']:+d}     "
              f"2^{found['base_optimum']:.2f} -> 2^{found['target_optimum']:.2f} "
              f"({found['optimum_shift']:+.2f})")  # fmt: skip


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
