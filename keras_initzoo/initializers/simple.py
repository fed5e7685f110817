"""Fixed-scale random initializers: the course's "simple" initializations.

Their spread does not depend on the layer's size, which is why they fail in
deep networks: too small and the signal vanishes layer by layer, too large and
it explodes (or saturates tanh and sigmoid units).
"""

from __future__ import annotations

import keras

from keras_initzoo._validation import check_positive
from keras_initzoo.initializers.base import Seed, ZooInitializer


class SimpleUniform(ZooInitializer):
    """Draws from ``U[-limit, limit]`` (variance ``limit**2 / 3``).

    The course's simple initialization, ``limit = 0.1`` by default.

    Example:

    >>> layer = keras.layers.Dense(1, kernel_initializer=SimpleUniform(limit=0.1))
    """

    def __init__(self, limit: float = 0.1, seed: Seed = None):
        self.limit = check_positive("limit", limit)
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        return keras.random.uniform(
            shape, minval=-self.limit, maxval=self.limit, dtype=dtype, seed=self.seed
        )


class SimpleNormal(ZooInitializer):
    """Draws from ``N(0, stddev**2)``, ``stddev = 0.1`` by default.

    Example:

    >>> layer = keras.layers.Dense(8, kernel_initializer=SimpleNormal(stddev=0.1))
    """

    def __init__(self, stddev: float = 0.1, seed: Seed = None):
        self.stddev = check_positive("stddev", stddev)
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        return keras.random.normal(shape, stddev=self.stddev, dtype=dtype, seed=self.seed)


class _ScaledStandardNormal(SimpleNormal):
    """``scale * N(0, 1)``: a normal whose constructor calls its spread ``scale``."""

    def __init__(self, scale: float, seed: Seed = None):
        self.scale = check_positive("scale", scale)
        super().__init__(stddev=self.scale, seed=seed)


class SmallRandom(_ScaledStandardNormal):
    """Draws ``scale * N(0, 1)``, ``scale = 0.01`` by default.

    The "small random values" rule: breaks symmetry, but in a deep network the
    activations and gradients shrink by roughly ``scale * sqrt(fan_in)`` per
    layer and vanish.

    Example:

    >>> layer = keras.layers.Dense(64, kernel_initializer=SmallRandom())
    """

    def __init__(self, scale: float = 0.01, seed: Seed = None):
        super().__init__(scale=scale, seed=seed)


class LargeRandom(_ScaledStandardNormal):
    """Draws ``scale * N(0, 1)``, ``scale = 10`` by default: the exploding example.

    Pre-activations grow by roughly ``scale * sqrt(fan_in)`` per layer:
    ReLU networks explode, tanh and sigmoid units saturate and their
    gradients vanish.

    Example:

    >>> layer = keras.layers.Dense(64, kernel_initializer=LargeRandom())
    """

    def __init__(self, scale: float = 10.0, seed: Seed = None):
        super().__init__(scale=scale, seed=seed)


class StandardNormal(SimpleNormal):
    """Draws from ``N(0, 1)``: common practice before 2010.

    Glorot & Bengio (2010) showed why deep networks initialized this way
    train badly: the variance of the signal is multiplied by ``fan_in`` at
    every layer.

    Example:

    >>> layer = keras.layers.Dense(64, kernel_initializer=StandardNormal())

    Reference: Glorot & Bengio, "Understanding the difficulty of training deep
    feedforward neural networks", AISTATS 2010.
    """

    def __init__(self, seed: Seed = None):
        super().__init__(stddev=1.0, seed=seed)
