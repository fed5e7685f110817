"""Learning-rate transfer across depth on sklearn's digits: CompleteP against width-only muP.

Pre-LN residual MLP blocks (LayerNorm, Dense+ReLU, Dense, Add) of width 64,
an embedding Dense and a readout; each model is parametrized against the
2-block one (``kiz.mup.parametrize(model, base, depth=...)``) and trained
with ``kiz.mup.Adam`` by ``model.fit`` on the 1,797 digits (batch 64). For
each rule (``completep``; ``None``: muP for width only, the control), depth
and rate ``2**e`` the final training loss is kept per seed; the best rate is
the one with the lowest mean over seeds. CompleteP should keep it within one
grid point from the shallowest depth to the deepest; width-only muP should
move it by two or more.

Usage::

    KERAS_BACKEND=jax python benchmarks/mup_depth_lr_transfer.py \
        --depths 2 8 32 --exponents -12 -4 --seeds 0 1 --epochs 3 --out results.json
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import numpy as np

import keras_initzoo as kiz
from keras_initzoo.mup._transfer import best_index, mean_final


def residual_mlp(width: int, depth: int, inputs: int = 64) -> keras.Model:
    """``inputs`` (digits: 64 pixels) -> embedding -> ``depth`` pre-LN residual MLP blocks
    -> LayerNorm -> 10 logits."""
    inputs = keras.Input((inputs,))
    x = keras.layers.Dense(width, name="embed")(inputs)
    for i in range(depth):
        h = keras.layers.LayerNormalization(name=f"b{i}_ln")(x)
        h = keras.layers.Dense(width, activation="relu", name=f"b{i}_fc1")(h)
        h = keras.layers.Dense(width, name=f"b{i}_fc2")(h)
        x = keras.layers.Add(name=f"b{i}_add")([x, h])
    x = keras.layers.LayerNormalization(name="final_ln")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="readout")(x))


def final_loss(rule, depth, rate, seed, x, y, *, width, base_depth, epochs) -> float:
    """The last epoch's training loss of one run (nan once it diverged)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = residual_mlp(width, depth)
    base = residual_mlp(width, base_depth)
    kiz.mup.parametrize(model, base, depth=rule, seed=seed, data=x[:64])
    model.compile(
        optimizer=kiz.mup.Adam(learning_rate=rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, shuffle=True)
    loss = history.history["loss"][-1]
    return float(loss) if np.isfinite(loss) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--exponents", type=int, nargs=2, default=[-12, -4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--rules", nargs="+", default=["completep", "none"])
    parser.add_argument("--base-depth", type=int, default=None, help="default: the shallowest")
    parser.add_argument("--out", default="mup_depth_lr_transfer.json")
    args = parser.parse_args()
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    exponents = list(range(args.exponents[0], args.exponents[1] + 1))
    results = {"args": vars(args), "exponents": exponents, "losses": {}, "best": {}}
    base_depth = args.base_depth or min(args.depths)
    start = time.time()
    for rule in args.rules:
        depth_rule = None if rule == "none" else rule
        for depth in args.depths:
            runs = np.full((len(args.seeds), len(exponents), 1), np.nan)
            for j, exponent in enumerate(exponents):
                for i, seed in enumerate(args.seeds):
                    runs[i, j, 0] = final_loss(
                        depth_rule, depth, 2.0**exponent, seed, x, y,
                        width=args.width, base_depth=base_depth, epochs=args.epochs,
                    )  # fmt: skip
            best = exponents[best_index(runs)]
            results["losses"].setdefault(rule, {})[depth] = runs[:, :, 0].tolist()
            results["best"].setdefault(rule, {})[depth] = best
            means = " ".join(f"{v:.3f}" for v in mean_final(runs))
            print(f"{rule:9s} depth {depth:3d}: best 2^{best}  means {means}  "
                  f"({time.time() - start:.0f} s)", flush=True)  # fmt: skip
            with open(args.out, "w") as handle:
                json.dump(results, handle, indent=1)
    for rule, bests in results["best"].items():
        values = list(bests.values())
        print(f"{rule}: best log2 rate per depth {bests}; moves {max(values) - min(values)}")


if __name__ == "__main__":
    main()
