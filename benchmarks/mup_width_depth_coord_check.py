"""The coordinate check across width and depth at once: CompleteP against width-only muP.

The issue's scenario: tune a 4-block model, parametrize one 16 times deeper and
8 times wider against it in one call, and train it at the same Adam rate. Pre-LN
residual MLP blocks (``keras_initzoo.mup._depth_transfer.residual_mlp``); every
size is parametrized against the narrowest, shallowest one by
``kiz.mup.coord_check(build, widths, x, y, depths=..., depth=rule)`` and trained
a few Adam steps on one batch. Writes ``docs/images/mup_width_depth_coord_check.png``
(the stream's RMS after the last block, and its change since t = 1, against
depth, one line per width; a column per rule) and prints each quantity at the
deepest, widest size over the base's.

Usage::

    KERAS_BACKEND=torch OMP_NUM_THREADS=1 python benchmarks/mup_width_depth_coord_check.py \\
        [--widths 16 32 64 128] [--depths 4 8 16 32 64]
"""

from __future__ import annotations

import argparse
import functools
import time

import keras
import numpy as np

import keras_initzoo as kiz
from keras_initzoo.mup._depth_transfer import (
    base_ratios,
    plot_width_depth,
    residual_mlp,
    width_depth_grid,
)

RULES = {"CompleteP": "completep", "width-only muP": None}
QUANTITIES = ("stream", "stream change")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--out", default="docs/images/mup_width_depth_coord_check.png")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 16)).astype("float32")
    y = rng.integers(0, 10, 32)
    build = functools.partial(residual_mlp, inputs=16)
    start = time.perf_counter()
    reports = {}
    np.set_printoptions(precision=3, suppress=True)
    for name, rule in RULES.items():
        reports[name] = report = kiz.mup.coord_check(
            build, args.widths, x, y, depths=args.depths, depth=rule,
            steps=args.steps, seeds=args.seeds, learning_rate=args.lr,
        )  # fmt: skip
        print(f"{name} (depth={rule!r}); rows: depths {list(report.widths)}, columns: widths")
        for quantity in QUANTITIES:
            for t in (0, args.steps):
                grid, _ = width_depth_grid(report, quantity, t)
                if grid.any():  # the change is 0 at t = 1
                    print(f"  {quantity}, t = {t + 1}:\n{grid}")
    largest, smallest = (max(args.depths), max(args.widths)), (min(args.depths), min(args.widths))
    print(
        f"\nthe deepest, widest ({largest[0]} blocks x width {largest[1]}) over the base "
        f"({smallest[0]} x {smallest[1]}), t = {args.steps + 1}:"
    )
    for name, report in reports.items():
        at_init = base_ratios(report, ("stream",), t=0)["stream"]
        ratios = base_ratios(report, QUANTITIES)
        cells = ", ".join(f"{q} {r:.2f}" for q, r in ratios.items())
        print(f"  {name:15s} {cells} (stream at t = 1: {at_init:.2f})")
    title = (
        f"pre-LN residual MLP blocks, each size parametrized against {min(args.depths)} blocks x "
        f"width {min(args.widths)}; Adam {args.lr:g}, {args.steps} steps on one batch, "
        f"{keras.backend.backend()}"
    )
    print(plot_width_depth(reports, args.out, title, quantities=QUANTITIES))
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
