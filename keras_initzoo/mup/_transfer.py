"""Learning-rate transfer across widths: the sweep the benchmark and the slow test share.

For each parametrization, width, learning rate ``2**e`` and seed, an MLP is
trained with Adam by ``model.fit`` and its per-epoch training loss kept.
"standard" is the model as Keras builds it (``glorot_uniform``, one learning
rate for every variable: what a Keras user gets); "mup" is
:func:`keras_initzoo.mup.parametrize` against the base width with
:class:`keras_initzoo.mup.Adam`. Under muP the best rate should stay put as
the width grows (Tensor Programs V, Yang et al. 2021, Fig. 1); under the
standard parametrization Adam's update of a hidden layer's output grows like
``lr * fan_in``, so the best rate falls with width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

PARAMETRIZATIONS = ("standard", "mup")

# The small setup ``tests/test_mup_transfer.py`` runs (its docstring says why it
# discriminates) and ``benchmarks/mup_lr_transfer.py --small`` measures.
SMALL = {"widths": (64, 1024), "exponents": tuple(range(-9, -3)), "seeds": (0, 1, 2), "epochs": 1}


def mlp(width: int, inputs: int = 64, classes: int = 10, depth: int = 3) -> keras.Model:
    """``inputs -> depth x width ReLU -> classes`` logits (digits: 64 pixels, 10 classes)."""
    return keras.Sequential(
        [keras.Input((inputs,))]
        + [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
        + [keras.layers.Dense(classes)]
    )


def train_losses(
    parametrization: str,
    width: int,
    rate: float,
    seed: int,
    data,
    *,
    epochs: int,
    base_width: int,
    build: Callable[[int], keras.Model] = mlp,
    batch_size: int = 64,
) -> list[float]:
    """The training loss of each epoch (Keras' mean over the epoch); nan once it diverged.

    ``data`` has ``x_train`` and ``y_train`` (class ids); the loss is sparse
    categorical cross-entropy on logits. ``keras.utils.set_random_seed(seed)``
    fixes the standard init and the shuffling, ``seed`` the muP re-draw; the
    session is cleared first because an integer seed of the zoo names a family
    of streams, each use taking the next one until ``clear_session`` (without
    it a muP run would depend on how many ran before it in the process).
    """
    from keras_initzoo.mup.optimizers import Adam
    from keras_initzoo.mup.parametrization import parametrize

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build(width)
    if parametrization == "mup":
        parametrize(model, base=build(base_width), seed=seed)
        optimizer = Adam(learning_rate=rate)
    elif parametrization == "standard":
        optimizer = keras.optimizers.Adam(learning_rate=rate)
    else:
        raise ValueError(
            f"`parametrization` must be one of {PARAMETRIZATIONS}; received {parametrization!r}."
        )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(
        data.x_train,
        data.y_train,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        shuffle=True,
    )
    return [float(v) if np.isfinite(v) else float("nan") for v in history.history["loss"]]


def sweep(
    widths: Sequence[int],
    exponents: Sequence[int],
    seeds: Sequence[int],
    data,
    *,
    epochs: int,
    base_width: int,
    parametrizations: Sequence[str] = PARAMETRIZATIONS,
    build: Callable[[int], keras.Model] = mlp,
    batch_size: int = 64,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[int, np.ndarray]]:
    """``losses[parametrization][width]``: shape ``(seeds, rates, epochs)``, rates ``2**e``."""
    losses: dict[str, dict[int, np.ndarray]] = {}
    for parametrization in parametrizations:
        losses[parametrization] = {}
        for width in widths:
            runs = np.full((len(seeds), len(exponents), epochs), np.nan)
            for j, exponent in enumerate(exponents):
                for i, seed in enumerate(seeds):
                    runs[i, j] = train_losses(
                        parametrization,
                        width,
                        2.0**exponent,
                        seed,
                        data,
                        epochs=epochs,
                        base_width=base_width,
                        build=build,
                        batch_size=batch_size,
                    )
            losses[parametrization][width] = runs
            if progress is not None:
                best = best_index(runs)
                progress(f"{parametrization:8s} width {width:5d}: best 2^{exponents[best]}")
    return losses


def mean_final(runs: np.ndarray) -> np.ndarray:
    """The last epoch's loss per rate, mean over seeds (nan where any seed diverged)."""
    return runs[:, :, -1].mean(axis=0)


def best_index(runs: np.ndarray) -> int:
    """The index of the rate with the lowest mean final loss."""
    return int(np.nanargmin(mean_final(runs)))
