"""Scaled weight standardization: WSDense, WSConv2D and the function they share.

Each output unit's weights are standardized over its fan-in before use::

    W_hat = gain * (W - mean(W)) / sqrt(max(N * var(W), eps)),   N = fan_in

mean and (population) variance per output unit, over the fan-in axes. With
unit-variance inputs each unit's pre-activation then has variance
``gain**2`` whatever the kernel's scale, and mean-shift from the previous
activation is removed (``sum(W_hat) = 0`` per unit). As in DeepMind's
reference code (``WSConv2D.standardize_weight`` in ``nfnets/base.py`` of
google-deepmind/deepmind-research) ``eps = 1e-4`` bounds ``N * var`` from
below inside the square root (``rsqrt(maximum(var * fan_in, eps))``), so a
constant kernel gives zeros, not NaN, and the gain is a learnable vector,
one entry per output unit, initialized to one there; here it starts at
``gamma`` (a recipe passes :func:`keras_initzoo.nf_gamma` of the activation
before the layer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_initzoo._validation import check_axes, check_finite, check_positive

ops = keras.ops

EPS = 1e-4  # nfnets/base.py, WSConv2D.standardize_weight(weight, eps=1e-4)


def standardize_kernel(
    kernel: Any,
    fan_in_axes: Sequence[int],
    gain: Any = 1.0,
    eps: float = EPS,
) -> Any:
    """Scaled weight standardization of a kernel, per output unit.

    ``W_hat = gain * (W - mean(W)) / sqrt(max(N * var(W), eps))`` with the
    mean and population variance of each output unit taken over
    ``fan_in_axes`` and ``N`` the product of their sizes (the unit's fan-in).
    Differentiable (the layers call it in ``call``, so gradients flow
    through the mean and variance, as in NFNets); to standardize a kernel in
    place once, at initialization, assign the result:
    ``layer.kernel.assign(standardize_kernel(layer.kernel, (0,)))``.
    16-bit kernels are standardized in float32 and the result cast back.

    Examples:
        >>> import numpy as np
        >>> w = np.arange(6.0).reshape(3, 2)          # Dense layout: (fan_in, units)
        >>> w_hat = keras.ops.convert_to_numpy(standardize_kernel(w, (0,))).astype("float64")
        >>> w_hat.round(6).tolist()                   # each column: mean 0, N * var = 1
        [[-0.707107, -0.707107], [0.0, 0.0], [0.707107, 0.707107]]
        >>> w_hat = standardize_kernel(w, (0,), gain=np.array([1.0, 2.0]))
        >>> keras.ops.convert_to_numpy(w_hat)[2].astype("float64").round(6).tolist()
        [0.707107, 1.414214]

    Args:
        kernel: a float tensor, ``keras.Variable`` or NumPy array.
        fan_in_axes: the axes one output unit's weights span, e.g. ``(0,)``
            for a Dense kernel ``(in, out)``, ``(0, 1, 2)`` for a Conv2D
            kernel ``(h, w, in, out)``; distinct, in range, at least one.
        gain: a number, or one value per output unit (its size the product
            of the axes not in ``fan_in_axes``; it is reshaped onto them),
            e.g. a layer's ``gain`` variable.
        eps: the floor of ``N * var`` inside the square root, a number > 0.

    Returns:
        The standardized kernel, a tensor of ``kernel``'s shape and dtype.

    Raises:
        ValueError: for a kernel that is not floating point, bad
            ``fan_in_axes``, a ``gain`` of the wrong size or not finite, or
            ``eps`` not > 0.

    Reference: Qiao et al., "Micro-Batch Training with Batch-Channel
    Normalization and Weight Standardization", arXiv 1903.10520, 2019;
    Brock, De and Smith, "Characterizing signal propagation to close the
    performance gap in unnormalized ResNets", ICLR 2021 (the scaled
    form and its gain).
    """
    eps = check_positive("eps", eps)
    value = ops.convert_to_tensor(kernel)
    dtype = keras.backend.standardize_dtype(value.dtype)
    if dtype not in ("float16", "bfloat16", "float32", "float64"):
        raise ValueError(
            f"`kernel` must hold floating-point numbers; received a kernel of dtype {dtype}."
        )
    shape = tuple(value.shape)
    axes = check_axes("fan_in_axes", fan_in_axes, rank=len(shape))
    if not axes:
        raise ValueError(
            "`fan_in_axes` must name at least one axis (those one output unit's weights "
            f"span); received fan_in_axes={list(fan_in_axes)!r}."
        )
    compute = "float32" if dtype in ("float16", "bfloat16") else dtype
    value = ops.cast(value, compute)
    fan_in = math.prod(shape[a] for a in axes)
    mean = ops.mean(value, axis=axes, keepdims=True)
    variance = ops.var(value, axis=axes, keepdims=True)
    scale = ops.rsqrt(ops.maximum(variance * fan_in, eps))
    unit_shape = tuple(1 if i in axes else d for i, d in enumerate(shape))
    scale = scale * _gain_tensor(gain, unit_shape, compute)
    return ops.cast((value - mean) * scale, dtype)


def _gain_tensor(gain: Any, unit_shape: tuple[int, ...], dtype: str) -> Any:
    """``gain`` as a tensor broadcasting over ``unit_shape`` (1 on the fan-in axes)."""
    if not (keras.ops.is_tensor(gain) or isinstance(gain, keras.Variable)):
        if isinstance(gain, (list, tuple, np.ndarray)):
            gain = np.asarray(gain)
            if gain.dtype.kind not in "iuf" or not np.isfinite(gain).all():
                raise ValueError(f"`gain` must hold finite numbers; received gain={gain!r}.")
        else:
            return ops.convert_to_tensor(check_finite("gain", gain), dtype)
    size = math.prod(tuple(gain.shape))
    units = math.prod(unit_shape)
    if size == 1:
        return ops.reshape(ops.cast(gain, dtype), ())
    if size != units:
        raise ValueError(
            "`gain` must be a number or hold one value per output unit "
            f"({units} for a kernel whose units span shape {unit_shape}); received a gain "
            f"of shape {tuple(gain.shape)}."
        )
    return ops.reshape(ops.cast(gain, dtype), unit_shape)


def _check_gamma_eps(gamma: float, eps: float) -> tuple[float, float]:
    return check_finite("gamma", gamma), check_positive("eps", eps)


class _StandardizedGain:
    """What ``WSDense`` and ``WSConv2D`` share: ``gamma``/``eps``, the per-unit ``gain``
    variable and its saving (Keras' Dense and convolutions save only kernel and bias, by
    position, so the gain goes beside them)."""

    def __init__(self, *args: Any, gamma: float = 1.0, eps: float = EPS, **kwargs: Any) -> None:
        gamma, eps = _check_gamma_eps(gamma, eps)
        super().__init__(*args, **kwargs)
        self.gamma, self.eps = gamma, eps

    def _units(self) -> int:
        return self.units if hasattr(self, "units") else self.filters

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        self.gain = self.add_weight(
            name="gain",
            shape=(self._units(),),
            initializer=keras.initializers.Constant(self.gamma),
            trainable=True,
        )

    def quantize(self, mode: Any = None, **kwargs: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not support quantization.")

    def save_own_variables(self, store: Any) -> None:
        super().save_own_variables(store)
        if self.built:
            store["gain"] = self.gain

    def load_own_variables(self, store: Any) -> None:
        super().load_own_variables(store)
        if self.built:
            self.gain.assign(store["gain"])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma, "eps": self.eps}


@keras.saving.register_keras_serializable(package="keras_initzoo")
class WSDense(_StandardizedGain, keras.layers.Dense):
    """``keras.layers.Dense`` with scaled weight standardization and a learnable gain.

    The kernel variable keeps the raw weights ``W``; ``call`` uses
    ``W_hat = gain * (W - mean) / sqrt(max(fan_in * var, eps))``
    (:func:`standardize_kernel`), per output unit over the input axis (kernel
    axis 0). ``gain``, one trainable entry per output unit initialized to
    ``gamma``, is saved beside kernel and bias. The kernel's own scale does not
    matter (any initializer gives the same ``W_hat`` up to the draw), which is
    why NF nets can use a plain fan-in normal. Quantization is not supported.

    Examples:
        >>> layer = WSDense(4, gamma=2.0)
        >>> _ = layer(keras.ops.ones((1, 8)))
        >>> [v.name for v in layer.weights], tuple(layer.gain.shape)
        (['kernel', 'bias', 'gain'], (4,))

    Args:
        *args (Any): ``keras.layers.Dense``'s positional arguments (``units``, ...).
        gamma: the gain's initial value, a finite number (default 1.0; a
            recipe passes ``kiz.nf_gamma(activation)``). Keyword only.
        eps: the floor of ``fan_in * var``, a number > 0 (default 1e-4, as
            NFNets). Keyword only.
        **kwargs (Any): ``keras.layers.Dense``'s keyword arguments.

    Raises:
        ValueError: if ``gamma`` is not finite or ``eps`` not > 0.

    Reference: Qiao et al. 2019 (arXiv 1903.10520); Brock, De and Smith,
    ICLR 2021 (scaled WS, NF-ResNets).
    """

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        kernel = standardize_kernel(self.kernel, (0,), gain=self.gain, eps=self.eps)
        x = ops.matmul(inputs, kernel)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x


@keras.saving.register_keras_serializable(package="keras_initzoo")
class WSConv2D(_StandardizedGain, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` with scaled weight standardization and a learnable gain.

    As :class:`WSDense`, standardized per output unit over the kernel's height,
    width and input axes (0, 1, 2; Keras keeps the kernel as
    ``(h, w, in / groups, out)`` for either data_format, so grouped
    convolutions standardize over each unit's own fan-in).

    Examples:
        >>> layer = WSConv2D(8, 3, gamma=1.7)
        >>> y = layer(keras.ops.ones((1, 5, 5, 3)))
        >>> tuple(y.shape), tuple(layer.gain.shape)
        ((1, 3, 3, 8), (8,))

    Args:
        *args (Any): ``keras.layers.Conv2D``'s positional arguments (``filters``,
            ``kernel_size``, ...).
        gamma: the gain's initial value, a finite number (default 1.0; a
            recipe passes ``kiz.nf_gamma(activation)``). Keyword only.
        eps: the floor of ``fan_in * var``, a number > 0 (default 1e-4, as
            NFNets). Keyword only.
        **kwargs (Any): ``keras.layers.Conv2D``'s keyword arguments.

    Raises:
        ValueError: if ``gamma`` is not finite or ``eps`` not > 0.

    Reference: Qiao et al. 2019 (arXiv 1903.10520); Brock, De and Smith,
    ICLR 2021; Brock et al., "High-Performance Large-Scale Image Recognition
    Without Normalization", ICML 2021 (NFNets; ``WSConv2D`` in
    ``nfnets/base.py`` of google-deepmind/deepmind-research).
    """

    def convolution_op(self, inputs: Any, kernel: Any) -> Any:
        kernel = standardize_kernel(kernel, (0, 1, 2), gain=self.gain, eps=self.eps)
        return super().convolution_op(inputs, kernel)
