"""The random draws every family module makes: uniform, normal and truncated normal.

Each primitive draws in float32 (float64 only for a float64 tensor), scales,
shifts and clips there, and rounds once to the tensor's dtype. Keras' own
draws in ``bfloat16`` or ``float16`` make the random bits in that dtype (JAX,
and TensorFlow's and PyTorch's uniforms): 7 or 10 mantissa bits, so a
100 x 100 bfloat16 kernel held 128 distinct values instead of about 1,400.

Bounded draws (uniform, truncated normal) are clipped to their bounds rounded
inwards to the tensor's dtype, so rounding to nearest cannot step outside them.

Memory: a draw holds the tensor in the compute dtype and, for a 16-bit tensor,
its rounded copy; nothing more on any backend (see the README's *Very large
kernels*). JAX runs the whole draw as one compiled function (XLA fuses the
bits, the transform and the cast), TensorFlow as one graph function
(elementwise ops there reuse their input's buffer), PyTorch in place.
``seed`` is passed on as given (the family's ``SeedGenerator``): the seed is
drawn from it exactly as ``keras.random`` draws it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import keras
import ml_dtypes
import numpy as np

from keras_initzoo import _keras_internals as internals


def compute_dtype(dtype: str) -> str:
    """The dtype a draw for a tensor of ``dtype`` is computed in: float64 or float32."""
    return "float64" if dtype == "float64" else "float32"


def uniform(shape: Sequence[int], low: float, high: float, dtype: str, seed):
    """``U[low, high]`` of ``shape``, drawn in float32 and rounded once to ``dtype``.

    Args:
        shape: the tensor's shape.
        low: the lower end, a finite number.
        high: the upper end, a finite number > ``low``.
        dtype: the floating-point dtype of the result.
        seed: the ``keras.random.SeedGenerator`` (or a call's seeds) drawn from.

    Returns:
        A tensor whose rounded values stay within ``[low, high]``.
    """
    plan = _Plan("uniform", 0.0, 1.0, erfinv=False, clips=True)
    return _draw(plan, shape, dtype, seed, high - low, low, _inward_bounds(low, high, dtype))


def normal(shape: Sequence[int], stddev: float, dtype: str, seed, mean: float = 0.0):
    """``N(mean, stddev**2)`` of ``shape``, drawn in float32 and rounded once to ``dtype``.

    Args:
        shape: the tensor's shape.
        stddev: the standard deviation, > 0.
        dtype: the floating-point dtype of the result.
        seed: the ``keras.random.SeedGenerator`` (or a call's seeds) drawn from.
        mean: the centre (default 0.0).

    Returns:
        A tensor of ``shape`` and ``dtype``.
    """
    plan = _Plan("normal", 0.0, 1.0, erfinv=False, clips=False)
    return _draw(plan, shape, dtype, seed, stddev, mean, None)


def truncated_normal(
    shape: Sequence[int],
    lower: float,
    upper: float,
    dtype: str,
    seed,
    stddev: float = 1.0,
    mean: float = 0.0,
):
    """``mean + stddev * x``, ``x ~ N(0, 1)`` truncated to ``[lower, upper]`` (in stddevs).

    By the inverse CDF, ``x = sqrt(2) erfinv(u)``, ``u ~ U(2 Phi(lower) - 1,
    2 Phi(upper) - 1)``, in float32 at least (erfinv loses float16), then
    clipped to ``[mean + stddev * lower, mean + stddev * upper]`` rounded inwards
    to ``dtype``: the rounding cannot step outside the bounds, nor to infinity.

    Args:
        shape: the tensor's shape.
        lower: the lower bound in standard deviations (``-inf`` allowed).
        upper: the upper bound in standard deviations, > ``lower`` (``inf``
            allowed).
        dtype: the floating-point dtype of the result.
        seed: the ``keras.random.SeedGenerator`` (or a call's seeds) drawn from.
        stddev: the standard deviation before truncation (default 1.0).
        mean: the centre (default 0.0).

    Returns:
        A tensor of ``shape`` and ``dtype``, variance
        ``stddev**2 * simple.truncated_normal_variance(lower, upper)``.
    """
    u_low, u_high = (math.erf(bound / math.sqrt(2.0)) for bound in (lower, upper))
    clip = _inward_bounds(mean + stddev * lower, mean + stddev * upper, dtype)
    plan = _Plan("uniform", u_low, u_high, erfinv=True, clips=True)
    return _draw(plan, shape, dtype, seed, math.sqrt(2.0) * stddev, mean, clip)


class _Plan(NamedTuple):
    """What to draw before ``x * scale + shift``: ``U[low, high)`` or ``N(0, 1)``, erfinv'd or not.

    A tuple of literals, so that ``tf.function`` and ``jax.jit`` trace once per plan.
    """

    kind: str  # "uniform" or "normal"
    low: float
    high: float
    erfinv: bool
    clips: bool


def _inward_bounds(low: float, high: float, dtype: str) -> tuple[float, float] | None:
    """``[low, high]`` shrunk to the nearest values of ``dtype`` inside it (finite ones)."""
    numpy_dtype = np.dtype(getattr(ml_dtypes, dtype, dtype))
    finite = float(ml_dtypes.finfo(numpy_dtype).max)
    low, high = max(low, -finite), min(high, finite)
    rounded_low = np.asarray(low, numpy_dtype)
    if float(rounded_low) < low:
        rounded_low = np.nextafter(rounded_low, np.asarray(np.inf, numpy_dtype))
    rounded_high = np.asarray(high, numpy_dtype)
    if float(rounded_high) > high:
        rounded_high = np.nextafter(rounded_high, np.asarray(-np.inf, numpy_dtype))
    return float(rounded_low), float(rounded_high)


def _draw(plan: _Plan, shape, dtype, seed, scale, shift, clip):
    shape = tuple(int(size) for size in shape)
    clip = clip or (0.0, 0.0)
    return _BACKENDS[keras.backend.backend()](plan, shape, dtype, seed, scale, shift, clip)


def _transform(x, plan: _Plan, scale, shift, clip_low, clip_high, dtype):
    """``cast(clip(f(x) * scale + shift))`` in ``keras.ops``, for a compiled draw to fuse."""
    if plan.erfinv:
        x = keras.ops.erfinv(x)
    x = x * scale + shift
    if plan.clips:
        x = keras.ops.clip(x, clip_low, clip_high)
    return keras.ops.cast(x, dtype)


def _scalars(compute, *values):
    return [keras.ops.convert_to_tensor(value, dtype=compute) for value in values]


def _draw_jax(plan, shape, dtype, seed, scale, shift, clip):
    compute = compute_dtype(dtype)
    kernel = _jax_kernel()
    scalars = _scalars(compute, scale, shift, *clip)
    seed = internals.draw_seed(seed)
    return kernel(seed, *scalars, plan=plan, shape=shape, compute=compute, dtype=dtype)


@functools.cache
def _jax_kernel():
    import jax

    def kernel(seed, scale, shift, clip_low, clip_high, *, plan, shape, compute, dtype):
        if plan.kind == "normal":
            x = keras.random.normal(shape, dtype=compute, seed=seed)
        else:
            x = keras.random.uniform(shape, plan.low, plan.high, dtype=compute, seed=seed)
        return _transform(x, plan, scale, shift, clip_low, clip_high, dtype)

    return jax.jit(kernel, static_argnames=("plan", "shape", "compute", "dtype"))


@functools.cache
def _tensorflow_kernel():
    import tensorflow as tf

    @tf.function(reduce_retracing=True, autograph=False)
    def kernel(shape, seed, scale, shift, clip_low, clip_high, plan, compute, dtype):
        # the int32 seed TensorFlow's stateless ops take, as Keras derives it
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), "int32")
        if plan.kind == "normal":
            x = tf.random.stateless_normal(shape, seed, dtype=compute)
        else:
            x = tf.random.stateless_uniform(shape, seed, plan.low, plan.high, dtype=compute)
        return _transform(x, plan, scale, shift, clip_low, clip_high, dtype)

    return kernel


def _draw_tensorflow(plan, shape, dtype, seed, scale, shift, clip):
    import tensorflow as tf

    compute = compute_dtype(dtype)
    scalars = _scalars(compute, scale, shift, *clip)
    kernel = _tensorflow_kernel()
    x = kernel(
        tf.constant(shape, "int64"), internals.draw_seed(seed), *scalars, plan, compute, dtype
    )
    return tf.ensure_shape(x, shape)  # the shape went in as a tensor, to trace once per rank


def _draw_torch(plan, shape, dtype, seed, scale, shift, clip):
    import torch

    # in place: the tensor in the compute dtype is the only buffer until the cast
    generator = internals.torch_seed_generator(seed)
    compute = internals.to_torch_dtype(compute_dtype(dtype))
    x = torch.empty(shape, dtype=compute, device=internals.torch_device())
    # As few passes as the draw allows: each in-place op is one more pass over
    # the tensor and one more parallel region (on a busy CPU each costs a
    # thread hand-off; 100 small Glorot kernels took 8x Keras' time in three).
    scale, shift = float(scale), float(shift)
    if plan.erfinv:
        x.uniform_(plan.low, plan.high, generator=generator).erfinv_().mul_(scale).add_(shift)
    elif plan.kind == "normal":
        x.normal_(shift, scale, generator=generator)
    else:
        x.uniform_(plan.low * scale + shift, plan.high * scale + shift, generator=generator)
    if plan.clips:
        x.clamp_(*clip)
    return x.to(internals.to_torch_dtype(dtype))


_BACKENDS = {
    "jax": _draw_jax,
    "tensorflow": _draw_tensorflow,
    "torch": _draw_torch,
}
