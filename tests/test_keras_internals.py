"""The private parts of Keras that keras_initzoo leans on, each checked for what it relies on.

Keras may change anything that is not public without notice. Each test below
names the module of keras_initzoo that uses the private name and asserts the
behaviour that module needs, so that an upgrade which renames or changes one
fails here, with the name, rather than somewhere downstream as a wrong number.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()


def test_global_state_keeps_a_mutable_default_until_clear_session():
    """initializers/base.py numbers seed streams in a global_state dict that
    ``clear_session()`` must reset (as it resets layer names)."""
    from keras.src.backend.common import global_state

    name = "keras_initzoo_internals_probe"
    first = global_state.get_global_attribute(name, {}, set_to_default=True)
    first["seen"] = 1
    assert global_state.get_global_attribute(name, {}, set_to_default=True) is first
    keras.backend.clear_session()
    assert global_state.get_global_attribute(name, {}, set_to_default=True) == {}


def test_random_seed_dtype_names_the_seed_state_dtype():
    """initializers/base.py stores seeds >= 2**31 as two's complement where
    the state is int32 (PyTorch)."""
    from keras.src import backend as private_backend

    dtype = private_backend.random_seed_dtype()
    assert (dtype == "int32") == (BACKEND == "torch")
    assert dtype in ("int32", "uint32", "int64")
    assert keras.random.SeedGenerator(1).state.dtype == dtype


def test_bit64_to_bit32_table_is_read_by_result_type():
    """gains.py lifts Keras' float64 -> float32 narrowing on JAX for its
    quadrature by editing this table, which ``result_type`` must read on each call."""
    from keras.src.backend.common import dtypes

    table = dtypes.BIT64_TO_BIT32_DTYPE
    assert "float64" in table
    if BACKEND != "jax":
        return
    assert table["float64"] == "float32"
    import jax

    saved = table["float64"]
    try:
        table["float64"] = "float64"
        with jax.enable_x64(True):
            assert keras.backend.result_type("float64") == "float64"
    finally:
        table["float64"] = saved
    assert keras.backend.result_type("float64") == "float32"


def test_optimizer_clip_gradients_applies_clipnorm():
    """The captures (tensorflow.py, jax.py, torch.py) compute the clipped norms
    of ``log_clipped=True`` with ``Optimizer._clip_gradients``."""
    variable = keras.Variable(np.zeros(3, "float32"))
    optimizer = keras.optimizers.SGD(clipnorm=1.0)
    optimizer.build([variable])
    gradient = keras.ops.convert_to_tensor(np.array([6.0, 8.0, 0.0], "float32"))
    (clipped,) = optimizer._clip_gradients([gradient])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clipped), [0.6, 0.8, 0.0], rtol=1e-6)


def test_optimizer_trainable_variables_are_those_it_was_built_with():
    """The captures map gradients to variables through ``_trainable_variables``."""
    variables = [keras.Variable(np.zeros(2, "float32")), keras.Variable(np.ones(3, "float32"))]
    optimizer = keras.optimizers.Adam()
    optimizer.build(variables)
    assert [id(v) for v in optimizer._trainable_variables] == [id(v) for v in variables]


def test_flatten_layers_lists_direct_and_nested_sublayers():
    """callbacks/groups.py and models/trace.py walk models with ``_flatten_layers``."""
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(1)])

    def walk(recursive):
        layers = outer._flatten_layers(include_self=False, recursive=recursive)
        return [layer for layer in layers if not isinstance(layer, keras.layers.InputLayer)]

    direct, nested = walk(recursive=False), walk(recursive=True)
    assert direct == [inner, outer.layers[1]]
    # recursive: every layer at any depth, each once (the order is Keras' own)
    assert sorted(map(id, nested)) == sorted(map(id, [inner, *inner.layers, outer.layers[1]]))


def test_conv_lstm_cell_is_where_models_walk_imports_it():
    """models/walk.py counts ConvLSTM's four gates through its (unexported) cell class."""
    from keras.src.layers.rnn.conv_lstm import ConvLSTMCell

    layer = keras.layers.ConvLSTM2D(3, 3)
    layer.build((None, 2, 8, 8, 2))
    assert isinstance(layer.cell, ConvLSTMCell)
    assert layer.cell.kernel.shape == (3, 3, 2, 4 * 3)


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX trainer's private methods")
def test_jax_trainer_private_methods_the_capture_calls():
    """callbacks/capture/jax.py jits its copy of the train step with
    ``_make_function`` and Keras' shardings from ``_get_state_sharding_spec``."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 4)), np.ones((8, 2)), epochs=1, verbose=0)
    specs = model._get_state_sharding_spec()
    assert isinstance(specs, tuple) and len(specs) >= 4  # trainable, non-trainable, optimizer, ...

    def one_step(data):
        return data

    assert callable(model._make_function(one_step))


@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's private batched norm")
def test_torch_foreach_norm_gives_each_tensors_l2_norm():
    """callbacks/capture/torch.py reduces every gradient with one ``torch._foreach_norm``."""
    import torch

    norms = torch._foreach_norm([torch.tensor([3.0, 4.0]), torch.ones(4)])
    np.testing.assert_allclose([float(n) for n in norms], [5.0, 2.0])


@pytest.mark.tensorflow_only
def test_tensorflow_operation_set_attr_exists():
    """callbacks/capture/tensorflow.py keeps its gated ``If`` ops unlowered with
    ``Operation._set_attr``; without it TensorFlow lowers them to one Switch per
    captured gradient, run every step (several per cent of a step)."""
    import tensorflow as tf

    assert callable(getattr(tf.Operation, "_set_attr", None))


def test_gradient_accumulation_keeps_its_state_where_the_logger_reads_it():
    """callbacks/capture/base.py reads ``_iterations`` (train steps, micro-batches
    included; ``iterations`` is it floor-divided by k), ``_accumulated_gradients``
    and ``_get_variable_index``: the update applies ``(g + acc) / k``."""
    variable = keras.Variable(np.ones(3, "float32"))
    optimizer = keras.optimizers.SGD(1.0, gradient_accumulation_steps=2)
    optimizer.build([variable])
    accumulated = optimizer._accumulated_gradients[optimizer._get_variable_index(variable)]
    optimizer.apply([keras.ops.full((3,), 2.0)], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(accumulated), 2.0)
    assert int(keras.ops.convert_to_numpy(optimizer._iterations)) == 1
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 0
    optimizer.apply([keras.ops.full((3,), 4.0)], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), 1.0 - (2.0 + 4.0) / 2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(accumulated), 0.0)
