"""Fan-in and fan-out of a weight tensor: the one place this package computes them.

Keras lays kernels out as ``(*receptive_field, in, out)``: ``Dense`` kernels are
``(in, out)``, ``ConvND`` kernels ``(k_1, ..., k_N, in, out)``. Layers whose
kernels do not follow that layout say which axes are which: ``EinsumDense``
(and so ``MultiHeadAttention``) pass ``input_axes``/``output_axes`` to every
``VarianceScaling`` initializer, and ``ConvNDTranspose`` kernels, laid out
``(k_1, ..., k_N, out, in)``, take the axes from :func:`conv_transpose_axes`,
and depthwise kernels ``(k_1, ..., k_N, channels, multiplier)`` from
:func:`depthwise_axes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from keras_initzoo._validation import check_axes, check_int, check_shape

# Keras convolves over 1 to 3 spatial axes (Conv1D to Conv3D and their variants).
MAX_SPATIAL_RANK = 3


def check_axes_pair(input_axes: object, output_axes: object) -> None:
    """Raises unless ``input_axes`` and ``output_axes`` are both given or both None."""
    if (input_axes is None) != (output_axes is None):
        raise ValueError(
            "`input_axes` and `output_axes` must be given together or not at all; "
            f"received input_axes={input_axes!r}, output_axes={output_axes!r}."
        )


def compute_fans(
    shape: Sequence[int],
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
    batch_axes: Sequence[int] = (),
) -> tuple[int, int]:
    """Returns ``(fan_in, fan_out)`` for a weight of the given shape.

    Without explicit axes, with ``r = prod(shape[:-2])`` the receptive field::

        fan_in  = shape[-2] * r
        fan_out = shape[-1] * r

    A vector (a bias, a norm scale) has ``fan_in = fan_out = shape[0]`` and a
    scalar ``1``, as in Keras. With explicit axes, ``fan_in`` is the product of
    ``shape`` over ``input_axes`` and ``fan_out`` over ``output_axes``; the two
    must be given together. ``batch_axes`` (as in JAX) are left out of both:
    they index independent kernels stacked in one tensor, e.g. an ensemble's.

    Args:
        shape: the weight's shape, a sequence of non-negative integers.
        input_axes: the axes whose product is ``fan_in`` (each in
            ``[-len(shape), len(shape))``); default None: Keras' layout above.
        output_axes: the axes whose product is ``fan_out``; given together
            with ``input_axes`` or not at all (default None).
        batch_axes: axes left out of both fans (default ``()``: none); they
            play no part once ``input_axes`` and ``output_axes`` are given.

    Returns:
        ``(fan_in, fan_out)``, two integers.

    Raises:
        ValueError: if ``shape`` is not a sequence of non-negative integers,
            an axis is out of range, or only one of ``input_axes`` and
            ``output_axes`` is given.

    Examples:
        >>> compute_fans((3, 3, 16, 32))      # Conv2D, 3x3, 16 -> 32 channels
        (144, 288)
        >>> compute_fans((64, 8, 16), input_axes=[0], output_axes=[1, 2])
        (64, 128)
        >>> compute_fans((5, 64, 32), batch_axes=[0])   # 5 stacked Dense kernels
        (64, 32)
    """
    check_axes_pair(input_axes, output_axes)
    shape = check_shape(shape)
    batch_axes = set(check_axes("batch_axes", batch_axes, len(shape)))
    if input_axes is not None:
        input_axes = check_axes("input_axes", input_axes, len(shape))
        output_axes = check_axes("output_axes", output_axes, len(shape))
        return (
            math.prod(shape[axis] for axis in input_axes),
            math.prod(shape[axis] for axis in output_axes),
        )
    shape = tuple(dim for axis, dim in enumerate(shape) if axis not in batch_axes)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def conv_transpose_axes(spatial_rank: int) -> dict[str, list[int]]:
    """Axes of a ``ConvNDTranspose`` kernel ``(k_1, ..., k_N, out, in)``.

    Returns ``{"input_axes": [...], "output_axes": [...]}`` to pass to any
    fan-based initializer, so that the input channels (last axis) count
    towards ``fan_in``::

        layer = keras.layers.Conv2DTranspose(
            32, 3, kernel_initializer=kiz.HeNormal(**kiz.conv_transpose_axes(2)))

    Args:
        spatial_rank: ``N``, the number of spatial axes: 1, 2 or 3
            (``Conv1DTranspose`` to ``Conv3DTranspose``). No default: say which.

    Returns:
        ``{"input_axes": [...], "output_axes": [...]}``, the receptive field
        with the last axis and with the second-to-last.

    Examples:
        >>> conv_transpose_axes(2)
        {'input_axes': [0, 1, 3], 'output_axes': [0, 1, 2]}
        >>> compute_fans((3, 3, 16, 32), **conv_transpose_axes(2))  # 32 in, 16 out
        (288, 144)
    """
    spatial_rank = check_int("spatial_rank", spatial_rank, minimum=1, maximum=MAX_SPATIAL_RANK)
    receptive = list(range(spatial_rank))
    return {
        "input_axes": receptive + [spatial_rank + 1],
        "output_axes": receptive + [spatial_rank],
    }


def depthwise_axes(spatial_rank: int = 2) -> dict[str, list[int]]:
    """Axes of a depthwise kernel ``(k_1, ..., k_N, channels, multiplier)``.

    Each output channel of a depthwise convolution sees one input channel, so
    ``fan_in = k_1 ... k_N`` and ``fan_out = k_1 ... k_N * multiplier``; the
    default fans would count every channel (``fan_in = k_1 ... k_N * channels``)
    and give ``1 / channels`` of the intended variance::

        layer = keras.layers.DepthwiseConv2D(
            3, depthwise_initializer=kiz.HeNormal(**kiz.depthwise_axes()))

    Args:
        spatial_rank: ``N``, the number of spatial axes: 1, 2 or 3 (default 2,
            ``DepthwiseConv2D``; 1 for ``DepthwiseConv1D``).

    Returns:
        ``{"input_axes": [...], "output_axes": [...]}``: the receptive field,
        and the receptive field with the multiplier axis.

    Examples:
        >>> compute_fans((3, 3, 32, 1), **depthwise_axes())
        (9, 9)
    """
    spatial_rank = check_int("spatial_rank", spatial_rank, minimum=1, maximum=MAX_SPATIAL_RANK)
    receptive = list(range(spatial_rank))
    return {"input_axes": receptive, "output_axes": receptive + [spatial_rank + 1]}


FAN_MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")


def scaled_variance(scale: float, mode: str, fan_in: int, fan_out: int) -> float:
    """``scale / fan`` for ``mode`` in :data:`FAN_MODES`.

    ``fan_avg`` is ``(fan_in + fan_out) / 2`` and ``fan_geo_avg``
    ``sqrt(fan_in * fan_out)``, as in JAX. A fan of zero (an empty tensor)
    counts as one, so the result stays finite.

    Args:
        scale: the numerator, e.g. 2.0 for He, ``gain**2`` in general.
        mode: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` or ``"fan_geo_avg"``.
        fan_in: the kernel's fan-in, an integer >= 0.
        fan_out: the kernel's fan-out, an integer >= 0.

    Returns:
        The variance, a Python float.

    Examples:
        >>> scaled_variance(2.0, "fan_in", 100, 50), scaled_variance(1.0, "fan_avg", 100, 50)
        (0.02, 0.013333333333333334)
    """
    fan = {
        "fan_in": fan_in,
        "fan_out": fan_out,
        "fan_avg": (fan_in + fan_out) / 2.0,
        "fan_geo_avg": math.sqrt(fan_in * fan_out),
    }[mode]
    return scale / max(1.0, fan)
