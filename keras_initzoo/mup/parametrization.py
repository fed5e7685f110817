"""The maximal update parametrization of a built Keras model, against a base model."""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import keras

from keras_initzoo import _keras_internals as internals
from keras_initzoo._records import ATTRIBUTE, InfShape, infshape_of
from keras_initzoo._validation import check_choice
from keras_initzoo._warnings import warn
from keras_initzoo.initializers.base import make_seed_generator
from keras_initzoo.initializers.variance_scaling import VarianceScaling
from keras_initzoo.models.data import check_built
from keras_initzoo.models.draw import draw_kernel, resolve
from keras_initzoo.models.report import Report
from keras_initzoo.models.walk import KernelSite, walk
from keras_initzoo.mup import depth as depth_module
from keras_initzoo.mup.depth import DEPTH_RULES
from keras_initzoo.mup.optimizers import MupOptimizer

COLUMNS = (
    "path",
    "kind",
    "shape",
    "base shape",
    "width mult",
    "init std x",
    "adam lr x",
    "sgd lr x",
    "epsilon x",
    "block",
    "branch x",
    "init",
)

# Where each kernel role keeps its initializer on its layer.
_INITIALIZER_ATTRIBUTE = {
    "kernel": "kernel_initializer",
    "recurrent_kernel": "recurrent_initializer",
    "depthwise_kernel": "depthwise_initializer",
    "pointwise_kernel": "pointwise_initializer",
    "embeddings": "embeddings_initializer",
    "reverse_embeddings": "reverse_embeddings_initializer",
}
_DEFAULT_SCALE, _DEFAULT_DISTRIBUTION = 1.0, "truncated_normal"  # LeCun normal


def _matched(
    model: keras.layers.Layer, other: keras.layers.Layer, name: str, data: Any = None
) -> tuple[list, depth_module.Stream | None, depth_module.Stream | None]:
    """``other``'s variables in the order of ``model``'s, checked to be the same architecture.

    Instances of one architecture and depth hold their variables in the same
    order, so they are matched by position (Keras' global names,
    ``dense_3/kernel``, differ between instances); each pair must agree in
    name and rank. When ``other`` holds another number of variables (another
    depth) they are matched by the residual stream instead
    (:func:`keras_initzoo.mup.depth.counterparts`), and both streams come back.
    """
    check_built(other, name)
    mine, theirs = list(model.weights), list(other.weights)
    if len(mine) != len(theirs):
        return depth_module.counterparts(model, other, name, data)
    for index, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        if a.name != b.name or len(a.shape) != len(b.shape):
            raise ValueError(
                f"`{name}` does not match `model` at variable #{index}: {a.path} "
                f"{tuple(a.shape)} in the model, {b.path} {tuple(b.shape)} in `{name}`. "
                "Pass another instance of the same architecture (another width or depth)."
            )
    return theirs, None, None


def _sides(site: KernelSite, base: KernelSite, other: KernelSite) -> tuple[float, float]:
    """The kernel's ``(m_in, m_out)``; a side is infinite when base and other fans differ."""
    mults = []
    for side in ("fan_in", "fan_out"):
        fan, base_fan, other_fan = (getattr(s, side) for s in (site, base, other))
        if base_fan == other_fan and fan != base_fan:
            raise ValueError(
                f"{site.path}: its {side} is the same in `base` and `delta` ({base_fan}) "
                f"but {fan} in the model: `delta` must differ from `base` in every width "
                "the model differs in."
            )
        mults.append(fan / base_fan if base_fan != other_fan else 1.0)
    return mults[0], mults[1]


def _kernel_kind(site: KernelSite, base: KernelSite, other: KernelSite) -> str:
    grows_in, grows_out = (getattr(base, s) != getattr(other, s) for s in ("fan_in", "fan_out"))
    return {
        (False, True): "input",
        (True, True): "hidden",
        (True, False): "output",
        (False, False): "fixed",
    }[(grows_in, grows_out)]


def _attention_layers(model: keras.layers.Layer) -> list:
    """Every ``MultiHeadAttention`` inside ``model`` (KerasHub's subclass it)."""
    return [
        layer
        for layer in internals.flatten_layers(model, include_self=True, recursive=True)
        if isinstance(layer, keras.layers.MultiHeadAttention)
    ]


def _attention_factors(
    model: keras.layers.Layer, base_shapes: dict[int, tuple]
) -> dict[int, float]:
    """``alpha = sqrt(d_base / d)`` by variable id, for the query kernel and bias of each attention.

    Keras' ``MultiHeadAttention`` scales its logits by ``1/sqrt(key_dim)``
    (a private constant, not in its config); ``alpha`` on the query makes
    that ``sqrt(d_base) / d``: muP's ``1/d``, equal to Keras' at the base.
    """
    factors = {}
    for layer in _attention_layers(model):
        query = layer.query_dense
        if tuple(query.kernel.shape)[-1] != layer.key_dim:
            raise ValueError(
                f"{layer.path}: its query kernel {tuple(query.kernel.shape)} does not end in "
                f"key_dim={layer.key_dim}, the layout muP's 1/d logits are set through."
            )
        base_key_dim = base_shapes[id(query.kernel)][-1]
        alpha = math.sqrt(base_key_dim / layer.key_dim)
        for variable in (query.kernel, getattr(query, "bias", None)):
            if variable is not None and alpha != 1.0:
                factors[id(variable)] = alpha
    return factors


def infshapes(
    model: keras.layers.Layer,
    base: keras.layers.Layer,
    delta=None,
    *,
    depth: str | None = None,
    data: Any = None,
) -> dict[int, InfShape]:
    """Each trainable variable's :class:`InfShape` by id, from ``base`` and ``delta``.

    Kernels (what :func:`~keras_initzoo.models.walk.walk` finds) get their
    kind from which fans grow; biases, and other variables with at most one
    width axis, are vector-like. A variable with two width axes that is no
    kernel has no known kind: that raises. When ``base`` has fewer residual
    branches than the model and ``depth`` names a rule of
    :data:`DEPTH_RULES`, each variable in a branch gets its
    :class:`~keras_initzoo._records.DepthRecord` too.

    Args:
        model: the built model to parametrize.
        base: the same architecture at the base width (and depth).
        delta: the same architecture at another width (default None: the
            axes that grow are those where ``model`` and ``base`` differ).
        depth: a key of :data:`DEPTH_RULES`, or None for no depth scaling
            (default). Keyword only.
        data: a batch for the probe that finds the residual stream (default
            None: a synthetic batch). Keyword only.

    Returns:
        Each trainable variable's :class:`InfShape`, by ``id(variable)``.
    """
    base_vars, mine, theirs = _matched(model, base, "base", data)
    other_vars = list(model.weights) if delta is None else _matched(model, delta, "delta", data)[0]
    depths = {}
    if depth is not None and mine is not None:
        depths = depth_module.depth_records(mine, theirs.length, DEPTH_RULES[depth])
        if depths and depth == "depth_mup":
            _warn_if_means_add_up(depth_module.nonzero_mean_branches(mine))
    base_shapes = {id(v): tuple(b.shape) for v, b in zip(model.weights, base_vars, strict=True)}
    found = walk(model)
    for site in found.kernels:
        if site.role == "embeddings" and getattr(site.layer, "tie_weights", False):
            raise ValueError(
                f"{site.layer.path}: a tied embedding is both the input (width grows in "
                "fan_out) and the readout (width grows in fan_in), whose muP learning rates "
                "and init differ; build it with tie_weights=False (an untied readout)."
            )
    base_sites = _sites_by_variable(base)
    other_sites = None if delta is None else _sites_by_variable(delta)
    alpha = _attention_factors(model, base_shapes)
    records: dict[int, InfShape] = {}
    kernels = {id(site.variable): site for site in found.kernels}
    biases = {id(v) for v in found.biases}
    for index, variable in enumerate(model.weights):
        if not variable.trainable and id(variable) not in kernels:
            continue
        shape, base_shape = tuple(variable.shape), tuple(base_vars[index].shape)
        other_shape = tuple(other_vars[index].shape)
        infinite = tuple(b != o for b, o in zip(base_shape, other_shape, strict=True))
        for axis, grows in enumerate(infinite):
            if not grows and shape[axis] != base_shape[axis]:
                raise ValueError(
                    f"{variable.path}: axis {axis} is the same in `base` and `delta` "
                    f"({base_shape[axis]}) but {shape[axis]} in the model: `delta` must differ "
                    "from `base` in every width the model differs in."
                )
        factor = alpha.get(id(variable), 1.0)
        if id(variable) in kernels:
            site = kernels[id(variable)]
            base_site = _counterpart(base_sites, base_vars[index], variable, "base")
            other_site = (
                site
                if other_sites is None
                else _counterpart(other_sites, other_vars[index], variable, "delta")
            )
            kind = _kernel_kind(site, base_site, other_site)
            # A kernel whose fans stay put while an axis grows (a depthwise
            # kernel's channels) is read by its axes below, as its bias is:
            # vector-like, mup's ninf == 1.
            if kind != "fixed" or not any(infinite):
                m_in, m_out = _sides(site, base_site, other_site)
                records[id(variable)] = InfShape(
                    variable.path, shape, base_shape, infinite, kind, m_in, m_out, factor,
                    depths.get(id(variable)),
                )  # fmt: skip
                continue
        if sum(infinite) > 1 and id(variable) not in biases:
            raise ValueError(
                f"{variable.path} {shape} has {sum(infinite)} axes that grow with width but "
                "is no kernel of a known layer: muP cannot tell whether it is a hidden, "
                "input or output weight."
            )
        mult = math.prod(shape) / math.prod(base_shape) if any(infinite) else 1.0
        kind = "vector" if any(infinite) else "fixed"
        records[id(variable)] = InfShape(
            variable.path, shape, base_shape, infinite, kind, 1.0, mult, factor,
            depths.get(id(variable)),
        )  # fmt: skip
    return records


def _sites_by_variable(model: keras.layers.Layer) -> dict[int, KernelSite]:
    return {id(site.variable): site for site in walk(model).kernels}


def _counterpart(sites: dict[int, KernelSite], counterpart, variable, name: str) -> KernelSite:
    if id(counterpart) not in sites:
        raise ValueError(
            f"`{name}` does not match `model`: {variable.path} is a kernel in the model but "
            f"its counterpart {counterpart.path} is not in `{name}`."
        )
    return sites[id(counterpart)]


def _fan_based(initializer: Any) -> VarianceScaling:
    """``initializer`` resolved, if it is a fan-based ``VarianceScaling``; else a ValueError."""
    try:
        init = resolve(initializer)
    except (ValueError, TypeError):
        init = None
    if not isinstance(init, VarianceScaling):
        raise ValueError(
            "`initializer` must be a fan-based VarianceScaling initializer (zoo_he, "
            f"zoo_lecun_normal, keras' HeNormal, ...); received initializer={initializer!r}."
        )
    return init


def _own_scale(site: KernelSite, initializer: Any) -> tuple[float, str, str]:
    """``(scale, distribution, note)`` of the fan-in re-draw of ``site``.

    The scale and distribution of ``initializer`` when given, else of the
    kernel's own initializer when that is a ``VarianceScaling`` (Keras' or the
    zoo's: Glorot, He, LeCun), else LeCun normal's (scale 1).
    """
    if initializer is not None:
        init = _fan_based(initializer)
    else:
        own = getattr(site.layer, _INITIALIZER_ATTRIBUTE.get(site.role, ""), None)
        init = resolve(own) if own is not None else None
    if isinstance(init, VarianceScaling):
        name = type(init).__name__
        return init.scale, init.distribution, f"{name} scale {init.scale:g}, fan_in"
    return _DEFAULT_SCALE, _DEFAULT_DISTRIBUTION, "not fan-based: LeCun normal, fan_in"


def redraw(
    sites: list[KernelSite],
    records: dict[int, InfShape],
    *,
    zeros: dict[int, str] | None = None,
    standard: bool = False,
    initializer: Any = None,
    seed: Any = None,
) -> dict[int, str]:
    """Re-draws every kernel with variance ``scale * init_std**2 / fan_in``; notes by id.

    The kernels in ``zeros`` (variable id to the reason) are set to zero instead.
    With ``standard=True`` every ``init_std`` counts as 1: the standard
    parametrization with the same fan-in draw (Tensor Programs V, Table 3's
    parenthesized column), for comparisons.

    Args:
        sites: the kernels to re-draw.
        records: each variable's :class:`InfShape`, by ``id(variable)``.
        zeros: kernels set to zero instead, variable id to the reason
            (default None: none). Keyword only, as the rest.
        standard: draw the standard parametrization (default False: muP).
        initializer: a fan-based initializer whose scale and distribution
            every kernel takes (default None: each kernel's own).
        seed: None (default: a random seed), an integer or a
            ``keras.random.SeedGenerator``.

    Returns:
        A note per re-drawn kernel, by ``id(variable)``.
    """
    generator = make_seed_generator(seed)
    zeros = zeros or {}
    notes = {}
    for site in sites:
        record = records[id(site.variable)]
        if id(site.variable) in zeros:
            site.variable.assign(keras.ops.zeros(site.shape, dtype=site.variable.dtype))
            notes[id(site.variable)] = zeros[id(site.variable)]
            continue
        scale, distribution, note = _own_scale(site, initializer)
        std = 1.0 if standard else record.init_std
        draw_kernel(site, VarianceScaling(scale * std**2, "fan_in", distribution, seed=generator))
        notes[id(site.variable)] = note
    return notes


def _scale_carriers(
    model: keras.layers.Layer, records: dict[int, InfShape], notes: dict[int, str]
) -> None:
    """Multiplies the carriers' other variables (bias, norm scale and offset) by ``m_L**-alpha``.

    The carrier's kernel was drawn with it; its bias (and a normalization's
    ``gamma``, ``beta``) must scale with it, so that the layer's whole output
    carries the branch multiplier.
    """
    for variable in model.weights:
        record = records.get(id(variable))
        if record is None or record.depth is None or record.depth.role != "carrier":
            continue
        if id(variable) in notes:  # a kernel, re-drawn
            continue
        factor = record.depth.branch_multiplier
        variable.assign(variable * keras.ops.cast(factor, variable.dtype))
        notes[id(variable)] = f"kept x {factor:.4g} (carries the branch multiplier)"


def _warn_if_means_add_up(blocks: list[str]) -> None:
    """Depth-muP's ``1/sqrt(m_L)`` holds the stream only for branches that average to zero."""
    if not blocks:
        return
    named = ", ".join(blocks[:3]) + (f" and {len(blocks) - 3} more" if len(blocks) > 3 else "")
    warn(
        f"depth='depth_mup': the residual branches of {named} end in an activation, so "
        "their outputs have a nonzero mean in every unit, and those means add up across "
        "blocks: scaled by 1/sqrt(m_L), the stream grows as sqrt(m_L) with depth. "
        "depth='completep' (1/m_L) holds it; so does ending each branch in a linear layer."
    )


def _check_optimizer(model: keras.Model) -> None:
    """Hands the records to a kiz.mup optimizer; warns about any other optimizer."""
    optimizer = getattr(model, "optimizer", None)
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's
    if isinstance(inner, MupOptimizer):
        inner.take_multipliers(model.trainable_variables)
    elif inner is not None:
        warnings.warn(
            f"`model` {model.name!r} was parametrized by kiz.mup.parametrize but is compiled "
            f"with {type(inner).__name__}, which applies none of muP's learning-rate "
            "multipliers: use kiz.mup.Adam, kiz.mup.AdamW or kiz.mup.SGD.",
            UserWarning,
            stacklevel=3,
        )


def _guard_compile(model: keras.Model) -> None:
    """After each ``model.compile``, check its optimizer (an instance attribute, not saved)."""
    if "compile" in model.__dict__ or not hasattr(model, "compile"):
        return
    compile_ = model.compile

    @functools.wraps(compile_)
    def compile_with_mup_check(*args, **kwargs):
        result = compile_(*args, **kwargs)
        _check_optimizer(model)
        return result

    object.__setattr__(model, "compile", compile_with_mup_check)  # past Keras' tracking


def parametrize(
    model: keras.layers.Layer,
    base: keras.layers.Layer,
    delta: keras.layers.Layer | None = None,
    *,
    zero_readout: bool = False,
    zero_query: bool = False,
    initializer: Any = None,
    seed: Any = None,
    depth: str | None = "completep",
    data: Any = None,
) -> Report:
    """The maximal update parametrization (muP) of a built ``model``, in place; with depth.

    ``base`` (and ``delta``) are other built instances of the same
    architecture at other widths; their variables are matched to the
    model's by position. An axis is infinite when it differs between
    ``base`` and ``delta`` (without ``delta``: between ``base`` and the
    model), as in microsoft/mup's ``set_base_shapes``, and each trainable
    variable gets a kind and width multipliers ``m = model / base`` (see
    :mod:`keras_initzoo._records` for the table). Then:

    * every kernel is re-drawn with variance ``s / fan_in`` for its true fans
      (Keras' default ``glorot_uniform`` scales with ``fan_out``, which muP
      must not): ``s`` the scale of the kernel's own fan-based initializer
      (Glorot 1, He 2) or ``initializer``'s, LeCun's 1 for others;
    * the readout (fan-in grows, fan-out does not) is drawn with a further
      ``1 / m_in``, or zero with ``zero_readout=True``. muP multiplies the
      readout's output by ``1 / m``; a Keras ``Dense`` has no multiplier, so
      the symmetry of muP (forward multiplier ``a``, init ``b``, Adam rate
      ``c`` act as ``(a theta, b/theta, c/theta)``) moves it into the init
      (``b / m``) and the rate (``c / m``): the same training, no layer
      rewritten;
    * attention logits scale as ``1/d``: each ``MultiHeadAttention`` (and
      KerasHub's, which subclass it) keeps its private ``1/sqrt(d)``, and its
      query kernel and bias carry ``alpha = sqrt(d_base / d)`` by the same
      symmetry (init std times ``alpha``, Adam rate times ``alpha``, SGD
      rate times ``alpha**2``, epsilon over ``alpha``), so the logits are
      ``sqrt(d_base) / d`` times ``q.k``: Keras' own at the base width, muP's
      ``1/d`` beyond. That form was chosen because Keras' scale is not in the
      layer's config, and rewriting the user's layer would not survive saving;
    * biases and normalization scales are kept (Keras' zeros and ones do
      not depend on width); a tied embedding is refused (its input and
      readout roles need different rates);
    * **depth**: when ``base`` has fewer blocks (fewer residual branches,
      ``L_base < L``), its variables are matched to the model's by their
      place in the residual stream (:func:`kiz.residual_structure`; see
      :mod:`keras_initzoo.mup.depth`), and each branch ``h + F(h)`` becomes
      ``h + m_L**-alpha F(h)`` with ``m_L = L / L_base``: ``alpha = 1`` for
      ``depth="completep"`` (Dey et al., NeurIPS 2025), ``1/2`` for
      ``"depth_mup"`` (Yang et al., Tensor Programs VI, 2023). The
      multiplier is carried by the branch's last layer that scales its
      output (its weights are drawn ``m_L**-alpha`` times larger, and its
      rates and eps set by muP's symmetry: exactly the same training, no
      extra op), and every variable of the branch gets CompleteP's Adam rate
      ``m_L**(alpha-1)`` and eps ``m_L**-alpha`` (Table 1; the table is in
      :mod:`keras_initzoo._records`). Variables outside the branches
      (embedding, readout, final normalization) keep their width factors
      only. ``depth=None`` matches the blocks all the same but scales
      nothing with depth: muP for width alone.

    The records are left on the variables for :class:`Adam`,
    :class:`AdamW` and :class:`SGD`, which copy them into their config so a
    saved model keeps them. ``model.compile`` with any other optimizer warns.

    Examples:
        >>> def build(width):
        ...     return keras.Sequential([keras.Input((16,)),
        ...         keras.layers.Dense(width, activation="relu", name="hidden_1"),
        ...         keras.layers.Dense(width, activation="relu", name="hidden_2"),
        ...         keras.layers.Dense(4, name="readout")], name="mlp")
        >>> report = parametrize(build(256), base=build(64))
        >>> rows = [(row["kind"], row["adam lr x"]) for row in report]
        >>> rows[::2]
        [('input', 1.0), ('hidden', 0.25), ('output', 0.25)]

    Args:
        model: a built ``keras.Model`` or layer.
        base: the same architecture at the width the hyperparameters were
            tuned at.
        delta: the same architecture at another width, naming the axes that
            grow (needed when ``model`` is as wide as ``base``; default None:
            the axes where ``model`` and ``base`` differ).
        zero_readout: initialize the readout to zero (its output is then
            exactly 0 at the start); default False. Keyword only, as the rest.
        zero_query: initialize each attention query kernel to zero, as
            microsoft/mup's Transformer examples do: attention starts uniform
            at every width (muP's limit), not peaked at narrow widths
            (default False).
        initializer: a fan-based initializer for every kernel (its scale and
            distribution, drawn with ``fan_in``), instead of each kernel's own
            (default None: each kernel's own).
        seed: None (default: a random seed), an integer or a
            ``keras.random.SeedGenerator`` for the re-draw.
        depth: ``"completep"`` (the default, ``alpha = 1``), ``"depth_mup"``
            (``alpha = 1/2``) or None (no depth scaling): the rule for a
            ``base`` with fewer blocks. With a base of the model's depth
            every depth factor is 1 whatever the rule.
        data: a batch for the probe that finds the residual stream when the
            depths differ (None: a synthetic batch shaped like the input).

    Returns:
        A :class:`~keras_initzoo.models.Report`, one row per trainable
        variable: kind, shapes, width multiplier, init and learning-rate
        multipliers, and, for a deeper model, each variable's ``block`` and
        the branch multiplier ``m_L**-alpha`` its block carries (``branch x``).
    """
    check_built(model)
    if depth is not None:
        check_choice("depth", depth, DEPTH_RULES)
    for name, flag in (("zero_readout", zero_readout), ("zero_query", zero_query)):
        if not isinstance(flag, bool):
            raise ValueError(f"`{name}` must be True or False; received {name}={flag!r}.")
    if initializer is not None:
        _fan_based(initializer)  # refused before anything is redrawn
    records = infshapes(model, base, delta, depth=depth, data=data)
    sites = [s for s in walk(model).kernels if id(s.variable) in records]
    zeros = {
        id(s.variable): "zero readout" for s in sites if records[id(s.variable)].kind == "output"
    }
    zeros = zeros if zero_readout else {}
    if zero_query:
        zeros.update({id(a.query_dense.kernel): "zero query" for a in _attention_layers(model)})
    notes = redraw(sites, records, zeros=zeros, initializer=initializer, seed=seed)
    _scale_carriers(model, records, notes)
    report = Report(columns=COLUMNS, title="muP: variables, kinds and multipliers")
    for variable in model.weights:
        record = records.get(id(variable))
        if record is None:
            continue
        setattr(variable, ATTRIBUTE, record)
        report.add(
            path=record.path,
            kind=record.kind,
            shape=record.shape,
            **{
                "base shape": record.base_shape,
                "width mult": record.width_mult,
                "init std x": record.init_std if id(variable) in notes else None,
                "adam lr x": record.adam_lr,
                "sgd lr x": record.sgd_lr,
                "epsilon x": record.epsilon,
                "block": record.depth.block if record.depth else None,
                "branch x": record.depth.branch_multiplier if record.depth else None,
                "init": notes.get(id(variable), "kept"),
            },
        )
    if not any(r.kind != "fixed" for r in records.values()):
        report.notes.append(
            "no axis differs between `base` and the model: every multiplier is 1 "
            "(pass `delta` to name the width axes of a model as wide as its base)"
        )
    if isinstance(model, keras.Model):
        _guard_compile(model)
        if getattr(model, "compiled", False):
            _check_optimizer(model)
    return report


def is_parametrized(model: keras.layers.Layer) -> bool:
    """Whether any trainable variable of ``model`` carries a muP record."""
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"`model` must be a Keras model or layer; received {type(model).__name__}.")
    return any(infshape_of(v) is not None for v in model.trainable_variables)
