"""Fixed-scale random initializers: the course's "simple" initializations.

Their spread does not depend on the layer's size, which is why they fail in
deep networks: too small and the signal vanishes layer by layer, too large and
it explodes (or saturates tanh and sigmoid units).
"""

from __future__ import annotations

import math

import keras  # noqa: F401  (the docstring examples use it)

from keras_initzoo._validation import check_finite, check_positive
from keras_initzoo.initializers import sampling
from keras_initzoo.initializers.base import Seed, ZooInitializer, scheme

_SIMPLE = "course's simple initialization"


@scheme(
    "zoo_uniform",
    distribution="U[-limit, limit], limit=0.1, or U[minval, maxval]",
    variance="limit²/3",
    activations="shallow nets",
    reference=_SIMPLE,
    peers={"keras": "RandomUniform", "pytorch": "uniform_", "jax": "uniform"},
)
class SimpleUniform(ZooInitializer):
    """Draws from ``U[-limit, limit]`` (variance ``limit**2 / 3``), or from ``U[minval, maxval]``.

    The course's simple initialization, ``limit = 0.1`` by default. Give
    either ``limit`` or both ``minval`` and ``maxval`` (Keras' and PyTorch's
    vocabulary; variance ``(maxval - minval)**2 / 12``).

    Args:
        limit: the half-width of the symmetric interval, a finite number > 0;
            default None: 0.1, unless ``minval`` and ``maxval`` are given.
        minval: the interval's lower end, a finite number; with ``maxval``
            and without ``limit`` (default None: the symmetric interval).
        maxval: the interval's upper end, a finite number > ``minval``
            (default None).
        seed: None (default: a random seed), an integer in ``[0, 2**32)`` or a
            ``keras.random.SeedGenerator``, as :class:`VarianceScaling`.

    Raises:
        ValueError: if ``limit`` is given with ``minval`` or ``maxval``, only
            one of these is given, or ``minval >= maxval``.

    Examples:
        >>> layer = keras.layers.Dense(1, kernel_initializer=SimpleUniform(limit=0.1))
        >>> SimpleUniform(minval=0.0, maxval=1.0).limit is None
        True
    """

    def __init__(
        self,
        limit: float | None = None,
        minval: float | None = None,
        maxval: float | None = None,
        seed: Seed = None,
    ):
        if minval is None and maxval is None:
            self.limit = 0.1 if limit is None else check_positive("limit", limit)
            self.minval = self.maxval = None
            self.low, self.high = -self.limit, self.limit
        else:
            if limit is not None or minval is None or maxval is None:
                raise ValueError(
                    "Give either `limit` or both `minval` and `maxval`; received "
                    f"limit={limit!r}, minval={minval!r}, maxval={maxval!r}."
                )
            self.limit = None
            self.minval = self.low = check_finite("minval", minval)
            self.maxval = self.high = check_finite("maxval", maxval)
            if not self.minval < self.maxval:
                raise ValueError(
                    f"`minval` must be less than `maxval`; received minval={minval!r}, "
                    f"maxval={maxval!r}."
                )
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        return sampling.uniform(shape, self.low, self.high, dtype, self.seed_generator)


@scheme(
    "zoo_normal",
    distribution="N(mean, stddev²), stddev=0.1, mean=0",
    variance="stddev²",
    activations="shallow nets",
    reference=_SIMPLE,
    peers={"keras": "RandomNormal", "pytorch": "normal_", "jax": "normal"},
)
class SimpleNormal(ZooInitializer):
    """Draws from ``N(mean, stddev**2)``, ``stddev = 0.1`` and ``mean = 0`` by default.

    Unlike :class:`TruncatedNormal`, nothing is cut off: the variance is
    exactly ``stddev**2``, whatever the layer's size.

    Args:
        stddev: the standard deviation, a finite number > 0 (default 0.1, the
            course's simple initialization).
        mean: the centre, a finite number (default 0.0).
        seed: None (default: a random seed), an integer in ``[0, 2**32)`` or a
            ``keras.random.SeedGenerator``, as :class:`VarianceScaling`.

    Examples:
        >>> layer = keras.layers.Dense(8, kernel_initializer=SimpleNormal(stddev=0.1))
    """

    def __init__(self, stddev: float = 0.1, mean: float = 0.0, seed: Seed = None):
        self.stddev = check_positive("stddev", stddev)
        self.mean = check_finite("mean", mean)
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        return sampling.normal(shape, self.stddev, dtype, self.seed_generator, mean=self.mean)


class _ScaledStandardNormal(SimpleNormal):
    """``scale * N(0, 1)``: a normal whose constructor calls its spread ``scale``."""

    def __init__(self, scale: float, seed: Seed = None):
        self.scale = check_positive("scale", scale)
        super().__init__(stddev=self.scale, seed=seed)


@scheme(
    "zoo_small",
    distribution="scale·N(0, 1), scale=0.01",
    variance="scale²",
    activations="shallow nets: vanishes with depth",
    reference="lessons: small random values",
)
class SmallRandom(_ScaledStandardNormal):
    """Draws ``scale * N(0, 1)``, ``scale = 0.01`` by default.

    The "small random values" rule: breaks symmetry, but in a deep network the
    activations and gradients shrink by roughly ``scale * sqrt(fan_in)`` per
    layer and vanish.

    Examples:
        >>> layer = keras.layers.Dense(64, kernel_initializer=SmallRandom())
    """

    def __init__(self, scale: float = 0.01, seed: Seed = None):
        super().__init__(scale=scale, seed=seed)


@scheme(
    "zoo_large",
    distribution="scale·N(0, 1), scale=10",
    variance="scale²",
    activations="none: explodes or saturates",
    reference="lessons: large random values",
)
class LargeRandom(_ScaledStandardNormal):
    """Draws ``scale * N(0, 1)``, ``scale = 10`` by default: the exploding example.

    Pre-activations grow by roughly ``scale * sqrt(fan_in)`` per layer:
    ReLU networks explode, tanh and sigmoid units saturate and their
    gradients vanish.

    Examples:
        >>> layer = keras.layers.Dense(64, kernel_initializer=LargeRandom())
    """

    def __init__(self, scale: float = 10.0, seed: Seed = None):
        super().__init__(scale=scale, seed=seed)


@scheme(
    "zoo_standard_normal",
    distribution="N(0, 1)",
    variance="1",
    activations="none: pre-2010 practice",
    reference="Glorot & Bengio 2010",
)
class StandardNormal(SimpleNormal):
    """Draws from ``N(0, 1)``: common practice before 2010.

    Glorot & Bengio (2010) showed why deep networks initialized this way
    train badly: the variance of the signal is multiplied by ``fan_in`` at
    every layer.

    Examples:
        >>> layer = keras.layers.Dense(64, kernel_initializer=StandardNormal())

    Reference: Glorot & Bengio, "Understanding the difficulty of training deep
    feedforward neural networks", AISTATS 2010.
    """

    def __init__(self, seed: Seed = None):
        super().__init__(stddev=1.0, seed=seed)


def _standard_normal_pdf(x: float) -> float:
    return 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _standard_normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def truncated_normal_moments(lower: float, upper: float) -> tuple[float, float]:
    """Mean and variance of ``N(0, 1)`` truncated to ``[lower, upper]``.

    With ``Z = Phi(upper) - Phi(lower)``::

        mean     = (phi(lower) - phi(upper)) / Z
        variance = 1 + (lower phi(lower) - upper phi(upper)) / Z - mean**2

    Examples:
        >>> round(truncated_normal_moments(-2.0, 2.0)[1], 6)
        0.773741
    """
    mass = _standard_normal_cdf(upper) - _standard_normal_cdf(lower)
    pdf_lower, pdf_upper = _standard_normal_pdf(lower), _standard_normal_pdf(upper)
    mean = (pdf_lower - pdf_upper) / mass
    # x phi(x) -> 0 at infinite bounds
    edge = (0.0 if math.isinf(lower) else lower * pdf_lower) - (
        0.0 if math.isinf(upper) else upper * pdf_upper
    )
    return mean, 1.0 + edge / mass - mean**2


def truncated_normal_variance(lower: float, upper: float) -> float:
    """Variance of ``N(0, 1)`` truncated to ``[lower, upper]``."""
    return truncated_normal_moments(lower, upper)[1]


@scheme(
    "zoo_truncated_normal",
    distribution="N(mean, stddev²) kept within [lower, upper] stddevs, stddev=0.05",
    variance="stddev²·v(lower, upper); 0.774·stddev² for [-2, 2]",
    activations="shallow nets; embeddings",
    reference="Keras, JAX `truncated_normal`",
    peers={"keras": "TruncatedNormal", "pytorch": "trunc_normal_", "jax": "truncated_normal"},
)
class TruncatedNormal(ZooInitializer):
    """Draws ``mean + stddev * x``, ``x ~ N(0, 1)`` truncated to ``[lower, upper]``.

    ``stddev`` is the standard deviation of the normal *before* truncation,
    as in Keras and JAX, so the values' variance is ``stddev**2 * v`` with
    ``v`` the variance of the truncated standard normal
    (:func:`truncated_normal_moments`): ``0.7737 stddev**2`` for the default
    ``[-2, 2]``, ``0.2911 stddev**2`` for ``[-1, 1]``. Asymmetric bounds also
    move the mean by ``stddev * m``. For a variance of exactly ``sigma**2`` use
    :class:`VarianceScaling` or ``stddev = sigma / sqrt(v)``.

    PyTorch's ``trunc_normal_(mean, std, a, b)`` takes *absolute* bounds; its
    equivalent here is ``lower = (a - mean) / std``, ``upper = (b - mean) / std``.
    Its defaults ``a = -2, b = 2`` with a small ``std`` such as 0.02 truncate
    at 100 standard deviations, i.e. not at all.

    Examples:
        >>> init = TruncatedNormal(stddev=0.02)
        >>> layer = keras.layers.Embedding(1000, 64, embeddings_initializer=init)
        >>> values = TruncatedNormal(stddev=1.0, lower=-1.0, upper=0.5, seed=0)((1000,))
        >>> bool(-1.0 <= float(keras.ops.min(values)) and float(keras.ops.max(values)) <= 0.5)
        True

    Args:
        mean: the centre of the normal, a finite number (default 0.0).
        stddev: its standard deviation before truncation, a finite number > 0
            (default 0.05, Keras'; the variance after truncation is smaller,
            ``0.774 * stddev**2`` at the default bounds).
        lower: the lower bound, in standard deviations from ``mean``, a number
            (``-inf`` allowed; default -2.0, as Keras and JAX).
        upper: the upper bound, in standard deviations from ``mean``, a number
            > ``lower`` (``inf`` allowed; default 2.0).
        seed: None (default: a random seed), an integer in ``[0, 2**32)`` or a
            ``keras.random.SeedGenerator``, as :class:`VarianceScaling`.

    Reference: ``keras.initializers.TruncatedNormal``,
    ``jax.nn.initializers.truncated_normal``.
    """

    def __init__(
        self,
        mean: float = 0.0,
        stddev: float = 0.05,
        lower: float = -2.0,
        upper: float = 2.0,
        seed: Seed = None,
    ):
        self.mean = check_finite("mean", mean)
        self.stddev = check_positive("stddev", stddev)
        self.lower = _check_bound("lower", lower)
        self.upper = _check_bound("upper", upper)
        if not self.lower < self.upper or _standard_normal_cdf(self.upper) <= _standard_normal_cdf(
            self.lower
        ):
            raise ValueError(
                "`lower` must be less than `upper`, with some probability mass between "
                f"them; received lower={lower!r}, upper={upper!r}."
            )
        super().__init__(seed=seed)

    def draw(self, shape, dtype):
        return sampling.truncated_normal(
            shape, self.lower, self.upper, dtype, self.seed_generator, self.stddev, self.mean
        )


def _check_bound(name: str, value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isinf(value):
        return float(value)
    return check_finite(name, value, what="a number (infinite allowed)")
