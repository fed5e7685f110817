"""The batch a whole-model tool runs on: the user's data, or one shaped like the model's input."""

from __future__ import annotations

import collections.abc
import dataclasses
import itertools
from typing import Any

import keras
import numpy as np

from keras_initzoo import _keras_internals as internals

# How many batches of a dataset are joined into the one batch a tool runs on.
MAX_BATCHES = 8


def check_built(model: object, argument: str = "model") -> keras.Model:
    """Raises a clear ValueError unless ``model`` is a built Keras layer or model.

    ``argument`` is the name the caller's user passed it as (``base``, ``delta``).
    """
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            f"`{argument}` must be a Keras model or layer; received {type(model).__name__}."
        )
    if not model.built or not model.weights:
        raise ValueError(
            f"`{argument}` {model.name!r} is not built: build it (`model.build(input_shape)`) or "
            "call it on a batch first, so that its kernels exist."
        )
    return model


# What `fit_data` takes, for its error messages.
ACCEPTED = (
    "a NumPy array or backend tensor, a (nested) list of numbers, a list or dict of arrays "
    "(one per model input), a tuple `(x,)`, `(x, y)` or `(x, y, sample_weight)`, "
    "a tf.data.Dataset, a keras.utils.PyDataset, a generator or iterator of such batches, "
    "or a torch DataLoader"
)


@dataclasses.dataclass(frozen=True)
class FitBatch:
    """One batch read from data given the way ``model.fit`` takes it.

    Every leaf is a NumPy array whose first axis is the batch, the same
    length across ``x``, ``y`` and ``sample_weight``.

    Attributes:
        x: The model inputs: an array, or a list, tuple or dict of arrays.
        y: The targets, in the same forms, or None when the data held none.
        sample_weight: The sample weights, or None when the data held none.

    Examples:
        >>> batch = FitBatch(np.zeros((4, 2)), np.ones(4))
        >>> batch.x.shape, batch.y.shape, batch.sample_weight
        ((4, 2), (4,), None)
    """

    x: Any
    y: Any = None
    sample_weight: Any = None


# What one entry of the inputs, targets or sample weights may be.
ACCEPTED_ENTRY = "a NumPy array or backend tensor with a batch axis, or a (nested) list of numbers"


def _reject(name: str, received: str, why: str = "", accepted: str = ACCEPTED) -> ValueError:
    """The ValueError for data in a form ``fit_data`` does not take."""
    return ValueError(f"`{name}` must be {accepted}; received {received}{why}.")


def _reject_entry(where: str, received: str, why: str = "") -> ValueError:
    """:func:`_reject` for one part of the data (``data[1]``, ``data['a']``), or all of it."""
    nested = "[" in where or "." in where
    return _reject(where, received, why, ACCEPTED_ENTRY if nested else ACCEPTED)


def _type_name(value: Any) -> str:
    """``int``, ``list``, or a module-qualified ``numpy.float32``: what an error names."""
    kind = type(value)
    module = kind.__module__
    return kind.__name__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _a(value: Any) -> str:
    """``"an int"``, ``"a str"``: the received value's type, with its article."""
    name = _type_name(value)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _is_array(value: Any) -> bool:
    """Whether ``value`` is one array (NumPy, a backend tensor, pandas), not a Python list."""
    if isinstance(value, (list, tuple, dict, str, bytes)):
        return False
    return hasattr(value, "__array__") or (hasattr(value, "shape") and hasattr(value, "dtype"))


def _rank(value: Any) -> int:
    """The number of axes of an array or tensor (0 for a number), without converting it."""
    return len(getattr(value, "shape", ()) or ())


def _is_tf_dataset(data: Any) -> bool:
    return type(data).__module__.startswith("tensorflow") and hasattr(data, "as_numpy_iterator")


def _is_torch_loader(data: Any) -> bool:
    """A ``torch.utils.data.DataLoader`` (or subclass), recognised without importing torch."""
    return any(
        kind.__name__ == "DataLoader" and kind.__module__.startswith("torch")
        for kind in type(data).__mro__
    )


def _input_count(model: Any) -> int | None:
    """How many inputs ``model`` declares, or None when it declares none (or is None)."""
    if model is None:
        return None
    try:
        inputs = model.inputs
    except Exception:  # a Sequential model without an Input, a bare layer
        return None
    return len(inputs) if inputs else None


def _leaf(value: Any, where: str) -> np.ndarray:
    """The NumPy form of one array or backend tensor."""
    if not _is_array(value):
        raise _reject_entry(where, _a(value))
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        value = value.detach().cpu()  # a tensor on a GPU, or one that requires a gradient
    try:
        array = np.asarray(value)
    except Exception as error:  # a symbolic or sparse tensor
        raise _reject_entry(where, f"{_a(value)} with no concrete values ({error})") from error
    if array.dtype.kind == "O" and not all(isinstance(v, (str, bytes)) for v in array.flat):
        raise _reject_entry(where, f"{_a(value)} of Python objects (dtype object)")
    if array.ndim == 0:
        raise _reject_entry(where, f"{_a(value)} with no batch axis (shape ())")
    return array


def _from_list(value: list, where: str) -> np.ndarray:
    """``np.asarray`` of a (nested) list of numbers, refusing ragged or mixed lists."""
    if not value:
        raise _reject_entry(where, "an empty list")
    try:
        rows = [_leaf(v, where) if _is_array(v) and _rank(v) else v for v in value]
        array = np.asarray(rows)  # NumPy scalars and 0-d tensors are numbers here
    except ValueError as error:  # NumPy refuses an inhomogeneous (ragged) list
        raise _reject_entry(where, "a ragged list", " (its rows differ in length)") from error
    if array.dtype.kind in "US" and not all(
        isinstance(v, (str, bytes)) for v in np.asarray(value, dtype=object).flat
    ):
        raise _reject_entry(where, "a list mixing numbers and strings")
    if array.dtype.kind not in "biufcUS":
        raise _reject_entry(where, f"a list of {', '.join(sorted({_type_name(v) for v in value}))}")
    return array


def _list_is_structure(value: list, model: Any) -> bool:
    """Whether a list holds one array per model input rather than the rows of one array.

    With ``model``: when it has as many inputs as the list has entries (or,
    for a one-input model, when the one entry is an array of the input's rank).
    Without: when every entry is an array (not a Python list or number) and
    all have the same leading dimension, as Keras' inputs must.
    """
    count = _input_count(model)
    if count is not None and count > 1:
        return len(value) == count
    if count == 1:
        rank = len(model.inputs[0].shape)
        return len(value) == 1 and _is_array(value[0]) and _rank(value[0]) == rank
    if not value or not all(_is_array(v) and _rank(v) >= 1 for v in value):
        return False
    return len({v.shape[0] for v in value}) == 1


def _structure(value: Any, where: str, model: Any = None) -> Any:
    """The NumPy form of inputs or targets: an array, or a list, tuple or dict of them."""
    if isinstance(value, dict):
        if not value:
            raise _reject_entry(where, "an empty dict")
        return {k: _structure(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list):
        if _list_is_structure(value, model):
            if _input_count(model) == 1:
                return _structure(value[0], f"{where}[0]")  # the one input, unwrapped
            return [_structure(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return _from_list(value, where)
    if isinstance(value, tuple):
        if not value:
            raise _reject_entry(where, "an empty tuple")
        return tuple(_structure(v, f"{where}[{i}]") for i, v in enumerate(value))
    return _leaf(value, where)


def _unpack(element: Any, name: str) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` of one batch, as ``keras.utils.unpack_x_y_sample_weight``."""
    if isinstance(element, (tuple, list)) and not 1 <= len(element) <= 3:
        raise _reject(name, f"{_a(element)} of {len(element)} entries")
    return keras.utils.unpack_x_y_sample_weight(element)


def _batches(data: Any) -> list[Any] | None:
    """The first :data:`MAX_BATCHES` elements of a dataset, generator or loader; None if not one."""
    if isinstance(data, keras.utils.PyDataset):
        count = data.num_batches
        count = MAX_BATCHES if count is None else min(count, MAX_BATCHES)
        return [data[i] for i in range(count)]
    if _is_tf_dataset(data):
        return list(data.take(MAX_BATCHES).as_numpy_iterator())
    if isinstance(data, collections.abc.Iterator):
        return list(itertools.islice(data, MAX_BATCHES))
    if _is_torch_loader(data):
        return list(itertools.islice(iter(data), MAX_BATCHES))
    return None


def _join(parts: list[Any], where: str) -> Any:
    """Concatenates the batches' arrays along axis 0 (None when no batch has this part)."""
    present = [part is not None for part in parts]
    if not any(present):
        return None
    if not all(present):
        raise ValueError(f"`{where}` is missing from some batches and not from others.")
    if len(parts) == 1:
        return parts[0]
    try:
        return keras.tree.map_structure(lambda *arrays: np.concatenate(arrays), *parts)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`{where}` differs from batch to batch and cannot be joined into one: {error}"
        ) from error


def _check_sizes(batch: FitBatch, name: str, names: tuple[str, str, str]) -> None:
    """Raises unless every array is non-empty and all share the one batch length."""
    sizes = {}
    for part, where in zip((batch.x, batch.y, batch.sample_weight), names, strict=True):
        if part is None:
            continue
        for keys, array in keras.tree.flatten_with_path(part):
            path = where + "".join(f"[{k!r}]" for k in keys)
            if array.shape[0] == 0:
                raise ValueError(f"`{path}` is empty: it holds no sample.")
            sizes[path] = array.shape[0]
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f"`{name}` holds arrays of different numbers of samples: {sizes}. Every input, "
            "target and sample weight needs one row per sample."
        )


def _fit_data(data: Any, name: str, model: Any, targets: bool) -> FitBatch:
    """:func:`fit_data`; with ``targets`` a top-level tuple is a structure (``fit``'s ``y``)."""
    if data is None:
        raise _reject(name, "None")
    if isinstance(data, (str, bytes, set, frozenset, int, float, complex, bool)):
        raise _reject(name, _a(data))
    batches = _batches(data)
    if batches is not None:
        if not batches:
            raise ValueError(f"`{name}` holds no batch: the {_type_name(data)} is empty.")
        names = (f"{name}.x", f"{name}.y", f"{name}.sample_weight")
        columns = zip(*(_unpack(b, name) for b in batches), strict=True)  # xs, ys, weights
        batch = FitBatch(
            *(
                _join([None if p is None else _structure(p, where, owner) for p in parts], where)
                for parts, where, owner in zip(columns, names, (model, None, None), strict=True)
            )
        )
        if batch.x is None:
            raise ValueError(f"`{name}` yields batches with no inputs (`x` is None).")
    elif isinstance(data, tuple) and not targets:
        count = _input_count(model)
        if count is not None and count > 1 and len(data) == count and all(map(_is_array, data)):
            names = (name, f"{name}.y", f"{name}.sample_weight")
            batch = FitBatch(_structure(data, name, model))  # one array per input, as `fit`
        else:
            x, y, weight = _unpack(data, name)
            names = (f"{name}[0]", f"{name}[1]", f"{name}[2]")
            if x is None:
                raise _reject(name, "a tuple whose `x` is None")
            batch = FitBatch(
                _structure(x, names[0], model),
                None if y is None else _structure(y, names[1]),
                None if weight is None else _structure(weight, names[2]),
            )
    elif isinstance(data, (list, dict, tuple)) or _is_array(data):
        names = (name, f"{name}.y", f"{name}.sample_weight")
        batch = FitBatch(_structure(data, name, model))
    else:
        raise _reject(name, _a(data))
    _check_sizes(batch, name, names)
    check_finite_batch(batch.x, names[0])
    if batch.y is not None:
        check_finite_batch(batch.y, names[1])
    return batch


def fit_data(data: Any, name: str = "data", *, model: Any = None) -> FitBatch:
    """One batch of ``(x, y, sample_weight)`` from data in any form ``model.fit`` takes as ``x``.

    Takes:

    * a NumPy array or backend tensor (TensorFlow, JAX, PyTorch), or a pandas
      frame: the inputs;
    * a (nested) Python list of numbers, converted with ``np.asarray``; but a
      list of arrays, one per input of a multi-input model, stays a list.
      With ``model`` that is decided by its number of inputs; without, a list
      whose entries are all arrays (not Python lists) of one leading
      dimension is read as one array per input;
    * a dict of arrays (or lists), one per named input;
    * a tuple ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, unpacked as
      ``keras.utils.unpack_x_y_sample_weight`` does. Pass the inputs of a
      multi-input model as a list or dict: a tuple of arrays is read as
      ``(x, y, ...)``, unless ``model`` has exactly that many inputs;
    * a ``tf.data.Dataset``, a ``keras.utils.PyDataset``, a generator or
      iterator, or a ``torch.utils.data.DataLoader``: the first
      :data:`MAX_BATCHES` batches, each unpacked as above and joined into one.
      Reading a generator or iterator consumes those batches: they are gone
      from it afterwards (pass a fresh one to ``fit``).

    Every leaf becomes a NumPy array; ``x`` and ``y`` must be finite.

    Args:
        data: The data, in any of the forms above.
        name: The argument's name, for the error messages.
        model: The model the data is for, if known: its inputs settle whether
            a list (or tuple) of arrays is one array per input.

    Returns:
        A :class:`FitBatch` of NumPy arrays; ``y`` and ``sample_weight`` are
        None where ``data`` holds none.

    Raises:
        ValueError: naming ``name``, for any other form (None, a string, a
            number, a set, an empty or ragged list), an empty dataset, arrays
            of different numbers of samples, or NaN or inf in ``x`` or ``y``.

    Examples:
        >>> batch = fit_data(([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], [0, 1, 1]))
        >>> batch.x.shape, batch.y.tolist(), batch.sample_weight
        ((3, 2), [0, 1, 1], None)
        >>> def batches():
        ...     for start in range(0, 6, 2):
        ...         yield np.ones((2, 4)), np.zeros(2)
        >>> fit_data(batches()).x.shape
        (6, 4)
        >>> fit_data("train.csv")
        Traceback (most recent call last):
        ValueError: `data` must be a NumPy array or backend tensor, ...; received a str.
    """
    return _fit_data(data, name, model, targets=False)


def as_batch(
    data: Any, name: str = "data", *, model: Any = None, targets: bool | None = None
) -> Any:
    """The inputs of :func:`fit_data`'s batch: what a whole-model tool calls the model on.

    Args:
        data: Anything :func:`fit_data` takes; any targets in it are dropped.
        name: The argument's name, for the error messages.
        model: The model the data is for, if known (see :func:`fit_data`).
        targets: Whether ``data`` is ``fit``'s ``y`` argument rather than its
            ``x``: then a tuple is a structure of targets (one per output), not
            ``(x, y)``. By default, whether ``name`` is ``"y"``, as the tools
            name their targets.

    Returns:
        An array, or a list, tuple or dict of arrays, each with a batch axis.

    Raises:
        ValueError: as :func:`fit_data`.

    Examples:
        >>> as_batch([[0.1, 0.2], [0.3, 0.4]]).shape
        (2, 2)
        >>> as_batch((np.ones((3, 4)), np.zeros(3))).shape  # `(x, y)`: the inputs
        (3, 4)
        >>> [y.shape for y in as_batch((np.zeros(3), np.ones((3, 2))), name="y")]
        [(3,), (3, 2)]
    """
    if targets is None:
        targets = name == "y"
    return _fit_data(data, name, model, targets=targets).x


def check_finite_batch(batch: Any, name: str) -> None:
    """Raises a ValueError naming the array, first index and count of any NaN or inf in ``batch``.

    A non-finite input would otherwise surface as a non-finite first layer
    (an "exploding" verdict, a blamed layer), far from its cause.
    """
    for keys, array in keras.tree.flatten_with_path(batch):
        values = np.asarray(array)
        if values.dtype.kind not in "fc":
            continue
        where = name + "".join(f"[{k!r}]" for k in keys)
        bad = ~np.isfinite(values)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"`{where}` holds NaN or inf: {int(bad.sum())} of its {values.size} values "
                f"(shape {values.shape}), the first at index {first}. Whole-model tools need "
                "finite data: drop or impute those samples."
            )
        # finite in float64 but past the model's float: inf once the model casts it
        floatx = keras.config.floatx()
        limit = float(np.finfo(floatx).max)
        if values.dtype.itemsize > np.dtype(floatx).itemsize and np.abs(values).max() > limit:
            raise ValueError(
                f"`{where}` holds values beyond {floatx}'s range (largest magnitude "
                f"{float(np.abs(values).max()):.3g} > {limit:.3g}): the model would see inf. "
                "Scale the data first."
            )


def _vocabulary_size(tensor: Any) -> int | None:
    """The smallest ``input_dim`` of the Embedding layers an integer input feeds, if any."""
    history = internals.keras_history(tensor)
    if history is None:
        return None
    sizes = [
        node.operation.input_dim
        for node in internals.outbound_nodes(history.operation)
        if isinstance(node.operation, keras.layers.Embedding)
    ]
    return min(sizes) if sizes else None


def synthetic_batch(model: keras.Model, batch_size: int = 32, seed: int = 0) -> Any:
    """A batch shaped like ``model``'s inputs, for tools run without data.

    Float inputs get N(0, 1) values; integer inputs that feed an Embedding get
    ids below its vocabulary size, other integer inputs (padding masks) ones;
    an unknown dimension past the batch axis gets 16.

    Args:
        model: a built Keras model with declared inputs (a functional model,
            or a ``Sequential`` that starts with ``keras.Input``).
        batch_size: the number of examples, an integer > 0 (default 32).
        seed: the NumPy generator's seed, an integer (default 0: the same
            batch on every call).

    Returns:
        NumPy arrays in the structure of ``model``'s inputs: one array, or the
        list or dict the model was built with.

    Raises:
        ValueError: if ``model`` has no declared inputs; pass data then.
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

    structure = internals.inputs_struct(model)  # the inputs' dict or list layout
    if structure is None:
        structure = inputs[0] if len(inputs) == 1 else inputs
    return keras.tree.map_structure(sample, structure)


class ModelError(ValueError):
    """A problem a tool found in the model itself (a dead or non-finite layer)."""


def run(model: keras.Model, batch: Any, name: str = "data", training: bool = False) -> Any:
    """``model(batch)`` (in inference mode by default), with a clear error when the batch
    does not fit.

    Args:
        model: the Keras model to call.
        batch: its inputs, an array or the structure the model takes.
        name: the argument the error names (default ``"data"``).
        training: the mode to call the model in (default False: inference).

    Returns:
        The model's output.

    Raises:
        ValueError: naming ``name``, the batch's shapes and the model's
            inputs when the call fails for any reason but a ``ModelError``.
    """
    try:
        return model(batch, training=training)
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
