"""The residual stream: joins found, the stream kept level, predictions beside measurements.

Every test runs on every backend (``tests/test_backends.py``); each names the
control that fails its claim.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_initzoo as kiz
from keras_initzoo.models.propagate import propagate
from keras_initzoo.models.residual import trace
from keras_initzoo.models.trace import intercept, leaf_layers

WIDTH = 256


def residual_mlp(blocks: int = 20, width: int = WIDTH, two_layer: bool = False) -> keras.Model:
    """``x + Dense(relu)(x)`` blocks (or ``x + Dense(relu(Dense(x)))``), no normalization."""
    inputs = keras.Input((width,))
    x = inputs
    for i in range(1, blocks + 1):
        branch = keras.layers.Dense(width, activation="relu", name=f"block{i}_dense")(x)
        if two_layer:
            branch = keras.layers.Dense(width, name=f"block{i}_out")(branch)
        x = keras.layers.Add(name=f"block{i}_add")([x, branch])
    return keras.Model(inputs, x, name="resmlp")


class Block(keras.layers.Layer):
    """A subclassed block that writes its residual sum in ``call``, as KerasHub's do."""

    def __init__(self, width: int, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(width, activation="relu", name="inner")
        self.outer = keras.layers.Dense(width, name="outer")

    def call(self, x):
        return x + self.outer(self.inner(x))


class Net(keras.Model):
    """Attribute order (head first) differs from call order (blocks first)."""

    def __init__(self, width: int = 32, blocks: int = 3):
        super().__init__(name="net")
        self.head = keras.layers.Dense(4, name="head")
        self.blocks = [Block(width, name=f"block{i}") for i in range(blocks)]

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def _batch(n: int = 512, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, width)).astype("float32")


def _block_outputs(model: keras.Model, x: np.ndarray, names: list[str]) -> list[np.ndarray]:
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    return [keras.ops.convert_to_numpy(o) for o in probe(x)]


def test_functional_and_subclassed_joins_are_found_with_branch_and_depth():
    functional = kiz.residual_structure(residual_mlp(4, 16), _batch(8, 16))
    assert [(r["block"], r["depth"], r["branch end"]) for r in functional] == [
        (f"block{i}", i, f"block{i}_dense") for i in range(1, 5)
    ]
    net = Net()
    net(_batch(2, 32))
    subclassed = kiz.residual_structure(net, _batch(8, 32))
    assert [(r["block"], r["depth"], r["branch end"], r["kernels"]) for r in subclassed] == [
        (f"net/block{i}", i + 1, f"net/block{i}/outer", 2) for i in range(3)
    ]
    # control: a plain stack has no join
    plain = keras.Sequential([keras.Input((16,)), keras.layers.Dense(16), keras.layers.Dense(16)])
    assert len(kiz.residual_structure(plain, _batch(8, 16))) == 0


def test_auto_initialize_keeps_a_20_block_residual_stream_level_and_predicts_it():
    """The issue's residual MLP: 1.25e6 at block 20 before; now within 2x of the input,
    and the analytic variance within 10 % of the measured one at every block."""
    x = _batch()
    keras.utils.set_random_seed(0)
    model = residual_mlp()
    report = kiz.auto_initialize(model, x)
    names = [f"block{i}_add" for i in range(1, 21)]
    variances = [float(np.var(o)) for o in _block_outputs(model, x, names)]
    assert 0.5 < variances[-1] / float(np.var(x)) < 2.0, variances
    assert len(report.stream) == 20
    for entry in report.stream:
        assert entry["predicted var"] == pytest.approx(entry["measured var"], rel=0.10), entry
    # control: the same model without the stream law grows past 2x (gains alone)
    keras.utils.set_random_seed(0)
    grown = residual_mlp()
    kiz.auto_initialize(grown, x, stream=None)
    assert float(np.var(_block_outputs(grown, x, names[-1:])[0])) > 100 * float(np.var(x))


def test_every_branch_of_a_subclassed_block_is_scaled_and_the_report_names_it():
    net = Net(width=64, blocks=6)
    x = _batch(256, 64)
    net(x)
    report = kiz.auto_initialize(net, x)
    blocks = {row["path"]: row["block"] for row in report}
    assert blocks["net/block0/outer/kernel"] == "net/block0 branch end"
    assert blocks["net/block0/inner/kernel"] == "net/block0 branch"
    assert blocks["net/head/kernel"] is None
    structure = trace(net, x)
    stream = structure.nodes[structure.joins[-1].node].tensor
    assert float(np.mean(keras.ops.convert_to_numpy(stream) ** 2)) < 2.0


def test_inverted_dropout_after_relu_is_predicted_from_the_second_moment():
    """E[x^2]/(1-p), not Var/(1-p): after ReLU at p = 0.5 the latter is 19 % low."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((512,)),
            keras.layers.Dense(512, activation="relu", kernel_initializer="zoo_he"),
            keras.layers.Dropout(0.5, name="drop"),
        ]
    )
    x = _batch(512, 512)
    row = next(r for r in propagate(model, trace(model, x), training=True) if "drop" in r["name"])
    assert row["pred var"] == pytest.approx(row["var"], rel=0.05)
    # control: AutoInit's Var/(1-p) misses by more than 5 %
    relu = next(r for r in propagate(model, trace(model, x), training=True) if "dense" in r["name"])
    wrong = relu["pred var"] / 0.5
    assert abs(wrong / row["var"] - 1) > 0.05


def test_auto_initialize_reads_gelu_approximate_as_elementwise():
    def gelu_approximate(x):  # as KerasHub's keras_utils.gelu_approximate
        return keras.activations.gelu(x, approximate=True)

    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation=gelu_approximate),
            keras.layers.Dense(8),
        ]
    )
    report = kiz.auto_initialize(model, _batch(64, 64))
    assert report[1]["fed by"] == "gelu_approximate"
    assert report[1]["target var"] == pytest.approx(kiz.gain("gelu", approximate=True) ** 2 / 64)
    assert "not elementwise" not in report[1]["why"]


def test_signal_report_rows_follow_the_call_order():
    net = Net()
    x = _batch(16, 32)
    net(x)
    called = []

    def record(layer, call, args, kwargs):
        called.append(layer.path)
        return call(*args, **kwargs)

    with intercept(leaf_layers(net), record):
        net(x)
    rows = [row["layer"] for row in kiz.signal_report(net, x)]
    assert rows == list(dict.fromkeys(called))
    # control: the tracking order puts the head first
    assert [layer.path for layer in leaf_layers(net)] != rows


def test_signal_report_takes_x_y_as_fit_does_and_says_its_mode():
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
    )
    x, y = _batch(32, 8), np.zeros((32,), "int32")
    report = kiz.signal_report(model, (x, y))
    assert report.loss is not None and all(r["grad norm"] is not None for r in report)
    assert any("training mode" in note for note in report.notes)
    assert any("inference" in n for n in kiz.signal_report(model, x, training=False).notes)
    with pytest.raises(ValueError, match="`y` was given twice"):
        kiz.signal_report(model, (x, y), y)
    with pytest.raises(ValueError, match="`training` must be True or False"):
        kiz.signal_report(model, x, training="yes")


def test_the_verdict_follows_the_stream_not_the_first_layer():
    x = _batch()
    keras.utils.set_random_seed(2)
    assert kiz.signal_report(residual_mlp(), x).verdict == "exploding"  # 4.8e5 at block 20
    keras.utils.set_random_seed(2)
    level = residual_mlp()
    kiz.auto_initialize(level, x)
    assert kiz.signal_report(level, x).verdict == "healthy"
    # one block's branch times 100 (its RMS from ~0.16 to ~16) swamps its skip: exploding there
    kernel = level.get_layer("block7_dense").kernel
    kernel.assign(kernel * 100.0)
    report = kiz.signal_report(level, x)
    assert (report.verdict, report.where) == ("exploding", "block7")


def test_batch_normalization_is_measured_with_batch_statistics_and_state_is_kept():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((32,))
    x = inputs
    for i in range(12):
        branch = keras.layers.Dense(32, kernel_initializer=keras.initializers.RandomNormal(0, 3))(x)
        branch = keras.layers.BatchNormalization(name=f"bn{i}")(branch)
        x = keras.layers.Add(name=f"b{i}_add")([x, keras.layers.ReLU()(branch)])
    model = keras.Model(inputs, x)
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.non_trainable_variables]
    data = _batch(64, 32) * 5.0 + 3.0
    trained = kiz.signal_report(model, data)
    after = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert trained.verdict == "healthy"
    # control: in inference mode BatchNormalization passes the 3x-std branches through
    assert kiz.signal_report(model, data, training=False).verdict == "exploding"


class SwiGLU(keras.layers.Layer):
    """Llama's MLP: the activation applied by an op in ``call``, not by a layer."""

    def __init__(self, width: int, hidden: int, activation: str | None = "silu", **kwargs):
        super().__init__(**kwargs)
        self.function = keras.activations.get(activation) if activation else None
        self.gate = keras.layers.Dense(hidden, name="gate")
        self.up = keras.layers.Dense(hidden, name="up")
        self.down = keras.layers.Dense(width, name="down")

    def call(self, x):
        gate = self.gate(x)
        gate = self.function(gate) if self.function else gate
        return x + self.down(keras.ops.multiply(self.up(x), gate))


@pytest.mark.parametrize("activation", ["silu", None])
def test_a_gate_activated_inside_call_gives_the_next_kernel_its_gain(activation):
    inputs = keras.Input((32,))
    outputs = SwiGLU(32, 64, activation, name="mlp")(inputs)
    model = keras.Model(inputs, outputs)
    report = {row["path"]: row for row in kiz.auto_initialize(model, _batch(256, 32))}
    down = report["mlp/down/kernel"]
    # control: u * g with no activation is a plain product, fed by linear
    assert down["fed by"] == (activation or "linear")
    gates = [n for n in trace(model, _batch(8, 32)).nodes if n.kind == "gate"]
    assert [n.activation for n in gates] == [activation]
