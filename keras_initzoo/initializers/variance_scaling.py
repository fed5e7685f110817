"""Fan-scaled initializers: ``Var(W) = scale / fan``.

One general class, :class:`VarianceScaling`, and thin presets for the schemes
the lessons teach: Glorot/Xavier (``1 / fan_avg``) for linear, tanh, sigmoid
and softmax units, He/Kaiming (``2 / fan_in``) for ReLU, LeCun
(``1 / fan_in``) for SELU, and :class:`GainScaled` for any other activation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from keras_initzoo._validation import (
    check_axes,
    check_choice,
    check_float_dtype,
    check_positive,
    check_shape,
    check_squarable,
)
from keras_initzoo.fans import FAN_MODES, check_axes_pair, compute_fans, scaled_variance
from keras_initzoo.gains import gain, leaky_relu_gain
from keras_initzoo.initializers import sampling
from keras_initzoo.initializers.base import Seed, ZooInitializer, scheme
from keras_initzoo.initializers.simple import truncated_normal_variance

# "untruncated_normal" is Keras' spelling of the zoo's (and JAX's) "normal".
DISTRIBUTIONS = ("truncated_normal", "normal", "untruncated_normal", "uniform")

# Standard deviation of N(0, 1) truncated to [-2, 2], the interval
# keras.random.truncated_normal keeps, and the zoo's truncated normals.
TRUNCATED_NORMAL_STDDEV = math.sqrt(truncated_normal_variance(-2.0, 2.0))

_GLOROT = "Glorot & Bengio 2010"
_HE = "He et al. 2015"
_LECUN = "LeCun et al. 1998"


# Subclassing Keras' VarianceScaling is what makes EinsumDense (and so
# MultiHeadAttention) hand these initializers its kernel's input/output axes.
@scheme(
    "zoo_variance_scaling",
    distribution="truncated normal, normal or uniform",
    variance="scale/fan",
    activations="any, with the right scale",
    reference="the general family",
    peers={"keras": "VarianceScaling", "jax": "variance_scaling"},
)
class VarianceScaling(ZooInitializer, keras.initializers.VarianceScaling):
    """Draws with variance ``scale / fan``, the family behind Glorot, He and LeCun.

    ``fan`` is ``fan_in``, ``fan_out``, ``fan_avg = (fan_in + fan_out) / 2``
    or ``fan_geo_avg = sqrt(fan_in * fan_out)`` (see
    :func:`keras_initzoo.fans.compute_fans`), and with ``sigma**2 = scale / fan``:

    * ``"truncated_normal"``: ``N(0, s**2)`` truncated to ``[-2s, 2s]`` with
      ``s = sigma / 0.8796``, so the variance after truncation is exactly
      ``sigma**2``;
    * ``"normal"`` or ``"untruncated_normal"``: ``N(0, sigma**2)``. The zoo's
      ``"normal"`` is untruncated, as JAX's; Keras' ``"normal"`` means its
      truncated normal, and Keras spells the untruncated one
      ``"untruncated_normal"``, which is accepted here too;
    * ``"uniform"``: ``U[-sqrt(3) sigma, sqrt(3) sigma]``.

    Examples:
        >>> init = VarianceScaling(scale=2.0, mode="fan_in", distribution="normal")
        >>> layer = keras.layers.Dense(64, activation="relu", kernel_initializer=init)
        >>> init.variance((100, 64))
        0.02

    Args:
        scale: the variance multiplier, a finite number > 0 (default 1.0:
            LeCun's ``1 / fan_in`` with the default ``mode``; 2.0 is He's).
        mode: the fan divided by, ``"fan_in"`` (default: keeps the forward
            signal's scale), ``"fan_out"`` (keeps the gradients'),
            ``"fan_avg"`` (Glorot's compromise) or ``"fan_geo_avg"``.
        distribution: ``"truncated_normal"`` (default, as Keras),
            ``"normal"`` (untruncated, as JAX; Keras' spelling
            ``"untruncated_normal"`` is accepted too) or ``"uniform"``; each
            gives exactly the variance ``scale / fan``.
        seed: None (default: a random seed, taken at the first draw, which
            ``keras.utils.set_random_seed`` fixes), an integer in
            ``[0, 2**32)`` (reproducible; each initializer made with it draws
            its own stream, so layers sharing a seed still differ) or a
            ``keras.random.SeedGenerator``, used and advanced as it is.
        input_axes: the kernel axes whose product is ``fan_in``, for layouts
            other than ``(*receptive_field, in, out)``; ``EinsumDense`` (and so
            ``MultiHeadAttention``) fills them in. Default None: the layout
            :func:`keras_initzoo.compute_fans` reads from the shape alone.
        output_axes: the kernel axes whose product is ``fan_out``; given
            together with ``input_axes`` or not at all (default None).
        batch_axes: axes left out of both fans, for independent kernels
            stacked in one tensor (as JAX's ``batch_axis``); default ``()``,
            none.

    Reference: the common form of Glorot & Bengio (2010), He et al. (2015)
    and LeCun et al. (1998), as ``jax.nn.initializers.variance_scaling``.
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
        self.mode = check_choice("mode", mode, FAN_MODES)
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
        return self.variance_for_fans(fan_in, fan_out)

    def variance_for_fans(self, fan_in: int, fan_out: int) -> float:
        """The variance drawn for a kernel with these fans, whatever its shape."""
        return scaled_variance(self.scale, self.mode, fan_in, fan_out)

    def draw(self, shape, dtype):
        return self._sample(shape, dtype, self.variance(shape))

    def draw_for_fans(self, shape: Sequence[int], dtype: object, fan_in: int, fan_out: int):
        """Draws a tensor of ``shape`` with the variance of fans ``fan_in``, ``fan_out``.

        For a kernel whose layer knows its fans better than its shape does (a
        recurrent kernel's gates, a grouped convolution's groups):
        :func:`keras_initzoo.reinitialize` passes the fans its walk found.
        ``input_axes``, ``output_axes`` and ``batch_axes`` play no part here.

        Args:
            shape: the tensor's shape, non-negative integers.
            dtype: a floating-point dtype (a name such as ``"float32"``).
            fan_in: the fan-in to scale by, an integer.
            fan_out: the fan-out to scale by, an integer.

        Examples:
            >>> init = VarianceScaling(2.0, distribution="uniform", seed=0)
            >>> values = init.draw_for_fans((64, 4 * 32), "float32", fan_in=64, fan_out=32)
            >>> init.variance_for_fans(64, 32)
            0.03125
        """
        return self._sample(
            check_shape(shape), check_float_dtype(dtype), self.variance_for_fans(fan_in, fan_out)
        )

    def _sample(self, shape, dtype, variance):
        stddev = math.sqrt(variance)
        if self.distribution == "truncated_normal":
            before_truncation = stddev / TRUNCATED_NORMAL_STDDEV
            return sampling.truncated_normal(
                shape, -2.0, 2.0, dtype, self.seed_generator, stddev=before_truncation
            )
        if self.distribution in ("normal", "untruncated_normal"):
            return sampling.normal(shape, stddev, dtype, self.seed_generator)
        limit = math.sqrt(3.0) * stddev
        return sampling.uniform(shape, -limit, limit, dtype, self.seed_generator)


class _GainPreset(VarianceScaling):
    """A fixed mode and distribution with variance ``gain**2 / fan``.

    ``gain`` (default 1) adapts the preset to another activation, as in
    PyTorch's ``xavier_uniform_(gain=...)``; see :mod:`keras_initzoo.gains`.
    """

    _mode = "fan_in"
    _distribution = "truncated_normal"

    def __init__(
        self,
        gain: float = 1.0,
        seed: Seed = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
        batch_axes: Sequence[int] = (),
    ):
        self.gain = check_squarable("gain", check_positive("gain", gain))
        super().__init__(
            self.gain**2, self._mode, self._distribution, seed, input_axes, output_axes, batch_axes
        )


@scheme(
    "zoo_glorot",
    "zoo_xavier",
    distribution="uniform",
    variance="1/fan_avg",
    activations="linear, tanh, sigmoid, softmax",
    reference=_GLOROT,
    peers={"keras": "GlorotUniform", "pytorch": "xavier_uniform_", "jax": "glorot_uniform"},
)
class GlorotUniform(_GainPreset):
    """Glorot/Xavier uniform: ``U[-l, l]``, ``l = gain * sqrt(6 / (fan_in + fan_out))``.

    Variance ``gain**2 / fan_avg``: the compromise between keeping the forward
    signal (``1 / fan_in``) and the backward gradient (``1 / fan_out``)
    constant. Suits linear, tanh, sigmoid and softmax units (``gain = 1``).

    Args:
        gain: the factor on the standard deviation, a finite number > 0 (default 1.0, for
            linear, tanh, sigmoid and softmax; :func:`keras_initzoo.gain` gives other units').
        seed: None (default: a random seed), an integer or a ``keras.random.SeedGenerator``.
        input_axes: the axes whose product is ``fan_in`` (default None: read from the shape).
        output_axes: the axes whose product is ``fan_out``; given with ``input_axes`` or not at all.
        batch_axes: axes left out of both fans (default ``()``); see :class:`VarianceScaling`.

    Examples:
        >>> layer = keras.layers.Dense(64, activation="tanh", kernel_initializer="zoo_glorot")

    Reference: Glorot & Bengio, "Understanding the difficulty of training deep
    feedforward neural networks", AISTATS 2010.
    """

    _mode = "fan_avg"
    _distribution = "uniform"


@scheme(
    "zoo_glorot_normal",
    distribution="truncated normal",
    variance="1/fan_avg",
    activations="linear, tanh, sigmoid, softmax",
    reference=_GLOROT,
    peers={"keras": "GlorotNormal", "pytorch": "xavier_normal_", "jax": "glorot_normal"},
)
class GlorotNormal(_GainPreset):
    """Glorot/Xavier normal: truncated normal with variance ``2 gain**2 / (fan_in + fan_out)``.

    Args:
        gain: the factor on the standard deviation, a finite number > 0 (default 1.0: variance
            ``1 / fan_avg``, for linear, tanh, sigmoid and softmax units).
        seed: None (default: a random seed), an integer or a ``keras.random.SeedGenerator``.
        input_axes: the axes whose product is ``fan_in`` (default None: read from the shape).
        output_axes: the axes whose product is ``fan_out``; given with ``input_axes`` or not at all.
        batch_axes: axes left out of both fans (default ``()``); see :class:`VarianceScaling`.

    Examples:
        >>> layer = keras.layers.Dense(
        ...     64, activation="tanh", kernel_initializer="zoo_glorot_normal")

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
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
        batch_axes: Sequence[int] = (),
    ):
        scale = leaky_relu_gain(negative_slope) ** 2  # also checks negative_slope
        self.negative_slope = float(negative_slope)
        mode = check_choice("mode", mode, ("fan_in", "fan_out"))
        super().__init__(scale, mode, self._distribution, seed, input_axes, output_axes, batch_axes)


@scheme(
    "zoo_he",
    "zoo_kaiming",
    distribution="truncated normal",
    variance="2/((1+a²)·fan_in)",
    activations="relu, leaky_relu",
    reference=_HE,
    peers={"keras": "HeNormal", "pytorch": "kaiming_normal_", "jax": "he_normal"},
)
class HeNormal(_He):
    """He/Kaiming normal: truncated normal with variance ``2 / ((1 + a**2) fan_in)``.

    A ReLU zeroes half of its input, halving the second moment; the factor 2
    restores it, so activations and gradients keep their scale through depth.
    ``negative_slope`` ``a`` (any finite ``a >= 0``, as PyTorch's ``a``)
    adapts the gain to a leaky ReLU; ``mode="fan_out"`` preserves the
    backward pass instead.

    Args:
        negative_slope: the leaky ReLU's slope ``a`` for ``x < 0``, a finite number >= 0
            (default 0.0: plain ReLU, variance ``2 / fan``).
        mode: ``"fan_in"`` (default: keeps the forward signal's scale) or ``"fan_out"``
            (keeps the gradients' scale in the backward pass).
        seed: None (default: a random seed), an integer or a ``keras.random.SeedGenerator``.
        input_axes: the axes whose product is ``fan_in`` (default None: read from the shape).
        output_axes: the axes whose product is ``fan_out``; given with ``input_axes`` or not at all.
        batch_axes: axes left out of both fans (default ``()``); see :class:`VarianceScaling`.

    Examples:
        >>> layer = keras.layers.Dense(64, activation="relu", kernel_initializer="zoo_he")
        >>> leaky = HeNormal(negative_slope=0.2)

    Reference: He et al., "Delving Deep into Rectifiers: Surpassing
    Human-Level Performance on ImageNet Classification", ICCV 2015.
    """


@scheme(
    "zoo_he_uniform",
    distribution="uniform",
    variance="2/((1+a²)·fan_in)",
    activations="relu, leaky_relu",
    reference=_HE,
    peers={"keras": "HeUniform", "pytorch": "kaiming_uniform_", "jax": "he_uniform"},
)
class HeUniform(_He):
    """He/Kaiming uniform: ``U[-l, l]``, ``l = sqrt(6 / ((1 + a**2) fan_in))``.

    Variance ``2 / ((1 + a**2) fan_in)``, as :class:`HeNormal`.

    Args:
        negative_slope: the leaky ReLU's slope ``a``, a finite number >= 0 (default 0.0: ReLU).
        mode: ``"fan_in"`` (default, the forward signal) or ``"fan_out"`` (the gradients).
        seed: None (default: a random seed), an integer or a ``keras.random.SeedGenerator``.
        input_axes: the axes whose product is ``fan_in`` (default None: read from the shape).
        output_axes: the axes whose product is ``fan_out``; given with ``input_axes`` or not at all.
        batch_axes: axes left out of both fans (default ``()``); see :class:`VarianceScaling`.

    Examples:
        >>> layer = keras.layers.Dense(64, activation="relu", kernel_initializer="zoo_he_uniform")

    Reference: He et al., ICCV 2015.
    """

    _distribution = "uniform"


# torch/nn/modules/linear.py, Linear.reset_parameters (and _ConvNd's in conv.py)
_TORCH_SLOPE = math.sqrt(5.0)


@scheme(
    "zoo_torch",
    distribution="U[-1/√fan_in, 1/√fan_in]: He uniform with a=√5",
    variance="1/(3·fan_in)",
    activations="ports of PyTorch models: its nn.Linear and nn.Conv* default",
    reference="PyTorch `Linear.reset_parameters`",
    peers={"pytorch": "kaiming_uniform_"},
)
class TorchDefault(HeUniform):
    """PyTorch's default for ``nn.Linear`` and ``nn.Conv*`` weights: ``U[-1/√fan_in, 1/√fan_in]``.

    PyTorch draws them with ``kaiming_uniform_(w, a=sqrt(5))``: He uniform
    with negative slope ``a = sqrt(5)``, limit
    ``sqrt(6 / ((1 + a**2) fan_in)) = sqrt(6 / (6 fan_in)) = 1 / sqrt(fan_in)``,
    variance ``1 / (3 fan_in)``. That is :class:`HeUniform` with
    ``negative_slope=sqrt(5)``, which this class is. For porting a PyTorch
    model as it is initialized in PyTorch; on its own, a third of LeCun's
    variance, so a deep stack's signal shrinks. To initialize a whole model as
    ``torch.nn`` would (biases, embeddings, recurrent and attention layers),
    use ``kiz.reinitialize(model, "zoo_torch", biases="torch")``
    (:mod:`keras_initzoo.models.torch_defaults`).

    Keras' kernel layout ``(*k, in, out)`` gives the same ``fan_in`` as
    PyTorch's ``(out, in, *k)``; a ``Conv*Transpose`` kernel ``(*k, out, in)``
    gives ``k * out``, which is PyTorch's ``fan_in`` for its
    ``(in, out, *k)`` weight too.

    Args:
        seed: None (default: a random seed), an integer or a ``keras.random.SeedGenerator``.
        input_axes: the axes whose product is ``fan_in`` (default None: read from the shape).
        output_axes: the axes whose product is ``fan_out``; given with ``input_axes`` or not at all.
        batch_axes: axes left out of both fans (default ``()``); see :class:`VarianceScaling`.

    Examples:
        >>> layer = keras.layers.Dense(64, kernel_initializer="zoo_torch")
        >>> init = TorchDefault(seed=0)
        >>> round(init.variance((100, 64)) * 300, 12)   # 1 / (3 fan_in)
        1.0
        >>> float(abs(keras.ops.convert_to_numpy(init((100, 64)))).max()) <= 0.1
        True

    Reference: PyTorch, ``torch/nn/modules/linear.py``,
    ``Linear.reset_parameters`` (``conv.py``, ``_ConvNd.reset_parameters``,
    the same); pytorch/pytorch#57109 for why ``a = sqrt(5)``.
    """

    def __init__(
        self,
        seed: Seed = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
        batch_axes: Sequence[int] = (),
    ):
        super().__init__(_TORCH_SLOPE, "fan_in", seed, input_axes, output_axes, batch_axes)


@scheme(
    "zoo_lecun",
    distribution="truncated normal",
    variance="1/fan_in",
    activations="selu",
    reference=f"{_LECUN}; Klambauer et al. 2017",
    peers={"keras": "LecunNormal", "jax": "lecun_normal"},
)
class LecunNormal(_GainPreset):
    """LeCun normal: truncated normal with variance ``gain**2 / fan_in``.

    With SELU units (``gain = 1``) it keeps activations at mean 0 and
    variance 1 through depth (self-normalizing networks).

    Args:
        gain: the factor on the standard deviation, a finite number > 0 (default 1.0: variance
            ``1 / fan_in``, SELU's fixed point).
        seed: None (default: a random seed), an integer or a ``keras.random.SeedGenerator``.
        input_axes: the axes whose product is ``fan_in`` (default None: read from the shape).
        output_axes: the axes whose product is ``fan_out``; given with ``input_axes`` or not at all.
        batch_axes: axes left out of both fans (default ``()``); see :class:`VarianceScaling`.

    Examples:
        >>> layer = keras.layers.Dense(64, activation="selu", kernel_initializer="zoo_lecun")

    References: LeCun et al., "Efficient BackProp", 1998; Klambauer et al.,
    "Self-Normalizing Neural Networks", NeurIPS 2017.
    """


@scheme(
    "zoo_lecun_uniform",
    distribution="uniform",
    variance="1/fan_in",
    activations="selu",
    reference=_LECUN,
    peers={"keras": "LecunUniform", "jax": "lecun_uniform"},
)
class LecunUniform(_GainPreset):
    """LeCun uniform: ``U[-l, l]``, ``l = gain * sqrt(3 / fan_in)``, variance ``gain**2 / fan_in``.

    Args:
        gain: the factor on the limit, a finite number > 0 (default 1.0, for SELU).
        seed: None (default: a random seed), an integer or a ``keras.random.SeedGenerator``.
        input_axes: the axes whose product is ``fan_in`` (default None: read from the shape).
        output_axes: the axes whose product is ``fan_out``; given with ``input_axes`` or not at all.
        batch_axes: axes left out of both fans (default ``()``); see :class:`VarianceScaling`.

    Examples:
        >>> layer = keras.layers.Dense(
        ...     64, activation="selu", kernel_initializer="zoo_lecun_uniform")

    Reference: LeCun et al., "Efficient BackProp", 1998.
    """

    _distribution = "uniform"


@scheme(
    "zoo_epsilon",
    distribution="U[-ε, ε], ε = √6/√(fan_in+fan_out) unless given",
    variance="ε²/3",
    activations="tanh, sigmoid",
    reference="lessons: breaking symmetry",
)
class EpsilonUniform(VarianceScaling):
    """Draws from ``U[-eps, eps]``, ``eps = sqrt(6) / sqrt(fan_in + fan_out)`` unless given.

    The symmetry-breaking lesson's rule: a small interval around zero whose
    width shrinks with the layer's size. With ``epsilon=None`` it equals
    :class:`GlorotUniform`; a given ``epsilon`` fixes the interval.

    Args:
        epsilon: the half-width of the interval, a finite number > 0, the same for every
            kernel; default None: ``sqrt(6) / sqrt(fan_in + fan_out)``, from each kernel's fans.
        seed: None (default: a random seed), an integer or a ``keras.random.SeedGenerator``.
        input_axes: the axes whose product is ``fan_in`` (default None: read from the shape).
        output_axes: the axes whose product is ``fan_out``; given with ``input_axes`` or not at all.
        batch_axes: axes left out of both fans (default ``()``); see :class:`VarianceScaling`.

    Examples:
        >>> layer = keras.layers.Dense(64, kernel_initializer=EpsilonUniform(epsilon=0.12))

    Reference: the random-initialization rule for breaking symmetry, as in
    Glorot & Bengio, AISTATS 2010, eq. (16).
    """

    def __init__(
        self,
        epsilon: float | None = None,
        seed: Seed = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
        batch_axes: Sequence[int] = (),
    ):
        self.epsilon = None if epsilon is None else check_positive("epsilon", epsilon)
        super().__init__(1.0, "fan_avg", "uniform", seed, input_axes, output_axes, batch_axes)

    def variance_for_fans(self, fan_in, fan_out):
        if self.epsilon is None:
            return super().variance_for_fans(fan_in, fan_out)
        return self.epsilon**2 / 3.0


# The activations whose zoo alias GainScaled presets: those with no preset of their own.
GAIN_ALIASES = ("gelu", "silu", "swish", "mish", "elu", "softplus")


class GainScaled(VarianceScaling):
    """Variance ``gain(activation)**2 / fan``: the exact gain for any Keras activation.

    ``gain(activation)`` is :func:`keras_initzoo.gains.gain`, with
    ``gain**2 = 1 / E[f(z)**2]`` for ``z ~ N(0, 1)``, so a layer
    ``f(W x)`` whose input has unit second moment passes it on unchanged:
    He's ``sqrt(2)`` for ReLU, 1.5335 for GELU, 1.6765 for SiLU.

    For GELU, SiLU and Mish the unit-variance fixed point of that map is
    unstable: a small deviation grows layer by layer, so even the exact gain
    drifts in deep stacks (see the README's *Gains*). Use
    :func:`keras_initzoo.lsuv` there.

    Examples:
        >>> init = GainScaled("gelu")
        >>> layer = keras.layers.Dense(64, activation="gelu", kernel_initializer=init)
        >>> round(init.variance((100, 64)) * 100, 4)   # gain("gelu")**2
        2.3517

    Args:
        activation: a Keras activation name that ``keras.activations.get``
            resolves (default ``"relu"``, which gives He's variance ``2 / fan``);
            a name, not a callable, so that the config stays code-free (for a
            callable, ``VarianceScaling(scale=kiz.gain(f) ** 2)``).
        mode: ``"fan_in"`` (default), ``"fan_out"``, ``"fan_avg"`` or
            ``"fan_geo_avg"``, as :class:`VarianceScaling`.
        distribution: ``"truncated_normal"`` (default), ``"normal"`` or
            ``"uniform"``, as :class:`VarianceScaling`.
        seed: None (default: a random seed), an integer or a ``keras.random.SeedGenerator``.
        input_axes: the axes whose product is ``fan_in`` (default None: read from the shape).
        output_axes: the axes whose product is ``fan_out``; given with ``input_axes`` or not at all.
        batch_axes: axes left out of both fans (default ``()``); see :class:`VarianceScaling`.
        activation_params: keyword arguments of the activation, e.g.
            ``{"alpha": 0.5}`` for ``elu`` (JSON numbers, booleans or strings);
            default None: the activation's own defaults.

    Reference: the second-moment argument of He et al. (2015), eq. (10),
    evaluated exactly by quadrature.
    """

    def __init__(
        self,
        activation: str = "relu",
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: Seed = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
        batch_axes: Sequence[int] = (),
        activation_params: dict | None = None,
    ):
        if not isinstance(activation, str):
            raise ValueError(
                "`activation` must be the name of a Keras activation, so that the config "
                f"stays code-free; received activation={activation!r}. For a callable, use "
                "VarianceScaling(scale=kiz.gain(f) ** 2)."
            )
        if activation_params is not None and not isinstance(activation_params, dict):
            raise ValueError(
                "`activation_params` must be a dict of the activation's keyword arguments; "
                f"received activation_params={activation_params!r}."
            )
        self.activation = activation
        self.activation_params = None if activation_params is None else dict(activation_params)
        scale = gain(activation) ** 2  # checks the name alone first, so errors say which is wrong
        if self.activation_params:
            try:
                scale = gain(activation, **self.activation_params) ** 2
            except ValueError as error:
                raise ValueError(f"`activation_params` do not fit: {error}") from None
        super().__init__(scale, mode, distribution, seed, input_axes, output_axes, batch_axes)


for _name in GAIN_ALIASES:
    scheme(
        f"zoo_{_name}",
        distribution="truncated normal",
        variance=f"gain({_name})²/fan_in",
        activations=_name,
        reference="exact gain, E[f(z)²]·gain² = 1",
        preset={"activation": _name},
    )(GainScaled)
