"""Per-layer signal statistics of a Dense stack for one batch: activations and gradient norms."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .model import loss_fn as default_loss_fn


@dataclass
class LayerStats:
    """Signal statistics of one Dense layer for one batch, at the moment measured."""

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


def layer_stats(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    loss_fn: Callable | None = None,
    keep_activations: int = 0,
) -> list[LayerStats]:
    """Per-Dense-layer activation mean/std and gradient norms for one batch.

    Runs the layers one by one under a GradientTape, so it works for any
    Sequential stack of Dense layers. ``keep_activations`` > 0 keeps that many
    output values per layer (for histograms).
    """
    loss_fn = loss_fn or default_loss_fn()
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    outputs = []
    with tf.GradientTape() as tape:
        h = tf.convert_to_tensor(x)
        for layer in model.layers:
            h = layer(h)
            if isinstance(layer, keras.layers.Dense):
                outputs.append(h)
        loss = loss_fn(y, h)
    weights = [[w.value for w in layer.trainable_weights] for layer in dense]
    flat = [w for ws in weights for w in ws]
    grads = tape.gradient(loss, flat + outputs, unconnected_gradients="zero")
    weight_grads, output_grads = grads[: len(flat)], grads[len(flat) :]
    stats, i = [], 0
    for layer, out, out_grad, ws in zip(dense, outputs, output_grads, weights, strict=True):
        layer_grads = weight_grads[i : i + len(ws)]
        i += len(ws)
        values = np.asarray(out, dtype="float64")
        sample = values.ravel()[:keep_activations].copy() if keep_activations else None
        stats.append(
            LayerStats(
                layer.name,
                float(values.mean()),
                float(values.std()),
                grad_norm=float(tf.linalg.global_norm(layer_grads)),
                backprop_norm=float(tf.norm(out_grad)),
                activations=sample,
            )
        )
    return stats
