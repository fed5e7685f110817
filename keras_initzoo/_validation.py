"""Argument checks shared by every public entry point.

Each check either returns the value in canonical form or raises ``ValueError``
naming the argument and what is allowed, so bad input never reaches a kernel
as a NaN or a silently replaced default.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Sequence
from typing import Any

import keras
import numpy as np

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def check_finite(name: str, value: object, what: str = "a finite number") -> float:
    """Returns ``value`` as a float if it is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"`{name}` must be {what}; received {name}={value!r} of type {type(value).__name__}."
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be {what}; received {name}={value!r}.")
    return value


def check_finite_array(name: str, value: object) -> np.ndarray:
    """Returns ``value`` as a float64 array if every entry is a finite real number."""
    if keras.ops.is_tensor(value):
        value = keras.ops.convert_to_numpy(value)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged nested lists
        array = None
    if array is None or array.dtype.kind not in "iuf":
        raise ValueError(
            f"`{name}` must be a number or an array of finite real numbers; "
            f"received {name}={value!r}."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` must hold finite numbers only; received {name}={value!r}.")
    return array.astype("float64")


def check_positive(name: str, value: object) -> float:
    """Returns ``value`` as a float if it is a finite real number > 0."""
    value = check_finite(name, value, what="a finite number > 0")
    if value <= 0.0:
        raise ValueError(f"`{name}` must be a finite number > 0; received {name}={value!r}.")
    return value


FLOAT32_MAX = float(np.finfo("float32").max)


def check_positive_float32(name: str, value: object) -> float:
    """Returns ``value`` as a float if it is > 0 and finite in float32 (where it is used)."""
    value = check_positive(name, value)
    if value > FLOAT32_MAX:
        raise ValueError(
            f"`{name}` must be a number > 0 and at most {FLOAT32_MAX:.4g} (it is used in "
            f"float32); received {name}={value!r}."
        )
    return value


def check_non_negative(name: str, value: object) -> float:
    """Returns ``value`` as a float if it is a finite real number >= 0."""
    value = check_finite(name, value, what="a finite number >= 0")
    if value < 0.0:
        raise ValueError(f"`{name}` must be a finite number >= 0; received {name}={value!r}.")
    return value


# A value whose square a formula takes (a gain, a slope) must keep the square finite.
SQUARABLE = 1e150


def check_squarable(name: str, value: float) -> float:
    """Returns ``value`` if its square is a finite float64 (``|value| <= 1e150``)."""
    if abs(value) > SQUARABLE:
        raise ValueError(
            f"`{name}` must be at most {SQUARABLE:g} in magnitude (its square is taken); "
            f"received {name}={value!r}."
        )
    return value


def check_in_range(name: str, value: object, low: float, high: float) -> float:
    """Returns ``value`` as a float if ``low <= value <= high``."""
    value = check_finite(name, value)
    if not low <= value <= high:
        raise ValueError(f"`{name}` must lie in [{low}, {high}]; received {name}={value!r}.")
    return value


def check_choice(name: str, value: object, allowed: Iterable[str]) -> str:
    """Returns ``value`` if it is one of the ``allowed`` strings."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"`{name}` must be one of {list(allowed)}; received {name}={value!r}.")
    return value


# Steps, counts and sizes are int64 on every backend; a larger integer cannot be used.
INT64_MAX = 2**63 - 1


def check_int(
    name: str,
    value: object,
    minimum: int = 0,
    what: str | None = None,
    maximum: int = INT64_MAX,
) -> int:
    """Returns ``value`` as an int if it is an integer (not a bool) in ``[minimum, maximum]``.

    ``what`` describes the allowed values in the error (default "an integer
    from minimum to maximum").
    """
    what = what or (
        f"an integer >= {minimum}"
        if maximum == INT64_MAX
        else f"an integer from {minimum} to {maximum}"
    )
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not minimum <= value <= maximum
    ):
        raise ValueError(
            f"`{name}` must be {what}; received {name}={value!r} of type {type(value).__name__}."
        )
    return int(value)


def check_bool(name: str, value: object) -> bool:
    """Returns ``value`` if it is True or False (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise ValueError(
            f"`{name}` must be True or False; received {name}={value!r} of type "
            f"{type(value).__name__}."
        )
    return value


def check_biases(biases: object) -> bool | str:
    """Returns ``biases`` if it is False, True or ``"torch"`` (what ``reinitialize`` takes)."""
    if isinstance(biases, bool) or (isinstance(biases, str) and biases == "torch"):
        return biases
    raise ValueError(
        "`biases` must be False (leave the biases as they are), True (set them to zero) "
        f"or 'torch' (draw them as torch.nn does); received biases={biases!r}."
    )


def check_shape(shape: object) -> tuple[int, ...]:
    """Returns ``shape`` as a tuple of non-negative Python ints."""
    try:
        if isinstance(shape, (str, bytes)):
            raise TypeError
        dims = tuple(shape)  # tuples, lists and TensorShapes alike
    except TypeError:
        raise ValueError(
            f"`shape` must be a sequence of non-negative integers; received shape={shape!r}."
        ) from None
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 0:
            raise ValueError(
                "`shape` must be a sequence of non-negative integers; "
                f"received shape={shape!r} with dimension {dim!r}."
            )
    return tuple(int(dim) for dim in dims)


def check_allocatable(shape: tuple[int, ...], dtype: str) -> None:
    """Refuses a tensor larger than this machine's memory before anything is allocated.

    The rule: ``prod(shape) * itemsize(dtype)`` must not exceed the physical
    memory (``os.sysconf``), where the system says; a draw needs that much at
    least, and ``(2**31, 2**31)`` would otherwise abort JAX or exhaust the host.
    """
    size = math.prod(shape) * np.dtype(dtype if dtype != "bfloat16" else "float16").itemsize
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no such figure on this system
        return
    if size > memory:
        raise ValueError(
            f"`shape` {shape} of {dtype} takes {size / 2**30:.3g} GiB, more than this "
            f"machine's {memory / 2**30:.3g} GiB of memory; received shape={shape!r}."
        )


def check_float_dtype(dtype: object) -> str:
    """Returns the standardized floating dtype (``None`` means ``keras.config.floatx()``)."""
    if dtype is None:
        return keras.config.floatx()
    try:
        name = keras.backend.standardize_dtype(dtype)
    except (ValueError, TypeError):
        name = None
    if name not in FLOAT_DTYPES:
        raise ValueError(
            f"`dtype` must be a floating-point dtype, one of {list(FLOAT_DTYPES)}; "
            f"received dtype={dtype!r}."
        )
    return name


def check_axes(name: str, axes: object, rank: int | None = None) -> tuple[int, ...]:
    """Returns ``axes`` as distinct integers, made non-negative for a rank-``rank`` shape.

    With ``rank=None`` (the shape is not known yet) only the types are checked.
    """
    if not isinstance(axes, Sequence) or isinstance(axes, str):
        raise ValueError(f"`{name}` must be a list of integer axes; received {name}={axes!r}.")
    normalized = []
    for axis in axes:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"`{name}` must be a list of integer axes; received {name}={axes!r}.")
        if rank is None:
            normalized.append(int(axis))
            continue
        if not -rank <= axis < rank:
            raise ValueError(
                f"`{name}` has axis {axis}, out of range for a shape of rank {rank}; "
                f"received {name}={list(axes)!r}."
            )
        normalized.append(int(axis) % rank)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"`{name}` repeats an axis; received {name}={list(axes)!r}.")
    return tuple(normalized)


def check_loss(loss: Any) -> Any:
    """Returns ``loss`` as a Keras loss callable: an identifier (``"mse"``) or a callable."""
    if callable(loss):
        return loss
    if isinstance(loss, str):
        try:
            return keras.losses.get(loss)
        except ValueError:
            pass
    raise ValueError(
        "`loss` must be a Keras loss identifier ('mse', 'sparse_categorical_crossentropy', "
        f"...) or a callable loss(y_true, y_pred); received loss={loss!r}."
    )
