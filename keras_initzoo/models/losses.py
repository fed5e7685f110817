"""The loss a whole-model tool takes gradients of when the model has none compiled.

Per output, from the targets and the output itself (never by broadcasting one
against the other):

* integer labels (integer dtype, or floats that are all whole numbers) in
  ``[0, classes)``, shaped like the output without its class axis (or with a
  class axis of 1), against class scores -> sparse categorical cross-entropy;
* one-hot targets of the output's shape -> categorical cross-entropy;
* targets in ``[0, 1]`` of the output's shape against a sigmoid output ->
  binary cross-entropy;
* any other targets of the output's shape -> mean squared error.

Scores are probabilities when the layer that produced the output ends in a
softmax (sigmoid), else when every row lies in ``[0, 1]`` and sums to 1; else
they are logits. A multi-output model gets one loss per output, summed, as
``compile`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_initzoo._validation import check_loss
from keras_initzoo.models.data import run
from keras_initzoo.models.trace import intercept, leaf_layers

_SUM_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within ~1e-6; logits never all do


@dataclass
class ModelLoss:
    """A loss ``(y, y_pred) -> scalar`` with the words that say which it is."""

    function: Any
    description: str

    def __call__(self, y: Any, y_pred: Any) -> Any:
        return self.function(y, y_pred)


def _mean(function):
    return lambda y, y_pred: keras.ops.mean(function(y, y_pred))


def _outputs(y: Any, y_pred: Any) -> list[tuple[str, Any, Any]]:
    """``(name, targets, output)`` per output, ``y`` matched to ``y_pred``'s structure."""
    if isinstance(y_pred, dict):
        if not isinstance(y, dict) or set(y) != set(y_pred):
            raise ValueError(
                f"`y` must be a dict with one target per output {sorted(y_pred)}; "
                f"received {type(y).__name__}. Compile the model or pass `loss=`."
            )
        return [(str(k), y[k], y_pred[k]) for k in y_pred]
    if isinstance(y_pred, (list, tuple)):
        if not isinstance(y, (list, tuple)) or len(y) != len(y_pred):
            raise ValueError(
                f"`y` must be a list with one target per output ({len(y_pred)} outputs); "
                f"received {type(y).__name__}. Compile the model or pass `loss=`."
            )
        return [(f"output {i}", t, p) for i, (t, p) in enumerate(zip(y, y_pred, strict=True))]
    if isinstance(y, (list, tuple)) and len(y) == 1:
        y = y[0]
    return [("output", y, y_pred)]


def _integer_valued(values: np.ndarray) -> bool:
    if values.dtype.kind in "iub":
        return True
    return values.dtype.kind == "f" and bool(np.all(values == np.round(values)))


def _probabilities(scores: np.ndarray, activation: str | None) -> tuple[bool, str]:
    if activation in ("softmax", "sigmoid"):
        return True, f"probabilities (the output layer ends in a {activation})"
    if activation is not None:
        return False, f"logits (the output layer ends in {activation})"
    in_range = bool(np.all((scores >= 0) & (scores <= 1)))
    if in_range and bool(np.all(np.abs(scores.sum(axis=-1) - 1) < _SUM_TOLERANCE)):
        return True, "probabilities (every row lies in [0, 1] and sums to 1)"
    return False, "logits (its rows are not probability distributions)"


def _one_output(name: str, y: Any, y_pred: Any, activation: str | None) -> ModelLoss:
    labels = np.asarray(keras.ops.convert_to_numpy(y))
    scores = np.asarray(keras.ops.convert_to_numpy(y_pred), dtype="float64")
    shape, out = labels.shape, scores.shape
    classes = out[-1] if scores.ndim else 0
    way_out = "compile the model with its loss or pass `loss=`"
    if shape[:1] != out[:1]:
        raise ValueError(
            f"`y` of shape {shape} does not fit the {name} of shape {out}: "
            f"not the same number of samples; {way_out}."
        )
    if shape != out and shape + (1,) == out:  # (N,) against (N, 1): the same targets
        labels, shape = labels.reshape(out), out
    if shape != out and classes > 1 and shape in (out[:-1], out[:-1] + (1,)):
        if not _integer_valued(labels) or labels.min() < 0 or labels.max() >= classes:
            raise ValueError(
                f"`y` of shape {shape} against the {name} of shape {out} must hold integer "
                f"class labels in [0, {classes}); it holds values from {labels.min()} to "
                f"{labels.max()}; {way_out}."
            )
        probs, why = _probabilities(scores, activation)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not probs)

        def sparse(y, y_pred):
            y = keras.ops.reshape(keras.ops.cast(y, "int32"), keras.ops.shape(y_pred)[:-1])
            return loss(y, y_pred)

        return ModelLoss(
            sparse,
            f"{name}: sparse categorical cross-entropy, `y` holding labels of {classes} "
            f"classes, the output {why}",
        )
    if shape != out:
        raise ValueError(
            f"`y` of shape {shape} does not fit the {name} of shape {out}: neither targets "
            f"of its shape nor class labels of its {classes} classes; {way_out}."
        )
    binary = bool(np.all((labels == 0) | (labels == 1)))
    if classes > 1 and binary and bool(np.all(labels.sum(axis=-1) == 1)):
        probs, why = _probabilities(scores, activation)
        loss = keras.losses.CategoricalCrossentropy(from_logits=not probs)
        return ModelLoss(
            _cast(loss), f"{name}: categorical cross-entropy, `y` one-hot, the output {why}"
        )
    if activation == "sigmoid" and bool(np.all((labels >= 0) & (labels <= 1))):
        return ModelLoss(
            _cast(keras.losses.BinaryCrossentropy()),
            f"{name}: binary cross-entropy, the output layer ending in a sigmoid",
        )
    return ModelLoss(
        _cast(keras.losses.MeanSquaredError()),
        f"{name}: mean squared error, `y` regression targets of the output's shape {out}",
    )


def _cast(loss):
    def cast(y, y_pred):
        y = keras.ops.reshape(keras.ops.cast(y, y_pred.dtype), keras.ops.shape(y_pred))
        return loss(y, y_pred)

    return cast


def infer_loss(y: Any, y_pred: Any, activations: dict[str, str | None]) -> ModelLoss:
    """The loss that fits targets ``y`` and a concrete model output ``y_pred`` (see above).

    ``activations`` maps each output's name to the activation its layer ends
    in, where known. Raises a ValueError naming ``y`` and the output shape when
    nothing fits.

    Args:
        y: the targets, an array or the structure of the model's outputs.
        y_pred: the model's output on the matching inputs.
        activations: each output's name mapped to the activation its layer
            ends in (None where unknown).

    Returns:
        A :class:`ModelLoss`: the loss function and its description.

    Examples:
        >>> scores = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]], "float32")
        >>> infer_loss(np.array([[0], [2]]), scores, {}).description.split(",")[0]
        'output: sparse categorical cross-entropy'
    """
    parts = [_one_output(n, t, p, activations.get(n)) for n, t, p in _outputs(y, y_pred)]
    if len(parts) == 1:
        return parts[0]

    def total(y, y_pred):
        pairs = _outputs(y, y_pred)
        return sum(part(t, p) for part, (_, t, p) in zip(parts, pairs, strict=True))

    return ModelLoss(total, "; ".join(part.description for part in parts) + " (summed)")


def _activation_name(layer: keras.layers.Layer) -> str:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    function = getattr(layer, "activation", None)
    return getattr(function, "__name__", "linear") if function is not None else "linear"


def model_loss(model: keras.Model, x: Any, y: Any, loss: Any = None) -> ModelLoss:
    """The loss a tool takes gradients of: ``loss``, the compiled one, or one inferred.

    Inference runs the model once on ``x`` and reads, by identity, which leaf
    layer produced each output and what activation it ends in.

    Args:
        model: the Keras model.
        x: a batch of its inputs.
        y: the matching targets.
        loss: a loss Keras takes (a name, a function or a ``keras.losses.Loss``);
            default None: the compiled loss, else the one :func:`infer_loss`
            finds.

    Returns:
        A :class:`ModelLoss`.
    """
    if loss is not None:
        function = _mean(check_loss(loss))

        def given(y, y_pred):
            return sum(function(t, p) for _, t, p in _outputs(y, y_pred))

        return ModelLoss(given, f"loss={getattr(loss, '__name__', loss)!r} (given)")
    if getattr(model, "compiled", False) and getattr(model, "loss", None) is not None:
        return ModelLoss(
            lambda y, y_pred: model.compute_loss(y=y, y_pred=y_pred), "the compiled loss"
        )
    produced: dict[int, str] = {}

    def handler(layer, call, args, kwargs):
        output = call(*args, **kwargs)
        produced[id(output)] = _activation_name(layer)
        return output

    with intercept(leaf_layers(model), handler):
        y_pred = run(model, x, name="x")
    names = [name for name, _, _ in _outputs(y, y_pred)]
    outputs = [p for _, _, p in _outputs(y, y_pred)]
    activations = {n: produced.get(id(p)) for n, p in zip(names, outputs, strict=True)}
    return infer_loss(y, y_pred, activations)
