"""walk, reinitialize and Report on real Keras layers and models: every kernel's true fans.

Variance checks: every kernel checked has n >= 3200 entries. The sample
variance of n normal draws has relative standard error sqrt(2 / n) <= 2.5 %,
so a 10 % band is 4 or more standard errors; zoo_he's truncated normal (and
any uniform) has lower kurtosis than the normal, so the band is wider still
in standard errors of those draws.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import keras_initzoo as kiz
from keras_initzoo.models import Report, draw_kernel, einsum_axes, reinitialize, walk
from keras_initzoo.models.report import format_value

L = keras.layers
REL = 0.10  # see the module docstring


class Scale(L.Layer):
    """A layer the walk has no rule for: its ``alpha`` must be left alone and reported."""

    def build(self, input_shape):
        self.alpha = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="alpha")

    def call(self, x):
        return x * self.alpha


class Block(L.Layer):
    """A layer holding sublayers, as KerasHub's transformer blocks do."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.inner = L.Dense(units, name="inner")
        self.outer = L.Dense(units, name="outer")

    def build(self, input_shape):
        self.inner.build(input_shape)
        self.outer.build((*input_shape[:-1], self.inner.units))

    def call(self, x):
        return self.outer(self.inner(x))


class Tower(keras.Model):
    """A subclassed model: a Dense, then a Block."""

    def __init__(self):
        super().__init__(name="tower")
        self.first = L.Dense(64, name="first")
        self.block = Block(64, name="block")

    def call(self, x):
        return self.block(self.first(x))


def _var(variable) -> float:
    return float(np.var(keras.ops.convert_to_numpy(variable).astype("float64")))


def _every_layer_kind() -> tuple[keras.Model, dict[str, int]]:
    """A functional model with every layer kind the walk knows, and each kernel's true fan_in.

    Sizes keep every kernel at >= 3200 entries (see the module docstring).
    """
    seq = keras.Input((8, 64), name="seq")
    image = keras.Input((8, 8, 64), name="image")
    volume = keras.Input((4, 4, 4, 16), name="volume")
    tokens = keras.Input((8,), dtype="int32", name="tokens")

    x = L.Dense(128, name="dense")(seq)
    x = L.EinsumDense("...b,bc->...c", output_shape=64, name="einsum")(x)
    # ``b`` indexes one kernel per position: a batch axis, in neither fan.
    x = L.EinsumDense("abc,bcd->abd", output_shape=(8, 64), name="per_position")(x)
    x = L.MultiHeadAttention(num_heads=4, key_dim=32, name="mha")(x, x)
    x = L.LayerNormalization(name="ln")(x)
    x = L.Conv1D(64, 3, padding="same", name="conv1d")(x)
    x = Scale(name="scale")(x)
    lstm = L.LSTM(32, return_sequences=True, name="lstm")(x)
    gru = L.GRU(48, return_sequences=True, name="gru")(x)
    rnn = L.SimpleRNN(64, name="rnn")(x)

    y = L.Conv2D(64, 3, groups=4, padding="same", name="grouped")(image)
    y = L.BatchNormalization(name="bn")(y)
    y = L.Conv2DTranspose(32, 3, name="transposed")(y)
    z = L.DepthwiseConv2D(3, depth_multiplier=8, name="depthwise")(image)
    s = L.SeparableConv2D(64, 3, depth_multiplier=8, name="separable")(image)
    v = L.Conv3D(32, 3, name="conv3d")(volume)
    e = L.Embedding(1000, 32, name="embedding")(tokens)

    model = keras.Model([seq, image, volume, tokens], [lstm, gru, rnn, y, z, s, v, e])
    fan_in = {
        "dense/kernel": 64,
        "einsum/kernel": 128,
        "per_position/kernel": 64,
        "mha/query/kernel": 64,  # model_dim, not heads * key_dim
        "mha/key/kernel": 64,
        "mha/value/kernel": 64,
        "mha/attention_output/kernel": 4 * 32,  # heads * key_dim
        "conv1d/kernel": 3 * 64,
        "lstm/lstm_cell/kernel": 64,  # per gate: (in, units)
        "lstm/lstm_cell/recurrent_kernel": 32,
        "gru/gru_cell/kernel": 64,
        "gru/gru_cell/recurrent_kernel": 48,
        "rnn/simple_rnn_cell/kernel": 64,
        "rnn/simple_rnn_cell/recurrent_kernel": 64,
        "grouped/kernel": 3 * 3 * 64 // 4,  # k k C / groups
        "transposed/kernel": 3 * 3 * 64,  # input channels are the last axis
        "depthwise/kernel": 3 * 3,  # one input channel per output
        "separable/depthwise_kernel": 3 * 3,
        "separable/pointwise_kernel": 64 * 8,
        "conv3d/kernel": 27 * 16,
        "embedding/embeddings": 1,  # one-hot input selects one row
    }
    return model, fan_in


def test_reinitialize_gives_every_layer_kind_he_variance_for_its_true_fans():
    keras.utils.set_random_seed(0)
    model, fan_in = _every_layer_kind()
    report = reinitialize(model, kiz.HeNormal(seed=1))
    assert sorted(row["path"] for row in report) == sorted(fan_in)
    for row in report:
        assert math.prod(row["shape"]) >= 3200, row
        assert row["fan_in"] == fan_in[row["path"]], row
        assert row["target var"] == pytest.approx(2.0 / row["fan_in"]), row
        variable = next(v for v in model.weights if v.path == row["path"])
        assert _var(variable) == pytest.approx(row["actual var"])
        assert row["actual var"] == pytest.approx(row["target var"], rel=REL), row
    by_path = {row["path"]: row for row in report}
    assert by_path["lstm/lstm_cell/kernel"]["fan_out"] == 32  # per gate
    assert by_path["grouped/kernel"]["fan_out"] == 3 * 3 * 64 // 4
    assert by_path["depthwise/kernel"]["fan_out"] == 3 * 3 * 8
    assert by_path["embedding/embeddings"]["fan_out"] == 32
    # The unknown layer and both normalizations are reported, not touched.
    notes = "\n".join(report.notes)
    assert "scale (Scale): alpha: no known fan rule for layer class Scale" in notes
    assert "ln (LayerNormalization): gamma, beta: normalization" in notes
    assert "bn (BatchNormalization): gamma, beta: normalization" in notes
    assert np.all(keras.ops.convert_to_numpy(model.get_layer("scale").alpha) == 1.0)


def test_walk_gives_role_blocks_and_forward_order():
    model, _ = _every_layer_kind()
    found = walk(model)
    sites = {site.path: site for site in found.kernels}
    assert [sites[p].blocks for p in ("lstm/lstm_cell/kernel", "gru/gru_cell/kernel")] == [4, 3]
    assert sites["rnn/simple_rnn_cell/recurrent_kernel"].blocks == 1
    assert sites["grouped/kernel"].blocks == 4
    assert sites["grouped/kernel"].block_shape == (3, 3, 16, 16)
    assert sites["lstm/lstm_cell/recurrent_kernel"].role == "recurrent_kernel"
    assert sites["depthwise/kernel"].role == "depthwise_kernel"
    assert sites["separable/pointwise_kernel"].role == "pointwise_kernel"
    assert sites["embedding/embeddings"].role == "embeddings"
    paths = [site.path for site in found.kernels]
    assert (
        paths.index("dense/kernel")
        < paths.index("mha/query/kernel")
        < paths.index("mha/attention_output/kernel")
        < paths.index("conv1d/kernel")
    )
    # Biases are listed apart, one per layer that has one.
    assert "dense/bias" in [v.path for v in found.biases]
    assert all(v.name == "bias" for v in found.biases)
    assert ("scale", "alpha: no known fan rule for layer class Scale") in found.notes


def test_wrappers_and_conv_lstm():
    model = keras.Sequential(
        [
            keras.Input((6, 10, 8)),
            L.ConvLSTM1D(16, 3, return_sequences=True, name="conv_lstm"),
            L.Reshape((6, 8 * 16)),
            L.Bidirectional(L.LSTM(32, return_sequences=True, name="lstm"), name="bi"),
            L.TimeDistributed(L.Dense(8, name="dense"), name="td"),
        ],
        name="wrapped",
    )
    fans = {
        site.path.removeprefix("wrapped/"): (site.fan_in, site.fan_out, site.blocks)
        for site in walk(model).kernels
    }
    assert fans == {
        "conv_lstm/conv_lstm_cell/kernel": (3 * 8, 3 * 16, 4),  # (k, in, 4 filters)
        "conv_lstm/conv_lstm_cell/recurrent_kernel": (3 * 16, 3 * 16, 4),
        "bi/forward_lstm/lstm_cell/kernel": (128, 32, 4),
        "bi/forward_lstm/lstm_cell/recurrent_kernel": (32, 32, 4),
        "bi/backward_lstm/lstm_cell/kernel": (128, 32, 4),
        "bi/backward_lstm/lstm_cell/recurrent_kernel": (32, 32, 4),
        "td/dense/kernel": (64, 8, 1),
    }


def test_einsum_axes():
    assert einsum_axes("abc,cde->abde") == {"input_axes": [0], "output_axes": [1, 2]}
    assert einsum_axes("abcd,cde->abe") == {"input_axes": [0, 1], "output_axes": [2]}
    assert einsum_axes("ab...,bc->ac...") == {"input_axes": [0], "output_axes": [1]}
    assert einsum_axes("abc,bcd->abd") == {"input_axes": [1], "output_axes": [2]}
    with pytest.raises(ValueError, match="`equation`"):
        einsum_axes("ab->b")
    with pytest.raises(ValueError, match="neither"):
        einsum_axes("ab,bz->ac")


def test_nested_subclassed_and_shared_layers():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((64,)), L.Dense(64, name="d1")], name="inner")
    shared = L.Dense(64, name="shared")
    tower = Tower()
    x = keras.Input((64,))
    y = tower(inner(shared(shared(x))))
    model = keras.Model(x, y)
    found = walk(model)
    paths = [site.path for site in found.kernels]
    assert paths == [
        "shared/kernel",  # used twice, visited once
        "inner/d1/kernel",
        "tower/first/kernel",
        "tower/block/inner/kernel",
        "tower/block/outer/kernel",
    ]
    report = reinitialize(model, "zoo_he")
    assert len(report) == 5
    for row in report:
        assert row["actual var"] == pytest.approx(2.0 / 64, rel=REL), row
    # Each kernel its own draw: same shape, same initializer, different values.
    values = [keras.ops.convert_to_numpy(site.variable) for site in found.kernels]
    assert all(not np.allclose(values[0], other) for other in values[1:])


def test_a_model_that_owns_a_variable_and_frozen_layers():
    class Owner(keras.Model):
        def __init__(self):
            super().__init__(name="owner")
            self.dense = L.Dense(8, name="dense")

        def build(self, input_shape):
            self.temperature = self.add_weight(shape=(), name="temperature")
            self.dense.build(input_shape)

        def call(self, x):
            return self.dense(x) * self.temperature

    model = Owner()
    model.build((None, 4))
    model.dense.trainable = False  # frozen layers are walked too
    found = walk(model)
    assert [site.path for site in found.kernels] == ["owner/dense/kernel"]
    assert found.notes == [("owner", "temperature: no known fan rule for layer class Owner")]


@pytest.mark.parametrize(
    "skip",
    [["mha"], ["mha/query", "mha/key", "mha/value", "mha/attention_output"], "^mha", None],
    ids=["name", "paths", "regex", "callable"],
)
def test_skip_leaves_layers_and_their_sublayers_alone(skip):
    if skip is None:
        skip = lambda layer: isinstance(layer, L.MultiHeadAttention)  # noqa: E731
    keras.utils.set_random_seed(0)
    model, _ = _every_layer_kind()
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}
    report = reinitialize(model, "zoo_he", skip=skip)
    assert not [row for row in report if row["path"].startswith("mha/")]
    assert "dense/kernel" in report.column("path")
    for variable in model.weights:
        if variable.path.startswith("mha/"):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(variable), before[variable.path]
            )
    assert any("skipped" in note and note.startswith("mha") for note in report.notes)


def test_skip_rejects_unknown_names_and_bad_types():
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, name="head")])
    with pytest.raises(ValueError, match=r"`skip` names no layer.*'hed'"):
        walk(model, skip=["hed"])
    with pytest.raises(ValueError, match="`skip`"):
        walk(model, skip=3)
    with pytest.raises(ValueError, match="`skip` is not a valid regex"):
        walk(model, skip="(")


def test_biases_are_zeroed_only_when_asked():
    model = keras.Sequential(
        [keras.Input((8, 4)), L.Dense(8, bias_initializer="ones"), L.LSTM(4, name="lstm")]
    )
    reinitialize(model, "zoo_he")
    biases = walk(model).biases
    assert len(biases) == 2 and all(np.any(keras.ops.convert_to_numpy(b) != 0) for b in biases)
    report = reinitialize(model, "zoo_he", biases=True)
    assert all(np.all(keras.ops.convert_to_numpy(b) == 0) for b in biases)
    assert "2 biases set to zero" in report.notes
    with pytest.raises(ValueError, match="`biases`"):
        reinitialize(model, biases="yes")


def test_unbuilt_model_and_non_keras_objects_are_refused():
    with pytest.raises(ValueError, match="not built.*build it first"):
        walk(keras.Sequential([L.Dense(3)]))
    with pytest.raises(ValueError, match="`model` must be a built keras.Model"):
        reinitialize(np.zeros((3, 3)))
    model = keras.Sequential([keras.Input((4,)), L.Dense(3)])
    with pytest.raises(ValueError, match="Unknown initializer 'he_normal'.*zoo_he"):
        reinitialize(model, "he_normal")


def test_report_prints_a_row_per_kernel_and_markdown():
    model, fan_in = _every_layer_kind()
    report = reinitialize(model, "zoo_he")
    text = str(report)
    assert text == repr(report)
    lines = text.splitlines()
    assert lines[0] == "reinitialize: zoo_he"
    header = "path layer shape fan_in fan_out target var actual var note"
    assert lines[1].split() == header.split()
    assert len(lines) == 3 + len(fan_in) + len(report.notes)
    transposed = next(line for line in lines if line.startswith("transposed/kernel"))
    assert "3.47e-03" in transposed.split()  # 2 / 576: small variances in e-notation
    markdown = report.to_markdown().splitlines()
    table = [line for line in markdown if line.startswith("|")]
    assert len(table) == 2 + len(report) == 2 + len(fan_in)
    assert markdown[0] == "### reinitialize: zoo_he"
    assert all(f"- {note}" in markdown for note in report.notes)


def test_report_as_a_generic_sequence():
    report = Report([{"a": 1, "b": 2.5e-5}, {"a": 2, "c": "x|y"}], title="t", notes=["n"])
    assert report.columns == ("a", "b", "c")
    assert len(report) == 2 and report[1]["c"] == "x|y" and report[:1] == [report[0]]
    assert [row["a"] for row in report] == [1, 2]
    assert report.column("b") == [2.5e-5, None]
    assert "2.50e-05" in str(report) and "x\\|y" in report.to_markdown()
    with pytest.raises(ValueError, match="`name`"):
        report.column("z")
    report.add(a=3, d=True)
    assert report.columns == ("a", "b", "c", "d")
    fixed = Report([{"a": 1, "hidden": 2}], columns=["a"])
    assert "hidden" not in str(fixed) and fixed[0]["hidden"] == 2
    assert format_value(float("nan")) == "nan" and format_value(123456.0) == "1.23e+05"


def test_orthogonal_makes_each_lstm_gate_block_orthogonal():
    keras.utils.set_random_seed(0)
    units = 32
    model = keras.Sequential([keras.Input((5, 64)), L.LSTM(units, name="lstm")])
    report = reinitialize(model, kiz.Orthogonal(seed=2))
    cell = model.layers[0].cell
    recurrent = keras.ops.convert_to_numpy(cell.recurrent_kernel).astype("float64")
    kernel = keras.ops.convert_to_numpy(cell.kernel).astype("float64")
    for gate in range(4):
        block = recurrent[:, gate * units : (gate + 1) * units]
        np.testing.assert_allclose(block.T @ block, np.eye(units), atol=1e-5)
        block = kernel[:, gate * units : (gate + 1) * units]  # (64, 32): orthonormal columns
        np.testing.assert_allclose(block.T @ block, np.eye(units), atol=1e-5)
    targets = {row["path"].rsplit("/", 1)[1]: row["target var"] for row in report}
    assert targets == pytest.approx({"recurrent_kernel": 1 / units, "kernel": 1 / 64})
    for row in report:  # W^T W = I per block: the mean square is exactly the target
        assert row["actual var"] == pytest.approx(row["target var"], rel=0.02)


def test_keras_glorot_uniform_uses_the_true_fans():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 64)),
            L.DepthwiseConv2D(3, depth_multiplier=8, padding="same"),
            L.Reshape((64, 512)),
            L.LSTM(64),
        ]
    )
    report = reinitialize(model, keras.initializers.GlorotUniform(seed=5))
    for row in report:
        fan_in, fan_out = row["fan_in"], row["fan_out"]
        assert row["target var"] == pytest.approx(2.0 / (fan_in + fan_out)), row
        assert row["actual var"] == pytest.approx(row["target var"], rel=REL), row
    assert [(row["fan_in"], row["fan_out"]) for row in report] == [(9, 72), (512, 64), (64, 64)]


def test_other_keras_initializers_give_each_kernel_its_own_draw():
    model = keras.Sequential([keras.Input((16,)), L.Dense(16), L.Dense(16)])
    report = reinitialize(model, keras.initializers.RandomNormal(stddev=0.1, seed=3))
    first, second = (keras.ops.convert_to_numpy(layer.kernel) for layer in model.layers)
    assert not np.allclose(first, second)
    assert report.column("target var") == [None, None]


@pytest.mark.parametrize(
    "initializer, target",
    [
        ("zoo_glorot", lambda fi, fo: 2.0 / (fi + fo)),
        (kiz.EpsilonUniform(epsilon=0.1), lambda fi, fo: 0.1**2 / 3),
        ("zoo_lecun_uniform", lambda fi, fo: 1.0 / fi),
        ("zoo_gelu", lambda fi, fo: kiz.gain("gelu") ** 2 / fi),
        ({"class_name": "HeNormal", "config": {"mode": "fan_out"}}, lambda fi, fo: 2.0 / fo),
    ],
)
def test_fan_scaled_initializers_draw_for_the_true_fans(initializer, target):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 64)), L.GRU(64)])
    for row in reinitialize(model, initializer):
        assert row["target var"] == pytest.approx(target(64, 64)), row
        assert row["actual var"] == pytest.approx(row["target var"], rel=REL), row


def test_same_seed_same_weights():
    def weights():
        keras.backend.clear_session()
        model = keras.Sequential([keras.Input((8, 16)), L.LSTM(16), L.Dense(4)])
        reinitialize(model, kiz.HeNormal(seed=7))
        return [keras.ops.convert_to_numpy(v) for v in model.weights]

    for a, b in zip(weights(), weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_quantized_and_lora_variables_are_reported():
    quantized = keras.Sequential([keras.Input((4,)), L.Dense(8, name="q")])
    quantized.layers[0].quantize("int8")
    found = walk(quantized)
    assert not found.kernels and "kernel: dtype int8, quantized" in found.notes[0][1]
    lora = keras.Sequential([keras.Input((4,)), L.Dense(8, name="d")])
    lora.layers[0].enable_lora(2)
    found = walk(lora)
    assert [site.role for site in found.kernels] == ["kernel"]
    assert found.notes[0][1] == (
        "lora_kernel_a, lora_kernel_b: no known fan rule for these variables of Dense"
    )


def test_draw_kernel_redraws_one_site():
    model = keras.Sequential([keras.Input((64,)), L.Dense(64, name="d")])
    (site,) = walk(model).kernels
    target, actual = draw_kernel(site, "zoo_lecun")
    assert target == pytest.approx(1 / 64) and actual == pytest.approx(_var(site.variable))


def test_keras_hub_block_and_reversible_embedding():
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    tokens = keras.Input((8,), dtype="int32")
    embedding = keras_hub.layers.ReversibleEmbedding(100, 32, tie_weights=False, name="emb")
    x = keras_hub.layers.TransformerEncoder(64, 4, name="encoder")(embedding(tokens))
    model = keras.Model(tokens, embedding(x, reverse=True))
    sites = {site.path: site for site in walk(model).kernels}
    assert sites["emb/embeddings"].fan_in == 1
    assert (sites["emb/reverse_embeddings"].role, sites["emb/reverse_embeddings"].fan_in) == (
        "reverse_embeddings",
        32,
    )
    assert sites["encoder/self_attention_layer/query/kernel"].fan_in == 32
    assert sites["encoder/self_attention_layer/attention_output/kernel"].fan_in == 32
    assert sites["encoder/feedforward_output_dense/kernel"].fan_in == 64
