"""The depth-transfer issue's "done when", as a user would do it.

Tune a 4-block model at width ``W``; build one of 64 blocks at ``8 W``;
parametrize it against the small one in one ``kiz.mup.parametrize`` call; train
it at the small one's Adam rate (``kiz.mup.Adam``). Its residual stream after
the last block, and how far that moves in a few steps, should be the small
model's size: that is what the coordinates holding means. Width-only muP
(``depth=None``) is the control, which must drift.

Backend-neutral; run it under each backend with ``KERAS_BACKEND``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_initzoo as kiz
from keras_initzoo.mup._depth_transfer import residual_mlp

W, BASE_DEPTH, DEPTH, FACTOR = 32, 4, 64, 8  # base W x 4 blocks -> 8 W x 64 blocks
RATE, STEPS = 1e-2, 3  # the rate "tuned" on the base
WITHIN = 2.0  # CompleteP: each coordinate within this factor of the base's (see the test)
CONTROL_OVER = 3.0  # width-only muP, trained: the stream and its change beyond this factor


def build(width: int, depth: int) -> keras.Model:
    return residual_mlp(width, depth, inputs=16)


def rms(array) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(array, dtype="float64")))))


def coordinates(model: keras.Model, x, y) -> dict[str, float]:
    """The stream after the last block at t = 1, after ``STEPS`` Adam steps, and its change.

    Also the embedding's output at t = 1 (``embed``), the stream the blocks add to.
    """
    depth = sum(layer.name.endswith("_add") for layer in model.layers)
    probe = keras.Model(
        model.input, [model.get_layer(f"b{depth - 1}_add").output, model.get_layer("embed").output]
    )
    first, embed = (keras.ops.convert_to_numpy(v) for v in probe(x))
    model.compile(
        optimizer=kiz.mup.Adam(learning_rate=RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,  # three steps of 64 blocks cost less eagerly than traced
    )
    for _ in range(STEPS):
        model.train_on_batch(x, y)
    last = keras.ops.convert_to_numpy(probe(x)[0])
    return {
        "stream at t=1": rms(first),
        "stream": rms(last),
        "stream change": rms(last - first),
        "embed": rms(embed),
    }


@pytest.mark.slow
def test_a_64_block_model_at_8x_width_keeps_the_4_block_models_coordinates():
    """CompleteP keeps the stream and its change within ``WITHIN`` (2x) of the base's,
    depth-muP within 1.5x; width-only muP drifts past ``CONTROL_OVER`` (3x) once trained.

    Measured, target over base (stream at t = 1; stream and its change after 3 steps):

    ==========  ==================  ====================
    backend     CompleteP           width-only muP
    ==========  ==================  ====================
    JAX         0.61, 0.64, 0.62    3.40, 5.33, 8.27
    TensorFlow  0.68, 0.68, 0.69    3.56, 6.19, 9.45
    PyTorch     0.63, 0.63, 0.65    3.34, 4.95, 7.92
    ==========  ==================  ====================

    So not within the 1.5 the issue hoped for: at t = 1 CompleteP's stream
    is ``embed + sum_l (L_base / L) F_l``, of variance ``e + L_base**2 v / L``
    (``e`` the embedding's, ``v`` a branch's, each the same at every width under
    muP), against ``e + L_base v`` at the base. The branches' random init
    averages out as L grows (the finite-depth term CompleteP leaves; from 4 to
    64 blocks it is ``sqrt((e + v / 4) / (e + 4 v))``, about 0.6 here; from 16
    to 64 blocks the stream moves 10-15 %, see
    ``docs/images/mup_width_depth_coord_check.png``). That prediction, from the
    base's branches and the target's embedding, is asserted within 10 %
    (measured within 1 %).
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 16)).astype("float32")
    y = rng.integers(0, 10, 32)
    keras.utils.set_random_seed(0)
    base = build(W, BASE_DEPTH)
    # the model that was tuned: the base itself, its width axes named by a wider copy
    tuned = build(W, BASE_DEPTH)
    kiz.mup.parametrize(tuned, base=base, delta=build(2 * W, BASE_DEPTH), seed=0)
    small = coordinates(tuned, x, y)
    found = {}
    for rule in ("completep", "depth_mup", None):
        large = build(FACTOR * W, DEPTH)
        kiz.mup.parametrize(large, base=base, depth=rule, seed=0)  # the one call
        found[rule] = coordinates(large, x, y)
    ratios = {
        rule: {k: v / small[k] for k, v in coords.items() if k != "embed"}
        for rule, coords in found.items()
    }
    for name, ratio in ratios["completep"].items():
        assert 1 / WITHIN < ratio < WITHIN, (name, ratios)
    # depth-muP's branches (1/sqrt(L)) keep the init term: its stream holds to the
    # issue's 1.5 (measured 0.97-1.04 on PyTorch)
    for name, ratio in ratios["depth_mup"].items():
        assert 1 / 1.5 < ratio < 1.5, (name, ratios)
    for name in ("stream", "stream change"):  # the control: trained, width-only muP drifts
        assert ratios[None][name] > CONTROL_OVER, (name, ratios)
    # the finite-depth term: the base's branch variance, averaged out over 64 blocks
    v = (small["stream at t=1"] ** 2 - small["embed"] ** 2) / BASE_DEPTH
    predicted = np.sqrt(found["completep"]["embed"] ** 2 + BASE_DEPTH**2 * v / DEPTH)
    assert found["completep"]["stream at t=1"] == pytest.approx(predicted, rel=0.1), ratios
