"""``fit_data`` and ``as_batch`` take data the way ``model.fit`` takes it, on every backend.

Each accepted form (arrays, backend tensors, Python lists, dicts, ``(x, y,
sample_weight)`` tuples, generators, iterators, ``PyDataset``, torch
``DataLoader``, ``tf.data``) must give the same ``x``, ``y`` and
``sample_weight`` as the plain arrays; every refused form must raise a
ValueError that names the argument and the type it received.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

import keras_initzoo as kiz
from keras_initzoo.models.data import MAX_BATCHES, FitBatch, as_batch, fit_data

N, D = 12, 3
X = np.random.default_rng(0).standard_normal((N, D)).astype("float32")
Y = np.arange(N) % 2
W = np.linspace(0.5, 1.5, N)


def _assert_batch(batch, x=X, y=None, sample_weight=None):
    assert isinstance(batch, FitBatch)
    keras.tree.assert_same_structure(batch.x, x)
    for got, want in zip(keras.tree.flatten(batch.x), keras.tree.flatten(x), strict=True):
        assert isinstance(got, np.ndarray)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    for got, want in ((batch.y, y), (batch.sample_weight, sample_weight)):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6)


def _chunks(*arrays, size=4):
    """``(x, y, ...)`` batches of ``size`` rows, as a generator."""
    for start in range(0, len(arrays[0]), size):
        parts = tuple(a[start : start + size] for a in arrays)
        yield parts if len(parts) > 1 else parts[0]


class _Batches(keras.utils.PyDataset):
    def __init__(self, *arrays, size=4):
        super().__init__()
        self.batches = list(_chunks(*arrays, size=size))

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def _two_inputs():
    a, b = keras.Input((D,), name="a"), keras.Input((2,), name="b")
    merged = keras.layers.Concatenate()([a, b])
    return keras.Model([a, b], keras.layers.Dense(1)(merged))


def _one_input():
    return keras.Sequential([keras.Input((D,)), keras.layers.Dense(1)])


# -- every accepted form gives the arrays' x, y and sample_weight ----------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: X,
        lambda: X.tolist(),
        lambda: [list(map(float, row)) for row in X],
        lambda: keras.ops.convert_to_tensor(X),
        lambda: (X,),
        lambda: (X.tolist(),),
        lambda: X.astype("float64"),
        lambda: [list(row) for row in X],  # rows of NumPy scalars
    ],
    ids=[
        "array",
        "list",
        "list-of-floats",
        "backend-tensor",
        "1-tuple",
        "1-tuple-of-list",
        "f64",
        "list-of-numpy-scalars",
    ],
)
def test_inputs_alone(make):
    _assert_batch(fit_data(make()))
    np.testing.assert_allclose(as_batch(make()), X, rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: (X, Y),
        lambda: (X.tolist(), Y.tolist()),
        lambda: (keras.ops.convert_to_tensor(X), keras.ops.convert_to_tensor(Y)),
        lambda: [*_chunks(X, Y)],  # a list of batches read through iter()
    ],
    ids=["arrays", "lists", "backend-tensors", "iterator"],
)
def test_inputs_and_targets(make):
    data = make()
    if isinstance(data, list):
        data = iter(data)
    _assert_batch(fit_data(data), y=Y)


def test_inputs_targets_and_sample_weights():
    _assert_batch(fit_data((X, Y, W)), y=Y, sample_weight=W)
    _assert_batch(fit_data((X.tolist(), Y.tolist(), W.tolist())), y=Y, sample_weight=W)
    _assert_batch(fit_data(_chunks(X, Y, W)), y=Y, sample_weight=W)
    _assert_batch(fit_data(_Batches(X, Y, W)), y=Y, sample_weight=W)


def test_generators_and_pydatasets_join_their_batches():
    _assert_batch(fit_data(_chunks(X)))
    _assert_batch(fit_data(_chunks(X, Y)), y=Y)
    _assert_batch(fit_data(_Batches(X, Y)), y=Y)
    # a generator yielding lists: Keras reads a list batch as `(x, y)`
    _assert_batch(fit_data([x, y] for x, y in _chunks(X, Y)), y=Y)
    np.testing.assert_allclose(as_batch(_Batches(X, Y)), X)


def test_only_the_first_max_batches_are_read_and_a_generator_is_consumed():
    def endless():
        step = 0
        while True:
            yield np.full((2, D), step, "float32"), np.zeros(2)
            step += 1

    stream = endless()
    batch = fit_data(stream)
    assert batch.x.shape == (2 * MAX_BATCHES, D)
    assert batch.x[-1, 0] == MAX_BATCHES - 1
    assert next(stream)[0][0, 0] == MAX_BATCHES  # those batches are gone from the generator

    long = _Batches(np.repeat(X, 4, axis=0), size=2)
    assert len(long) > MAX_BATCHES
    assert fit_data(long).x.shape == (2 * MAX_BATCHES, D)


def test_dicts_and_multi_input_lists():
    b = np.ones((N, 2), "float32")
    _assert_batch(fit_data({"a": X, "b": b}), x={"a": X, "b": b})
    _assert_batch(fit_data({"a": X.tolist(), "b": b.tolist()}), x={"a": X, "b": b})
    _assert_batch(fit_data(({"a": X, "b": b}, Y)), x={"a": X, "b": b}, y=Y)
    # a list of arrays of one leading dimension: one array per input, as `fit`
    _assert_batch(fit_data([X, b]), x=[X, b])
    _assert_batch(fit_data(([X, b], Y)), x=[X, b], y=Y)
    _assert_batch(fit_data(_chunks(X, b, Y), model=_two_inputs()), x=X, y=b, sample_weight=Y)
    _assert_batch(fit_data(((X, b), Y) for _ in range(1)), x=(X, b), y=Y)


def test_the_model_settles_a_list_or_tuple_of_arrays():
    model = _two_inputs()
    b = np.ones((N, 2), "float32")
    # nested Python lists, one per input: the model says they are two inputs
    _assert_batch(fit_data([X.tolist(), b.tolist()], model=model), x=[X, b])
    # a tuple of as many arrays as the model has inputs is its inputs, as `fit` reads it
    _assert_batch(fit_data((X, b), model=model), x=(X, b))
    assert model(fit_data((X, b), model=model).x).shape == (N, 1)
    # without the model the same tuple is `(x, y)`
    _assert_batch(fit_data((X, b)), y=b)
    # a one-input model: a list of per-sample arrays is its rows; `[x]` is `x`
    one = _one_input()
    _assert_batch(fit_data(list(X), model=one))
    _assert_batch(fit_data([X], model=one))
    assert isinstance(fit_data(list(X)).x, list)  # without the model: one array per "input"


def test_a_torch_tensor_and_dataloader():
    torch = pytest.importorskip("torch")
    tensor = torch.tensor(X, requires_grad=True)
    _assert_batch(fit_data(tensor))
    _assert_batch(fit_data((tensor, torch.tensor(Y))), y=Y)
    dataset = torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(Y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=5, shuffle=False)
    _assert_batch(fit_data(loader), y=Y)
    _assert_batch(fit_data(loader), y=Y)  # a loader starts over each time
    only_x = torch.utils.data.DataLoader(torch.tensor(X), batch_size=5)
    _assert_batch(fit_data(only_x))


@pytest.mark.tensorflow_only(reason="a tf.data.Dataset as the data")
def test_a_tf_data_dataset():
    import tensorflow as tf

    _assert_batch(fit_data(tf.data.Dataset.from_tensor_slices(X).batch(5)))
    pairs = tf.data.Dataset.from_tensor_slices((X, Y)).batch(5)
    _assert_batch(fit_data(pairs), y=Y)
    triples = tf.data.Dataset.from_tensor_slices((X, Y, W)).batch(5)
    _assert_batch(fit_data(triples), y=Y, sample_weight=W)
    named = tf.data.Dataset.from_tensor_slices(({"a": X}, Y)).batch(5)
    _assert_batch(fit_data(named), x={"a": X}, y=Y)
    _assert_batch(fit_data(iter(pairs)), y=Y)  # a tf.data iterator is an iterator
    endless = tf.data.Dataset.from_tensor_slices(X).batch(2).repeat()
    assert fit_data(endless).x.shape == (2 * MAX_BATCHES, D)
    np.testing.assert_allclose(as_batch(pairs), X)


def test_as_batch_reads_targets_as_a_structure():
    y2 = np.ones((N, 2))
    # `fit`'s `y`: a tuple is one target per output, not `(x, y)`
    both = as_batch((Y, y2), name="y")
    assert isinstance(both, tuple) and [t.shape for t in both] == [(N,), (N, 2)]
    np.testing.assert_allclose(as_batch(Y.tolist(), name="y"), Y)
    assert as_batch((X, Y), name="y", targets=False).shape == (N, D)
    assert isinstance(as_batch((X, Y), name="x", targets=True), tuple)


def test_fit_batch_is_frozen():
    batch = fit_data((X, Y))
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.y = None


# -- what the old `as_batch` got wrong ------------------------------------------------------


def test_control_the_old_reading_of_a_list_and_a_tuple():
    """The old ``as_batch`` mapped ``np.asarray`` over the list's leaves: scalars, no rows."""
    old = keras.tree.map_structure(np.asarray, X.tolist())
    assert {np.ndim(leaf) for leaf in keras.tree.flatten(old)} == {0}  # so "`x` is empty"
    assert as_batch(X.tolist(), name="x").shape == (N, D)
    old_pair = keras.tree.map_structure(np.asarray, (X, Y))
    assert isinstance(old_pair, tuple)  # a "two-input" batch the model cannot take
    assert as_batch((X, Y), name="x").shape == (N, D)


def test_the_tools_take_the_new_forms():
    model = keras.Sequential(
        [keras.Input((D,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)]
    )
    for data in (X.tolist(), (X, Y), _chunks(X, Y), _Batches(X, Y)):
        report = kiz.lsuv(model, data)
        assert all(abs(row["std after"] - 1.0) <= 0.1 for row in report)
    assert len(kiz.signal_report(model, X.tolist(), np.zeros((N, 2)).tolist()))
    assert len(kiz.auto_initialize(model, (X.tolist(), Y)))


# -- refused forms name the argument, the type and what is allowed ---------------------------


@pytest.mark.parametrize(
    ("data", "received"),
    [
        (None, "None"),
        ("train.csv", "a str"),
        (b"\x00", "a bytes"),
        ({1.0, 2.0}, "a set"),
        (3, "an int"),
        (2.5, "a float"),
        (np.float32(1.0), "no batch axis"),
        ([], "an empty list"),
        ([[1.0, 2.0], [3.0]], "a ragged list"),
        ([np.zeros((3, 2)), np.zeros((4, 2))], "a ragged list"),
        ([[1.0, "a"]], "mixing numbers and strings"),
        ([object()], "a list of object"),
        ({}, "an empty dict"),
        ((), "a tuple of 0 entries"),
        ((X, Y, W, W), "a tuple of 4 entries"),
        ((None, Y), "whose `x` is None"),
        (range(4), "a range"),
        ({"a": "text"}, "a str"),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_refused_forms_name_the_argument_and_type(data, received):
    with pytest.raises(ValueError) as error:
        fit_data(data, name="train")
    message = str(error.value)
    assert message.startswith("`train") and received in message, message
    assert "must be a NumPy array or backend tensor" in message
    with pytest.raises(ValueError, match="`x"):
        as_batch(data, name="x")


def test_other_errors_name_the_argument():
    with pytest.raises(ValueError, match="`data` holds no batch: the generator is empty"):
        fit_data(x for x in ())
    with pytest.raises(ValueError, match="`data` is empty: it holds no sample"):
        fit_data(np.zeros((0, D)))
    with pytest.raises(ValueError, match=r"`data\[1\]` is empty"):
        fit_data((X, np.zeros(0)))
    with pytest.raises(ValueError, match=r"`data` holds arrays of different numbers of samples"):
        fit_data((X, Y[:-1]))
    with pytest.raises(ValueError, match=r"`data.y` is missing from some batches"):
        fit_data(iter([(X, Y), X]))
    with pytest.raises(ValueError, match=r"`data.x` differs from batch to batch"):
        fit_data(iter([X, X[:, :2]]))
    bad_x, bad_y = X.copy(), Y.astype("float32")
    bad_x[2, 1], bad_y[5] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"`data` holds NaN or inf: 1 of .* \(2, 1\)"):
        fit_data(bad_x.tolist())
    with pytest.raises(ValueError, match=r"`data\[1\]` holds NaN or inf: 1 of .* \(5,\)"):
        fit_data((X, bad_y))
    with pytest.raises(ValueError, match=r"`data.y` holds NaN or inf"):
        fit_data(_chunks(X, bad_y))
    with pytest.raises(ValueError, match=r"`data\['a'\]` holds NaN"):
        fit_data({"a": bad_x})
