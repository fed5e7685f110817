"""Predicted mean and variance through a model's graph, beside the measured ones.

The analytic side of the whole-model tools, as AutoInit (Bingham &
Miikkulainen, AAAI 2023) propagates moments, written from the paper: each
node of a probed pass (:func:`~keras_initzoo.models.residual.trace`) gets the
mean ``mu`` and second moment ``q = E[x**2]`` of its output from those of its
inputs, over all entries, treating weights as independent of the signal:

==========================  ====================================================
node                        rule
==========================  ====================================================
kernel layer ``x W + b``    ``mu = mu_x colsum(W) + mean(b)``,
                            ``q = fan_in mean(W**2) q_x + mean(b**2)``, then
                            its activation
activation ``f``            ``E f(h)``, ``E f(h)**2`` for ``h ~ N(mu, q - mu**2)``
                            (a fine grid)
embedding                   the table's mean and second moment
join ``alpha a + beta b``   ``alpha**2 q_a + beta**2 q_b + 2 alpha beta mu_a mu_b``
gate ``a * b``, ``a f(b)``  ``q_a q_b``, with ``f(b)``'s moments for ``a f(b)``
inverted Dropout (rate p)   ``E[x**2] / (1 - p)``, mean kept (not ``Var / (1 - p)``,
                            which is 19 % low after ReLU at p = 0.5)
normalization (training)    ``mean(gamma**2) + mean(beta**2)``
BatchNormalization (infer)  per channel ``((x - m) gamma / sqrt(v + eps) + beta)``
Concatenate                 size-weighted average
reshaping, padding, ...     passed through
anything else               measured (an attention product, pooling, softmax):
                            the prediction restarts from the measurement
==========================  ====================================================
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_initzoo.models.residual import Node, ResidualTrace
from keras_initzoo.models.walk import NORMALIZATION, walk

# N(0, 1) on a fine grid (trapezoid, step 1/400 over +-10): kinks such as ReLU's converge
# as the step squared (~1e-6), where Gauss-Hermite would stall at ~1e-3.
_GRID = np.linspace(-10.0, 10.0, 8001)
_WEIGHTS = np.exp(-0.5 * _GRID**2) / np.sum(np.exp(-0.5 * _GRID**2))
_PASS_THROUGH = tuple(
    getattr(keras.layers, name)
    for name in (
        "Flatten", "Reshape", "Permute", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
        "Cropping1D", "Cropping2D", "Cropping3D", "Identity", "RepeatVector", "InputLayer",
    )
    if hasattr(keras.layers, name)
)  # fmt: skip
Moments = tuple[float, float]  # (mean, second moment) over all entries


def _numpy(x: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def measured(tensor: Any) -> Moments:
    """The mean and second moment of a tensor over all its entries."""
    values = _numpy(tensor)
    return float(values.mean()), float(np.mean(values**2))


def through_activation(function: Any, moments: Moments) -> Moments:
    """``E f(h)`` and ``E f(h)**2`` for ``h ~ N(mu, q - mu**2)``, on a fine grid.

    Examples:
        >>> mean, second = through_activation(keras.activations.relu, (0.0, 1.0))
        >>> round(mean, 5), round(second, 5)   # 1/sqrt(2 pi), 1/2
        (0.39894, 0.5)
    """
    mu, q = moments
    sigma = float(np.sqrt(max(q - mu * mu, 0.0)))
    points = (mu + sigma * _GRID).astype("float32")
    values = _numpy(function(keras.ops.convert_to_tensor(points)))
    return float(np.sum(_WEIGHTS * values)), float(np.sum(_WEIGHTS * values**2))


def _gate_function(name: str) -> Any:
    if name == "gelu_approximate":
        return lambda x: keras.activations.gelu(x, approximate=True)
    return keras.activations.get(name)


def _activation(layer: keras.layers.Layer) -> Any | None:
    if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU)):
        return layer.call
    if isinstance(layer, keras.layers.Softmax):
        return None
    function = getattr(layer, "activation", None)
    if function is None or function is keras.activations.linear:
        return keras.activations.linear
    if getattr(function, "__name__", "") == "softmax":
        return None  # not elementwise: measured
    return function


def _kernel_layer(layer, sites, inputs: list[Moments]) -> Moments | None:
    mu_x, q_x = inputs[0]
    site = sites[0]
    weight = _numpy(site.variable)
    bias = getattr(layer, "bias", None)
    b = _numpy(bias) if bias is not None else np.zeros(1)
    if site.role == "embeddings":
        return float(weight.mean()), float(np.mean(weight**2))
    columns = weight.reshape(-1, weight.shape[-1]) if weight.ndim > 1 else weight[:, None]
    mu = mu_x * float(columns.sum(axis=0).mean()) + float(b.mean())
    q = site.fan_in * float(np.mean(weight**2)) * q_x + float(np.mean(b**2))
    if len(sites) > 1 or site.role not in ("kernel", "embeddings"):
        return None  # separable, recurrent: measured
    return mu, q


def _normalization(layer, inputs: list[Moments], training: bool) -> Moments | None:
    gamma = _numpy(layer.gamma) if getattr(layer, "gamma", None) is not None else np.ones(1)
    beta = _numpy(layer.beta) if getattr(layer, "beta", None) is not None else np.zeros(1)
    if isinstance(layer, keras.layers.BatchNormalization) and not training:
        mu_x, q_x = inputs[0]
        m, v = _numpy(layer.moving_mean), _numpy(layer.moving_variance)
        scale = gamma / np.sqrt(v + layer.epsilon)
        second = scale**2 * (q_x - 2 * mu_x * m + m**2) + 2 * scale * beta * (mu_x - m) + beta**2
        return float(np.mean(scale * (mu_x - m) + beta)), float(np.mean(second))
    return float(beta.mean()), float(np.mean(gamma**2) + np.mean(beta**2))


def _layer(
    node: Node, sites: list, inputs: list[Moments], sizes_of: list, training: bool
) -> tuple[Moments, str] | None:
    layer = node.layer
    if isinstance(layer, NORMALIZATION):
        return _normalization(layer, inputs, training), "normalization"
    if not inputs:
        return None
    if isinstance(layer, keras.layers.Dropout):
        mu, q = inputs[0]
        rate = float(layer.rate) if training else 0.0
        return (mu, q / (1.0 - rate)), f"inverted dropout, rate {rate:g}"
    if isinstance(layer, _PASS_THROUGH):
        return inputs[0], "passed through"
    if isinstance(layer, keras.layers.Concatenate):
        sizes = [float(np.prod(tuple(t.shape))) for t in sizes_of]
        mean, second = (float(np.average([m[i] for m in inputs], weights=sizes)) for i in (0, 1))
        return (mean, second), "size-weighted average"
    if isinstance(layer, keras.layers.Multiply) and len(inputs) == 2:
        (mu_a, q_a), (mu_b, q_b) = inputs
        return (mu_a * mu_b, q_a * q_b), "gate"
    function = _activation(layer)
    if function is None:
        return None
    moments = inputs[0]
    rule = ""
    if sites:
        moments = _kernel_layer(layer, sites, inputs)
        if moments is None:
            return None
        rule = "kernel"
    elif hasattr(layer, "weights") and layer.weights and function is keras.activations.linear:
        return None  # a layer with weights and no rule
    if function is not keras.activations.linear:
        moments = through_activation(function, moments)
        name = getattr(function, "__name__", type(layer).__name__)
        rule = f"{rule}, then {name}" if rule else name
    elif not rule:
        if len(inputs) != 1:
            return None
        rule = "passed through"
    return moments, rule


def propagate(model: keras.layers.Layer, structure: ResidualTrace, training: bool) -> list[dict]:
    """Predicted and measured moments of every layer call and join of a probed pass.

    Args:
        model: the model the pass ran (for its kernels and their fans).
        structure: the pass, from :func:`~keras_initzoo.models.residual.trace`.
        training: the mode the pass ran in (Dropout and BatchNormalization's rules).

    Returns:
        One dict per layer call and join, in call order: ``node`` (its index),
        ``name``, ``rule`` (how it was predicted, ``"measured"`` where no rule
        applies), ``pred mean``, ``pred var``, ``mean`` and ``var`` (measured).

    Examples:
        >>> from keras_initzoo.models.residual import trace
        >>> model = keras.Sequential([keras.Input((512,)), keras.layers.Dense(
        ...     512, activation="relu", kernel_initializer="zoo_he", name="hidden")], name="net")
        >>> x = keras.random.normal((256, 512), seed=1)
        >>> row = propagate(model, trace(model, x), training=True)[-1]
        >>> row["name"], row["rule"], abs(row["pred var"] / row["var"] - 1) < 0.1
        ('net/hidden', 'kernel, then relu', True)
    """
    sites: dict[int, list] = {}
    for site in walk(model).kernels:
        sites.setdefault(id(site.layer), []).append(site)
    predicted: dict[int, Moments] = {}
    rows = []
    for node in structure.nodes:
        inputs = [predicted[i] for i in node.inputs if i in predicted]
        result = None
        if node.kind == "join" and len(inputs) == 2:
            alpha, beta = node.coefficients or (1.0, 1.0)
            (mu_a, q_a), (mu_b, q_b) = inputs
            second = alpha**2 * q_a + beta**2 * q_b + 2 * alpha * beta * mu_a * mu_b
            result = (alpha * mu_a + beta * mu_b, second), "join"
        elif node.kind == "gate" and len(inputs) == 2:
            (mu_a, q_a), (mu_b, q_b) = inputs
            if node.activation is not None:  # u * f(g)
                mu_b, q_b = through_activation(_gate_function(node.activation), (mu_b, q_b))
            result = (
                (mu_a * mu_b, q_a * q_b),
                f"gate{' ' + node.activation if node.activation else ''}",
            )
        elif node.kind == "alias" and inputs:
            c = node.coefficients[0]
            result = (c * inputs[0][0], c * c * inputs[0][1]), "alias"
        elif node.kind == "layer" and len(inputs) == len(node.inputs):
            tensors = [structure.nodes[i].tensor for i in node.inputs]
            result = _layer(node, sites.get(id(node.layer), []), inputs, tensors, training)
        if node.tensor is None:
            continue
        truth = measured(node.tensor)
        known = result is not None and result[0] is not None
        moments, rule = result if known else (truth, "measured")
        predicted[node.index] = moments
        if node.kind in ("layer", "join"):
            rows.append(
                {
                    "node": node.index,
                    "name": node.path,
                    "rule": rule,
                    "pred mean": moments[0],
                    "pred var": moments[1] - moments[0] ** 2,
                    "mean": truth[0],
                    "var": truth[1] - truth[0] ** 2,
                }
            )
    return rows
