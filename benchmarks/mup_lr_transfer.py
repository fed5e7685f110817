"""Learning-rate transfer on sklearn's digits: the best Adam rate against width, standard vs muP.

An MLP (64 inputs, 3 hidden ReLU layers of ``width``, 10 logits) is trained
with Adam for 6 epochs (batch 64) on the training split of sklearn's bundled
digits, at each learning rate ``2**-12 .. 2**-4`` and width, from several
seeds. "standard" is the model as Keras builds it (``glorot_uniform``, one
learning rate); "muP" is ``kiz.mup.parametrize(model, base=build(64))`` with
``kiz.mup.Adam``. The figure is the final training loss (mean of the last
epoch, averaged over seeds) against the learning rate, one curve per width;
the table the best rate's index per width.

Usage::

    KERAS_BACKEND=jax python benchmarks/mup_lr_transfer.py     # 26 min on 2 loaded cores
    KERAS_BACKEND=jax python benchmarks/mup_lr_transfer.py --quick   # smoke run
    python benchmarks/mup_lr_transfer.py --small --out /tmp/small --png /tmp/small.png

The sweep is ``keras_initzoo.mup._transfer``'s, which ``tests/test_mup_transfer.py``
runs in a smaller setup.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from keras_initzoo.experiments.data import get_dataset  # noqa: E402
from keras_initzoo.experiments.plotting import pyplot, save_figure  # noqa: E402
from keras_initzoo.mup._transfer import SMALL, mean_final, sweep  # noqa: E402

BASE_WIDTH = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/mup_lr_transfer", help="the .json, no suffix")
    parser.add_argument("--png", default="docs/images/mup_lr_transfer.png")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--small", action="store_true", help="the setup of the slow test")
    args = parser.parse_args()
    widths = [64, 256] if args.quick else [64, 256, 1024]
    exponents = list(range(-12, -3, 4 if args.quick else 1))
    epochs = 1 if args.quick else 6
    seeds = range(1 if args.quick else args.seeds)
    if args.small:
        widths, exponents = list(SMALL["widths"]), list(SMALL["exponents"])
        epochs, seeds = SMALL["epochs"], SMALL["seeds"]
    data = get_dataset("digits")
    start = time.monotonic()
    runs = sweep(
        widths,
        exponents,
        seeds,
        data,
        epochs=epochs,
        base_width=BASE_WIDTH,
        progress=lambda line: print(line, flush=True),
    )
    losses = {p: {w: mean_final(r).tolist() for w, r in rows.items()} for p, rows in runs.items()}
    seconds = time.monotonic() - start
    best = {
        p: {w: exponents[int(np.nanargmin(r))] for w, r in rows.items()}
        for p, rows in losses.items()
    }
    result = {
        "backend": keras.backend.backend(),
        "widths": widths,
        "log2_learning_rates": exponents,
        "epochs": epochs,
        "seeds": len(seeds),
        "final_train_loss": losses,
        "best_log2_learning_rate": best,
        "seconds": round(seconds, 1),
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(f"{args.out}.json", "w") as handle:
        json.dump(result, handle, indent=1)
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for axis, parametrization in zip(axes, ("standard", "mup"), strict=True):
        for width in widths:
            axis.plot(exponents, losses[parametrization][width], marker="o", label=f"width {width}")
        axis.set_title("standard (Keras defaults)" if parametrization == "standard" else "muP")
        axis.set_xlabel("log2 learning rate (Adam)")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(f"training loss after {epochs} epochs")
    axes[1].legend()
    figure.tight_layout()
    save_figure(figure, args.png)
    print(json.dumps(best), f"{seconds:.0f} s")


if __name__ == "__main__":
    main()
