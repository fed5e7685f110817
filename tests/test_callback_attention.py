"""GradientNormLogger(attention_logits=True): each attention layer's logits, in the real step.

The logged largest logit and mean entropy equal a NumPy computation from the
projected query and key of the same batch with the weights of that step, on
whichever Keras backend runs the file (``test_backends.py`` runs it on all).
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import WeightsBeforeEachStep, keras_hub_backbone, load_scalars

import keras_initzoo as kiz

B, T, D, HEADS, KEY_DIM = 4, 5, 6, 2, 3


def attention_model(causal: bool, masked: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    tokens = keras.Input((T, D))
    inputs = [tokens]
    kwargs = {"use_causal_mask": causal}
    if masked:
        mask = keras.Input((T, T), dtype="bool")
        inputs.append(mask)
        kwargs["attention_mask"] = mask
    attended = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, name="mha")(tokens, tokens, **kwargs)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(attended))


def numpy_logits(weights: dict, x: np.ndarray) -> np.ndarray:
    q = np.einsum("btd,dnh->btnh", x, weights["mha/query/kernel"]) + weights["mha/query/bias"]
    k = np.einsum("bsd,dnh->bsnh", x, weights["mha/key/kernel"]) + weights["mha/key/bias"]
    return np.einsum("btnh,bsnh->bnts", q / np.sqrt(KEY_DIM), k)


def numpy_stats(logits: np.ndarray, allowed: np.ndarray) -> tuple[float, float]:
    """Largest logit where allowed, and the softmax's mean entropy in nats."""
    allowed = np.broadcast_to(allowed, logits.shape)
    z = np.where(allowed, logits, -np.inf)
    with np.errstate(invalid="ignore"):  # a query with no key: NaN, counted 0 below
        p = np.exp(z - z.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
    entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)
    return float(logits[allowed].max()), float(entropy.mean())


@pytest.mark.parametrize("causal, masked", [(False, False), (True, False), (True, True)])
def test_largest_logit_and_entropy_equal_numpy_at_every_logged_step(tmp_path, causal, masked):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, D)).astype("float32")
    y = rng.normal(size=(B, T, 2)).astype("float32")
    padding = np.ones((B, T, T), bool)
    padding[:, :, -2:] = False  # the last two keys are padding
    padding[0] = True  # one example without
    model = attention_model(causal, masked)
    model.compile(keras.optimizers.SGD(0.5), "mse")
    recorder = WeightsBeforeEachStep()
    logger = kiz.GradientNormLogger(tmp_path, attention_logits=True)
    data = [x, padding] if masked else x
    model.fit(
        data, y, batch_size=B, epochs=3, shuffle=False, verbose=0, callbacks=[recorder, logger]
    )
    logged = load_scalars(tmp_path)
    assert {t for t in logged if t.startswith("attn")} == {
        "attn_logit_max/mha",
        "attn_entropy/mha",
    }
    allowed = np.ones((B, 1, T, T), bool)
    if causal:
        allowed = allowed & np.tril(np.ones((T, T), bool))
    if masked:
        allowed = allowed & padding[:, None]
    for step in (1, 2, 3):
        largest, entropy = numpy_stats(numpy_logits(recorder.weights[step - 1], x), allowed)
        assert logged["attn_logit_max/mha"][step - 1] == (step, pytest.approx(largest, rel=1e-5))
        assert logged["attn_entropy/mha"][step - 1] == (step, pytest.approx(entropy, rel=1e-5))
    # Control: without the mask the numbers differ, so a probe ignoring it fails.
    if causal or masked:
        unmasked = numpy_stats(numpy_logits(recorder.weights[0], x), np.ones((1, 1, T, T), bool))
        assert unmasked[1] != pytest.approx(logged["attn_entropy/mha"][0][1], rel=1e-3)


def test_a_query_kernel_scaled_between_fits_shows_in_the_largest_logit(tmp_path):
    """The growth the monitor is for: scale the query projection 4x before step 3 (between
    two fits: a JAX fit keeps its own state, whatever a callback assigns); the logged
    largest logit there is 4x what the same weights give unscaled."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, D)).astype("float32")
    y = rng.normal(size=(B, T, 2)).astype("float32")
    model = attention_model(causal=False, masked=False)
    model.compile(keras.optimizers.SGD(0.01), "mse")
    logger = kiz.GradientNormLogger(tmp_path, attention_logits=True)
    options = {"batch_size": B, "shuffle": False, "verbose": 0, "callbacks": [logger]}
    model.fit(x, y, epochs=2, **options)
    query = model.get_layer("mha").query_dense
    weights = {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}
    query.kernel.assign(query.kernel * 4.0)
    query.bias.assign(query.bias * 4.0)
    model.fit(x, y, epochs=3, initial_epoch=2, **options)
    logged = dict(load_scalars(tmp_path)["attn_logit_max/mha"])
    unscaled, _ = numpy_stats(numpy_logits(weights, x), np.ones((1, 1, T, T), bool))
    assert logged[3] == pytest.approx(4.0 * unscaled, rel=1e-5)
    assert logged[3] > 2.0 * logged[2]  # control: the jump is there to see


def test_off_by_default(tmp_path):
    model = attention_model(causal=False, masked=False)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x = np.ones((B, T, D), "float32")
    model.fit(
        x, np.ones((B, T, 2), "float32"), verbose=0, callbacks=[kiz.GradientNormLogger(tmp_path)]
    )
    assert not [t for t in load_scalars(tmp_path) if t.startswith("attn")]
    assert "_compute_attention" not in model.get_layer("mha").__dict__


@pytest.mark.slow
def test_keras_hub_transformer_layers_are_measured(tmp_path):
    """A GPT-2 backbone from a config (random weights): one pair of tags per block's
    self-attention, finite, the entropy within [0, log T]."""
    keras.utils.set_random_seed(0)
    backbone = keras_hub_backbone("GPT2Backbone")
    tokens = keras.Input((8,), dtype="int32", name="token_ids")
    padding = keras.Input((8,), dtype="int32", name="padding_mask")
    hidden = backbone({"token_ids": tokens, "padding_mask": padding})
    model = keras.Model([tokens, padding], keras.layers.Dense(32, name="lm_head")(hidden))
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(True))
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 32, size=(8, 8)).astype("int32")
    mask = np.ones((8, 8), "int32")
    logger = kiz.GradientNormLogger(tmp_path, attention_logits=True)
    model.fit([ids, mask], ids, batch_size=8, epochs=2, verbose=0, callbacks=[logger])
    logged = load_scalars(tmp_path)
    maxima = sorted(t for t in logged if t.startswith("attn_logit_max/"))
    assert len(maxima) == 2, maxima
    for tag in maxima:
        entropy = logged[tag.replace("attn_logit_max", "attn_entropy")]
        assert all(np.isfinite(v) for _, v in logged[tag])
        assert all(0.0 <= v <= np.log(8) + 1e-6 for _, v in entropy)


# -- KerasHub decoder-only attention (grouped-query, RoPE, own scale) ----------------------------
SEQ, VOCAB, HIDDEN, QUERY_HEADS, KV_HEADS = 6, 32, 16, 4, 2
GEMMA_HEAD_DIM, GEMMA_CAP, GEMMA_WINDOW = 8, 8.0, 3
HUB_BACKBONES = {
    "LlamaBackbone": {},
    # Gemma 2's options: its own head_dim (8, not HIDDEN / QUERY_HEADS = 4), a logit
    # soft cap, and a sliding window inside the first layer's _compute_attention.
    "GemmaBackbone": {
        "head_dim": GEMMA_HEAD_DIM,
        "attention_logit_soft_cap": GEMMA_CAP,
        "use_sliding_window_attention": True,
        "sliding_window_size": GEMMA_WINDOW,
    },
    "MistralBackbone": {"sliding_window": 2},  # the window is in the decoder's mask
    "QwenBackbone": {"use_sliding_window_attention": True, "sliding_window_size": 2},
    "Qwen3Backbone": {"head_dim": 8, "sliding_window_size": 3},
    "Phi3Backbone": {},
}


def hub_language_model(name: str) -> keras.Model:
    """A tiny KerasHub decoder-only backbone from a config (random weights) with an LM head."""
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    backbone = getattr(keras_hub.models, name)(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_query_heads=QUERY_HEADS,
        num_key_value_heads=KV_HEADS,
        hidden_dim=HIDDEN,
        intermediate_dim=32,
        **HUB_BACKBONES[name],
    )
    tokens = keras.Input((SEQ,), dtype="int32", name="token_ids")
    padding = keras.Input((SEQ,), dtype="int32", name="padding_mask")
    hidden = backbone({"token_ids": tokens, "padding_mask": padding})
    return keras.Model([tokens, padding], keras.layers.Dense(VOCAB, name="lm_head")(hidden))


def hub_attention_layers(model: keras.Model) -> list:
    from keras_initzoo import _keras_internals as internals

    layers = internals.flatten_layers(model, include_self=False, recursive=True)
    return [layer for layer in layers if type(layer).__name__.endswith("Attention")]


def attention_inputs(model: keras.Model, weights: list[dict], inputs: list) -> list[dict]:
    """Per entry of ``weights``, ``{layer path: (query, key, mask)}`` that each attention
    layer's ``_compute_attention`` receives in a forward pass with those weights (the query
    and key after RoPE; the key with its ``K`` heads, or already repeated to ``N``).

    On JAX the pass is one jitted ``stateless_call`` (eager JAX compiles each op once:
    seconds); elsewhere eager, with the weights assigned.
    """
    seen = {}
    layers = hub_attention_layers(model)
    for layer in layers:
        compute = layer._compute_attention

        def capture(*args, _layer=layer, _compute=compute, **kwargs):
            values = list(inspect.signature(_compute).bind(*args, **kwargs).arguments.values())
            # copies: Gemma scales its query in place (``q *= ...``, in place on PyTorch)
            seen[_layer.path] = tuple(keras.ops.copy(values[i]) for i in (0, 1, 3))
            return _compute(*args, **kwargs)

        layer._compute_attention = capture

    def forward(trainable, non_trainable):
        seen.clear()
        model.stateless_call(trainable, non_trainable, inputs)
        return dict(seen)

    if keras.backend.backend() == "jax":
        import jax

        forward = jax.jit(forward)
    found = []
    try:
        for step_weights in weights:
            trainable = [step_weights[v.path] for v in model.trainable_variables]
            frozen = [step_weights[v.path] for v in model.non_trainable_variables]
            if keras.backend.backend() == "jax":
                result = forward(trainable, frozen)
            else:
                for variable in model.weights:
                    variable.assign(step_weights[variable.path])
                seen.clear()
                model(inputs)
                result = dict(seen)
            found.append(
                {
                    path: (
                        keras.ops.convert_to_numpy(q),
                        keras.ops.convert_to_numpy(k),
                        keras.ops.convert_to_numpy(mask).astype(bool),
                    )
                    for path, (q, k, mask) in result.items()
                }
            )
    finally:
        for layer in layers:
            del layer._compute_attention
    return found


def tile_heads(key: np.ndarray, groups: int, axis: int) -> np.ndarray:
    """The key heads repeated as a block (head ``n % K`` for query head ``n``): wrong."""
    return np.concatenate([key] * groups, axis=axis)


def numpy_gqa_logits(query, key, scale, soft_cap=None, heads=np.repeat) -> np.ndarray:
    """``(B, N, T, S)`` logits in float64: key head ``n // G`` for query head ``n``."""
    key = heads(key.astype(np.float64), query.shape[2] // key.shape[2], axis=2)
    logits = np.einsum("btnh,bsnh->bnts", query.astype(np.float64) * scale, key)
    return logits if soft_cap is None else soft_cap * np.tanh(logits / soft_cap)


def hub_reference(name: str, layer) -> dict:
    """The scale, soft cap and window of ``layer`` from the backbone's config."""
    config = HUB_BACKBONES[name]
    head_dim = config.get("head_dim", HIDDEN // QUERY_HEADS)
    reference = {"scale": 1 / np.sqrt(head_dim), "soft_cap": None, "window": None}
    if name == "GemmaBackbone":
        # GemmaDecoderBlock builds its attention with query_head_dim_normalize=True,
        # and slides the window in every other layer (the first).
        reference["soft_cap"] = GEMMA_CAP
        if layer.path.split("/")[-2].endswith("_0"):
            reference["window"] = GEMMA_WINDOW
    elif name in ("QwenBackbone", "Qwen3Backbone"):
        reference["window"] = config["sliding_window_size"]
    return reference


def check_hub_family(tmp_path, name: str, steps: int) -> None:
    """Fit ``name``'s LM ``steps`` steps; at each, every attention layer's logged largest
    logit and entropy equal NumPy's from the query and key the layer computed with."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, size=(4, SEQ)).astype("int32")
    padding = np.ones((4, SEQ), "int32")
    padding[1, -2:] = 0  # the last two tokens of one sequence are padding
    model = hub_language_model(name)
    for variable in model.trainable_variables:  # logits far from 0: a peaked softmax
        if variable.path.endswith(("query/kernel", "key/kernel")):
            variable.assign(variable * 4.0)
    model.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(True))
    recorder = WeightsBeforeEachStep()
    logger = kiz.GradientNormLogger(tmp_path, attention_logits=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            [ids, padding],
            ids,
            batch_size=4,
            epochs=steps,
            shuffle=False,
            verbose=0,
            callbacks=[recorder, logger],
        )
    assert not [w for w in caught if "attention_logits" in str(w.message)]  # all read
    logged = load_scalars(tmp_path)
    layers = hub_attention_layers(model)
    assert len(layers) == 2, layers
    assert {t for t in logged if t.startswith("attn_")} == {
        f"attn_{kind}/{layer.path}" for layer in layers for kind in ("logit_max", "entropy")
    }
    causal = np.tril(np.ones((SEQ, SEQ), bool))
    captured = attention_inputs(model, recorder.weights[:steps], [ids, padding])
    for step, seen in enumerate(captured, start=1):
        for layer in layers:
            query, key, mask = seen[layer.path]
            reference = hub_reference(name, layer)
            assert mask.shape == (4, SEQ, SEQ)
            expected = causal  # example 0, without padding: causal (and Mistral's window)
            if name == "MistralBackbone":
                back = np.subtract.outer(np.arange(SEQ), np.arange(SEQ))
                expected = causal & (back < HUB_BACKBONES[name]["sliding_window"])
            assert not mask[1, :, -2:].any() and np.array_equal(mask[0], expected)
            allowed = mask[:, None]
            if reference["window"]:
                band = np.abs(np.subtract.outer(np.arange(SEQ), np.arange(SEQ)))
                allowed = allowed & (band <= reference["window"] - 1)
            logits = numpy_gqa_logits(query, key, reference["scale"], reference["soft_cap"])
            largest, entropy = numpy_stats(logits, allowed)
            at = step - 1
            assert logged[f"attn_logit_max/{layer.path}"][at] == (
                step,
                pytest.approx(largest, rel=1e-4),
            ), (layer.path, step)
            assert logged[f"attn_entropy/{layer.path}"][at] == (
                step,
                pytest.approx(entropy, rel=1e-4),
            ), (layer.path, step)
            # Controls: each part of the reference matters, so a probe without it fails.
            if key.shape[2] != query.shape[2]:  # K heads reach the layer: pairing matters
                tiled = numpy_gqa_logits(
                    query, key, reference["scale"], reference["soft_cap"], heads=tile_heads
                )
                assert numpy_stats(tiled, allowed)[1] != pytest.approx(entropy, rel=1e-3)
            wrong = numpy_gqa_logits(query, key, 1 / np.sqrt(HIDDEN), reference["soft_cap"])
            assert numpy_stats(wrong, allowed) != pytest.approx((largest, entropy), rel=1e-3)
            if reference["soft_cap"]:
                uncapped = numpy_gqa_logits(query, key, reference["scale"])
                assert numpy_stats(uncapped, allowed)[0] != pytest.approx(largest, rel=1e-3)
            if reference["window"]:
                unwindowed = numpy_stats(logits, mask[:, None])[1]
                assert unwindowed != pytest.approx(entropy, rel=1e-3)


@pytest.mark.parametrize("name", ["LlamaBackbone", "GemmaBackbone"])
def test_keras_hub_decoder_attention_equals_numpy_at_every_logged_step(tmp_path, name):
    """Grouped-query attention (4 query heads, 2 key/value heads) with RoPE: Llama repeats
    the key heads before ``_compute_attention`` and scales by ``1 / sqrt(head_dim)``;
    Gemma passes 2 key heads, scales by its own ``head_dim``, soft-caps the logits and
    slides a window in its first layer. Each is read as the layer computes it."""
    check_hub_family(tmp_path, name, steps=2)


@pytest.mark.parametrize(
    "name", ["MistralBackbone", "QwenBackbone", "Qwen3Backbone", "Phi3Backbone"]
)
def test_more_keras_hub_decoder_families_equal_numpy(tmp_path, name):
    """Mistral (its window in the decoder's mask), Qwen and Qwen3 (their window inside
    ``_compute_attention``), Phi-3: the same check."""
    check_hub_family(tmp_path, name, steps=2)


@pytest.mark.parametrize("causal", [False, True])
def test_keras_grouped_query_attention_equals_numpy(tmp_path, causal):
    """``keras.layers.GroupQueryAttention`` (4 query heads, 2 key/value heads; causal via
    the ``use_causal_mask`` argument of its ``_compute_attention``), from its kernels."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(B, T, D)).astype("float32")
    y = rng.normal(size=(B, T, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    tokens = keras.Input((T, D))
    gqa = keras.layers.GroupQueryAttention(3, 4, 2, name="gqa")
    attended = gqa(tokens, tokens, use_causal_mask=causal)
    model = keras.Model(tokens, keras.layers.Dense(2, name="head")(attended))
    model.compile(keras.optimizers.SGD(0.5), "mse")
    recorder = WeightsBeforeEachStep()
    logger = kiz.GradientNormLogger(tmp_path, attention_logits=True)
    model.fit(x, y, batch_size=B, epochs=2, shuffle=False, verbose=0, callbacks=[recorder, logger])
    logged = load_scalars(tmp_path)
    allowed = np.tril(np.ones((T, T), bool)) if causal else np.ones((T, T), bool)
    for step in (1, 2):
        w = recorder.weights[step - 1]
        q = np.einsum("btd,dnh->btnh", x, w["gqa/query/kernel"]) + w["gqa/query/bias"]
        k = np.einsum("bsd,dkh->bskh", x, w["gqa/key/kernel"]) + w["gqa/key/bias"]
        largest, entropy = numpy_stats(numpy_gqa_logits(q, k, 1 / np.sqrt(3)), allowed)
        assert logged["attn_logit_max/gqa"][step - 1] == (step, pytest.approx(largest, rel=1e-5))
        assert logged["attn_entropy/gqa"][step - 1] == (step, pytest.approx(entropy, rel=1e-5))
        tiled = numpy_stats(numpy_gqa_logits(q, k, 1 / np.sqrt(3), heads=tile_heads), allowed)
        assert tiled != pytest.approx((largest, entropy), rel=1e-3)  # control: head pairing


def test_an_attention_layer_of_no_family_is_named_in_one_warning(tmp_path):
    """``keras.layers.Attention`` (no family) is skipped with a warning naming it; the
    ``MultiHeadAttention`` beside it is still measured, and the fit runs."""
    keras.utils.set_random_seed(0)
    tokens = keras.Input((T, D))
    attended = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, name="mha")(tokens, tokens)
    dot = keras.layers.Attention(name="dot")([attended, tokens])
    model = keras.Model(tokens, keras.layers.Dense(2, name="head")(dot))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x = np.ones((B, T, D), "float32")
    logger = kiz.GradientNormLogger(tmp_path, attention_logits=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, np.ones((B, T, 2), "float32"), epochs=2, verbose=0, callbacks=[logger])
    named = [
        str(w.message) for w in caught if "attention_logits does not measure" in str(w.message)
    ]
    assert len(named) == 1 and "`dot` (Attention)" in named[0], named
    logged = load_scalars(tmp_path)
    assert {t for t in logged if t.startswith("attn")} == {
        "attn_logit_max/mha",
        "attn_entropy/mha",
    }
    assert all(np.isfinite(v) for _, v in logged["attn_logit_max/mha"])


def test_an_attention_call_the_probe_cannot_read_is_named_once_and_reads_nan(tmp_path):
    """A ``MultiHeadAttention`` over two axes (a 5-D query): one warning naming it, its
    tags NaN at every step, and the fit goes on."""
    keras.utils.set_random_seed(0)
    grid = keras.Input((3, 4, D))
    attended = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, attention_axes=(1, 2), name="mha2d")(
        grid, grid
    )
    model = keras.Model(grid, keras.layers.Dense(2, name="head")(attended))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x = np.ones((B, 3, 4, D), "float32")
    logger = kiz.GradientNormLogger(tmp_path, attention_logits=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, np.ones((B, 3, 4, 2), "float32"), epochs=3, verbose=0, callbacks=[logger])
    named = [
        str(w.message) for w in caught if "attention_logits does not measure" in str(w.message)
    ]
    assert len(named) == 1 and "`mha2d` (MultiHeadAttention)" in named[0], named
    assert "attention over several axes" in named[0]
    logged = load_scalars(tmp_path)
    assert [step for step, _ in logged["attn_logit_max/mha2d"]] == [1, 2, 3]
    assert all(np.isnan(v) for _, v in logged["attn_logit_max/mha2d"])


# -- output logits -------------------------------------------------------------------------------
def test_output_logits_log_z_and_largest_magnitude_equal_numpy(tmp_path):
    """``logits/log_z`` is the mean log-sum-exp of the model's logits over the classes,
    ``logits/max_abs`` their largest magnitude, at each logged step."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 6)).astype("float32")
    labels = rng.integers(0, 5, size=16)
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(5)]
    )
    model.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(True))
    recorder = WeightsBeforeEachStep()
    logger = kiz.GradientNormLogger(tmp_path, output_logits=True)
    callbacks = [recorder, logger]
    model.fit(x, labels, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=callbacks)
    logged = load_scalars(tmp_path)
    for step in (1, 2, 3):
        k1, b1, k2, b2 = recorder.weights[step - 1].values()
        logits = np.maximum(x @ k1 + b1, 0.0) @ k2 + b2
        top = logits.max(-1, keepdims=True)
        log_z = np.log(np.exp(logits - top).sum(-1)) + top[:, 0]
        assert logged["logits/log_z"][step - 1] == (step, pytest.approx(log_z.mean(), rel=1e-5))
        assert logged["logits/max_abs"][step - 1][1] == pytest.approx(np.abs(logits).max())
    # Control: the logits moved between steps, so a value logged once fails.
    assert logged["logits/log_z"][0][1] != pytest.approx(logged["logits/log_z"][2][1], rel=1e-3)


def test_output_logits_refuses_a_probability_head(tmp_path):
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, activation="softmax", name="probs")]
    )
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    logger = kiz.GradientNormLogger(tmp_path, output_logits=True)
    with pytest.raises(ValueError, match="`output_logits` needs a model that outputs logits"):
        model.fit(np.ones((4, 6)), np.zeros(4), verbose=0, callbacks=[logger])


def test_attention_logit_growth_is_flagged_once_when_it_passes_ten_times_its_start(tmp_path):
    """The query projection doubled before each of 4 one-step fits (a gradual growth, no
    single jump past 2x): flagged once, when the largest logit first passes 10x its
    value at step 1, naming the layer. Control: the same fits without doubling."""
    from conftest import load_events

    rng = np.random.default_rng(4)
    x = rng.normal(size=(B, T, D)).astype("float32")
    y = rng.normal(size=(B, T, 2)).astype("float32")

    def run(log_dir, factor):
        model = attention_model(causal=False, masked=False)
        model.compile(keras.optimizers.SGD(1e-4), "mse")
        logger = kiz.GradientNormLogger(log_dir, attention_logits=True, detect_spikes=True)
        options = {"batch_size": B, "shuffle": False, "verbose": 0, "callbacks": [logger]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in range(6):
                if epoch:
                    query = model.get_layer("mha").query_dense
                    query.kernel.assign(query.kernel * factor)
                    query.bias.assign(query.bias * factor)
                model.fit(x, y, epochs=epoch + 1, initial_epoch=epoch, **options)
        events = load_events(log_dir)
        texts = events.Tensors("spikes") if "spikes" in events.Tags()["tensors"] else []
        logged = dict(load_scalars(log_dir)["attn_logit_max/mha"])
        return [(e.step, e.tensor_proto.string_val[0].decode()) for e in texts], logged

    flagged, logged = run(tmp_path / "growing", 2.0)
    growth = [(step, text) for step, text in flagged if "attention logits grew" in text]
    first_past = min(step for step, value in logged.items() if value > 10 * logged[1])
    assert [step for step, _ in growth] == [first_past], (growth, logged)
    assert "attention logits grew in `mha`" in growth[0][1], growth
    quiet, _ = run(tmp_path / "steady", 1.0)
    assert not [t for _, t in quiet if "attention logits grew" in t]


@pytest.mark.slow
def test_attention_logit_growth_is_flagged_long_before_the_loss_diverges(tmp_path):
    """Wortsman et al. (2024) at CPU scale, through the monitor itself: a pre-LN
    transformer of ``keras.layers.MultiHeadAttention`` blocks on the copy task
    (benchmarks/attention_logit_growth.py, ``--attention keras``, 300 steps) at lr 5e-2
    learns, then its logits grow and the loss climbs back to chance. The logger flags the
    growth at least 20 steps before the loss diverges. Controls: the same run with
    QK-layernorm, and at a 4x lower rate, stay stable and raise no flag."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "attention_logit_growth.py"
    spec = importlib.util.spec_from_file_location("attention_logit_growth", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    base = bench.Config(steps=300)

    growing = bench.train_logged(base, str(tmp_path / "growing"))
    assert growing.growth_step is not None and growing.diverge_step is not None, growing
    assert growing.diverge_step - growing.growth_step >= 20, (
        growing.growth_step,
        growing.diverge_step,
    )
    for name, config in (
        ("qk_norm", dataclasses.replace(base, qk_norm=True)),
        ("lower_rate", dataclasses.replace(base, lr=base.lr / 4)),
    ):
        quiet = bench.train_logged(config, str(tmp_path / name))
        assert quiet.growth_step is None and quiet.diverge_step is None, (name, quiet)
