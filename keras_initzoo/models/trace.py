"""One eager forward pass with every call of chosen layers routed through a handler.

The whole-model tools that need activations (``lsuv``, ``auto_initialize``,
``signal_report``) work inside a single forward pass: when a layer is called,
the handler sees its real inputs, may re-draw and rescale its kernels and call
it again on the same inputs, and returns the output the rest of the model then
uses. So a layer is calibrated on inputs that already reflect every earlier
layer's calibration, and the cost is one forward pass plus a few calls of each
layer, O(layers), on any model: Sequential, functional, subclassed or nested.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np

from keras_initzoo import _keras_internals as internals
from keras_initzoo._shadowing import shadow

# handler(layer, call, args, kwargs) -> output, where call(*args, **kwargs) runs the layer
Handler = Callable[[keras.layers.Layer, Callable[..., Any], tuple, dict], Any]


@contextlib.contextmanager
def intercept(layers: Sequence[keras.layers.Layer], handler: Handler) -> Iterator[None]:
    """Routes every call of ``layers`` through ``handler`` inside the block.

    The layer's own ``call`` is shadowed by an instance attribute, which
    ``Layer.__call__`` picks up in eager execution, and restored on exit.
    """
    undos = []
    try:
        for layer in layers:
            call = layer.call

            def routed(*args, _layer=layer, _call=call, **kwargs):
                return handler(_layer, _call, args, kwargs)

            undos.append(shadow(layer, "call", routed))
        yield
    finally:
        for undo in reversed(undos):
            undo()


@contextlib.contextmanager
def state_kept(model: keras.layers.Layer) -> Iterator[None]:
    """Puts ``model``'s non-trainable variables (moving statistics, seed states) back on exit.

    A pass in training mode moves BatchNormalization's averages and dropout's
    seeds; a tool that only measures must leave them as they were. The values
    are copied to NumPy: a variable's ``value`` may be the live storage.
    """
    saved = [(v, np.array(keras.ops.convert_to_numpy(v))) for v in model.non_trainable_variables]
    try:
        yield
    finally:
        for variable, value in saved:
            variable.assign(value)


def leaf_and_composite_layers(
    model: keras.layers.Layer,
) -> tuple[list[keras.layers.Layer], list[keras.layers.Layer]]:
    """Every layer inside ``model``, each once: those that hold no sublayers, and those that do."""
    leaves: list[keras.layers.Layer] = []
    composites: list[keras.layers.Layer] = []
    seen: set[int] = set()
    for layer in internals.flatten_layers(model, include_self=False, recursive=True):
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        inner = internals.flatten_layers(layer, include_self=False, recursive=False)
        (composites if inner else leaves).append(layer)
    return leaves, composites


def leaf_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every layer inside ``model`` that holds no sublayers, each once."""
    return leaf_and_composite_layers(model)[0]


def first_tensor(output: Any) -> Any:
    """The main output of a layer that returns a tuple, list or dict of tensors."""
    while isinstance(output, (tuple, list)):
        output = output[0]
    if isinstance(output, dict):
        output = next(iter(output.values()))
    return output


def tensors_in(structure: Any) -> list[Any]:
    """The tensors in a nested structure of call arguments."""
    return [x for x in keras.tree.flatten(structure) if keras.ops.is_tensor(x)]


def moments(x: Any) -> tuple[float, float]:
    """Mean and standard deviation of a tensor, over all its entries, in float64."""
    values = np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")
    return float(values.mean()), float(values.std())
