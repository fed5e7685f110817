"""Per-layer signal statistics of a Dense stack for one batch: activations and gradient norms.

Measured by the package's one per-layer pass (:func:`keras_initzoo.models.signal.layer_signals`,
the one behind ``signal_report``), so on every backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from ..models.signal import layer_signals
from .model import loss_fn as default_loss_fn


@dataclass
class LayerStats:
    """Signal statistics of one layer with a kernel for one batch, at the moment measured."""

    name: str
    activation_mean: float
    activation_std: float
    grad_norm: float  # L2 norm of d(loss)/d(kernel and bias): what GradientNormLogger logs
    backprop_norm: float  # L2 norm of d(loss)/d(layer output): the signal sent back down
    activations: np.ndarray | None = None  # a sample of the layer's outputs, for histograms


def depth_ratio(stats: Sequence[LayerStats], attr: str = "backprop_norm") -> float:
    """``attr`` of the first hidden layer over the last hidden layer's.

    ~1: the signal keeps its size across depth; << 1: it vanishes on its way to
    the input; >> 1: it explodes. NaN when the last hidden layer gets nothing.
    """
    hidden = stats[:-1] or stats
    first, last = getattr(hidden[0], attr), getattr(hidden[-1], attr)
    return first / last if last > 0 and math.isfinite(last) else math.nan


def per_layer_change(stats: Sequence[LayerStats], attr: str = "backprop_norm") -> float:
    """The factor ``attr`` changes by per hidden layer from the last to the first, on average.

    ``(first / last) ** (1 / (n - 1))`` over the ``n`` hidden layers (all but
    the output layer): the geometric mean of the layer-to-layer ratios, read
    going back towards the input. For the backward signal ``|dL/dh|`` of a
    ReLU stack of width ``n`` at init it is ``sqrt(n * Var(W) / 2)`` in
    expectation (He et al. 2015, "Delving Deep into Rectifiers", Sec. 2.2,
    the backward case): 1 under He's ``Var(W) = 2 / n``, so the signal keeps
    its size across depth; ``1/sqrt(2)`` under Glorot's ``1 / fan_avg``;
    ``0.01 * sqrt(n / 2)`` under ``0.01 * N(0, 1)``. Averaging over the
    layers makes it steadier than :func:`depth_ratio` at finite width.

    Args:
        stats: per-layer statistics, input to output (:func:`layer_stats`).
        attr: the :class:`LayerStats` field compared (default ``"backprop_norm"``).

    Returns:
        The factor: ~1 level across depth, < 1 shrinking on the way back to
        the input (vanishing), > 1 growing (exploding). NaN with fewer than two
        hidden layers, or when either end is 0 or not finite.
    """
    hidden = stats[:-1]
    if len(hidden) < 2:
        return math.nan
    first, last = getattr(hidden[0], attr), getattr(hidden[-1], attr)
    if not (first > 0 and last > 0 and math.isfinite(first) and math.isfinite(last)):
        return math.nan
    return (first / last) ** (1.0 / (len(hidden) - 1))


def layer_stats(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    loss_fn: Callable | None = None,
    keep_activations: int = 0,
) -> list[LayerStats]:
    """Per-layer activation mean/std and gradient norms for one batch, for layers with a kernel.

    ``loss_fn(y, y_pred)`` defaults to the experiments' cross-entropy on logits;
    ``keep_activations`` > 0 keeps that many output values per layer (for histograms).

    Args:
        model: a built Keras model.
        x: one batch of inputs.
        y: its integer class labels.
        loss_fn: ``(y, y_pred) -> scalar`` (default None: sparse cross-entropy
            on logits).
        keep_activations: output values kept per layer (default 0: none).

    Returns:
        One :class:`LayerStats` per layer with a kernel, input to output.
    """
    rows = layer_signals(
        model,
        x,
        y,
        loss=loss_fn or default_loss_fn(),
        output_gradients=True,
        keep=keep_activations,
    )
    return [
        LayerStats(
            row["layer"].rsplit("/", 1)[-1],  # the layer's name: its path's last part
            row["act mean"],
            row["act std"],
            grad_norm=_or_zero(row["grad norm"]),
            backprop_norm=row["out grad norm"],
            activations=row.get("sample"),
        )
        for row in rows
        if row["weight var"] is not None
    ]


def _or_zero(norm: float | None) -> float:
    # a layer that has a kernel but no trainable variable gets no gradient
    return 0.0 if norm is None else norm
