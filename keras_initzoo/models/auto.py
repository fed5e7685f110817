"""Each kernel's scheme from the nonlinearity that feeds it, calibrated where no gain holds."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_initzoo._records import refuse_if_parametrized
from keras_initzoo._validation import check_bool, check_choice
from keras_initzoo.gains import gain
from keras_initzoo.initializers import Orthogonal, VarianceScaling
from keras_initzoo.models.data import as_batch, check_built, synthetic_batch
from keras_initzoo.models.draw import draw_kernel
from keras_initzoo.models.lsuv import scale_to_std
from keras_initzoo.models.propagate import propagate
from keras_initzoo.models.report import Report
from keras_initzoo.models.residual import trace
from keras_initzoo.models.trace import leaf_layers, tensors_in
from keras_initzoo.models.walk import NORMALIZATION, KernelSite, walk

# Activations whose unit-variance fixed point repels (slope of the variance map
# at 1: GELU 1.144, SiLU 1.173, Mish 1.076): even the exact gain drifts with
# depth, so the kernels they feed are calibrated on a batch.
UNSTABLE = frozenset({"gelu", "gelu_approximate", "silu", "swish", "mish"})
# The laws auto_initialize can hold the residual stream to (see its docstring).
STREAM_LAWS = ("flat", "nf")
FLAT_GROWTH = 1.5  # "flat": the stream's variance ends at most this many times its entry's
NF_ALPHA = 0.2  # "nf": each branch adds NF_ALPHA**2 of the entry's variance (Brock et al. 2021)

_LINEAR = ("linear", ())  # raw inputs, linear layers, normalized signals
Kind = tuple[str, tuple]  # (activation name, its parameters as sorted items)


def _kind_of_activation(function: Any) -> Kind | None:
    """A layer's ``activation=``: a Keras name, or (for KerasHub's ``gelu_approximate``, a
    lambda) the function itself, whose gain is then integrated from the callable."""
    if function is None or function is keras.activations.linear:
        return None
    name = getattr(function, "__name__", type(function).__name__)
    try:
        known = keras.activations.get(name) is function
    except ValueError:
        known = False
    return (name, ()) if known else (name, (("function", function),))


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
    if isinstance(layer, NORMALIZATION):
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

    def mark(self, tensor: Any, kind: Kind) -> None:
        """Says what made a tensor no layer made (a gate ``u * silu(g)`` in a block's call)."""
        self._kinds[id(tensor)] = kind

    def record(self, layer: keras.layers.Layer, args: tuple, kwargs: dict, output: Any) -> None:
        """Marks each tensor of ``output`` with the nonlinearity ``layer`` ends in.

        Args:
            layer: the layer that was called.
            args: its positional arguments in that call (the tensors it read).
            kwargs: its keyword arguments in that call.
            output: what the call returned, a tensor or a structure of them.
        """
        kind = output_kind(layer, self.inputs(args, kwargs))
        for tensor in tensors_in(output):
            self._kinds[id(tensor)] = kind


def constant_of(
    kind: Kind, constant: Callable[..., float] = gain, label: str = "gain"
) -> tuple[float, str]:
    """``constant`` of the nonlinearity ``kind`` feeding a kernel, and how it was chosen.

    ``constant`` is :func:`~keras_initzoo.gain` or :func:`~keras_initzoo.nf_gamma`;
    it is 1 after a linear or normalized signal or a function that is not
    elementwise.

    Args:
        kind: ``(activation name, its parameters as sorted items)``, as
            :class:`SignalKinds` records it.
        constant: the function of an activation to take (default
            :func:`~keras_initzoo.gain`).
        label: its name in the returned note (default ``"gain"``).

    Returns:
        ``(value, note)``: the constant, and how it was chosen in words.
    """
    name, params = kind
    if name in ("linear", "normalized"):
        return 1.0, f"{label} 1"
    params = dict(params)
    function = params.pop("function", name)
    try:
        value = constant(function, **params)
        return value, f"{label}({name}) = {value:.4f}"
    except ValueError:
        return 1.0, f"{name} is not elementwise: {label} 1"


def gain_of(kind: Kind) -> tuple[float, str]:
    """The gain for a kernel fed by ``kind``, and how it was chosen."""
    return constant_of(kind)


def _second_moments(skip: Any, branch: Any) -> tuple[float, float, float]:
    """``E[a**2]``, ``E[b**2]`` and ``E[a b]`` over every entry, in float64."""
    a = np.asarray(keras.ops.convert_to_numpy(skip), dtype="float64")
    b = np.asarray(keras.ops.convert_to_numpy(branch), dtype="float64")
    return float(np.mean(a * a)), float(np.mean(b * b)), float(np.mean(a * b))


def branch_scale(
    alpha: float, beta: float, skip_moments: tuple[float, float, float], target: float
) -> float:
    """The scale ``s > 0`` of a branch that brings ``E[(alpha a + s beta b)**2]`` to ``target``.

    With ``q_a = E[a**2]``, ``q_b = E[b**2]`` and ``c = E[a b]``, the sum's
    second moment is ``alpha**2 q_a + 2 alpha beta c s + beta**2 q_b s**2``: a
    quadratic in ``s`` whose positive root is returned. A stream already at or
    above the target gets a branch adding a thousandth of the target instead
    (a zero branch would stop its gradient), so ``s`` is always positive.

    Args:
        alpha: the skip path's factor.
        beta: the branch's factor (besides ``s``).
        skip_moments: ``(q_a, q_b, c)``, the measured moments above.
        target: the second moment the sum should have, > 0.

    Returns:
        ``s``, a Python float > 0.

    Examples:
        >>> round(branch_scale(1.0, 1.0, (1.0, 4.0, 0.0), 1.25), 6)  # 1 + 4 s**2 = 1.25
        0.25
    """
    q_a, q_b, c = skip_moments
    if q_b <= 0.0:
        return 1.0
    room = max(target - alpha**2 * q_a, 1e-3 * target)
    a, b = beta**2 * q_b, 2.0 * alpha * beta * c
    return float((-b + math.sqrt(b * b + 4.0 * a * room)) / (2.0 * a))


def scale_layer(layer: keras.layers.Layer, scale: float) -> None:
    """Multiplies what makes ``layer``'s output: kernels and bias, or a normalization's
    scale and offset, by ``scale`` (its output scales by ``scale`` exactly)."""
    names = ("gamma", "beta", "scale") if isinstance(layer, NORMALIZATION) else None
    for variable in layer.trainable_weights:
        if names is not None and variable.name not in names:
            continue
        variable.assign(variable * scale)


def stream_target(law: str, entry: float, index: int, count: int) -> float:
    """The stream's second moment the law asks for after the ``index``-th of ``count`` joins.

    ``"flat"``: ``entry (1 + (FLAT_GROWTH - 1) index / count)``, so the stream
    ends at ``FLAT_GROWTH = 1.5`` times its entry whatever the depth (each
    branch adds ``0.5 / count`` of it, a 1/L share as in SkipInit's and
    Fixup's analyses); ``"nf"``: ``entry (1 + NF_ALPHA**2 index)``, the
    linear growth of NF-ResNets' bookkeeping with ``alpha = 0.2``.

    Args:
        law: ``"flat"`` or ``"nf"``, as above.
        entry: the stream's second moment where it enters the first join.
        index: how many joins the stream has passed, from 1 to ``count``.
        count: the number of joins on the stream.

    Returns:
        The target second moment, a Python float.

    Examples:
        >>> stream_target("flat", 2.0, 10, 20), round(stream_target("nf", 1.0, 10, 20), 6)
        (2.5, 1.4)
    """
    if law == "flat":
        return entry * (1.0 + (FLAT_GROWTH - 1.0) * index / count)
    return entry * (1.0 + NF_ALPHA**2 * index)


def auto_initialize(
    model: keras.Model,
    data: Any = None,
    *,
    skip: Any = None,
    stream: str | None = "flat",
    training: bool = True,
) -> Report:
    """Chooses and draws each kernel's scheme from what feeds it, and keeps the stream level.

    In one forward pass (on ``data``, or a synthetic batch shaped like the
    model's input, in training mode by default: normalization with the
    batch's statistics, as the first training step), each layer with
    kernels, when it is called, learns what produced its input and draws its
    kernels with the true fans of :func:`~keras_initzoo.models.walk.walk`:

    * fed by raw inputs, a linear layer or a normalization layer: variance
      ``1 / fan_in`` (gain 1); embeddings (token, position, segment) alike,
      variance 1, so they add on one scale;
    * fed by an activation ``f``: variance ``gain(f)**2 / fan_in`` with the
      exact gain :func:`keras_initzoo.gain` (He's 2/fan_in after ReLU,
      LeCun's 1/fan_in after SELU); any elementwise callable counts, so
      KerasHub's ``gelu_approximate`` gets 1.5336;
    * recurrent kernels: orthogonal, per gate block;
    * fed by GELU, SiLU/swish or Mish, whose unit-variance fixed point is
      unstable: the exact gain, then the kernel is rescaled on the batch until
      its pre-activation has standard deviation 1 (as in :func:`lsuv`).

    Then, at each residual join ``alpha skip + beta branch`` found as the pass
    reaches it (:func:`~keras_initzoo.models.residual.residual_structure`),
    the branch's last weighted layer (or the normalization after it) is
    scaled so that the stream's second moment follows ``stream``:

    * ``"flat"`` (default): grows evenly to 1.5 times the stream's entry over
      all the joins, whatever the depth (:func:`stream_target`);
    * ``"nf"``: grows by ``0.2**2`` of the entry per join, as NF-ResNets;
    * None: branches as the gains leave them (the stream grows with depth).

    The scaling is exact when what follows that layer on the branch is
    positively homogeneous (linear, ReLU, Dropout, pooling), as in ResNets'
    and transformers' branches.

    What feeds a layer is read from the layer that produced its input: an
    ``activation=`` of its own, an Activation, ReLU, LeakyReLU or ELU layer,
    or, through dropout, pooling, reshaping and merging layers, the layer
    before them; a gate ``u * f(g)`` written in a block's ``call`` (Llama's
    SwiGLU) as ``f``, whose gain it has for unit ``u`` and ``g``. Other inputs
    made by operations outside any layer (an attention product) count as
    linear.

    Examples:
        >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
        ...                           keras.layers.Dense(4)])
        >>> [row["scheme"] for row in auto_initialize(model)]
        ['gain 1', 'gain(relu) = 1.4142']

    Args:
        model: a built Keras model.
        data: a batch of inputs (anything ``fit`` takes), or None for a synthetic one.
        skip: layers to leave as they are, as in :func:`~keras_initzoo.models.walk.walk`.
        stream: ``"flat"``, ``"nf"`` or None: the law the residual stream follows.
        training: the mode of the pass (True: as the first training step).

    Returns:
        A :class:`Report`, one row per kernel: its residual block and role,
        what feeds it, the scheme, the target and actual variance, and why.
        ``report.stream`` has one entry per join: the law's target, the
        branch scale, the stream's second moment, and its variance predicted
        analytically (:mod:`~keras_initzoo.models.propagate`) beside the
        measured one; ``report.moments`` has both for every layer call.
    """
    check_built(model)
    if stream is not None:
        check_choice("stream", stream, STREAM_LAWS)
    training = check_bool("training", training)
    batch = synthetic_batch(model) if data is None else as_batch(data)
    found = walk(model, skip=skip)
    refuse_if_parametrized((site.variable for site in found.kernels), "auto_initialize", model)
    by_layer: dict[int, list[KernelSite]] = {}
    for site in found.kernels:
        by_layer.setdefault(id(site.layer), []).append(site)
    joins = len(trace(model, batch, training=training).joins) if stream else 0

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

    layers = {layer.path or layer.name: layer for layer in leaf_layers(model)}
    levels: list[dict] = []

    def on_join(join, skip_tensor, branch) -> float | None:
        moments = _second_moments(skip_tensor, branch)
        if not levels:
            levels.append({"entry": moments[0]})
        target = stream_target(stream, levels[0]["entry"], len(levels), max(joins, 1))
        scale = None
        if join.scalable is not None:
            scale = branch_scale(join.alpha, join.beta, moments, target)
            scale_layer(layers[join.scalable], scale)
            for site in by_layer.get(id(layers[join.scalable]), []):
                if site.path in chosen:
                    chosen[site.path]["why"] += f"; x{scale:.3g} for the stream ({stream})"
        s = 1.0 if scale is None else scale
        q_a, q_b, c = moments
        reached = (
            join.alpha**2 * q_a + 2 * join.alpha * join.beta * s * c + (join.beta * s) ** 2 * q_b
        )
        levels.append(
            {"block": join.block, "depth": join.depth, "target var": target,
             "branch scale": scale, "scaled": join.scalable, "stream var": reached}
        )  # fmt: skip
        return scale

    def on_node(node, tensor) -> None:
        if node.kind == "gate" and node.activation is not None:
            # E[(u f(g))**2] = E[f(g)**2] for unit u and g: the gain of f, as after f alone
            kinds.mark(tensor, (node.activation, ()))

    trace(
        model,
        batch,
        training=training,
        inner=handler,
        on_join=on_join if stream else None,
        on_node=on_node,
    )
    after = trace(model, batch, training=training)
    roles = after.block_of()
    moments = {row["node"]: row for row in propagate(model, after, training)}

    report = Report(
        title="auto_initialize: each kernel's scheme from the nonlinearity that feeds it",
        columns=("path", "shape", "block", "fed by", "scheme", "target var", "actual var", "why"),
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
        block, role = roles.get(site.layer.path or site.layer.name, (None, None))
        report.add(
            path=site.path,
            shape=tuple(site.variable.shape),
            block=f"{block} {role}" if block else None,
            **{"fed by": entry["fed by"], "scheme": entry["scheme"]},
            **{"target var": entry["target"], "actual var": actual},
            why=entry["why"],
        )
    report.stream = levels[1:]
    for entry, join in zip(report.stream, after.joins, strict=False):
        entry["block"] = join.block
        entry["predicted var"] = moments[join.node]["pred var"]
        entry["measured var"] = moments[join.node]["var"]
    report.moments = list(moments.values())
    if report.stream:
        last = report.stream[-1]
        report.notes.append(
            f"residual stream ({stream}): {len(report.stream)} joins, second moment "
            f"{levels[0]['entry']:.4g} at entry -> {last['stream var']:.4g} after {last['block']}"
        )
    report.notes.extend(f"{path}: {why}" for path, why in found.notes)
    return report
