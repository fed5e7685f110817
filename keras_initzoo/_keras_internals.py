"""Every private name of Keras, TensorFlow, JAX and PyTorch that keras_initzoo relies on.

Keras may change anything that is not public without notice. So each private
access lives here, as one small function (or constant) whose docstring names
the private name and the Keras behaviour it relies on (checked against Keras
3.15); every other module calls these instead of touching the name. An
upgrade that renames or changes one then fails in
``tests/test_keras_internals.py``, which pins each function here, rather than
somewhere downstream as a wrong number; and ``test_no_private_access_outside``
there refuses a private access anywhere else in the package.

Backend-specific imports (``keras.src.backend.torch``, TensorFlow, PyTorch)
stay inside the functions that need them: importing keras_initzoo on JAX or
PyTorch must not import TensorFlow.

The private methods and attributes the package *defines* on its subclasses of
Keras classes cannot move here; they are listed in :data:`OVERRIDDEN`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras.src import backend as _backend
from keras.src.backend.common import dtypes as _dtypes
from keras.src.backend.common import global_state as _global_state
from keras.src.layers.rnn.conv_lstm import ConvLSTMCell as _ConvLSTMCell
from keras.src.random import seed_generator as _seed_generator

from keras_initzoo._shadowing import shadow

#: Private Keras names that keras_initzoo *defines* (overrides, or sets on a
#: subclass), so they stay where they are; Keras calls or reads each one.
#: ``tests/test_keras_internals.py`` checks that Keras still has each, and that
#: every other private name the package defines on a subclass of a Keras class
#: is listed here.
OVERRIDDEN: tuple[str, ...] = (
    # optimizers.py, AGC: the one optimizer method that sees the gradients with
    # their variables on every backend, before clipping (``BaseOptimizer.apply``
    # calls it); AGC records the per-unit limits there.
    "_backend_apply_gradients",
    # optimizers.py, AGC: where Keras clips (``clipnorm``, ``global_clipnorm``,
    # ``clipvalue``), called by ``_backend_apply_gradients``; AGC clips first.
    # GradientNormLogger(log_clipped=True) calls it through clip_gradients below.
    "_clip_gradients",
    # mup/optimizers.py, MupOptimizer: the backend's update of a list of
    # variables (called by ``_backend_apply_gradients``, inside the jitted step
    # on JAX, in the tf.distribute merge on TensorFlow); muP groups the
    # variables by learning-rate multiplier and calls Keras' own once per group.
    "_backend_update_step",
    # initializers/base.py, _CallSeeds: a SeedGenerator that skips
    # ``SeedGenerator.__init__`` (it holds no state variable) sets the attribute
    # ``SeedGenerator.get_config`` reads.
    "_initial_seed",
)

#: ``keras.layers.ConvLSTM1D/2D/3D``'s cell class (``keras.src.layers.rnn.conv_lstm``),
#: not exported by ``keras.layers``; models/walk.py counts its four stacked gates.
CONV_LSTM_CELL: type = _ConvLSTMCell


# -- attention -----------------------------------------------------------------------------------
#: ``MultiHeadAttention._compute_attention(query, key, value, attention_mask=None,
#: training=None, return_attention_scores=False, use_causal_mask=False)``: the
#: method ``call`` hands the projected query ``(B, T, N, key_dim)`` and key
#: ``(B, S, N, key_dim)`` to (KerasHub's ``CachedMultiHeadAttention`` too); on
#: Keras' fused path it never forms the logits. ``GroupedQueryAttention`` and
#: KerasHub's decoder-only attention layers (``LlamaAttention``,
#: ``CachedGemmaAttention``...) have a method of the same name taking the query
#: ``(B, T, N, H)``, the key ``(B, S, K, H)`` (``K`` key/value heads, repeated to
#: ``N`` or not) and the value first, the mask ``(B, T, S)`` fourth.
#: callbacks/capture/forward.py routes it on each attention layer to measure them.
COMPUTE_ATTENTION = "_compute_attention"


def route_compute_attention(layer: Any, handler: Callable) -> Callable[[], None]:
    """Routes ``layer._compute_attention(*args, **kwargs)`` through
    ``handler(compute, *args, **kwargs)``; returns the function that undoes it.

    The instance attribute shadows the class method (``call`` looks it up on
    ``self``; :func:`keras_initzoo._shadowing.shadow`).
    """
    compute = getattr(layer, COMPUTE_ATTENTION)

    def routed(*args: Any, **kwargs: Any) -> Any:
        return handler(compute, *args, **kwargs)

    return shadow(layer, COMPUTE_ATTENTION, routed)


def computes_attention(layer: Any) -> bool:
    """Whether ``layer`` has a ``_compute_attention`` method (see :data:`COMPUTE_ATTENTION`):
    an attention layer, measured or not (callbacks/capture/forward.py names the ones
    it cannot read)."""
    return callable(getattr(layer, COMPUTE_ATTENTION, None))


def keras_hub_attention_scale(layer: Any) -> float | None:
    """The factor a KerasHub decoder attention layer multiplies ``query . key`` by.

    ``_inv_norm_factor``, set in ``build`` to ``1 / sqrt(head_dim)`` and passed as
    ``scale`` to ``dot_product_attention`` (or multiplied into the scores) by
    ``_compute_attention`` of ``LlamaAttention``, ``MistralAttention``,
    ``QwenAttention``, ``Qwen3Attention``, ``Phi3Attention``,
    ``GPTNeoXAttention``... (keras_hub 0.32). None where the layer has none
    (not built, or another family).
    """
    value = getattr(layer, "_inv_norm_factor", None)
    return None if value is None else float(value)


# -- layers and the functional graph -------------------------------------------------------------
def flatten_layers(
    layer: keras.layers.Layer, *, include_self: bool, recursive: bool
) -> list[keras.layers.Layer]:
    """``layer``'s sublayers as Keras tracks them: ``Layer._flatten_layers``.

    Direct sublayers (``recursive=False``) or every layer at any depth
    (breadth-first from the direct ones, each once, shared layers included
    once), ``layer`` itself first with ``include_self``; as a list.
    Every walk of a model's layer tree in the package goes through here
    (models/trace.py, models/walk.py, models/torch_defaults.py,
    models/recipes.py, callbacks/groups.py, mup/).
    """
    return list(layer._flatten_layers(include_self=include_self, recursive=recursive))


def keras_history(tensor: Any) -> Any | None:
    """Where a symbolic tensor comes from: ``KerasTensor._keras_history``, else None.

    A ``KerasHistory(operation, node_index, tensor_index)`` named tuple on the
    ``KerasTensor`` outputs of a functional graph; absent on other values.
    models/recipes.py and models/data.py follow it back to the layer that made it.
    """
    return getattr(tensor, "_keras_history", None)


def inbound_nodes(operation: Any) -> list:
    """``Operation._inbound_nodes``: one ``Node`` per call of ``operation`` in a graph.

    ``node_index`` of :func:`keras_history` indexes it; each node's
    ``input_tensors`` are the call's symbolic inputs (models/recipes.py).
    """
    return operation._inbound_nodes


def outbound_nodes(operation: Any) -> list:
    """``Operation._outbound_nodes``: a ``Node`` per call that consumes ``operation``'s output.

    Each node's ``operation`` is the consuming layer; ``[]`` where there is no
    such attribute (models/data.py finds the Embedding an integer input feeds).
    """
    return getattr(operation, "_outbound_nodes", [])


def inputs_struct(model: Any) -> Any | None:
    """The nested layout (dict, list, single tensor) of a functional model's inputs.

    ``Functional._inputs_struct``, as given to ``keras.Model(inputs=...)``
    (``model.inputs`` is it flattened); None where the model has none
    (models/data.py shapes its synthetic batch after it).
    """
    return getattr(model, "_inputs_struct", None)


# -- optimizers ----------------------------------------------------------------------------------
def optimizer_trainable_variables(optimizer: Any) -> list:
    """The variables an optimizer was built with, in its order (``[]`` before ``build``).

    ``BaseOptimizer._trainable_variables`` (set to ``[]`` in ``__init__``, to
    the list ``build`` got); ``apply(grads)`` without variables pairs the
    gradients with it. A copy; ``[]`` for an object without the attribute.
    """
    return list(getattr(optimizer, "_trainable_variables", []))


def raw_iterations(optimizer: Any) -> Any:
    """The variable counting train steps, micro-batches included: ``BaseOptimizer._iterations``.

    With ``gradient_accumulation_steps=k`` the public ``iterations`` is it
    floor-divided by ``k``; without, the two are equal.
    """
    return optimizer._iterations


def accumulated_gradients(optimizer: Any) -> list:
    """The gradients gathered since the last update under ``gradient_accumulation_steps``.

    ``BaseOptimizer._accumulated_gradients``: one variable per trainable
    variable, indexed by :func:`variable_index`; the update applies
    ``(g + accumulated) / k`` and resets them (Keras 3.x ``apply``).
    """
    return optimizer._accumulated_gradients


def adam_velocities(optimizer: Any) -> list | None:
    """The second-moment variables of a Keras ``Adam`` (``AdamW`` too), by variable index.

    ``Adam._velocities`` (``_velocity_hats`` with ``amsgrad``, which the update
    divides by instead): ``update_step`` divides by ``sqrt(v) + epsilon``.
    None for any other optimizer, or one not built yet.
    """
    if not isinstance(optimizer, keras.optimizers.Adam) or not optimizer.built:
        return None
    return list(optimizer._velocity_hats if optimizer.amsgrad else optimizer._velocities)


def variable_index(optimizer: Any, variable: Any) -> int:
    """The position of ``variable`` among those the optimizer was built with.

    ``BaseOptimizer._get_variable_index`` (by ``id``; the index of its slot
    variables and of its accumulated gradient).
    """
    return optimizer._get_variable_index(variable)


def clip_gradients(optimizer: Any, grads: Sequence) -> list:
    """``grads`` clipped by the optimizer's own rule: ``BaseOptimizer._clip_gradients``.

    ``clipnorm``, ``global_clipnorm`` or ``clipvalue``, as ``apply`` clips
    (and AGC first, for an AGC optimizer, which overrides it).
    """
    return optimizer._clip_gradients(grads)


def torch_fused_update_step(optimizer: Any) -> Callable | None:
    """On PyTorch, Keras' fused (``torch._foreach``) update step for ``optimizer``'s class.

    Keras swaps ``keras.optimizers.Adam``, ``AdamW`` and ``SGD`` for the
    classes of ``keras.src.backend.torch.optimizers`` (``torch_adam.Adam``...)
    only when one is instantiated exactly, so a subclass would update one
    variable at a time. Returns the fused class's unbound
    ``_parallel_update_step(optimizer, grads, variables, learning_rate)``
    for the first of AdamW, Adam, SGD that ``optimizer`` is an instance of;
    None for another optimizer. PyTorch only (imports Keras' torch backend).
    """
    from keras.src.backend.torch.optimizers import torch_adam, torch_adamw, torch_sgd

    fused = (
        (keras.optimizers.AdamW, torch_adamw.AdamW),
        (keras.optimizers.Adam, torch_adam.Adam),
        (keras.optimizers.SGD, torch_sgd.SGD),
    )
    for keras_class, torch_class in fused:
        if isinstance(optimizer, keras_class):
            return torch_class._parallel_update_step
    return None


def is_backend_class(cls: type) -> bool:
    """Whether ``cls`` is defined in a private Keras backend module (``keras.src.backend.*``).

    On PyTorch ``keras.optimizers.Adam(...)`` returns an instance of
    ``keras.src.backend.torch.optimizers.torch_adam.Adam``
    (``TorchOptimizer.__new__``), a subclass of the public class.
    """
    return cls.__module__.startswith("keras.src.backend.")


# -- callbacks -----------------------------------------------------------------------------------
def callback_model(callback: Any) -> Any:
    """A callback's model, read past Keras' ``model`` property: ``Callback._model``.

    On JAX the ``model`` property first copies the whole train state back into
    the model's variables (``jax_state_sync``), a cost per read inside a fit;
    None before ``set_model``.
    """
    return callback._model


# -- the JAX trainer -----------------------------------------------------------------------------
def jax_make_function(model: Any, step: Callable) -> Callable:
    """``JAXTrainer._make_function``: Keras' train loop (``steps_per_execution``) over ``step``.

    ``step(state, data) -> (logs, state)``; the result is what
    ``make_train_function`` stores as ``model.train_function``.
    """
    return model._make_function(step)


def jax_state_sharding_spec(model: Any) -> tuple:
    """``JAXTrainer._get_state_sharding_spec``: the shardings of the train state under a
    ``keras.distribution`` (trainable, non-trainable, optimizer and metrics variables),
    the ``out_shardings`` Keras' own ``make_train_function`` jits with."""
    return model._get_state_sharding_spec()


# -- PyTorch -------------------------------------------------------------------------------------
def torch_foreach_norm(tensors: Sequence) -> list:
    """Each tensor's L2 norm from one batched kernel: ``torch._foreach_norm``."""
    import torch

    return torch._foreach_norm(tensors)


def torch_seed_generator(seed: Any) -> Any:
    """A ``torch.Generator`` seeded from a ``keras.random.SeedGenerator`` (advancing it).

    ``keras.src.backend.torch.random.torch_seed_generator``, as Keras' own
    PyTorch draws make theirs.
    """
    from keras.src.backend.torch.random import torch_seed_generator as make

    return make(seed)


def torch_device() -> Any:
    """The device Keras puts new tensors on: ``keras.src.backend.torch.core.get_device``."""
    from keras.src.backend.torch.core import get_device

    return get_device()


def to_torch_dtype(dtype: Any) -> Any:
    """The ``torch.dtype`` of a Keras dtype: ``keras.src.backend.torch.core.to_torch_dtype``."""
    from keras.src.backend.torch.core import to_torch_dtype as convert

    return convert(dtype)


# -- TensorFlow ----------------------------------------------------------------------------------
def tf_keep_unlowered(op: Any) -> None:
    """Keeps a graph ``If``/``StatelessIf`` op from being lowered to Switch/Merge nodes.

    Sets the ``_lower_using_switch_merge`` attribute to False with
    ``tf.Operation._set_attr`` (and ``tensorflow.core.framework.attr_value_pb2``);
    nothing where the op has no ``_set_attr``. A lowered ``If`` runs one Switch
    per captured tensor every step; an unlowered one calls its taken branch only.
    """
    if not hasattr(op, "_set_attr"):
        return
    from tensorflow.core.framework import attr_value_pb2

    op._set_attr("_lower_using_switch_merge", attr_value_pb2.AttrValue(b=False))


# -- seeds, dtypes and Keras' global state -------------------------------------------------------
def draw_seed(seed: Any) -> Any:
    """The seed tensor of one draw: ``keras.src.random.seed_generator.draw_seed``.

    As ``keras.random`` draws take theirs: a ``SeedGenerator``'s next seed
    (advancing it), or a fixed one from an integer; a ``(2,)`` tensor.
    """
    return _seed_generator.draw_seed(seed)


def random_seed_dtype() -> str:
    """The dtype of a ``SeedGenerator``'s state: ``keras.src.backend.random_seed_dtype``.

    ``"int32"`` on PyTorch (which has no uint32), ``"uint32"`` elsewhere.
    """
    return _backend.random_seed_dtype()


def backend_convert_to_tensor(x: Any, dtype: str | None = None) -> Any:
    """The backend's own ``convert_to_tensor`` (``keras.src.backend``), not the ``keras.ops`` op.

    What ``SeedGenerator.next`` returns its seeds through.
    """
    return _backend.convert_to_tensor(x, dtype=dtype)


def session_dict(name: str) -> dict:
    """A dict in Keras' global state under ``name``, emptied by ``keras.backend.clear_session()``.

    ``keras.src.backend.common.global_state.get_global_attribute(name, {},
    set_to_default=True)``: the same dict until ``clear_session()`` clears
    the global state (as it restarts layer-name numbering).
    """
    return _global_state.get_global_attribute(name, {}, set_to_default=True)


def reset_global_seed(seed: int | None) -> None:
    """Keras' part of ``keras.utils.set_random_seed``, without seeding TensorFlow.

    Sets ``keras.src.utils.rng_utils.GLOBAL_RANDOM_SEED`` in the global state
    (what unseeded ``SeedGenerator`` s start from) and clears
    ``keras.src.random.seed_generator.GLOBAL_SEED_GENERATOR`` (the generator
    of ``keras.random`` draws without a seed), as Keras does.
    """
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    _global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    _global_state.set_global_attribute(_seed_generator.GLOBAL_SEED_GENERATOR, None)


def restart_layer_names() -> None:
    """Restarts Keras' automatic layer names (the next ``Dense()`` is ``dense`` again).

    ``keras.src.utils.naming.uniquify`` numbers each automatic name from the
    global-state dict ``"object_name_uids"``; dropping it is the part of
    ``keras.backend.clear_session()`` that restarts the numbering, without the
    rest (the global dtype policy, seed generator and registered objects
    stay). ``initzoo coord-check`` calls it before each build of the user's
    model, so its report names the layers as one build would.
    """
    _global_state.set_global_attribute("object_name_uids", None)


def bit64_to_bit32_dtypes() -> dict[str, str]:
    """The table by which Keras' type promotion narrows 64-bit types on JAX (without x64).

    ``keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE``, the mutable
    dict itself: ``keras.backend.result_type`` reads it on each call, so an
    edit (gains.py lifts ``"float64"``) holds until it is put back.
    """
    return _dtypes.BIT64_TO_BIT32_DTYPE
