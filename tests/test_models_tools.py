"""auto_initialize, lsuv and signal_report on real Keras models: the papers' properties."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from autodiff import gradients

import keras_initzoo as kiz

WIDTH = 128


def _mlp(depth: int, activation: str, initializer: str = "zoo_glorot", seed: int = 0, width=WIDTH):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((width,))]
        + [
            keras.layers.Dense(width, activation=activation, kernel_initializer=initializer)
            for _ in range(depth)
        ]
    )


def _batch(seed: int = 0, n: int = 256, width=WIDTH):
    return np.random.default_rng(seed).standard_normal((n, width)).astype("float32")


def _log2_second_moments(model, x) -> np.ndarray:
    """log2 of each layer's output second moment, relative to the first layer's."""
    rms = np.array([row["act rms"] for row in kiz.signal_report(model, x)])
    return 2 * np.log2(rms / rms[0])


@pytest.mark.slow
def test_relu_mlp_keeps_its_level_with_auto_initialize_where_glorot_vanishes():
    """He et al. 2015: ReLU needs 2/fan_in; Glorot's 1/fan_avg halves the signal per layer.

    At finite width n the log of the signal's second moment after L He layers
    fluctuates from seed to seed with a variance of about 5L/n nats² (Hanin &
    Rolnick 2018) and is biased low by half of that. At n = 1024, L = 50 one
    seed sits about -0.2 ± 0.7 octaves off (measured: -0.39 ± 0.49), so the
    mean of 12 seeds is within about ±0.2 octaves of -0.3 and the ±1 bound is
    over 4 standard errors away. (At n = 512 and 8 seeds a run reached +1.09.)
    Glorot's shrinkage, 2^-49, is far outside.
    """
    auto, glorot = [], []
    for seed in range(12):
        x = _batch(seed, n=64, width=1024)
        model = _mlp(50, "relu", seed=seed, width=1024)
        glorot.append(_log2_second_moments(model, x)[-1])
        kiz.auto_initialize(model, x)
        auto.append(_log2_second_moments(model, x))
    mean_auto = np.mean(auto, axis=0)
    assert np.all(np.abs(mean_auto) <= 1.0), mean_auto
    assert np.mean(glorot) < -40


@pytest.mark.parametrize("activation", ["tanh", "gelu", "silu"])
@pytest.mark.parametrize("tool", ["auto_initialize", "lsuv"])
def test_deep_mlps_stay_within_one_octave_at_every_layer(activation, tool):
    model = _mlp(50, activation)
    x = _batch()
    if tool == "lsuv":
        kiz.lsuv(model, x)
    else:
        kiz.auto_initialize(model, x)
    levels = _log2_second_moments(model, x)
    assert np.all(np.abs(levels) <= 1.0), levels


def test_exact_gain_alone_drifts_for_gelu_where_auto_initialize_holds():
    """Without calibration, the exact gain's unstable fixed point lets GELU drift."""
    model = _mlp(50, "gelu", initializer="zoo_gelu")
    assert np.max(np.abs(_log2_second_moments(model, _batch()))) > 2.0


def test_selu_mlp_self_normalizes_with_auto_initialize():
    """Klambauer et al. 2017: SELU with LeCun normal keeps mean 0 and variance 1."""
    model = _mlp(100, "selu")
    x = _batch(n=512)
    report = kiz.auto_initialize(model, x)
    assert {row["scheme"] for row in report[1:]} == {"gain(selu) = 1.0000"}
    for row in kiz.signal_report(model, x):
        assert abs(row["act mean"]) <= 0.1, row
        assert abs(row["act std"] ** 2 - 1.0) <= 0.2, row


def test_auto_initialize_reads_activations_across_layers():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(32, 3, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(32, 3, activation="gelu", name="gelu_conv")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.Conv2D(32, 3, name="after_gelu")(x)
    x = keras.layers.LayerNormalization(name="ln")(x)
    outputs = keras.layers.Dense(4, name="head")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    rows = {row["path"].split("/")[-2]: row for row in kiz.auto_initialize(model)}
    assert rows["stem"]["fed by"] == "linear"
    assert rows["gelu_conv"]["fed by"] == "relu"  # across pooling
    assert rows["after_gelu"]["fed by"] == "gelu"  # across dropout, and calibrated
    assert "calibrated" in rows["after_gelu"]["why"]
    assert rows["head"]["fed by"] == "normalized"
    assert rows["gelu_conv"]["target var"] == pytest.approx(2 / (9 * 32))


def _counted_mlp(depth: int, activation: str | None = None):
    """An MLP whose Dense layers count their calls; returns the model and the counts."""
    calls: dict[str, int] = {}

    class Counted(keras.layers.Dense):
        def call(self, inputs):
            calls[self.name] = calls.get(self.name, 0) + 1
            return super().call(inputs)

    model = keras.Sequential(
        [keras.Input((WIDTH,))] + [Counted(WIDTH, activation=activation) for _ in range(depth)]
    )
    calls.clear()  # building called nothing, but keep the count clean
    return model, calls


def test_lsuv_calls_each_layer_a_few_times_in_one_forward_pass():
    """O(layers): each layer runs its calibration calls plus one, however deep the model."""
    model, calls = _counted_mlp(30, "tanh")
    report = kiz.lsuv(model, _batch())
    for row in report:
        name = row["path"].split("/")[-2]
        assert calls[name] == row["iterations"] + 1, (name, calls[name], row)
        assert row["iterations"] == 1  # with a zero bias one rescale is exact
    assert sum(calls.values()) <= 3 * 30


def test_lsuv_iterates_where_a_bias_makes_the_output_affine_in_the_kernel():
    model = keras.Sequential(
        [keras.Input((WIDTH,))]
        + [
            keras.layers.Dense(WIDTH, bias_initializer=keras.initializers.Constant(0.5))
            for _ in range(5)
        ]
    )
    x = _batch()
    report = kiz.lsuv(model, x)
    assert max(row["iterations"] for row in report) >= 2
    # measured independently: each layer's output std on the batch
    for layer in model.layers:
        x = layer(x)
        assert float(np.std(keras.ops.convert_to_numpy(x))) == pytest.approx(1.0, abs=0.1)


def test_signal_report_runs_each_layer_twice():
    """One probed forward pass for the residual structure, one forward (and one backward)
    for the measures: no layer is called more. Inferring the loss (no ``loss=``, not
    compiled) costs one more inference pass, no more."""
    model, calls = _counted_mlp(10)
    kiz.signal_report(model, _batch(), _batch(1), loss="mse")
    assert list(calls.values()) == [2] * 10
    kiz.signal_report(model, _batch(), _batch(1))
    assert list(calls.values()) == [5] * 10


def test_lsuv_takes_arrays_datasets_and_pydatasets():
    x = _batch()

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return x[index * 64 : (index + 1) * 64], np.zeros(64)

    import tensorflow as tf  # tf.data feeds Keras on every backend

    dataset = tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x)))).batch(64)
    for data in (x, dataset, Batches()):
        model = _mlp(5, "tanh")
        report = kiz.lsuv(model, data)
        assert all(abs(row["std after"] - 1.0) <= 0.1 for row in report)


def test_lsuv_leaves_batchnorm_statistics_and_trainable_flags_alone():
    model = keras.Sequential(
        [
            keras.Input((WIDTH,)),
            keras.layers.Dense(WIDTH),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(WIDTH, activation="relu", trainable=False),
            keras.layers.Dense(4),
        ]
    )
    bn = model.layers[1]
    before = [keras.ops.convert_to_numpy(v) for v in bn.non_trainable_variables]
    flags = [layer.trainable for layer in model.layers]
    kiz.lsuv(model, _batch())
    for old, new in zip(before, bn.non_trainable_variables, strict=True):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))
    assert [layer.trainable for layer in model.layers] == flags
    assert "call" not in vars(model.layers[0])  # the interception is undone


def test_lsuv_errors_name_the_problem():
    model = _mlp(3, "relu")
    with pytest.raises(ValueError, match="`data` is empty"):
        kiz.lsuv(model, np.zeros((0, WIDTH)))
    with pytest.raises(ValueError, match="`data` does not fit"):
        kiz.lsuv(model, np.zeros((8, WIDTH + 1)))
    with pytest.raises(ValueError, match="not built"):
        kiz.lsuv(keras.Sequential([keras.layers.Dense(3)]), _batch())
    with pytest.raises(ValueError, match="`tol`"):
        kiz.lsuv(model, _batch(), tol=0)
    dead = keras.Sequential(
        [
            keras.Input((WIDTH,)),
            keras.layers.Dense(
                WIDTH, activation="relu", bias_initializer=keras.initializers.Constant(-100.0)
            ),
            keras.layers.Dense(4),
        ]
    )
    with pytest.raises(ValueError, match="zero variance"):
        kiz.lsuv(dead, _batch())


def _mean_squared_error(y, y_pred):
    return keras.ops.mean(keras.ops.square(y - y_pred))


def _mean_absolute_error(y, y_pred):
    return keras.ops.mean(keras.ops.abs(y - y_pred))


def _autodiff_by_path(model, x, y, loss) -> dict[str, np.ndarray]:
    grads = gradients(model, x, keras.ops.convert_to_tensor(y), loss)
    return {
        v.path: np.asarray(g, dtype="float64")
        for v, g in zip(model.trainable_variables, grads, strict=True)
    }


@pytest.mark.parametrize("compiled", [False, True], ids=["mse", "compiled-mae"])
def test_signal_report_gradients_match_the_backends_autodiff(compiled):
    """Every layer's gradient norm against the backend's own differentiation.

    float32 throughout: both sides compute the same products in the same
    order up to the backend's kernels, so they agree to ~1e-6 relative;
    1e-5 leaves room for reassociation and still catches a wrong variable,
    a missed layer or a gradient of the wrong loss (MAE against MSE differ
    by far more). No layer depends on ``training``, which the reference
    sets and signal_report does not.
    """
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer="zoo_he")(inputs)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(16, activation="tanh", kernel_initializer="zoo_glorot")(h)
    frozen = keras.layers.Dense(16, activation="gelu", kernel_initializer="zoo_gelu")
    frozen.trainable = False  # non-trainable variables beside the trainable ones
    outputs = keras.layers.Dense(5, kernel_initializer="zoo_lecun")(frozen(h))
    model = keras.Model(inputs, outputs)
    loss = _mean_squared_error
    if compiled:
        model.compile(loss="mean_absolute_error")
        loss = _mean_absolute_error
    rng = np.random.default_rng(4)
    x = rng.standard_normal((16, 8, 8, 3)).astype("float32")
    y = rng.standard_normal((16, 5)).astype("float32")
    report = {row["layer"]: row for row in kiz.signal_report(model, x, y)}
    direct = _autodiff_by_path(model, x, y, loss)
    checked = 0
    for layer in model.layers:
        if not layer.trainable_variables:
            continue
        norm = math.sqrt(sum(np.sum(direct[v.path] ** 2) for v in layer.trainable_variables))
        assert norm > 0.0, layer.path
        assert report[layer.path]["grad norm"] == pytest.approx(norm, rel=1e-5), layer.path
        checked += 1
    assert checked == 3  # the conv and the two trainable dense layers
    assert report[frozen.path]["grad norm"] is None


def test_layer_signals_output_gradients_match_the_chain_rule():
    """``out grad norm`` and ``out grad sample``: dL/d(each layer's output), by hand in float64.

    A frozen tanh layer first, so that nothing upstream of its output is
    trainable: its gradient must come all the same. Forward and backward in
    NumPy float64 against the backend's float32: they agree to ~1e-6
    relative; 1e-4 still tells a missed tanh derivative (a factor ~0.5) or a
    wrong layer apart.
    """
    from keras_initzoo.models.signal import layer_signals

    keras.utils.set_random_seed(5)
    frozen = keras.layers.Dense(8, activation="tanh", trainable=False, name="frozen")
    hidden = keras.layers.Dense(8, activation="tanh", name="hidden")
    head = keras.layers.Dense(3, name="head")
    model = keras.Sequential([keras.Input((6,)), frozen, hidden, head], name="net")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((10, 6)).astype("float32")
    y = rng.standard_normal((10, 3)).astype("float32")
    rows = layer_signals(model, x, y, _mean_squared_error, output_gradients=True, keep=30)

    w1, b1, w2, b2, w3, b3 = (
        np.asarray(keras.ops.convert_to_numpy(w), dtype="float64")
        for layer in (frozen, hidden, head)
        for w in (layer.kernel, layer.bias)
    )
    h1 = np.tanh(x @ w1 + b1)
    h2 = np.tanh(h1 @ w2 + b2)
    out = h2 @ w3 + b3
    g_out = 2.0 * (out - y) / out.size
    g_h2 = g_out @ w3.T
    g_h1 = (g_h2 * (1.0 - h2**2)) @ w2.T
    assert [row["layer"] for row in rows] == ["net/frozen", "net/hidden", "net/head"]
    for row, expected in zip(rows, (g_h1, g_h2, g_out), strict=True):
        assert row["out grad norm"] == pytest.approx(np.linalg.norm(expected), rel=1e-4)
        np.testing.assert_allclose(
            row["out grad sample"], expected.ravel()[:30], rtol=1e-4, atol=1e-9
        )
    assert rows[0]["grad norm"] is None  # frozen: no variable gradient, but a signal
    np.testing.assert_allclose(rows[1]["sample"], h2.ravel()[:30], rtol=1e-5, atol=1e-6)
    # without output_gradients the rows are signal_report's
    assert "out grad norm" not in layer_signals(model, x, y, _mean_squared_error)[0]


@pytest.mark.parametrize(
    "initializer, verdict",
    [("zoo_he", "healthy"), ("zoo_small", "vanishing"), ("zoo_large", "exploding")],
)
def test_signal_report_verdicts(initializer, verdict):
    model = _mlp(30, "relu", initializer)
    x, y = _batch(), np.random.default_rng(1).standard_normal((256, WIDTH)).astype("float32")
    report = kiz.signal_report(model, x, y)
    assert report.verdict == verdict
    assert (report.where is None) == (verdict == "healthy")
    assert len(report) == 30 and verdict in str(report)
    grads = [row["grad norm"] for row in report]
    assert all(g is not None for g in grads)
    # the report's numbers check out against a direct computation
    first = model.layers[0]
    output, kernel = (keras.ops.convert_to_numpy(t) for t in (first(x), first.kernel))
    assert report[0]["act std"] == pytest.approx(float(np.std(output)), rel=1e-5)
    assert report[0]["weight var"] == pytest.approx(float(np.var(kernel)), rel=1e-6)
    direct = _autodiff_by_path(model, x, y, _mean_squared_error)
    last = model.layers[-1].trainable_variables
    norm = math.sqrt(sum(float(np.sum(np.square(direct[v.path]))) for v in last))
    if math.isfinite(norm):  # zoo_large overflows float32 by the last layer
        assert report[-1]["grad norm"] == pytest.approx(norm, rel=1e-4)


def test_signal_report_counts_dead_and_saturated_units():
    relu = keras.Sequential(
        [
            keras.Input((WIDTH,)),
            keras.layers.Dense(
                WIDTH, activation="relu", bias_initializer=keras.initializers.Constant(-100.0)
            ),
        ]
    )
    assert kiz.signal_report(relu, _batch())[0]["dead"] == 1.0
    tanh = _mlp(3, "tanh", "zoo_large")
    assert kiz.signal_report(tanh, _batch())[-1]["saturated"] > 0.9


def test_signal_report_plot_writes_a_png(tmp_path):
    model = _mlp(10, "relu", "zoo_he")
    report = kiz.signal_report(model, _batch(), _batch(1))
    path = report.plot(str(tmp_path / "signal.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    "initializer, verdict", [("zoo_he", "healthy"), ("zoo_small", "vanishing")]
)
def test_initzoo_report_on_a_saved_model(tmp_path, initializer, verdict):
    import subprocess
    import sys

    path = tmp_path / "m.keras"
    _mlp(30, "relu", initializer).save(path)
    np.savez(tmp_path / "data.npz", x=_batch(), y=_batch(1))
    png = tmp_path / "m.png"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_initzoo",
            "report",
            str(path),
            "--data",
            str(tmp_path / "data.npz"),
            "--png",
            str(png),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"verdict: {verdict}" in done.stdout
    assert png.exists()


def test_lsuv_gives_recurrent_layers_the_orthonormal_start_only():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((5, 8)), keras.layers.LSTM(16), keras.layers.Dense(4, activation="tanh")]
    )
    x = np.random.default_rng(0).standard_normal((32, 5, 8)).astype("float32")
    rows = {row["path"]: row for row in kiz.lsuv(model, x)}
    recurrent = [row for path, row in rows.items() if "lstm" in path]
    assert recurrent and all(row["note"].startswith("recurrent") for row in recurrent)
    cell = model.layers[0].cell
    units = 16
    for gate in range(4):  # each gate's recurrent block is orthogonal after the start
        block = keras.ops.convert_to_numpy(cell.recurrent_kernel)[
            :, gate * units : (gate + 1) * units
        ]
        np.testing.assert_allclose(block.T @ block, np.eye(units), atol=1e-5)
    dense = [row for path, row in rows.items() if "dense" in path]
    assert abs(dense[0]["std after"] - 1.0) <= 0.1
