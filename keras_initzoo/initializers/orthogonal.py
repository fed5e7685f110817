"""Orthogonal initialization."""

from __future__ import annotations

import math

import keras

from keras_initzoo._validation import check_axes, check_int, check_positive
from keras_initzoo.initializers import sampling
from keras_initzoo.initializers.base import Seed, ZooInitializer, scheme


@scheme(
    "zoo_orthogonal",
    distribution="(semi-)orthogonal × gain",
    variance="gain²/max(rows, cols), WᵀW = gain²·I",
    activations="linear, tanh, RNNs",
    reference="Saxe et al. 2013",
    peers={"keras": "Orthogonal", "pytorch": "orthogonal_", "jax": "orthogonal"},
)
class Orthogonal(ZooInitializer):
    """Draws a (semi-)orthogonal matrix times ``gain``.

    The kernel is flattened to ``(rows, cols)``, ``cols`` being the size of
    ``column_axis`` (the output units, last in Keras kernels) and ``rows`` the
    product of the other axes.
    With ``A ~ N(0, 1)`` of shape ``(max, min)`` and ``A = QR``, the result is
    ``gain * Q diag(sign(diag(R)))`` (transposed when ``rows < cols``), so
    ``W^T W = gain**2 I`` when ``rows >= cols`` and ``W W^T = gain**2 I``
    otherwise. The sign correction makes ``Q`` uniform (Haar) over the
    orthogonal matrices. Every singular value equals ``gain``: deep linear
    networks so initialized keep the norm of every signal exactly.

    Examples:
        >>> layer = keras.layers.Dense(64, kernel_initializer=Orthogonal(gain=1.0))

    Args:
        gain: multiplier, a finite number > 0.
        column_axis: the axis whose slices are the orthogonal columns.
        seed: None, an integer or a ``keras.random.SeedGenerator``.

    Reference: Saxe et al., "Exact solutions to the nonlinear dynamics of
    learning in deep linear neural networks", ICLR 2014 (arXiv 2013).
    """

    def __init__(self, gain: float = 1.0, column_axis: int = -1, seed: Seed = None):
        self.gain = check_positive("gain", gain)
        self.column_axis = check_int("column_axis", column_axis, minimum=-(2**31))
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        if len(shape) < 2:
            raise ValueError(
                f"`shape` must have rank >= 2 for an orthogonal matrix; received shape={shape}."
            )
        (column_axis,) = check_axes("column_axis", [self.column_axis], len(shape))
        if column_axis != len(shape) - 1:
            moved = (*shape[:column_axis], *shape[column_axis + 1 :], shape[column_axis])
            return keras.ops.moveaxis(self._draw_columns_last(moved, dtype), -1, column_axis)
        return self._draw_columns_last(shape, dtype)

    def _draw_columns_last(self, shape, dtype):
        rows, cols = math.prod(shape[:-1]), shape[-1]
        if rows == 0 or cols == 0:
            return keras.ops.zeros(shape, dtype=dtype)
        # QR in float32 at least: float16 and bfloat16 lose orthogonality.
        compute_dtype = sampling.compute_dtype(dtype)
        a = sampling.normal(
            (max(rows, cols), min(rows, cols)), 1.0, compute_dtype, self.seed_generator
        )
        q, r = keras.ops.qr(a)
        q = q * keras.ops.sign(keras.ops.diagonal(r))
        if rows < cols:
            q = keras.ops.transpose(q)
        return keras.ops.cast(self.gain * keras.ops.reshape(q, shape), dtype)
