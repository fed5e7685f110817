"""Constant initializers: the lessons' counter-examples.

Every unit of a layer whose kernel is constant computes the same output and
receives the same gradient, so the units stay identical however long the
network trains (the symmetry problem). Use them for biases, not kernels.
"""

from __future__ import annotations

import keras

from keras_initzoo._validation import check_finite
from keras_initzoo.initializers.base import Seed, ZooInitializer


class Constant(ZooInitializer):
    """Fills the tensor with one ``value``: ``W_ij = value``.

    Fails to break symmetry when used for a kernel: all hidden units of the
    layer stay identical during training. Fine for biases.

    Example:

    >>> layer = keras.layers.Dense(3, kernel_initializer=Constant(0.5))

    Args:
        value: the finite number to fill with (0.5 by default, so that the
            lesson differs from :class:`Zeros`).
        seed: accepted for a uniform interface; a constant uses no randomness.

    Reference: the symmetry problem, e.g. Goodfellow et al., *Deep Learning*
    (2016), section 8.4.
    """

    def __init__(self, value: float = 0.5, seed: Seed = None):
        self.value = check_finite("value", value)
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        return keras.ops.full(shape, self.value, dtype=dtype)


class Zeros(Constant):
    """Fills the tensor with zeros: ``W_ij = 0``.

    The usual choice for biases. For a kernel it is the extreme of the symmetry
    problem: with ReLU units every gradient but the last layer's bias is zero.

    Example:

    >>> layer = keras.layers.Dense(3, bias_initializer=Zeros())
    """

    def __init__(self, seed: Seed = None):
        super().__init__(value=0.0, seed=seed)
