"""The depth coordinate check as a picture: CompleteP against width-only muP, pre-LN MLP blocks.

Writes ``docs/images/mup_depth_coord_check.png``: the residual stream's RMS after
the last block, and its change since t = 1, against depth, one line per t.

Usage::

    KERAS_BACKEND=jax python benchmarks/mup_depth_coord_check.py [--depths 2 4 8 16 32]
"""

from __future__ import annotations

import argparse
import functools

import numpy as np

import keras_initzoo as kiz
from keras_initzoo.experiments.plotting import pyplot, save_figure
from keras_initzoo.mup._depth_transfer import residual_mlp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--out", default="docs/images/mup_depth_coord_check.png")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 16)).astype("float32")
    y = rng.integers(0, 10, 32)
    plt = pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(8, 6), sharex=True, sharey="row")
    for column, rule in enumerate(("completep", None)):
        report = kiz.mup.coord_check(
            functools.partial(residual_mlp, inputs=16), [args.width], x, y,
            depths=args.depths, depth=rule, steps=3, seeds=1, learning_rate=1e-2,
        )  # fmt: skip
        print(report)
        means = report.values.mean(axis=1)  # (depths, t, quantities)
        for row, quantity in enumerate(("stream", "stream change")):
            index = report.layers.index(f"{quantity} @ width {args.width}")
            axis = axes[row][column]
            for t in range(means.shape[1]):
                if quantity == "stream change" and t == 0:
                    continue
                axis.plot(
                    args.depths, means[:, t, index], marker="o", color=f"C{t}", label=f"t = {t + 1}"
                )
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xticks(args.depths, [str(d) for d in args.depths])
            axis.grid(True, which="both", alpha=0.3)
            axis.set_title(f"{rule or 'width-only muP'}: {quantity}", fontsize=10)
        axes[1][column].set_xlabel("depth (blocks)")
    axes[0][0].set_ylabel("RMS after the last block")
    axes[1][0].set_ylabel("RMS change since t = 1")
    axes[0][0].legend(fontsize=7)
    figure.suptitle(f"pre-LN residual MLP blocks, width {args.width}, Adam 1e-2, one batch")
    figure.tight_layout()
    print(save_figure(figure, args.out))


if __name__ == "__main__":
    main()
