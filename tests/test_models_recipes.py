"""The residual recipes (keras_initzoo.models.recipes) on real models: the papers' numbers.

Statistics: a kernel drawn with standard deviation ``s`` has a sample second
moment whose square root is ``s`` within about ``s / sqrt(2 n)`` (one standard
error, ``n`` entries); each check pools the kernels of one rule as
``sqrt(mean((w / s)**2))``, which must be 1 within 3 standard errors,
``3 / sqrt(2 n)`` (for uniform and truncated draws, whose tails are lighter,
the bound is wider than needed). Each test says the control that makes it
able to fail.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_initzoo.gains import nf_gamma
from keras_initzoo.initializers.simple import truncated_normal_variance
from keras_initzoo.layers import ResidualGain
from keras_initzoo.models.recipes import RECIPES, apply_recipe, recipes_table


def _numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def _ratio(pairs) -> tuple[float, float]:
    """``sqrt(mean((w / target)**2))`` over every entry of the kernels, and 3 standard errors."""
    total, count = 0.0, 0
    for values, target in pairs:
        values = _numpy(values).ravel()
        total += float(np.sum((values / target) ** 2))
        count += values.size
    return math.sqrt(total / count), 3.0 / math.sqrt(2.0 * count)


def _assert_std(pairs, what: str) -> None:
    ratio, bound = _ratio(pairs)
    assert abs(ratio - 1.0) < bound, f"{what}: std / target = {ratio:.4f}, bound 1 +- {bound:.4f}"


def _xavier(fan_in, fan_out) -> float:
    return math.sqrt(2.0 / (fan_in + fan_out))


def _layers(model) -> dict[str, keras.layers.Layer]:
    return {
        layer.path or layer.name: layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
    }


def _residual_mlp(
    blocks=4, width=64, m=2, last_activation=None, relu_after=False, gate=None, seed=0
):
    """A stem, ``blocks`` branches ``x + Dense(...(relu(Dense(x))))`` of ``m`` kernels, a head."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((width,))
    x = keras.layers.Dense(width, name="stem")(inputs)
    for i in range(blocks):
        h = x
        for j in range(m - 1):
            h = keras.layers.Dense(width, activation="relu", name=f"block{i}_dense{j}")(h)
        h = keras.layers.Dense(width, activation=last_activation, name=f"block{i}_out")(h)
        if relu_after:
            h = keras.layers.ReLU(name=f"block{i}_relu")(h)
        if gate is not None:
            h = ResidualGain(initial=gate, name=f"block{i}_gain")(h)
        x = keras.layers.Add(name=f"block{i}_add")([x, h])
    outputs = keras.layers.Dense(10, name="classifier")(x)
    return keras.Model(inputs, outputs, name="residual_mlp")


# -- the table and the arguments ------------------------------------------------------------


def test_recipes_table_lists_every_recipe():
    # Control: a name that is no recipe is not in the table.
    table = recipes_table()
    lines = table.splitlines()
    assert lines[0] == "| recipe | rule | paper |"
    assert len(lines) == 2 + len(RECIPES)
    for name, recipe in RECIPES.items():
        assert f"| `{name}` | {recipe.formula} | {recipe.paper} |" in table
    assert "`no_such_recipe`" not in table
    expected = {"fixup", "skipinit", "rezero", "gpt2", "megatron", "olmo_mitchell"}
    assert expected | {"t_fixup", "deepnorm", "nf"} == set(RECIPES)


def test_the_readme_table_is_the_generated_one():
    """The README's recipe table is ``recipes_table()``, between its markers (control: a
    recipe record edited without the README fails here)."""
    readme = (Path(__file__).resolve().parent.parent / "docs/how-to/residual-nets.md").read_text()
    block = readme.split("<!-- recipes:start -->\n", 1)[1].split("\n<!-- recipes:end -->", 1)[0]
    assert block == recipes_table()


def test_bad_arguments_are_refused_with_the_allowed_values():
    # Control: the same model with a known recipe and a good seed goes through.
    model = _residual_mlp(blocks=1, width=8)
    with pytest.raises(ValueError, match="must be one of .*'fixup'.*'nf'"):
        apply_recipe(model, "fixupp")
    with pytest.raises(ValueError, match="must be one of"):
        apply_recipe(model, None)
    for seed in (-1, 2**32, 1.5, True):
        with pytest.raises(ValueError, match="`seed` must be None or an integer"):
            apply_recipe(model, "fixup", seed=seed)
    with pytest.raises(ValueError, match="must be a Keras model"):
        apply_recipe("model", "fixup")
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="has none"):
        apply_recipe(plain, "gpt2")
    assert len(apply_recipe(model, "fixup", seed=0))


def test_a_seed_reproduces_the_draw_and_megatron_draws_as_gpt2():
    # Control: another seed draws other values.
    def kernels(recipe, seed):
        model = _residual_mlp(blocks=2, width=16)
        apply_recipe(model, recipe, seed=seed)
        return [_numpy(v) for v in model.trainable_variables]

    first, again = kernels("gpt2", 7), kernels("gpt2", 7)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    megatron = kernels("megatron", 7)
    assert all(np.array_equal(a, b) for a, b in zip(first, megatron, strict=True))
    other = kernels("gpt2", 8)
    assert not np.array_equal(first[0], other[0])


# -- fixup and skipinit on a residual MLP ---------------------------------------------------


@pytest.mark.parametrize("m", [2, 3])
def test_fixup_zeroes_branch_ends_and_classifier_and_scales_the_rest(m):
    """Zhang et al. 2019: branch ends and classifier 0; He normal times L^(-1/(2m-2)) inside.

    Controls: before the recipe the branch ends are not zero; plain He normal
    (without the factor, 2x or 1.41x here) fails the inner-kernel check.
    """
    blocks = 4
    model = _residual_mlp(blocks=blocks, m=m)
    layers = _layers(model)
    ends = [layers[f"block{i}_out"] for i in range(blocks)]
    assert all(np.any(_numpy(layer.kernel)) for layer in ends)
    report = apply_recipe(model, "fixup", seed=1)
    for layer in [*ends, layers["classifier"]]:
        assert not np.any(_numpy(layer.kernel)) and not np.any(_numpy(layer.bias))
    factor = blocks ** (-1.0 / (2 * m - 2))
    inner = [layers[f"block{i}_dense{j}"] for i in range(blocks) for j in range(m - 1)]
    he = math.sqrt(2.0 / 64)
    _assert_std([(layer.kernel, he * factor) for layer in inner], "inner branch kernels")
    ratio, bound = _ratio([(layer.kernel, he) for layer in inner])
    assert abs(ratio - 1.0) > 5 * bound  # the control: the factor is there
    _assert_std([(layers["stem"].kernel, he)], "stem (He normal, no factor)")
    rows = {row["path"]: row for row in report}
    assert rows["block0_out/kernel"]["role"] == "branch end"
    assert rows["classifier/kernel"]["role"] == "classifier"
    assert rows["block0_dense0/kernel"]["target std"] == pytest.approx(he * factor)


def test_skipinit_zeroes_each_branch_end_and_nothing_else():
    # Controls: the branch ends are not zero before; the inner kernels are compared to
    # their values before, so a recipe that touched them would fail.
    model = _residual_mlp(blocks=3, width=16)
    layers = _layers(model)
    inner = {path: _numpy(layer.kernel) for path, layer in layers.items() if "dense0" in path}
    assert all(np.any(_numpy(layers[f"block{i}_out"].kernel)) for i in range(3))
    report = apply_recipe(model, "skipinit")
    for i in range(3):
        assert not np.any(_numpy(layers[f"block{i}_out"].kernel))
        assert not np.any(_numpy(layers[f"block{i}_out"].bias))
    for path, before in inner.items():
        assert np.array_equal(_numpy(layers[path].kernel), before)
    assert {row["path"] for row in report} == {
        f"block{i}_out/{name}" for i in range(3) for name in ("kernel", "bias")
    }
    x = np.random.default_rng(0).standard_normal((4, 16)).astype("float32")
    stem = _numpy(layers["stem"](x))
    head = layers["classifier"]
    expected = stem @ _numpy(head.kernel) + _numpy(head.bias)
    np.testing.assert_allclose(_numpy(model(x)), expected, rtol=1e-5, atol=1e-5)


def test_skipinit_and_rezero_set_a_residual_gain_and_leave_the_kernels():
    # Control: the gates start at 1, and the branch ends' kernels are compared to before.
    for recipe in ("skipinit", "rezero"):
        model = _residual_mlp(blocks=2, width=16, gate=1.0)
        layers = _layers(model)
        before = _numpy(layers["block1_out"].kernel)
        assert _numpy(layers["block1_gain"].alpha) == 1.0
        report = apply_recipe(model, recipe)
        assert [_numpy(layers[f"block{i}_gain"].alpha) for i in range(2)] == [0.0, 0.0]
        assert np.array_equal(_numpy(layers["block1_out"].kernel), before)
        assert [row["role"] for row in report] == ["gate", "gate"]


def test_skipinit_refuses_a_branch_that_zero_would_kill():
    # Control: the same model with a linear branch end is accepted (the test above).
    with pytest.raises(ValueError, match="'block0_out'.*flat below 0"):
        apply_recipe(_residual_mlp(blocks=2, width=8, last_activation="relu"), "skipinit")
    with pytest.raises(ValueError, match="'block0_relu'.*after the zeroed layer 'block0_out'"):
        apply_recipe(_residual_mlp(blocks=2, width=8, relu_after=True), "skipinit")
    with pytest.raises(ValueError, match="not 0, at 0"):
        apply_recipe(_residual_mlp(blocks=2, width=8, last_activation="sigmoid"), "rezero")
    with pytest.raises(ValueError, match="flat below 0"):
        apply_recipe(_residual_mlp(blocks=2, width=8, last_activation="relu"), "fixup")


# -- nf on a residual MLP ---------------------------------------------------------------


def test_nf_standardizes_and_keeps_the_signal_bookkeeping():
    """Brock et al. 2021: each unit's weights sum to 0 with norm gamma; the first kernel of
    block l carries beta_l = 1/sqrt(1 + l alpha^2), the branch end alpha = 0.2.

    Control: without beta (norm 1) block 3's first kernel would be 1 - 0.945 off, and
    without gamma (norm 0.2) the branch ends 0.14 off, far beyond the 1e-4 tolerance.
    """
    blocks = 4
    model = _residual_mlp(blocks=blocks, width=32)
    layers = _layers(model)
    report = apply_recipe(model, "nf", seed=0)

    def columns(layer):
        kernel = _numpy(layer.kernel)
        return kernel.mean(axis=0), np.linalg.norm(kernel, axis=0)

    gamma = nf_gamma("relu")
    for i in range(blocks):
        mean, norm = columns(layers[f"block{i}_dense0"])
        np.testing.assert_allclose(mean, 0.0, atol=1e-6)
        np.testing.assert_allclose(norm, 1.0 / math.sqrt(1.0 + i * 0.2**2), rtol=1e-4)
        mean, norm = columns(layers[f"block{i}_out"])
        np.testing.assert_allclose(mean, 0.0, atol=1e-6)
        np.testing.assert_allclose(norm, 0.2 * gamma, rtol=1e-4)
    np.testing.assert_allclose(columns(layers["stem"])[1], 1.0, rtol=1e-4)
    assert report.constants["alpha"] == 0.2
    assert report.constants["expected_var"] == pytest.approx(1.0 + blocks * 0.04)
    assert any("applied once, at initialization" in note for note in report.notes)


# -- KerasHub transformers ------------------------------------------------------------------


def _gpt2(num_layers: int):
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    return keras_hub.models.GPT2Backbone(
        vocabulary_size=100,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=16,
    )


def _by_role(model):
    """Kernels of a KerasHub transformer, grouped: qkv, ffn_in, attention_output, ffn_out."""
    groups = {"qkv": [], "ffn_in": [], "attention_output": [], "ffn_out": [], "embeddings": []}
    for variable in model.weights:
        path = variable.path
        if path.endswith(("query/kernel", "key/kernel", "value/kernel")):
            groups["qkv"].append(variable)
        elif path.endswith("feedforward_intermediate_dense/kernel"):
            groups["ffn_in"].append(variable)
        elif path.endswith("attention_output/kernel"):
            groups["attention_output"].append(variable)
        elif path.endswith("feedforward_output_dense/kernel"):
            groups["ffn_out"].append(variable)
        elif path.endswith("embeddings"):
            groups["embeddings"].append(variable)
    return groups


@pytest.mark.slow
def test_gpt2_recipe_on_a_12_layer_gpt2():
    """Radford et al. 2019: std 0.02, and 0.02/sqrt(2 n_layers) on the branch ends.

    Control: KerasHub draws every kernel with std 0.02, so before the recipe the output
    projections fail the 0.02/sqrt(24) check.
    """
    model = _gpt2(12)
    groups = _by_role(model)
    end = 0.02 / math.sqrt(24)
    ratio, bound = _ratio([(v, end) for v in groups["attention_output"] + groups["ffn_out"]])
    assert abs(ratio - 1.0) > bound  # the control
    report = apply_recipe(model, "gpt2", seed=0)
    assert len(groups["qkv"]) == 36 and len(groups["embeddings"]) == 2
    for name in ("qkv", "ffn_in", "embeddings"):
        _assert_std([(v, 0.02) for v in groups[name]], name)
    for name in ("attention_output", "ffn_out"):
        _assert_std([(v, end) for v in groups[name]], name)
    assert report.constants["n_layers"] == 12
    biases = [v for v in model.weights if v.path.endswith("/bias")]
    assert biases and not any(np.any(_numpy(v)) for v in biases)


def test_olmo_mitchell_on_gpt2():
    """OLMo's mitchell init: 1/sqrt(fan_in), branch ends of block l 1/sqrt(2 fan_in (l+1)),
    embeddings 1/sqrt(d), truncated at 3 std.

    Control: without the (l+1) the branch ends of block 1 are sqrt(2) off.
    """
    model = _gpt2(2)
    apply_recipe(model, "olmo_mitchell", seed=0)
    kept = math.sqrt(truncated_normal_variance(-3.0, 3.0))
    layers = _layers(model)
    for index in (0, 1):
        prefix = f"transformer_layer_{index}"
        ends = [
            (layers[f"{prefix}/self_attention/attention_output"].kernel, 32),
            (layers[f"{prefix}/feedforward_output_dense"].kernel, 64),
        ]
        pairs = [(k, kept / math.sqrt(2 * fan_in * (index + 1))) for k, fan_in in ends]
        _assert_std(pairs, f"branch ends of block {index}")
        for kernel, target in pairs:
            assert np.max(np.abs(_numpy(kernel))) <= 3.0 * target / kept * (1 + 1e-6)
        if index == 1:
            ratio, bound = _ratio([(k, kept / math.sqrt(2 * f)) for k, f in ends])
            assert abs(ratio - 1.0) > 5 * bound  # the control
    groups = _by_role(model)
    _assert_std([(v, kept / math.sqrt(32)) for v in groups["qkv"] + groups["ffn_in"]], "inputs")
    _assert_std([(v, kept / math.sqrt(32)) for v in groups["embeddings"]], "embeddings")


def test_t_fixup_on_gpt2():
    """Huang et al. 2020 (decoder rule): value, output and MLP kernels Xavier x (9N)^(-1/4),
    query and key Xavier / sqrt(2), token embeddings N(0, 1/d) x (9N)^(-1/4).

    Control: plain Xavier (2.06x here) fails the scaled check.
    """
    model = _gpt2(2)
    report = apply_recipe(model, "t_fixup", seed=0)
    scale = (9 * 2) ** -0.25
    assert report.constants["scale"] == pytest.approx(scale)
    layers = _layers(model)
    scaled, query_key = [], []
    for index in (0, 1):
        prefix = f"transformer_layer_{index}"
        for name, fans in (
            ("self_attention/value", (32, 32)),
            ("self_attention/attention_output", (32, 32)),
            ("feedforward_intermediate_dense", (32, 64)),
            ("feedforward_output_dense", (64, 32)),
        ):
            scaled.append((layers[f"{prefix}/{name}"].kernel, _xavier(*fans)))
        for name in ("query", "key"):
            query_key.append((layers[f"{prefix}/self_attention/{name}"].kernel, 0.125))
    _assert_std([(k, s * scale) for k, s in scaled], "value, output and MLP kernels")
    ratio, bound = _ratio(scaled)
    assert abs(ratio - 1.0) > 5 * bound  # the control
    _assert_std(query_key, "query and key")
    token = layers["token_embedding"].embeddings
    _assert_std([(token, 32**-0.5 * scale)], "token embeddings")


def _layer_norm(values, layer) -> np.ndarray:
    """LayerNormalization by hand, over the last axis."""
    mean = values.mean(axis=-1, keepdims=True)
    variance = values.var(axis=-1, keepdims=True)
    normalized = (values - mean) / np.sqrt(variance + layer.epsilon)
    return normalized * _numpy(layer.gamma) + _numpy(layer.beta)


@contextlib.contextmanager
def _scaled(variable, factor):
    before = variable.value
    variable.assign(before * factor)
    try:
        yield
    finally:
        variable.assign(before)


def test_deepnorm_on_a_post_ln_bert_and_refused_on_pre_ln_gpt2():
    """Wang et al. 2022: alpha = (2N)^(1/4), beta = (8N)^(-1/4) for N = 2 blocks.

    The kernels: Xavier normal with gain beta (value, MLP), gain 1 (query, key),
    and gain beta / alpha on the branch ends. The block: its output is
    LN2(alpha h + G2(h)), h = LN1(alpha x + G1(x)), G the branches with their
    ends' kernels before the division by alpha, by hand in NumPy.

    Controls: the branch ends without the division (ratio alpha = 1.41) fail
    the kernel check; LN(x + G(x)) without alpha misses the block's output by
    far more than 1e-4.
    """
    keras_hub = pytest.importorskip("keras_hub")
    with pytest.raises(ValueError, match="post-LN.*pre-LN"):
        apply_recipe(_gpt2(2), "deepnorm")
    keras.utils.set_random_seed(0)
    model = keras_hub.models.BertBackbone(
        vocabulary_size=100,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=16,
    )
    report = apply_recipe(model, "deepnorm", seed=0)
    alpha, beta = 4**0.25, 16**-0.25
    assert report.constants["alpha"] == pytest.approx(alpha)
    assert report.constants["beta"] == pytest.approx(beta)
    assert any(f"alpha = (2N)^(1/4) = {alpha:.6g}" in note for note in report.notes)

    layers = _layers(model)
    xavier_32, xavier_ffn = _xavier(32, 32), _xavier(32, 64)
    groups = {"query and key": [], "value and MLP in": [], "branch ends": []}
    for index in (0, 1):
        attention = f"transformer_layer_{index}/self_attention_layer"
        for name in ("query", "key"):
            groups["query and key"].append((layers[f"{attention}/{name}"].kernel, xavier_32))
        groups["value and MLP in"] += [
            (layers[f"{attention}/value"].kernel, beta * xavier_32),
            (layers[f"transformer_layer_{index}/feedforward_intermediate_dense"].kernel,
             beta * xavier_ffn),
        ]  # fmt: skip
        groups["branch ends"] += [
            (layers[f"{attention}/attention_output"].kernel, beta * xavier_32 / alpha),
            (layers[f"transformer_layer_{index}/feedforward_output_dense"].kernel,
             beta * xavier_ffn / alpha),
        ]  # fmt: skip
    for name, pairs in groups.items():
        _assert_std(pairs, name)
    ratio, bound = _ratio([(k, s * alpha) for k, s in groups["branch ends"]])
    assert abs(ratio - 1.0) > 5 * bound  # the control

    prefix = "transformer_layer_0"
    block = layers[prefix]
    attention = layers[f"{prefix}/self_attention_layer"]
    attention_out = layers[f"{prefix}/self_attention_layer/attention_output"]
    ffn_in = layers[f"{prefix}/feedforward_intermediate_dense"]
    ffn_out = layers[f"{prefix}/feedforward_output_dense"]
    x = np.random.default_rng(0).standard_normal((2, 16, 32)).astype("float32")
    output = _numpy(block(x, training=False))
    with _scaled(attention_out.kernel, alpha), _scaled(ffn_out.kernel, alpha):
        _assert_std(
            [(attention_out.kernel, beta * xavier_32), (ffn_out.kernel, beta * xavier_ffn)],
            "branch ends before the division (DeepNet's gain beta)",
        )
        g1 = _numpy(attention(x, x, training=False))
        h = _layer_norm(alpha * x + g1, layers[f"{prefix}/self_attention_layer_norm"])
        g2 = _numpy(ffn_out(ffn_in(h.astype("float32"))))
        expected = _layer_norm(alpha * h + g2, layers[f"{prefix}/feedforward_layer_norm"])
        h_plain = _layer_norm(x + g1, layers[f"{prefix}/self_attention_layer_norm"])
        g2_plain = _numpy(ffn_out(ffn_in(h_plain.astype("float32"))))
        plain = _layer_norm(h_plain + g2_plain, layers[f"{prefix}/feedforward_layer_norm"])
    np.testing.assert_allclose(output, expected, atol=1e-4, rtol=0)
    assert np.max(np.abs(output - plain)) > 1e-2  # the control
