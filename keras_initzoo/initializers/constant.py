"""Constant initializers: the lessons' counter-examples.

Every unit of a layer whose kernel is constant computes the same output and
receives the same gradient, so the units stay identical however long the
network trains (the symmetry problem). Use them for biases, not kernels.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_initzoo._validation import check_finite, check_finite_array
from keras_initzoo.initializers.base import Seed, ZooInitializer, scheme

_SYMMETRY = "lessons: the symmetry problem"
_BIASES = "biases only: fails to break symmetry"


@scheme(
    "zoo_constant",
    distribution="one constant `value`=0.5, or an array broadcast to the shape",
    variance="0",
    activations=_BIASES,
    reference=_SYMMETRY,
    peers={"keras": "Constant", "pytorch": "constant_", "jax": "constant"},
)
class Constant(ZooInitializer):
    """Fills the tensor with ``value``: ``W_ij = value``, or an array broadcast to the shape.

    Fails to break symmetry when used for a kernel: all hidden units of the
    layer stay identical during training. Fine for biases.

    Examples:
        >>> layer = keras.layers.Dense(3, kernel_initializer=Constant(0.5))
        >>> keras.ops.convert_to_numpy(Constant([1.0, 2.0, 3.0])((2, 3))).tolist()
        [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]

    Args:
        value: a finite number (0.5 by default, so that the lesson differs
            from :class:`Zeros`), or an array of finite numbers whose shape
            broadcasts to every shape it is called with (numpy's rules; a
            shape it does not broadcast to raises ``ValueError``). Its config
            holds the array as nested lists.
        seed: accepted for a uniform interface; a constant uses no randomness.

    Reference: the symmetry problem, e.g. Goodfellow et al., *Deep Learning*
    (2016), section 8.4.
    """

    draws_randomly = False

    def __init__(self, value: float | list | np.ndarray = 0.5, seed: Seed = None):
        if isinstance(value, (list, tuple, np.ndarray)) or keras.ops.is_tensor(value):
            self.value = check_finite_array("value", value).tolist()
        else:
            self.value = check_finite("value", value)
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        value = np.asarray(self.value)
        try:
            fits = np.broadcast_shapes(value.shape, shape) == tuple(shape)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"`value` of shape {value.shape} does not broadcast to the requested "
                f"shape={tuple(shape)}; pass a value whose shape does."
            )
        # A copy, not the broadcast view: PyTorch's view repeats one memory location
        # (stride 0), which a variable made from it cannot be updated in place through.
        return keras.ops.copy(
            keras.ops.broadcast_to(keras.ops.convert_to_tensor(value, dtype=dtype), shape)
        )


@scheme(
    "zoo_zeros",
    distribution="all zeros",
    variance="0",
    activations=_BIASES,
    reference=_SYMMETRY,
    peers={"keras": "Zeros", "pytorch": "zeros_", "jax": "zeros"},
)
class Zeros(Constant):
    """Fills the tensor with zeros: ``W_ij = 0``.

    The usual choice for biases. For a kernel it is the extreme of the symmetry
    problem: with ReLU units every gradient but the last layer's bias is zero.

    Examples:
        >>> layer = keras.layers.Dense(3, bias_initializer=Zeros())
    """

    def __init__(self, seed: Seed = None):
        super().__init__(value=0.0, seed=seed)


@scheme(
    "zoo_ones",
    distribution="all ones",
    variance="0",
    activations="normalization scales; fails to break symmetry",
    reference="Keras, PyTorch `ones_`",
    peers={"keras": "Ones", "pytorch": "ones_", "jax": "ones"},
)
class Ones(Constant):
    """Fills the tensor with ones: ``W_ij = 1``.

    The usual start of a normalization layer's scale (``gamma``); as a kernel
    it fails to break symmetry, as every constant does.

    Examples:
        >>> layer = keras.layers.LayerNormalization(gamma_initializer=Ones())
    """

    def __init__(self, seed: Seed = None):
        super().__init__(value=1.0, seed=seed)
