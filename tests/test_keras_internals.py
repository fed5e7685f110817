"""The private parts of Keras (and TensorFlow, JAX, PyTorch) that keras_initzoo leans on.

Keras may change anything that is not public without notice. Every private
access of the package lives in ``keras_initzoo/_keras_internals.py``, one
function (or constant) each; each test below pins one of them, asserting the
behaviour the package needs, so that an upgrade which renames or changes a
private name fails here, with the name, rather than somewhere downstream as a
wrong number. ``test_no_private_access_outside_keras_internals`` keeps the
rest of the package from reaching past them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_initzoo
from keras_initzoo import _keras_internals as internals

BACKEND = keras.backend.backend()
PACKAGE = Path(keras_initzoo.__file__).resolve().parent


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


# -- layers and the functional graph -------------------------------------------------------------
def test_flatten_layers_lists_direct_and_nested_sublayers():
    """models/trace.py, walk.py, torch_defaults.py, recipes.py, callbacks/groups.py and mup/
    walk models with ``flatten_layers`` (``Layer._flatten_layers``)."""
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(1)])

    def walk(**how):
        layers = internals.flatten_layers(outer, **how)
        assert isinstance(layers, list)
        return [layer for layer in layers if not isinstance(layer, keras.layers.InputLayer)]

    direct = walk(include_self=False, recursive=False)
    nested = walk(include_self=False, recursive=True)
    assert direct == [inner, outer.layers[1]]
    # recursive: every layer at any depth, each once (the order is Keras' own)
    assert sorted(map(id, nested)) == sorted(map(id, [inner, *inner.layers, outer.layers[1]]))
    assert walk(include_self=True, recursive=True) == [outer, *nested]
    # a layer shared by two parents is listed once
    shared = keras.layers.Dense(2)
    x = keras.Input((2,))
    twice = keras.Model(x, shared(shared(x)))
    listed = internals.flatten_layers(twice, include_self=False, recursive=True)
    assert [id(layer) for layer in listed].count(id(shared)) == 1
    leaf = keras.layers.Dense(1)
    assert internals.flatten_layers(leaf, include_self=False, recursive=False) == []


def test_keras_history_and_inbound_nodes_lead_back_to_the_producing_layer():
    """models/recipes.py follows a tensor back through weightless layers with
    ``keras_history`` (``KerasTensor._keras_history``) and ``inbound_nodes``."""
    x = keras.Input((4,))
    dense = keras.layers.Dense(3)
    relu = keras.layers.ReLU()
    hidden = dense(x)
    out = relu(hidden)
    operation, node_index, tensor_index = internals.keras_history(out)
    assert operation is relu and tensor_index == 0
    assert internals.inbound_nodes(relu)[node_index].input_tensors == [hidden]
    assert internals.keras_history(hidden)[0] is dense
    assert internals.keras_history(np.ones(2)) is None


def test_outbound_nodes_name_the_layers_an_input_feeds():
    """models/data.py finds the Embedding an integer input feeds with ``outbound_nodes``."""
    tokens = keras.Input((5,), dtype="int32")
    embedding = keras.layers.Embedding(11, 2)
    keras.Model(tokens, embedding(tokens))
    source = internals.keras_history(tokens)[0]
    assert [node.operation for node in internals.outbound_nodes(source)] == [embedding]
    assert internals.outbound_nodes(object()) == []


def test_inputs_struct_keeps_the_layout_of_a_models_inputs():
    """models/data.py shapes its synthetic batch after ``inputs_struct``."""
    a, b = keras.Input((2,), name="a"), keras.Input((3,), name="b")
    joined = keras.layers.Concatenate()([a, b])
    by_name = keras.Model({"a": a, "b": b}, joined)
    structure = internals.inputs_struct(by_name)
    assert isinstance(structure, dict) and structure == {"a": a, "b": b}
    as_list = keras.Model([a, b], joined)
    assert list(internals.inputs_struct(as_list)) == [a, b]
    assert internals.inputs_struct(object()) is None


def test_conv_lstm_cell_is_the_cell_of_keras_conv_lstm_layers():
    """models/walk.py counts ConvLSTM's four gates through its (unexported) cell class."""
    layer = keras.layers.ConvLSTM2D(3, 3)
    layer.build((None, 2, 8, 8, 2))
    assert isinstance(layer.cell, internals.CONV_LSTM_CELL)
    assert layer.cell.kernel.shape == (3, 3, 2, 4 * 3)


# -- optimizers ----------------------------------------------------------------------------------
def test_optimizer_trainable_variables_are_those_it_was_built_with():
    """The captures map gradients to variables through ``optimizer_trainable_variables``;
    AGC pairs clipped gradients with weights through it."""
    variables = [keras.Variable(np.zeros(2, "float32")), keras.Variable(np.ones(3, "float32"))]
    optimizer = keras.optimizers.Adam()
    assert internals.optimizer_trainable_variables(optimizer) == []
    optimizer.build(variables)
    listed = internals.optimizer_trainable_variables(optimizer)
    assert [id(v) for v in listed] == [id(v) for v in variables]
    listed.clear()  # a copy
    assert len(internals.optimizer_trainable_variables(optimizer)) == 2
    assert internals.optimizer_trainable_variables(object()) == []


def test_optimizer_clip_gradients_applies_clipnorm():
    """The captures compute the clipped norms of ``log_clipped=True`` with ``clip_gradients``."""
    variable = keras.Variable(np.zeros(3, "float32"))
    optimizer = keras.optimizers.SGD(clipnorm=1.0)
    optimizer.build([variable])
    gradient = keras.ops.convert_to_tensor(np.array([6.0, 8.0, 0.0], "float32"))
    (clipped,) = internals.clip_gradients(optimizer, [gradient])
    np.testing.assert_allclose(_numpy(clipped), [0.6, 0.8, 0.0], rtol=1e-6)


def test_gradient_accumulation_keeps_its_state_where_the_logger_reads_it():
    """callbacks/capture/base.py reads ``raw_iterations`` (train steps, micro-batches
    included; ``iterations`` is it floor-divided by k), ``accumulated_gradients``
    and ``variable_index``: the update applies ``(g + acc) / k``."""
    other, variable = keras.Variable(np.ones(2, "float32")), keras.Variable(np.ones(3, "float32"))
    optimizer = keras.optimizers.SGD(1.0, gradient_accumulation_steps=2)
    optimizer.build([other, variable])
    assert internals.variable_index(optimizer, variable) == 1
    assert internals.variable_index(optimizer, other) == 0
    accumulated = internals.accumulated_gradients(optimizer)[
        internals.variable_index(optimizer, variable)
    ]
    assert tuple(accumulated.shape) == (3,)
    optimizer.apply([keras.ops.zeros((2,)), keras.ops.full((3,), 2.0)], [other, variable])
    np.testing.assert_allclose(_numpy(accumulated), 2.0)
    assert int(_numpy(internals.raw_iterations(optimizer))) == 1
    assert int(_numpy(optimizer.iterations)) == 0
    optimizer.apply([keras.ops.zeros((2,)), keras.ops.full((3,), 4.0)], [other, variable])
    np.testing.assert_allclose(_numpy(variable), 1.0 - (2.0 + 4.0) / 2)
    np.testing.assert_allclose(_numpy(accumulated), 0.0)
    assert int(_numpy(internals.raw_iterations(optimizer))) == 2
    assert int(_numpy(optimizer.iterations)) == 1


def test_variable_index_is_the_index_mup_keeps_its_multipliers_by():
    """mup/optimizers.py looks up each variable's multipliers by ``variable_index``."""
    variables = [keras.Variable(np.zeros(n, "float32")) for n in (1, 2, 3)]
    optimizer = keras.optimizers.Adam()
    optimizer.build(variables)
    assert [internals.variable_index(optimizer, v) for v in variables] == [0, 1, 2]


def test_is_backend_class_tells_keras_backend_optimizer_classes():
    """optimizers.py names an AGC class after the public class, not PyTorch's fused one."""
    made = type(keras.optimizers.Adam())
    assert internals.is_backend_class(made) == (BACKEND == "torch")
    assert issubclass(made, keras.optimizers.Adam)
    assert not internals.is_backend_class(keras.optimizers.Adam)
    assert not internals.is_backend_class(int)


@pytest.mark.skipif(BACKEND != "torch", reason="Keras' fused PyTorch optimizers")
def test_torch_fused_update_step_updates_with_keras_fused_classes():
    """mup/optimizers.py sends each multiplier group through Keras' fused update."""
    import torch

    class Subclass(keras.optimizers.SGD):
        pass

    for optimizer in (keras.optimizers.Adam(), keras.optimizers.AdamW(), Subclass()):
        step = internals.torch_fused_update_step(optimizer)
        assert step is not None and step.__name__ == "_parallel_update_step"
    assert internals.torch_fused_update_step(keras.optimizers.RMSprop()) is None
    optimizer = Subclass(0.5)
    variable = keras.Variable(np.ones(3, "float32"))
    optimizer.build([variable])
    with torch.no_grad():
        internals.torch_fused_update_step(optimizer)(
            optimizer, [keras.ops.ones((3,))], [variable], 0.5
        )
    np.testing.assert_allclose(_numpy(variable), 0.5)


@pytest.mark.skipif(BACKEND == "torch", reason="not called on PyTorch")
def test_torch_fused_update_step_is_only_asked_for_on_pytorch():
    """Its caller returns before asking on other backends (it imports Keras' torch backend)."""
    from keras_initzoo.mup.optimizers import _torch_fused_step

    assert _torch_fused_step(keras.optimizers.SGD()) is None


# -- callbacks -----------------------------------------------------------------------------------
def test_callback_model_is_the_model_set_without_the_property():
    """``callback_model`` reads ``Callback._model``: the model ``set_model`` gave."""
    callback = keras.callbacks.Callback()
    assert internals.callback_model(callback) is None
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    callback.set_model(model)
    assert internals.callback_model(callback) is model
    assert callback.model is model


# -- the JAX trainer -----------------------------------------------------------------------------
@pytest.mark.skipif(BACKEND != "jax", reason="the JAX trainer's private methods")
def test_jax_trainer_private_methods_the_capture_calls():
    """callbacks/capture/jax.py jits its copy of the train step with
    ``jax_make_function`` and Keras' shardings from ``jax_state_sharding_spec``."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 4)), np.ones((8, 2)), epochs=1, verbose=0)
    specs = internals.jax_state_sharding_spec(model)
    assert isinstance(specs, tuple) and len(specs) >= 4  # trainable, non-trainable, optimizer, ...
    calls = []

    def one_step(state, data):
        calls.append(data)
        return {"n": len(calls)}, state

    function = internals.jax_make_function(model, one_step)
    assert callable(function)
    logs, state = function("state", iter(["batch"]))
    assert calls == ["batch"] and state == "state" and logs == {"n": 1}


# -- PyTorch -------------------------------------------------------------------------------------
@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's private batched norm")
def test_torch_foreach_norm_gives_each_tensors_l2_norm():
    """callbacks/capture/torch.py reduces every gradient with one ``torch_foreach_norm``."""
    import torch

    norms = internals.torch_foreach_norm([torch.tensor([3.0, 4.0]), torch.ones(4)])
    np.testing.assert_allclose([float(n) for n in norms], [5.0, 2.0])


@pytest.mark.skipif(BACKEND != "torch", reason="Keras' PyTorch backend helpers")
def test_torch_draw_helpers_make_keras_generator_device_and_dtype():
    """initializers/sampling.py draws on PyTorch in place with these, as Keras' draws do."""
    import torch

    seed = keras.random.SeedGenerator(5)
    before = _numpy(seed.state).copy()
    first = internals.torch_seed_generator(seed)
    assert isinstance(first, torch.Generator)
    assert not np.array_equal(_numpy(seed.state), before)  # the SeedGenerator advanced
    again = keras.random.SeedGenerator(5)
    assert torch.rand(3, generator=internals.torch_seed_generator(again)).equal(
        torch.rand(3, generator=first)
    )
    assert torch.device(internals.torch_device()) == keras.ops.zeros(1).device
    assert internals.to_torch_dtype("bfloat16") is torch.bfloat16
    assert internals.to_torch_dtype("float32") is torch.float32


# -- TensorFlow ----------------------------------------------------------------------------------
@pytest.mark.tensorflow_only(reason="a TensorFlow graph op attribute")
def test_tf_keep_unlowered_marks_a_graph_cond():
    """callbacks/capture/tensorflow.py keeps its gated ``If`` ops unlowered
    (``Operation._set_attr``); without it TensorFlow lowers them to one Switch per
    captured gradient, run every step (several per cent of a step)."""
    import tensorflow as tf

    marked = []

    @tf.function
    def gated(pred, x):
        out = tf.cond(pred, lambda: x * 2.0, lambda: x)
        op = out.op.inputs[0].op if out.op.type == "Identity" else out.op
        assert op.type in ("If", "StatelessIf")
        internals.tf_keep_unlowered(op)
        marked.append(op.get_attr("_lower_using_switch_merge"))
        return out

    assert float(gated(tf.constant(True), tf.constant(3.0))) == 6.0
    assert marked == [False]
    internals.tf_keep_unlowered(object())  # no _set_attr: left alone


# -- seeds, dtypes and Keras' global state -------------------------------------------------------
def test_draw_seed_advances_a_seed_generator():
    """initializers/sampling.py draws its seed with ``draw_seed`` (as ``keras.random`` does)."""
    generator = keras.random.SeedGenerator(5)
    first, second = (_numpy(internals.draw_seed(generator)) for _ in range(2))
    assert first.shape == (2,) and not np.array_equal(first, second)
    replay = keras.random.SeedGenerator(5)
    np.testing.assert_array_equal(_numpy(internals.draw_seed(replay)), first)


def test_random_seed_dtype_names_the_seed_state_dtype():
    """initializers/base.py stores seeds >= 2**31 as two's complement where
    the state is int32 (PyTorch)."""
    dtype = internals.random_seed_dtype()
    assert (dtype == "int32") == (BACKEND == "torch")
    assert dtype in ("int32", "uint32", "int64")
    assert keras.random.SeedGenerator(1).state.dtype == dtype


def test_backend_convert_to_tensor_gives_a_seed_tensor():
    """initializers/base.py's ``_CallSeeds.next`` returns its seeds through it."""
    dtype = internals.random_seed_dtype()
    seed = internals.backend_convert_to_tensor(np.array([7, 1]), dtype=dtype)
    assert keras.ops.is_tensor(seed) and keras.backend.standardize_dtype(seed.dtype) == dtype
    np.testing.assert_array_equal(_numpy(seed), [7, 1])


def test_session_dict_keeps_a_mutable_default_until_clear_session():
    """initializers/base.py numbers seed streams in a ``session_dict`` that
    ``clear_session()`` must reset (as it resets layer names)."""
    name = "keras_initzoo_internals_probe"
    first = internals.session_dict(name)
    first["seen"] = 1
    assert internals.session_dict(name) is first
    keras.backend.clear_session()
    assert internals.session_dict(name) == {}


def test_reset_global_seed_sets_keras_seed_and_a_fresh_global_generator():
    """experiments/seed.py seeds Keras on JAX and PyTorch with ``reset_global_seed``
    (``tests/test_experiments.py`` checks it draws what ``keras.utils.set_random_seed`` draws):
    the seed ``get_random_seed`` reads (JAX's distribution seeds from it), and a fresh
    global generator for unseeded draws, seeded from Python's ``random`` as Keras does."""
    import random

    from keras.src.utils.rng_utils import get_random_seed

    def draws(seed):
        internals.reset_global_seed(seed)
        assert get_random_seed() == seed
        random.seed(0)
        return _numpy(keras.random.normal((4,)))

    previous = get_random_seed()
    try:
        first = draws(7)
        keras.random.normal((4,))  # moves the global generator on
        np.testing.assert_array_equal(draws(8), first)  # a new generator, from Python's random
    finally:
        internals.reset_global_seed(previous)


def test_bit64_to_bit32_table_is_read_by_result_type():
    """gains.py lifts Keras' float64 -> float32 narrowing on JAX for its
    quadrature by editing this table, which ``result_type`` must read on each call."""
    table = internals.bit64_to_bit32_dtypes()
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


# -- what the package overrides ------------------------------------------------------------------
def test_keras_calls_the_optimizer_methods_the_package_overrides():
    """``apply`` calls ``_backend_apply_gradients`` (AGC's), which calls
    ``_clip_gradients`` (AGC's) and ``_backend_update_step`` (muP's): see ``OVERRIDDEN``."""
    calls = []

    class Recording(keras.optimizers.SGD):
        def _backend_apply_gradients(self, grads, trainable_variables):
            calls.append("_backend_apply_gradients")
            return super()._backend_apply_gradients(grads, trainable_variables)

        def _clip_gradients(self, grads):
            calls.append("_clip_gradients")
            return super()._clip_gradients(grads)

        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            calls.append("_backend_update_step")
            return super()._backend_update_step(grads, trainable_variables, learning_rate)

    variable = keras.Variable(np.ones(2, "float32"))
    optimizer = Recording(0.5)
    optimizer.build([variable])
    optimizer.apply([keras.ops.ones((2,))], [variable])
    assert calls == ["_backend_apply_gradients", "_clip_gradients", "_backend_update_step"]
    np.testing.assert_allclose(_numpy(variable), 0.5)
    assert set(calls) <= set(internals.OVERRIDDEN)


def test_seed_generator_config_reads_initial_seed():
    """initializers/base.py's ``_CallSeeds`` skips ``SeedGenerator.__init__`` and sets
    ``_initial_seed``, which ``get_config`` reads (see ``OVERRIDDEN``)."""
    from keras_initzoo.initializers.base import _CallSeeds

    generator = keras.random.SeedGenerator(5)
    generator._initial_seed = 9
    assert generator.get_config()["seed"] == 9
    seeds = _CallSeeds(np.array([3, 0]))
    assert seeds.get_config()["seed"] is None


# -- the rule: no private access outside _keras_internals.py -------------------------------------
# Underscored names the package itself stores on objects that are not its own instances
# (so no ``self._name = ...`` in the package defines them):
OWN_ON_FOREIGN = {
    "_agc_settings",  # optimizers.py: AGC's settings, on the optimizer it turns into AGC
    "_agc_state",  # optimizers.py: AGC's per-update state, likewise
}
# Private accesses left in modules another change is editing now, each with the function of
# _keras_internals.py to call instead; remove an entry once its module calls it.
PENDING: set[tuple[str, str]] = set()
EXTERNAL_ROOTS = ("keras", "tensorflow", "jax", "jaxlib", "torch")
NON_API_MODULES = ("keras.src", "tensorflow.python", "tensorflow.core")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _non_api(module: str) -> bool:
    """A module of keras, tensorflow, jax or torch outside their public API."""
    parts = module.split(".")
    return parts[0] in EXTERNAL_ROOTS and (
        module.startswith(NON_API_MODULES) or any(map(_private, parts[1:]))
    )


def _sources(root: Path) -> dict[str, ast.Module]:
    return {
        path.relative_to(root).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(root.rglob("*.py"))
    }


def _bound_names(trees: dict[str, ast.Module]) -> tuple[set[str], set[str]]:
    """The underscored names the package binds: (all of them, those defined on its classes).

    All: function, class and variable names, arguments, import aliases, module
    files, and attributes stored on ``self``/``cls``. On its classes: names bound
    in a class body and attributes stored on ``self``/``cls``.
    """
    bound = {Path(path).stem for path in trees} | set(OWN_ON_FOREIGN)
    on_classes: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                bound.add(node.id)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, ast.alias):
                bound.add((node.asname or node.name).split(".")[0])
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
            ):
                bound.add(node.attr)
                on_classes.add(node.attr)
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        on_classes.add(statement.name)
                    elif isinstance(statement, ast.Assign):
                        targets = statement.targets
                        on_classes.update(t.id for t in targets if isinstance(t, ast.Name))
                    elif isinstance(statement, ast.AnnAssign):
                        if isinstance(statement.target, ast.Name):
                            on_classes.add(statement.target.id)
    return {n for n in bound if _private(n)}, {n for n in on_classes if _private(n)}


def _keras_private_names() -> set[str]:
    """The underscored attributes of live Keras objects (a layer, models, a symbolic
    tensor and its node, optimizers, a callback, a seed generator, a variable, an
    initializer) on this backend."""
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(inputs))
    optimizer = keras.optimizers.Adam(gradient_accumulation_steps=2)
    model.compile(optimizer=optimizer, loss="mse")
    optimizer.build(model.trainable_variables)
    callback = keras.callbacks.Callback()
    callback.set_model(model)
    objects = [
        model,
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]),
        dense,
        internals.inbound_nodes(dense)[0],
        inputs,
        optimizer,
        keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()),
        callback,
        keras.random.SeedGenerator(1),
        keras.Variable(np.zeros(2, "float32")),
        keras.initializers.GlorotUniform(),
        keras.layers.LSTM(2),
    ]
    return {name for o in objects for name in dir(o) if _private(name)}


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that stand alone as statements (docstrings)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _is_super_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def private_accesses(root: Path = PACKAGE) -> list[str]:
    """Each private access of Keras, TensorFlow, JAX or PyTorch outside ``_keras_internals.py``.

    The rule, on every module of the package but ``_keras_internals.py``:

    * no import of ``keras.src``, ``tensorflow.python`` or ``tensorflow.core``,
      nor of an underscored module or name of keras, tensorflow, jax or torch
      (``jax._src``, ``from torch import _foreach_norm``), and no ``"keras.src"``
      in a string other than documentation;
    * no ``x._name`` (one leading underscore; read, write or delete, ``self``
      and ``cls`` included) nor ``getattr``/``hasattr``/``setattr``/``delattr``
      of ``"_name"``, unless ``_name`` is the package's own: bound somewhere in
      the package (see :func:`_bound_names`) and no private attribute of a
      Keras object on this backend (:func:`_keras_private_names`);
    * a name of ``OVERRIDDEN`` (the Keras hooks the package overrides) only as
      ``super()._name`` (an override calling Keras' own) or ``self._name = ...``;
    * ``PENDING`` lists the accesses left in modules being edited elsewhere.
    """
    trees = _sources(root)
    bound, _ = _bound_names(trees)
    overridden = set(internals.OVERRIDDEN)
    own = bound - _keras_private_names() - overridden
    found = []
    for path, tree in trees.items():
        if path == "_keras_internals.py":
            continue
        documentation = _docstrings(tree)

        def flag(node, what, path=path):
            found.append(f"{path}:{node.lineno}: {what}")

        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                else:  # the module, then each name imported from it
                    modules = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                    if node.level:  # relative: the package's own
                        modules = []
                offending = [m for m in modules if _non_api(m)]
                if offending:
                    flag(node, f"imports {offending[0]}")
                continue
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "keras.src" in node.value
                and id(node) not in documentation
            ):
                flag(node, f"names keras.src in {node.value!r}")
            target = name = None
            store = False
            if isinstance(node, ast.Attribute) and _private(node.attr):
                target, name, store = node.value, node.attr, isinstance(node.ctx, ast.Store)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
                and _private(node.args[1].value)
            ):
                target, name = node.args[0], node.args[1].value
                store = node.func.id == "setattr"
            if name is None or name in own or (path, name) in PENDING:
                continue
            on_self = isinstance(target, ast.Name) and target.id == "self"
            if name in overridden and (_is_super_call(target) or (on_self and store)):
                continue
            flag(node, f"{ast.unparse(target)}.{name}")
    return found


def test_no_private_access_outside_keras_internals():
    """Every private Keras, TensorFlow, JAX or PyTorch name is reached through
    ``keras_initzoo/_keras_internals.py`` (the rule: :func:`private_accesses`)."""
    found = private_accesses()
    assert not found, "private access outside _keras_internals.py:\n" + "\n".join(found)


def test_the_rule_catches_each_kind_of_private_access(tmp_path):
    """The check itself: each kind of access it refuses, in a module of its own."""
    (tmp_path / "_keras_internals.py").write_text("from keras.src import backend\n")
    (tmp_path / "bad.py").write_text(
        '"""Mentions keras.src in a docstring: fine."""\n'
        "import jax._src\n"
        "from keras.src.backend.common import global_state\n"
        "from torch import _foreach_norm\n"
        "from tensorflow.core.framework import attr_value_pb2\n"
        "NAME = 'keras.src.backend.'\n"
        "def f(model, self):\n"
        "    model._flatten_layers()\n"
        "    getattr(model, '_keras_history', None)\n"
        "    self._trainable_variables\n"
        "    model._clip_gradients([])\n"
        "    model._layers\n"
    )
    (tmp_path / "good.py").write_text(
        "class A:\n"
        "    def _clip_gradients(self, grads):\n"
        "        self._initial_seed = None\n"
        "        self._mine = 1\n"
        "        return super()._clip_gradients(grads)\n"
        "    def _layers(self):\n"
        "        return self._mine, getattr(self, '_mine')\n"
    )
    found = sorted(line.split(":", 2)[2].strip() for line in private_accesses(tmp_path))
    assert found == sorted(
        [
            "imports jax._src",
            "imports keras.src.backend.common",
            "imports torch._foreach_norm",
            "imports tensorflow.core.framework",
            "names keras.src in 'keras.src.backend.'",
            "model._flatten_layers",
            "model._keras_history",
            "self._trainable_variables",
            "model._clip_gradients",  # OVERRIDDEN: only super()._clip_gradients
            "model._layers",  # a ``def _layers`` in the package does not make Keras' its own
        ]
    )


def test_overridden_lists_every_keras_private_name_the_package_defines():
    """A private name the package defines on a class (a method, or an attribute it
    stores on ``self``) that Keras objects also have is an override of Keras: it is
    listed in ``OVERRIDDEN``; and each name listed there is still Keras' and still
    defined by the package."""
    _, on_classes = _bound_names(_sources(PACKAGE))
    keras_names = _keras_private_names()
    assert on_classes & keras_names == set(internals.OVERRIDDEN)


def test_route_compute_attention_sees_the_projected_query_and_key():
    """callbacks/capture/forward.py measures attention logits where ``MultiHeadAttention.call``
    hands ``_compute_attention`` the projected query ``(B, T, N, key_dim)`` and key."""
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    x = np.ones((4, 5, 6), "float32")
    layer(x, x)  # built
    seen = []

    def handler(compute, query, key, value, *args, **kwargs):
        seen.append((tuple(query.shape), tuple(key.shape)))
        return compute(query, key, value, *args, **kwargs)

    restore = internals.route_compute_attention(layer, handler)
    routed = keras.ops.convert_to_numpy(layer(x, x))
    restore()
    assert seen == [((4, 5, 2, 3), (4, 5, 2, 3))]
    assert internals.COMPUTE_ATTENTION not in layer.__dict__
    np.testing.assert_allclose(routed, keras.ops.convert_to_numpy(layer(x, x)), rtol=1e-6)


def test_adam_velocities_are_what_adam_divides_by():
    """callbacks/capture/base.py reads Adam's second moments for the epsilon share:
    after one step from zero moments, ``v = (1 - beta_2) g**2`` for each variable."""
    variable = keras.Variable(np.array([1.0, -2.0, 3.0], "float32"))
    optimizer = keras.optimizers.Adam(0.1, beta_2=0.9)
    assert internals.adam_velocities(optimizer) is None  # not built
    gradient = np.array([0.5, -1.0, 2.0], "float32")
    optimizer.apply([keras.ops.convert_to_tensor(gradient)], [variable])
    (v,) = internals.adam_velocities(optimizer)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(v), 0.1 * gradient**2, rtol=1e-6)
    assert internals.adam_velocities(keras.optimizers.SGD()) is None
    amsgrad = keras.optimizers.Adam(amsgrad=True)
    amsgrad.build([variable])
    assert [v.path for v in internals.adam_velocities(amsgrad)][0].endswith("velocity_hat")


def test_restart_layer_names_numbers_automatic_names_from_the_start():
    """Control: without the restart, a second unnamed Dense is ``dense_1``."""
    keras.layers.Dense(2)
    assert keras.layers.Dense(2).name != "dense"
    internals.restart_layer_names()
    assert keras.layers.Dense(2).name == "dense"
    assert keras.layers.Dense(2).name == "dense_1"
