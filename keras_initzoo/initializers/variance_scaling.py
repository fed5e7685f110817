"""Fan-scaled initializers: ``Var(W) = scale / fan``.

One general class, :class:`VarianceScaling`, and thin presets for the schemes
the lessons teach: Glorot/Xavier (``1 / fan_avg``) for linear, tanh, sigmoid
and softmax units, He/Kaiming (``2 / fan_in``) for ReLU, LeCun
(``1 / fan_in``) for SELU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from keras_initzoo._validation import check_axes, check_choice, check_positive
from keras_initzoo.fans import check_axes_pair, compute_fans, scaled_variance
from keras_initzoo.gains import leaky_relu_gain
from keras_initzoo.initializers.base import Seed, ZooInitializer

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")

# Standard deviation of N(0, 1) truncated to [-2, 2], the interval
# keras.random.truncated_normal keeps: sqrt(1 - 4 phi(2) / erf(sqrt 2)).
TRUNCATED_NORMAL_STDDEV = math.sqrt(
    1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2.0 * math.pi) / math.erf(math.sqrt(2.0))
)


# Subclassing Keras' VarianceScaling is what makes EinsumDense (and so
# MultiHeadAttention) hand these initializers its kernel's input/output axes.
class VarianceScaling(ZooInitializer, keras.initializers.VarianceScaling):
    """Draws with variance ``scale / fan``, the family behind Glorot, He and LeCun.

    ``fan`` is ``fan_in``, ``fan_out`` or ``fan_avg = (fan_in + fan_out) / 2``
    (see :func:`keras_initzoo.fans.compute_fans`), and with
    ``sigma**2 = scale / fan``:

    * ``"truncated_normal"``: ``N(0, s**2)`` truncated to ``[-2s, 2s]`` with
      ``s = sigma / 0.8796``, so the variance after truncation is exactly
      ``sigma**2``;
    * ``"normal"``: ``N(0, sigma**2)``;
    * ``"uniform"``: ``U[-sqrt(3) sigma, sqrt(3) sigma]``.

    Example:

    >>> init = VarianceScaling(scale=2.0, mode="fan_in", distribution="normal")
    >>> layer = keras.layers.Dense(64, activation="relu", kernel_initializer=init)

    Args:
        scale: the variance multiplier, a finite number > 0.
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
        distribution: ``"truncated_normal"``, ``"normal"`` or ``"uniform"``.
        seed: None, an integer or a ``keras.random.SeedGenerator``.
        input_axes, output_axes: the kernel axes that count towards
            ``fan_in`` and ``fan_out``, for layouts other than
            ``(*receptive_field, in, out)``; ``EinsumDense`` fills them in.
        batch_axes: axes left out of both fans, for independent kernels
            stacked in one tensor (as JAX's ``batch_axis``).
    """

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: Seed = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
        batch_axes: Sequence[int] = (),
    ):
        self.scale = check_positive("scale", scale)
        self.mode = check_choice("mode", mode, MODES)
        self.distribution = check_choice("distribution", distribution, DISTRIBUTIONS)
        check_axes_pair(input_axes, output_axes)
        self.batch_axes = list(check_axes("batch_axes", batch_axes))
        self.input_axes = None if input_axes is None else list(check_axes("input_axes", input_axes))
        self.output_axes = (
            None if output_axes is None else list(check_axes("output_axes", output_axes))
        )
        super().__init__(seed=seed)

    def variance(self, shape: Sequence[int]) -> float:
        """The variance of the values drawn for a tensor of ``shape``."""
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes, self.batch_axes)
        return scaled_variance(self.scale, self.mode, fan_in, fan_out)

    def draw(self, shape, dtype):
        stddev = math.sqrt(self.variance(shape))
        if self.distribution == "truncated_normal":
            return keras.random.truncated_normal(
                shape, stddev=stddev / TRUNCATED_NORMAL_STDDEV, dtype=dtype, seed=self.seed
            )
        if self.distribution == "normal":
            return keras.random.normal(shape, stddev=stddev, dtype=dtype, seed=self.seed)
        limit = math.sqrt(3.0) * stddev
        return keras.random.uniform(shape, minval=-limit, maxval=limit, dtype=dtype, seed=self.seed)


class _GainPreset(VarianceScaling):
    """A fixed mode and distribution with variance ``gain**2 / fan``.

    ``gain`` (default 1) adapts the preset to another activation, as in
    PyTorch's ``xavier_uniform_(gain=...)``; see :mod:`keras_initzoo.gains`.
    """

    _mode = "fan_in"
    _distribution = "truncated_normal"

    def __init__(self, gain: float = 1.0, seed: Seed = None, input_axes=None, output_axes=None):
        self.gain = check_positive("gain", gain)
        super().__init__(
            self.gain**2, self._mode, self._distribution, seed, input_axes, output_axes
        )


class GlorotUniform(_GainPreset):
    """Glorot/Xavier uniform: ``U[-l, l]``, ``l = gain * sqrt(6 / (fan_in + fan_out))``.

    Variance ``gain**2 / fan_avg``: the compromise between keeping the forward
    signal (``1 / fan_in``) and the backward gradient (``1 / fan_out``)
    constant. Suits linear, tanh, sigmoid and softmax units (``gain = 1``).

    Example:

    >>> layer = keras.layers.Dense(64, activation="tanh", kernel_initializer="zoo_glorot")

    Reference: Glorot & Bengio, "Understanding the difficulty of training deep
    feedforward neural networks", AISTATS 2010.
    """

    _mode = "fan_avg"
    _distribution = "uniform"


class GlorotNormal(_GainPreset):
    """Glorot/Xavier normal: truncated normal with variance ``2 gain**2 / (fan_in + fan_out)``.

    Example:

    >>> layer = keras.layers.Dense(64, activation="tanh", kernel_initializer="zoo_glorot_normal")

    Reference: Glorot & Bengio, AISTATS 2010.
    """

    _mode = "fan_avg"


class _He(VarianceScaling):
    """He/Kaiming: variance ``2 / ((1 + a**2) fan)`` for a leaky ReLU of slope ``a``."""

    _distribution = "truncated_normal"

    def __init__(
        self,
        negative_slope: float = 0.0,
        mode: str = "fan_in",
        seed: Seed = None,
        input_axes=None,
        output_axes=None,
    ):
        scale = leaky_relu_gain(negative_slope) ** 2  # also checks negative_slope
        self.negative_slope = float(negative_slope)
        mode = check_choice("mode", mode, ("fan_in", "fan_out"))
        super().__init__(scale, mode, self._distribution, seed, input_axes, output_axes)


class HeNormal(_He):
    """He/Kaiming normal: truncated normal with variance ``2 / ((1 + a**2) fan_in)``.

    A ReLU zeroes half of its input, halving the second moment; the factor 2
    restores it, so activations and gradients keep their scale through depth.
    ``negative_slope`` ``a`` adapts the gain to a leaky ReLU;
    ``mode="fan_out"`` preserves the backward pass instead.

    Example:

    >>> layer = keras.layers.Dense(64, activation="relu", kernel_initializer="zoo_he")
    >>> leaky = HeNormal(negative_slope=0.2)

    Reference: He et al., "Delving Deep into Rectifiers: Surpassing
    Human-Level Performance on ImageNet Classification", ICCV 2015.
    """


class HeUniform(_He):
    """He/Kaiming uniform: ``U[-l, l]``, ``l = sqrt(6 / ((1 + a**2) fan_in))``.

    Variance ``2 / ((1 + a**2) fan_in)``, as :class:`HeNormal`.

    Example:

    >>> layer = keras.layers.Dense(64, activation="relu", kernel_initializer="zoo_he_uniform")

    Reference: He et al., ICCV 2015.
    """

    _distribution = "uniform"


class LecunNormal(_GainPreset):
    """LeCun normal: truncated normal with variance ``gain**2 / fan_in``.

    With SELU units (``gain = 1``) it keeps activations at mean 0 and
    variance 1 through depth (self-normalizing networks).

    Example:

    >>> layer = keras.layers.Dense(64, activation="selu", kernel_initializer="zoo_lecun")

    References: LeCun et al., "Efficient BackProp", 1998; Klambauer et al.,
    "Self-Normalizing Neural Networks", NeurIPS 2017.
    """


class LecunUniform(_GainPreset):
    """LeCun uniform: ``U[-l, l]``, ``l = gain * sqrt(3 / fan_in)``, variance ``gain**2 / fan_in``.

    Example:

    >>> layer = keras.layers.Dense(64, activation="selu", kernel_initializer="zoo_lecun_uniform")

    Reference: LeCun et al., "Efficient BackProp", 1998.
    """

    _distribution = "uniform"


class EpsilonUniform(VarianceScaling):
    """Draws from ``U[-eps, eps]``, ``eps = sqrt(6) / sqrt(fan_in + fan_out)`` unless given.

    The symmetry-breaking lesson's rule: a small interval around zero whose
    width shrinks with the layer's size. With ``epsilon=None`` it equals
    :class:`GlorotUniform`; a given ``epsilon`` fixes the interval.

    Example:

    >>> layer = keras.layers.Dense(64, kernel_initializer=EpsilonUniform(epsilon=0.12))

    Reference: the random-initialization rule for breaking symmetry, as in
    Glorot & Bengio, AISTATS 2010, eq. (16).
    """

    def __init__(
        self, epsilon: float | None = None, seed: Seed = None, input_axes=None, output_axes=None
    ):
        self.epsilon = None if epsilon is None else check_positive("epsilon", epsilon)
        super().__init__(1.0, "fan_avg", "uniform", seed, input_axes, output_axes)

    def variance(self, shape):
        if self.epsilon is None:
            return super().variance(shape)
        return self.epsilon**2 / 3.0
