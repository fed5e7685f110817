"""Each kernel's scheme from the nonlinearity that feeds it, calibrated where no gain holds."""

from __future__ import annotations

from typing import Any

import keras

from keras_initzoo.gains import gain
from keras_initzoo.initializers import Orthogonal, VarianceScaling
from keras_initzoo.models.data import as_batch, check_built, run, synthetic_batch
from keras_initzoo.models.lsuv import scale_to_std
from keras_initzoo.models.reinitialize import draw_kernel
from keras_initzoo.models.report import Report
from keras_initzoo.models.trace import intercept, leaf_layers, tensors_in
from keras_initzoo.models.walk import KernelSite, walk
from keras_initzoo.mup.infshape import refuse_if_parametrized

# Activations whose unit-variance fixed point repels (slope of the variance map
# at 1: GELU 1.144, SiLU 1.173, Mish 1.076): even the exact gain drifts with
# depth, so the kernels they feed are calibrated on a batch.
UNSTABLE = frozenset({"gelu", "silu", "swish", "mish"})

_NORMALIZATION = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.UnitNormalization,
)
_LINEAR = ("linear", ())  # raw inputs, linear layers, normalized signals
Kind = tuple[str, tuple]  # (activation name, its parameters as sorted items)


def _kind_of_activation(function: Any) -> Kind | None:
    if function is None or function is keras.activations.linear:
        return None
    name = getattr(function, "__name__", type(function).__name__)
    return (name, ())


def output_kind(layer: keras.layers.Layer, input_kinds: list[Kind]) -> Kind:
    """What a layer's output is, as far as the next kernel's gain is concerned."""
    if isinstance(layer, keras.layers.ReLU):
        if layer.negative_slope:
            return ("leaky_relu", (("negative_slope", float(layer.negative_slope)),))
        return ("relu", ())
    if isinstance(layer, keras.layers.LeakyReLU):
        return ("leaky_relu", (("negative_slope", float(layer.negative_slope)),))
    if isinstance(layer, keras.layers.ELU):
        return ("elu", (("alpha", float(layer.alpha)),))
    if isinstance(layer, keras.layers.Softmax):
        return ("softmax", ())
    if isinstance(layer, _NORMALIZATION):
        return ("normalized", ())
    own = _kind_of_activation(getattr(layer, "activation", None))
    if own is not None:
        return own
    if hasattr(layer, "kernel") or hasattr(layer, "embeddings"):
        return _LINEAR
    # dropout, pooling, reshaping, padding, merging: the signal passes through
    distinct = set(input_kinds)
    return input_kinds[0] if len(distinct) == 1 else _LINEAR


class SignalKinds:
    """What produced each tensor of one forward pass, tracked by tensor identity.

    Tensors made outside any layer (the model's inputs, an attention product,
    a residual sum inside a custom block) count as linear.
    """

    def __init__(self) -> None:
        self._kinds: dict[int, Kind] = {}

    def inputs(self, args: tuple, kwargs: dict) -> list[Kind]:
        return [self._kinds.get(id(x), _LINEAR) for x in tensors_in((args, kwargs))] or [_LINEAR]

    def fed_by(self, args: tuple, kwargs: dict) -> Kind:
        """The nonlinearity that feeds a layer called with ``args`` and ``kwargs``."""
        kinds = self.inputs(args, kwargs)
        return kinds[0] if len(set(kinds)) == 1 else _LINEAR

    def record(self, layer: keras.layers.Layer, args: tuple, kwargs: dict, output: Any) -> None:
        kind = output_kind(layer, self.inputs(args, kwargs))
        for tensor in tensors_in(output):
            self._kinds[id(tensor)] = kind


def gain_of(kind: Kind) -> tuple[float, str]:
    """The gain for a kernel fed by ``kind``, and how it was chosen."""
    name, params = kind
    if name in ("linear", "normalized"):
        return 1.0, "gain 1"
    try:
        value = gain(name, **dict(params))
        return value, f"gain({name}) = {value:.4f}"
    except ValueError:
        return 1.0, f"{name} is not elementwise: gain 1"


def auto_initialize(model: keras.Model, data: Any = None, *, skip: Any = None) -> Report:
    """Chooses and draws each kernel's scheme from the nonlinearity that feeds it, in place.

    In one forward pass (on ``data``, or a synthetic batch shaped like the
    model's input), each layer with kernels, when it is called, learns what
    produced its input and draws its kernels with the true fans of
    :func:`~keras_initzoo.models.walk.walk`:

    * fed by raw inputs, a linear layer or a normalization layer: variance
      ``1 / fan_in`` (gain 1);
    * fed by an activation ``f``: variance ``gain(f)**2 / fan_in`` with the
      exact gain :func:`keras_initzoo.gain` (He's 2/fan_in after ReLU,
      LeCun's 1/fan_in after SELU);
    * recurrent kernels: orthogonal, per gate block;
    * fed by GELU, SiLU/swish or Mish, whose unit-variance fixed point is
      unstable: the exact gain, then the kernel is rescaled on the batch until
      its pre-activation has standard deviation 1 (as in :func:`lsuv`).

    What feeds a layer is read from the layer that produced its input: an
    ``activation=`` of its own, an Activation, ReLU, LeakyReLU or ELU layer,
    or, through dropout, pooling, reshaping and merging layers, the layer
    before them. Inputs made by operations outside any layer (an attention
    product, a residual sum inside a custom block) count as linear.

    Example:

    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    ...                           keras.layers.Dense(4)])
    >>> [row["scheme"] for row in auto_initialize(model)]
    ['gain 1', 'gain(relu) = 1.4142']

    Returns:
        A :class:`Report`, one row per kernel: what feeds it, the scheme, the
        target and actual variance, and why.
    """
    check_built(model)
    batch = synthetic_batch(model) if data is None else as_batch(data)
    found = walk(model, skip=skip)
    refuse_if_parametrized((site.variable for site in found.kernels), "auto_initialize", model)
    by_layer: dict[int, list[KernelSite]] = {}
    for site in found.kernels:
        by_layer.setdefault(id(site.layer), []).append(site)

    kinds = SignalKinds()
    chosen: dict[str, dict] = {}
    orthogonal = Orthogonal()
    by_gain: dict[float, VarianceScaling] = {}  # one instance (and seed stream) per gain

    def scaled(gain_value: float) -> VarianceScaling:
        if gain_value not in by_gain:
            by_gain[gain_value] = VarianceScaling(gain_value**2, "fan_in", "truncated_normal")
        return by_gain[gain_value]

    def initialize(layer, call, args, kwargs, fed_by: Kind):
        scheme_gain, scheme = gain_of(fed_by)
        for site in by_layer[id(layer)]:
            if site.role == "recurrent_kernel":
                initializer, how = orthogonal, "orthogonal per gate block"
                why = "recurrent: keeps the norm of the state through time (Saxe et al. 2013)"
            else:
                initializer, how = scaled(scheme_gain), scheme
                why = f"variance {scheme_gain**2:.4g}/fan_in, fan_in = {site.fan_in}"
                why += f" ({site.note})" if site.note else ""
            target, _ = draw_kernel(site, initializer)
            chosen[site.path] = {"fed by": fed_by[0], "scheme": how, "target": target, "why": why}
        if fed_by[0] in UNSTABLE:
            sites = [s for s in by_layer[id(layer)] if s.role != "recurrent_kernel"]
            iterations, before, after = scale_to_std(
                layer, call, args, kwargs, sites, 1.0, 0.05, 10
            )
            for site in sites:
                chosen[site.path]["why"] = (
                    f"{fed_by[0]}'s fixed point is unstable: calibrated on the batch, "
                    f"pre-activation std {before:.3g} -> {after:.3g} in {iterations} calls"
                )

    def handler(layer, call, args, kwargs):
        if id(layer) in by_layer and not any(s.path in chosen for s in by_layer[id(layer)]):
            initialize(layer, call, args, kwargs, kinds.fed_by(args, kwargs))
        output = call(*args, **kwargs)
        kinds.record(layer, args, kwargs, output)
        return output

    with intercept(leaf_layers(model), handler):
        run(model, batch, name="data" if data is not None else "the synthetic batch")

    report = Report(
        title="auto_initialize: each kernel's scheme from the nonlinearity that feeds it",
        columns=("path", "shape", "fed by", "scheme", "target var", "actual var", "why"),
    )
    for site in found.kernels:
        if site.path not in chosen:  # never called in the forward pass
            target, _ = draw_kernel(site, scaled(1.0))
            chosen[site.path] = {
                "fed by": "?",
                "scheme": "gain 1",
                "target": target,
                "why": "not reached by the forward pass",
            }
        entry = chosen[site.path]
        actual = float(keras.ops.convert_to_numpy(keras.ops.var(site.variable)))
        report.add(
            path=site.path,
            shape=tuple(site.variable.shape),
            **{"fed by": entry["fed by"], "scheme": entry["scheme"]},
            **{"target var": entry["target"], "actual var": actual},
            why=entry["why"],
        )
    report.notes.extend(f"{path}: {why}" for path, why in found.notes)
    return report
