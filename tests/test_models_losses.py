"""signal_report without a compiled loss: the inferred loss, loss=, and non-finite data."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_initzoo as kiz

RNG = np.random.default_rng(0)
X = RNG.normal(size=(10, 8)).astype("float32")  # 10 samples: as many as the classes


def _classifier(activation=None, units=10):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(units, activation=activation),
        ]
    )


@pytest.mark.parametrize(
    "y, activation, expected, compiled",
    [
        (RNG.integers(0, 10, (10,)), None, "sparse categorical", ("sparse_categorical", True)),
        (RNG.integers(0, 10, (10, 1)), None, "sparse categorical", ("sparse_categorical", True)),
        (
            RNG.integers(0, 10, (10,)).astype("float32"),
            None,
            "sparse categorical",
            ("sparse_categorical", True),
        ),
        (
            RNG.integers(0, 10, (10,)),
            "softmax",
            "output probabilities",
            ("sparse_categorical", False),
        ),
        (np.eye(10)[RNG.integers(0, 10, 10)], None, "categorical", ("categorical", True)),
        (RNG.normal(size=(10, 10)), None, "mean squared error", ("mse", None)),
    ],
)
def test_inferred_loss_gives_the_compiled_models_gradients(y, activation, expected, compiled):
    model = _classifier(activation)
    inferred = kiz.signal_report(model, X, y)
    assert expected in inferred.loss and f"loss: {inferred.loss}" in str(inferred)
    kind, from_logits = compiled
    loss = {
        "sparse_categorical": lambda: keras.losses.SparseCategoricalCrossentropy(from_logits),
        "categorical": lambda: keras.losses.CategoricalCrossentropy(from_logits),
        "mse": lambda: keras.losses.MeanSquaredError(),
    }[kind]()
    model.compile(loss=loss)
    reference = kiz.signal_report(model, X, y)
    assert reference.loss == "the compiled loss"
    # the same loss on the same weights: equal up to float32 rounding of the two paths
    np.testing.assert_allclose(
        inferred.column("grad norm"), reference.column("grad norm"), rtol=1e-5
    )


def test_sigmoid_output_gets_binary_cross_entropy():
    model = _classifier("sigmoid", units=1)
    y = RNG.integers(0, 2, (10,))
    report = kiz.signal_report(model, X, y)
    assert "binary cross-entropy" in report.loss
    model.compile(loss="binary_crossentropy")
    np.testing.assert_allclose(
        report.column("grad norm"), kiz.signal_report(model, X, y).column("grad norm"), rtol=1e-5
    )


def test_multi_output_model_gets_one_loss_per_output():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(10)(hidden), keras.layers.Dense(2)(hidden)])
    y = [RNG.integers(0, 10, (10,)), RNG.normal(size=(10, 2))]
    report = kiz.signal_report(model, X, y)
    assert "output 0: sparse categorical" in report.loss
    assert "output 1: mean squared error" in report.loss
    model.compile(loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"])
    np.testing.assert_allclose(
        report.column("grad norm"), kiz.signal_report(model, X, y).column("grad norm"), rtol=1e-5
    )


def test_given_loss_and_bad_loss():
    model = _classifier()
    y = RNG.integers(0, 10, (10,))
    report = kiz.signal_report(model, X, y, loss="sparse_categorical_crossentropy")
    assert "given" in report.loss
    with pytest.raises(ValueError, match="`loss` must be a Keras loss identifier"):
        kiz.signal_report(model, X, y, loss="no_such_loss")


@pytest.mark.parametrize(
    "y, message",
    [
        (RNG.normal(size=(10, 3)), r"`y` of shape \(10, 3\) does not fit the output of shape"),
        (RNG.integers(0, 20, (10,)) + 10, r"integer class labels in \[0, 10\)"),
        (RNG.normal(size=(10,)), "integer class labels"),
        (RNG.integers(0, 10, (7,)), "number of samples"),
    ],
)
def test_targets_no_loss_fits_are_named(y, message):
    with pytest.raises(ValueError, match=message) as error:
        kiz.signal_report(_classifier(), X, y)
    assert "pass `loss=`" in str(error.value)


def test_non_finite_data_is_named_by_every_tool():
    model = _classifier()
    bad = X.copy()
    bad[3, 2], bad[5, 0] = np.nan, np.inf
    where = r"holds NaN or inf: 2 of its 80 values .* the first at index \(3, 2\)"
    with pytest.raises(ValueError, match="`x` " + where):
        kiz.signal_report(model, bad)
    with pytest.raises(ValueError, match="`data` " + where):
        kiz.lsuv(model, bad)
    with pytest.raises(ValueError, match="`data` " + where):
        kiz.auto_initialize(model, bad)
    y = np.zeros((10, 10), "float32")
    y[9, 1] = np.nan
    with pytest.raises(ValueError, match=r"`y` holds NaN or inf: 1 of .* \(9, 1\)"):
        kiz.signal_report(model, X, y)
    with pytest.raises(ValueError, match=r"`data\['a'\]` holds NaN"):
        inputs = {"a": keras.Input((8,), name="a")}
        functional = keras.Model(inputs, keras.layers.Dense(2)(inputs["a"]))
        kiz.lsuv(functional, {"a": bad})


def test_report_command_takes_a_loss(tmp_path, capsys):
    from keras_initzoo_cli.commands import run
    from keras_initzoo_cli.parser import build_parser

    path = tmp_path / "model.keras"
    _classifier().save(path)
    data = tmp_path / "batch.npz"
    np.savez(data, x=X, y=RNG.integers(0, 10, (10,)))
    argv = ["report", str(path), "--data", str(data)]
    assert run(build_parser().parse_args([*argv, "--loss", "sparse_categorical_crossentropy"])) == 0
    assert "loss: loss='sparse_categorical_crossentropy' (given)" in capsys.readouterr().out
    assert run(build_parser().parse_args(argv)) == 0
    assert "loss: output: sparse categorical cross-entropy" in capsys.readouterr().out
    assert run(build_parser().parse_args([*argv, "--loss", "nonsense"])) == 2
    assert "`loss` must be a Keras loss identifier" in capsys.readouterr().err
