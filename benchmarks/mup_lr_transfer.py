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
import keras_initzoo as kiz  # noqa: E402
from keras_initzoo.experiments.data import get_dataset  # noqa: E402
from keras_initzoo.experiments.plotting import pyplot, save_figure  # noqa: E402

BASE_WIDTH = 64


def build(width: int) -> keras.Model:
    return keras.Sequential(
        [keras.Input((64,))]
        + [keras.layers.Dense(width, activation="relu") for _ in range(3)]
        + [keras.layers.Dense(10)]
    )


def final_loss(parametrization: str, width: int, rate: float, seed: int, data, epochs: int):
    keras.utils.set_random_seed(seed)
    model = build(width)
    if parametrization == "mup":
        kiz.mup.parametrize(model, base=build(BASE_WIDTH), seed=seed)
        optimizer = kiz.mup.Adam(learning_rate=rate)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=rate)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(
        data.x_train, data.y_train, epochs=epochs, batch_size=64, verbose=0, shuffle=True
    )
    loss = history.history["loss"][-1]
    return float(loss) if np.isfinite(loss) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/mup_lr_transfer", help="the .json, no suffix")
    parser.add_argument("--png", default="docs/images/mup_lr_transfer.png")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    widths = [64, 256] if args.quick else [64, 256, 1024]
    exponents = list(range(-12, -3, 4 if args.quick else 1))
    epochs = 1 if args.quick else 6
    seeds = 1 if args.quick else args.seeds
    data = get_dataset("digits")
    start = time.monotonic()
    losses: dict[str, dict[int, list[float]]] = {}
    for parametrization in ("standard", "mup"):
        losses[parametrization] = {}
        for width in widths:
            row = []
            for exponent in exponents:
                runs = [
                    final_loss(parametrization, width, 2.0**exponent, seed, data, epochs)
                    for seed in range(seeds)
                ]
                row.append(float(np.mean(runs)))
            losses[parametrization][width] = row
            best = int(np.nanargmin(row))
            print(f"{parametrization:8s} width {width:5d}: best 2^{exponents[best]}", flush=True)
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
        "seeds": seeds,
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
