"""GradientNormLogger: argument checks and the optional extras."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import load_events, load_scalars
from test_callback_gradient_norm import RTOL, WeightRecorder, make_data, mlp, norm, tape_grads

import keras_initzoo as kiz
from keras_initzoo.callbacks.capture.tensorflow import squared_sums


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"update_freq": 0}, "`update_freq` must be a positive integer"),
        ({"update_freq": -3}, "`update_freq`"),
        ({"update_freq": 2.5}, "`update_freq`"),
        ({"update_freq": True}, "`update_freq`"),
        ({"update_freq": "epoch"}, r"`update_freq` .* or 'batch'"),
        ({"histogram_freq": -1}, "`histogram_freq` must be a non-negative integer"),
        ({"histogram_bins": 0}, "`histogram_bins`"),
        ({"stop_on_nonfinite": "yes"}, "`stop_on_nonfinite` must be True or False"),
        ({"count_nonfinite": 1}, "`count_nonfinite` must be True or False"),
    ],
)
def test_bad_arguments_fail_at_construction(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kiz.GradientNormLogger(tmp_path, **kwargs)


def test_unwritable_log_dir_fails_at_construction(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="`log_dir` must be a writable directory"):
        kiz.GradientNormLogger(blocker / "run")
    with pytest.raises(ValueError, match="`log_dir` must be a non-empty path"):
        kiz.GradientNormLogger("")


def test_log_dir_is_created(tmp_path):
    kiz.GradientNormLogger(tmp_path / "runs" / "he")
    assert (tmp_path / "runs" / "he").is_dir()


def test_per_variable_weight_norms_and_update_ratio(tmp_path):
    x, y = make_data(16)
    model = mlp()
    lr = 0.05
    model.compile(keras.optimizers.SGD(lr), "mse")
    rec = WeightRecorder()
    cb = kiz.GradientNormLogger(tmp_path, per_variable=True, update_ratio=True)
    model.fit(x, y, batch_size=16, verbose=0, callbacks=[rec, cb])
    logged = load_scalars(tmp_path)
    grads = tape_grads(model, rec.weights[0], x, y)
    weights = dict(zip(map(id, model.trainable_variables), rec.weights[0], strict=True))
    for v in model.trainable_variables:
        np.testing.assert_allclose(
            dict(logged[f"grad_norm_per_variable/{v.path}"])[1], norm(grads, [v]), rtol=RTOL
        )
    for name in ("hidden1", "hidden2", "out"):
        tvars = model.get_layer(name).trainable_variables
        w = norm(weights, tvars)
        np.testing.assert_allclose(dict(logged[f"weight_norm/{name}"])[1], w, rtol=RTOL)
        # Plain SGD: the update is lr * g, so the ratio is lr * ||g|| / ||w||.
        np.testing.assert_allclose(
            dict(logged[f"update_ratio/{name}"])[1], lr * norm(grads, tvars) / w, rtol=1e-4
        )
    # The layout gets a chart per family.
    assert {"grad_norm/global", "weight_norm/out", "update_ratio/out"} <= set(logged)


def test_gradient_histograms(tmp_path):
    x, y = make_data(32)
    model = mlp()
    model.compile("sgd", "mse")
    rec = WeightRecorder()
    cb = kiz.GradientNormLogger(tmp_path, update_freq=1, histogram_freq=3, histogram_bins=10)
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0, callbacks=[rec, cb])
    acc = load_events(tmp_path)
    events = acc.Tensors("grad_hist/hidden1")
    assert [e.step for e in events] == [1, 4]
    buckets = tf.make_ndarray(events[1].tensor_proto)
    assert buckets.shape == (10, 3)
    g = np.concatenate(
        [
            tape_grads(model, rec.weights[3], x[24:], y[24:])[id(v)].ravel()
            for v in model.get_layer("hidden1").trainable_variables
        ]
    )
    assert buckets[:, 2].sum() == g.size
    np.testing.assert_allclose([buckets[0, 0], buckets[-1, 1]], [g.min(), g.max()], rtol=RTOL)


def test_embedding_gradient_with_repeated_indices(tmp_path):
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            keras.layers.Embedding(10, 4, name="emb"),
            keras.layers.Flatten(),
            keras.layers.Dense(1, name="out"),
        ]
    )
    model.compile("sgd", "mse")
    x = np.array([[1, 1, 2, 3, 1], [2, 2, 2, 9, 0]], dtype="int32")  # repeats add up
    y = np.array([[1.0], [-1.0]], dtype="float32")
    rec = WeightRecorder()
    model.fit(x, y, batch_size=2, verbose=0, callbacks=[rec, kiz.GradientNormLogger(tmp_path)])
    grads = tape_grads(model, rec.weights[0], x, y)
    emb = model.get_layer("emb").trainable_variables
    np.testing.assert_allclose(
        dict(load_scalars(tmp_path)["grad_norm/emb"])[1], norm(grads, emb), rtol=RTOL
    )


@pytest.mark.parametrize(
    "tags, values",
    [
        (["grad_norm/global", "grad_norm/dense"], [1.5, 2.25e-30]),
        ([f"grad_norm/layer_{i}" for i in range(300)], np.linspace(0, 1e30, 300)),
        (["grad_norm/ü–unicode", "grad_nonfinite/count"], [float("inf"), 3.0]),
        (["x" * 200], [-0.0]),
    ],
)
def test_scalar_encoder_gives_tensorboards_own_bytes(tags, values):
    from tensorboard.compat.proto import event_pb2, summary_pb2

    from keras_initzoo.callbacks.writer import ScalarEncoder

    encoded = ScalarEncoder(tags).encode(123456, np.asarray(values), wall_time=1.5e9)
    expected = event_pb2.Event(
        wall_time=1.5e9,
        step=123456,
        summary=summary_pb2.Summary(
            value=[
                summary_pb2.Summary.Value(tag=t, simple_value=float(v))
                for t, v in zip(tags, values, strict=True)
            ]
        ),
    ).SerializeToString()
    assert encoded == expected


@pytest.mark.tensorflow_only(
    reason="the TensorFlow capture's own squared_sums (tf.function, stacking)"
)
@pytest.mark.parametrize("compiled", [False, True])
def test_squared_sums_and_nonfinite_counts_of_mixed_tensors(compiled):
    """Stacked small tensors, fused large ones, float64 ones and their order."""
    rng = np.random.default_rng(0)
    arrays = [
        rng.normal(size=(300, 20)).astype("float32"),  # large: its own l2_loss
        rng.normal(size=(8,)).astype("float32"),  # small: stacked with the next
        rng.normal(size=(5, 3)).astype("float64"),  # its own accumulator dtype
        rng.normal(size=(8,)).astype("float32"),
        rng.normal(size=(300, 20)).astype("float16"),
    ]
    arrays[1][[2, 5]] = [np.nan, np.inf]
    arrays[4][0, :3] = np.inf
    expected_sums = [float(np.sum(a.astype("float64") ** 2)) for a in arrays]
    expected_count = 5

    def run(tensors):
        return squared_sums(tensors, count_nonfinite=True)

    fn = tf.function(run) if compiled else run
    sums, count = fn([tf.constant(a) for a in arrays])
    sums = sums.numpy()
    for got, want, a in zip(sums, expected_sums, arrays, strict=True):
        if np.isfinite(a).all():
            np.testing.assert_allclose(got, want, rtol=1e-3 if a.dtype == "float16" else 1e-6)
        else:
            assert not np.isfinite(got)
    assert count.numpy() == expected_count
    assert squared_sums([tf.constant(arrays[0])])[1] is None  # counting is opt-in


@pytest.mark.tensorflow_only(reason="the TensorFlow capture's chunked squared_sums")
def test_squared_sums_of_many_same_shaped_tensors_in_chunks():
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=(3, 2)).astype("float32") for _ in range(70)]  # 3 chunks
    sums, _ = tf.function(squared_sums)([tf.constant(a) for a in arrays])
    np.testing.assert_allclose(
        sums.numpy(), [np.sum(a.astype("float64") ** 2) for a in arrays], rtol=1e-6
    )
