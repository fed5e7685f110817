"""The batch a whole-model tool runs on: the user's data, or one shaped like the model's input."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

# How many batches of a dataset are joined into the one batch a tool runs on.
MAX_BATCHES = 8


def check_built(model: object) -> keras.Model:
    """Raises a clear ValueError unless ``model`` is a built Keras layer or model."""
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            f"`model` must be a Keras model or layer; received {type(model).__name__}."
        )
    if not model.built or not model.weights:
        raise ValueError(
            f"`model` {model.name!r} is not built: build it (`model.build(input_shape)`) or "
            "call it on a batch first, so that its kernels exist."
        )
    return model


def _inputs_of(batch: Any) -> Any:
    """``x`` of a dataset element ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``."""
    if isinstance(batch, tuple) and 1 <= len(batch) <= 3:
        return batch[0]
    return batch


def _join(batches: list[Any]) -> Any:
    """Concatenates a list of batches (arrays, lists or dicts of arrays) along axis 0."""
    return keras.tree.map_structure(
        lambda *parts: np.concatenate([keras.ops.convert_to_numpy(p) for p in parts]), *batches
    )


def as_batch(data: Any, name: str = "data") -> Any:
    """One batch of model inputs from arrays, a ``tf.data.Dataset`` or a ``keras.utils.PyDataset``.

    A dataset contributes the inputs of its first :data:`MAX_BATCHES` batches,
    joined into one; its targets are dropped.
    """
    if data is None:
        raise ValueError(f"`{name}` is required; received None.")
    if isinstance(data, keras.utils.PyDataset):
        batches = [_inputs_of(data[i]) for i in range(min(len(data), MAX_BATCHES))]
    elif type(data).__module__.startswith("tensorflow") and hasattr(data, "take"):
        batches = [_inputs_of(b) for b in data.take(MAX_BATCHES).as_numpy_iterator()]
    else:
        batches = [data]
    if not batches:
        raise ValueError(f"`{name}` holds no batch: the dataset is empty.")
    batch = _join(batches) if len(batches) > 1 else keras.tree.map_structure(np.asarray, batches[0])
    sizes = {np.shape(x)[0] if np.ndim(x) else 0 for x in keras.tree.flatten(batch)}
    if 0 in sizes:
        raise ValueError(f"`{name}` is empty: it holds no sample.")
    check_finite_batch(batch, name)
    return batch


def check_finite_batch(batch: Any, name: str) -> None:
    """Raises a ValueError naming the array, first index and count of any NaN or inf in ``batch``.

    A non-finite input would otherwise surface as a non-finite first layer
    (an "exploding" verdict, a blamed layer), far from its cause.
    """
    for keys, array in keras.tree.flatten_with_path(batch):
        values = np.asarray(array)
        if values.dtype.kind not in "fc":
            continue
        bad = ~np.isfinite(values)
        if bad.any():
            where = name + "".join(f"[{k!r}]" for k in keys)
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"`{where}` holds NaN or inf: {int(bad.sum())} of its {values.size} values "
                f"(shape {values.shape}), the first at index {first}. Whole-model tools need "
                "finite data: drop or impute those samples."
            )


def _vocabulary_size(tensor: Any) -> int | None:
    """The smallest ``input_dim`` of the Embedding layers an integer input feeds, if any."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    sizes = [
        node.operation.input_dim
        for node in getattr(history.operation, "_outbound_nodes", [])
        if isinstance(node.operation, keras.layers.Embedding)
    ]
    return min(sizes) if sizes else None


def synthetic_batch(model: keras.Model, batch_size: int = 32, seed: int = 0) -> Any:
    """A batch shaped like ``model``'s inputs, for tools run without data.

    Float inputs get N(0, 1) values; integer inputs that feed an Embedding get
    ids below its vocabulary size, other integer inputs (padding masks) ones;
    an unknown dimension past the batch axis gets 16.
    """
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            f"`model` {model.name!r} has no declared inputs to shape a synthetic batch "
            "after; pass `data`."
        )
    rng = np.random.default_rng(seed)

    def sample(tensor):
        shape = (batch_size, *(16 if d is None else d for d in tensor.shape[1:]))
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if "int" in dtype or dtype == "bool":
            vocabulary = _vocabulary_size(tensor)
            if vocabulary is None:
                return np.ones(shape, dtype=dtype)
            return rng.integers(0, vocabulary, size=shape).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)

    structure = getattr(model, "_inputs_struct", None)  # the inputs' dict or list layout
    if structure is None:
        structure = inputs[0] if len(inputs) == 1 else inputs
    return keras.tree.map_structure(sample, structure)


class ModelError(ValueError):
    """A problem a tool found in the model itself (a dead or non-finite layer)."""


def run(model: keras.Model, batch: Any, name: str = "data") -> Any:
    """``model(batch)`` in inference mode, with a clear error when the batch does not fit."""
    try:
        return model(batch, training=False)
    except ModelError:
        raise
    except Exception as error:  # each backend raises its own type for a shape mismatch
        shapes = keras.tree.map_structure(np.shape, batch)
        expected = [tuple(x.shape) for x in getattr(model, "inputs", None) or []]
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(
            f"`{name}` does not fit `model` {model.name!r}: a batch of shape {shapes} "
            f"against inputs {expected or 'of unknown shape'} "
            f"({type(error).__name__}: {first_line})"
        ) from error
