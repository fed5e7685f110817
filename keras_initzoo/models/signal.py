"""How signal flows through a model at initialization: per-layer statistics and a verdict."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from keras_initzoo.models.auto import Kind, SignalKinds, gain_of
from keras_initzoo.models.data import as_batch, check_built
from keras_initzoo.models.losses import model_loss
from keras_initzoo.models.report import Report
from keras_initzoo.models.trace import first_tensor, intercept, leaf_layers
from keras_initzoo.models.walk import walk

# A signal whose RMS moves by more than 2**DRIFT_OCTAVES from the first layer's is not healthy.
DRIFT_OCTAVES = 4.0
SATURATED = {"tanh": 0.99, "sigmoid": 0.99}  # |tanh| or |2 sigmoid - 1| above this
_SATURATING_SHARE = 0.5  # a tanh/sigmoid layer with more saturated units than this explodes


class SignalReport(Report):
    """A :class:`Report` with a ``verdict``, the layer ``where`` trouble starts, and ``plot``."""

    verdict: str = "healthy"
    where: str | None = None
    loss: str | None = None  # which loss the gradients are of

    def __str__(self) -> str:
        where = f", starting at {self.where}" if self.where else ""
        return f"{super().__str__()}\nverdict: {self.verdict}{where}"

    def plot(self, path: str) -> str:
        """Writes the depth plot (activation RMS and gradient norm by layer) as a PNG."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError("`plot` needs matplotlib: pip install matplotlib") from error
        depth = np.arange(1, len(self) + 1)
        rms = np.array([_or_nan(row["act rms"]) for row in self])
        grads = np.array([_or_nan(row["grad norm"]) for row in self])
        panels = 2 if np.isfinite(grads).any() else 1
        figure, axes = plt.subplots(panels, 1, figsize=(8, 3.2 * panels), sharex=True)
        axes = np.atleast_1d(axes)
        axes[0].semilogy(depth, rms, marker="o", markersize=3)
        axes[0].set_ylabel("activation RMS")
        axes[0].set_title(f"signal at initialization: {self.verdict}")
        if panels == 2:
            axes[1].semilogy(depth, grads, marker="o", markersize=3, color="tab:red")
            axes[1].set_ylabel("gradient norm")
        axes[-1].set_xlabel("layer (forward order)")
        for axis in axes:
            axis.grid(True, which="both", alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path


def _or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _is_traced(tensor: Any) -> bool:
    if keras.backend.backend() != "jax":
        return False
    import jax

    return isinstance(tensor, jax.core.Tracer)


def _forward_and_gradients(model, batch, y, forward, traced: dict, loss=None):
    """Runs ``forward()`` once and, with targets, takes one backward pass of the loss.

    On JAX that pass is traced by ``jax.grad``: the layer outputs the pass put
    in ``traced`` (by layer id) come back from it as its auxiliary output, and
    replace the tracers there.
    """
    variables = model.trainable_variables
    if y is None or not variables:
        forward()
        return {}
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss(y, forward())
        grads = tape.gradient(value, variables)
    elif backend == "torch":
        import torch

        with torch.enable_grad():
            value = loss(y, forward())
            grads = torch.autograd.grad(value, [v.value for v in variables], allow_unused=True)
    else:  # jax: one pass, a stateless call traced by jax.grad
        import jax

        trainable = [v.value for v in variables]
        others = [v.value for v in model.non_trainable_variables]

        def loss_of(values):
            y_pred, _ = model.stateless_call(values, others, batch, training=False)
            return loss(y, y_pred), dict(traced)

        grads, values = jax.grad(loss_of, has_aux=True)(trainable)
        traced.update(values)
    return {
        v.path: float(np.sqrt(np.sum(np.square(keras.ops.convert_to_numpy(g)))))
        for v, g in zip(variables, grads, strict=True)
        if g is not None
    }


def signal_report(model: keras.Model, x: Any, y: Any = None, loss: Any = None) -> SignalReport:
    """Per layer at initialization: weights against their target, activations, gradients.

    One forward pass on ``x`` (and, with targets ``y``, one backward pass of
    ``loss``, else the compiled loss, else the loss that fits ``y`` and the
    output: sparse categorical cross-entropy for integer labels, categorical
    for one-hot, binary for a sigmoid output, mean squared error for targets
    of the output's shape, see :mod:`keras_initzoo.models.losses`; the report's
    ``loss`` and a note say which) gives, for every layer in forward order:

    * ``weight var`` and ``target var``: the variance of its kernel against
      ``gain(f)**2 / fan_in``, ``f`` the nonlinearity that feeds it (as
      :func:`auto_initialize` would choose);
    * ``act mean``, ``act std`` and ``act rms`` of its output;
    * ``dead``: the share of ReLU-family units (channels) that are zero for
      every sample; ``saturated``: the share of tanh or sigmoid outputs
      beyond 0.99 of their range;
    * ``grad norm``: the L2 norm of its variables' gradients.

    ``verdict`` is "vanishing" or "exploding" when some layer's RMS has moved
    by more than ``2**4`` from the first layer's (or, for tanh and sigmoid,
    when most units saturate), else "healthy"; ``where`` names the first
    layer past ``2**1`` in that direction.

    ``x`` or ``y`` holding NaN or inf, or a ``y`` no loss fits, raise a
    ValueError that says where. ``loss``: any Keras loss identifier or
    callable ``loss(y_true, y_pred)``, applied to each output.

    Example:

    >>> model = keras.Sequential([keras.Input((32,))] + [keras.layers.Dense(
    ...     32, activation="relu", kernel_initializer="zoo_small") for _ in range(10)])
    >>> signal_report(model, keras.random.normal((64, 32), seed=0)).verdict
    'vanishing'
    """
    check_built(model)
    batch = as_batch(x, name="x")
    targets = None if y is None else as_batch(y, name="y")
    fitted = None if targets is None else model_loss(model, batch, targets, loss)
    sites = {
        id(site.layer): site for site in walk(model).kernels if site.role != "recurrent_kernel"
    }
    kinds = SignalKinds()
    rows: dict[int, dict] = {}
    # JAX's one pass is traced: those outputs are measured once the trace is done
    traced: dict[int, Any] = {}
    traced_layers: dict[int, tuple[keras.layers.Layer, Kind]] = {}

    def handler(layer, call, args, kwargs):
        fed_by = kinds.fed_by(args, kwargs)
        output = call(*args, **kwargs)
        kinds.record(layer, args, kwargs, output)
        if id(layer) not in rows and id(layer) not in traced:
            if _is_traced(first_tensor(output)):
                traced[id(layer)], traced_layers[id(layer)] = first_tensor(output), (layer, fed_by)
            else:
                rows[id(layer)] = _layer_row(
                    layer, first_tensor(output), fed_by, sites.get(id(layer))
                )
        return output

    layers = leaf_layers(model)
    with intercept(layers, handler):
        grad_norms = _forward_and_gradients(
            model, batch, targets, lambda: model(batch, training=False), traced, fitted
        )
    for key, output in traced.items():
        layer, fed_by = traced_layers[key]
        rows[key] = _layer_row(layer, output, fed_by, sites.get(key))

    report = SignalReport(
        title="Signal at initialization, layer by layer",
        columns=(
            "layer",
            "class",
            "weight var",
            "target var",
            "act mean",
            "act std",
            "act rms",
            "dead",
            "saturated",
            "grad norm",
        ),
    )
    for layer in layers:
        row = rows.get(id(layer))
        if row is None:
            continue
        prefix = f"{layer.path}/" if layer.path else None
        owned = [n for p, n in grad_norms.items() if prefix and p.startswith(prefix)]
        row["grad norm"] = float(np.sqrt(sum(n**2 for n in owned))) if owned else None
        report.add(**row)
    report.verdict, report.where = _verdict(report)
    if y is None:
        report.notes.append("no targets given: no gradient norms (pass y for them)")
    else:
        report.loss = fitted.description
        report.notes.append(f"loss: {fitted.description}")
    return report


def _layer_row(layer, output, fed_by: Kind, site) -> dict:
    values = np.asarray(keras.ops.convert_to_numpy(output), dtype="float64")
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU)):
        name = "relu"
    dead = saturated = None
    if name in ("relu", "relu6", "leaky_relu", "elu") and values.ndim >= 2:
        per_unit = values.reshape(-1, values.shape[-1])
        dead = float(np.mean(np.all(per_unit <= 0.0, axis=0)))
    if name in SATURATED:
        centred = values if name == "tanh" else 2.0 * values - 1.0
        saturated = float(np.mean(np.abs(centred) > SATURATED[name]))
    weight_var = target_var = None
    if site is not None:
        weight = np.asarray(keras.ops.convert_to_numpy(site.variable), dtype="float64")
        weight_var = float(weight.var())
        target_var = gain_of(fed_by)[0] ** 2 / max(1, site.fan_in)
    return {
        "layer": layer.path or layer.name,  # a layer without weights has no path
        "class": type(layer).__name__,
        "weight var": weight_var,
        "target var": target_var,
        "act mean": float(values.mean()),
        "act std": float(values.std()),
        "act rms": float(np.sqrt(np.mean(values**2))),
        "dead": dead,
        "saturated": saturated,
    }


def _verdict(report: Report) -> tuple[str, str | None]:
    rms = [(row["layer"], row["act rms"]) for row in report if row["weight var"] is not None]
    if not rms:
        return "healthy", None
    first = rms[0][1]
    if not math.isfinite(first) or first == 0.0:
        return ("exploding" if not math.isfinite(first) else "vanishing"), rms[0][0]
    octaves = [
        (
            path,
            math.log2(value / first)
            if value > 0 and math.isfinite(value)
            else (math.inf if not math.isfinite(value) else -math.inf),
        )
        for path, value in rms
    ]
    saturating = [r["layer"] for r in report if (r["saturated"] or 0.0) > _SATURATING_SHARE]
    lowest, highest = min(o for _, o in octaves), max(o for _, o in octaves)
    if highest > DRIFT_OCTAVES or saturating:
        start = next((p for p, o in octaves if o > 1.0), saturating[0] if saturating else None)
        return "exploding", start
    if lowest < -DRIFT_OCTAVES:
        return "vanishing", next(p for p, o in octaves if o < -1.0)
    return "healthy", None
