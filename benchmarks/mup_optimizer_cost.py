"""Cost of kiz.mup's optimizers against Keras' own, with GradientNormLogger on.

On PyTorch Keras swaps its exact Adam/SGD classes for fused ``torch._foreach``
ones; a subclass (``kiz.mup.Adam``) runs Keras' per-variable update instead.
This times ``fit`` steps of an MLP (64 -> 3 x width ReLU -> 10, batch 64)
with ``keras.optimizers.Adam`` and ``kiz.mup.Adam`` (parametrized against a
quarter-width base), interleaved, after one warm-up epoch, and prints the
median step-time ratio.

Usage::

    KERAS_BACKEND=torch python benchmarks/mup_optimizer_cost.py [--width 1024] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import keras_initzoo as kiz  # noqa: E402


def build(width: int) -> keras.Model:
    return keras.Sequential(
        [keras.Input((64,))]
        + [keras.layers.Dense(width, activation="relu") for _ in range(3)]
        + [keras.layers.Dense(10)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64 * args.steps, 64)).astype("float32")
    y = rng.integers(0, 10, len(x))
    logdir = tempfile.mkdtemp()
    models = {}
    for name in ("keras Adam", "kiz.mup.Adam"):
        model = build(args.width)
        if name == "kiz.mup.Adam":
            kiz.mup.parametrize(model, base=build(args.width // 4))
            optimizer = kiz.mup.Adam(1e-3)
        else:
            optimizer = keras.optimizers.Adam(1e-3)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        models[name] = model

    def epoch(model, name):
        logger = kiz.GradientNormLogger(os.path.join(logdir, name.replace(" ", "_")))
        start = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[logger])
        return (time.perf_counter() - start) / args.steps

    for name, model in models.items():
        epoch(model, name)  # warm-up
    times = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            times[name].append(epoch(model, name))
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"{name:14s} {1e3 * median:7.2f} ms/step")
    ratio = medians["kiz.mup.Adam"] / medians["keras Adam"]
    backend = keras.backend.backend()
    print(f"backend {backend}, width {args.width}: kiz.mup.Adam / keras Adam = {ratio:.3f}")


if __name__ == "__main__":
    main()
