"""What the forward pass of a logged step shows: activations and attention logits.

While a fit logs ``activation_stats`` or ``attention_logits``,
:class:`ForwardProbe` routes the model's layer calls; in a step that records
(the recording variant of the traced train function on TensorFlow and JAX, a
recorded step on PyTorch) it reduces what it sees on the device, with the
gradient stopped (no backward work), and hands the row its sections.

**Activations** (``activation_stats``). Each leaf layer's output becomes four
numbers, per group:

* ``mean(y**2)`` (logged as its root, ``act_rms/<group>``);
* ``mean(y)`` (``act_mean/<group>``);
* the fraction of units (the last axis) that are exactly zero for every
  example and position of the batch (``act_dead/<group>``): a dead ReLU unit;
* for a saturating activation, the fraction of entries within 1 % of the
  range's end: ``|y| > 0.99`` for tanh, softsign and hard_tanh, ``y < 0.01``
  or ``y > 0.99`` for sigmoid and hard_sigmoid (``act_saturated/<group>``).

A group's output is the output of its last layer call in the step, or of a
parameter-free layer called after it (an ``Activation``, a ``Dropout``) before
the next group's first layer: a ``Dense`` followed by ``Activation("tanh")``
is measured after the tanh.

**Attention logits** (``attention_logits``). For each attention layer of a
family in :data:`ATTENTION_FAMILIES` (``keras.layers.MultiHeadAttention`` and
its subclasses, KerasHub's ``CachedMultiHeadAttention`` among them;
``keras.layers.GroupedQueryAttention``; KerasHub's decoder-only attention:
Llama, Mistral, Mixtral, Phi-3, GPT-NeoX, SmolLM3, Qwen, Qwen-MoE, Qwen3,
Qwen3-MoE, Qwen3.5, Gemma, Gemma 2/3), the projected query and key its
``_compute_attention`` receives give the pre-softmax logits as the layer forms
them: ``q . k`` times the layer's own scale (``1 / sqrt(key_dim)``, Llama's
``1 / sqrt(head_dim)``, Gemma's ``query_head_dim_normalize`` choice), each
query head against its key/value head (grouped-query attention: ``K`` key
heads repeated to the ``N`` query heads), soft-capped where the layer caps
them (Gemma 2's ``c * tanh(l / c)``: the largest logged is then at most ``c``),
under the layer's mask, causal mask and own sliding window: the largest
(``attn_logit_max/<layer>``) and the entropy of the attention weights in nats,
averaged over batch, heads and queries (``attn_entropy/<layer>``). Fused
attention never forms the logits, so the probe forms them once more on logged
steps: one extra ``B x N x T x S x H`` product per layer. A layer that looks
like attention but belongs to no family (a ``_compute_attention`` method, or
``Attention`` in its class name), or whose call the probe cannot read, is not
measured (its tags read NaN) and is named in one warning.

**Output logits** (``output_logits``). The model's (first) output, taken as
logits over its last axis: the mean over examples and positions of
``log Z = logsumexp(logits)``, what z-loss penalizes (``logits/log_z``), and
the largest ``|logit|`` (``logits/max_abs``). A model whose last layer applies
softmax or sigmoid outputs probabilities, whose logits cannot be recovered:
there the switch raises.

**Loss** (``detect_spikes``). The loss ``compute_loss`` returns in the step,
for the spike detector (not written as a scalar of its own).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence

import keras
import numpy as np

from keras_initzoo import _keras_internals as internals
from keras_initzoo._shadowing import shadow
from keras_initzoo._warnings import warn
from keras_initzoo.callbacks.rows import (
    ACTIVATION_SECTIONS,
    ATTENTION_SECTIONS,
    LOGIT_SECTIONS,
    LOSS_SECTIONS,
)
from keras_initzoo.models.trace import first_tensor, leaf_and_composite_layers

# What an activation's name says about its range: the flat ends a unit saturates in.
SYMMETRIC = ("tanh", "softsign", "hard_tanh")
UNIT_INTERVAL = ("sigmoid", "hard_sigmoid")
SATURATION_MARGIN = 0.01


def saturating_kind(layer: keras.layers.Layer) -> str | None:
    """``"symmetric"``, ``"unit"`` or None: the range of ``layer``'s output activation."""
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None) or (
        activation if isinstance(activation, str) else ""
    )
    if name in SYMMETRIC:
        return "symmetric"
    if name in UNIT_INTERVAL:
        return "unit"
    return None


def _stacked_output_stats(ys, kind: str | None):
    """``[mean(y**2), mean(y), dead fraction, saturated fraction]`` of each of ``k``
    layer outputs stacked on a leading axis: ``(k, 4)``.

    A unit is dead when it is exactly zero for the whole batch; the saturated
    fraction is NaN where ``kind`` is None (nothing to saturate).
    """
    ops = keras.ops
    ys = ops.cast(ys, "float32")
    count = ys.shape[0]
    flat = ops.reshape(ys, (count, -1))
    units = ops.reshape(ys, (count, -1, ys.shape[-1] if len(ys.shape) > 2 else 1))
    dead = ops.mean(ops.cast(ops.all(ops.equal(units, 0.0), axis=1), "float32"), axis=1)
    if kind == "symmetric":
        saturated = ops.mean(ops.cast(ops.abs(flat) > 1.0 - SATURATION_MARGIN, "float32"), axis=1)
    elif kind == "unit":
        ends = ops.logical_or(flat < SATURATION_MARGIN, flat > 1.0 - SATURATION_MARGIN)
        saturated = ops.mean(ops.cast(ends, "float32"), axis=1)
    else:
        saturated = ops.full((count,), float("nan"), "float32")
    moments = [ops.mean(ops.square(flat), axis=1), ops.mean(flat, axis=1)]
    return ops.stack([*moments, dead, saturated], axis=1)


def outputs_stats(outputs: dict[int, tuple]) -> dict[int, object]:
    """Each group's ``[mean(y**2), mean(y), dead fraction, saturated fraction]``, from its
    ``(output, kind)``; outputs of one shape, dtype and kind are stacked and reduced
    together.

    Eager PyTorch dispatches each op on its own: a dozen ops per layer cost a
    pre-LN transformer's logged step more than the rest of the monitors. An output
    whose shape is not fully known (TensorFlow's batch axis) is reduced alone,
    as is each one whose shape no other output shares.
    """
    batches: dict[tuple, list[int]] = {}
    for group, (y, kind) in outputs.items():
        shape = tuple(y.shape)
        known = all(isinstance(size, int) for size in shape)
        batches.setdefault((shape, str(y.dtype), kind) if known else (group,), []).append(group)
    found = {}
    for members in batches.values():
        kind = outputs[members[0]][1]
        ys = keras.ops.stack([keras.ops.stop_gradient(outputs[g][0]) for g in members])
        table = _stacked_output_stats(ys, kind)
        for position, group in enumerate(members):
            found[group] = table[position]
    return found


def attention_stats(
    query,
    key,
    scale: float,
    mask=None,
    causal: bool = False,
    *,
    soft_cap: float | None = None,
    window: int | None = None,
    offset=0,
    repeat_kv: Callable | None = None,
):
    """``[largest logit, mean entropy]`` of multi-head attention's pre-softmax logits.

    Args:
        query: ``(B, T, N, H)``, projected.
        key: ``(B, S, K, H)``, projected, with ``K`` dividing ``N`` (grouped-query
            attention: ``K < N`` key/value heads).
        scale: the factor of ``q . k`` (Keras' ``1 / sqrt(key_dim)``).
        mask: None, or booleans broadcastable to ``(B, T, S)`` (True: attend).
        causal: also mask key positions after each query's (Keras' causal mask,
            aligned at the end when ``S > T``).
        soft_cap: None, or ``c``: the logits are ``c * tanh(l / c)`` (Gemma 2).
        window: None, or ``w``: also mask keys more than ``w - 1`` positions
            from the query, either side (KerasHub's in-layer sliding window).
        offset: the position of the first query in that window (a cache index).
        repeat_kv: ``(key, groups) -> key`` pairing each query head with its key
            head (default :func:`repeat_heads`).

    Returns:
        A float32 vector of 2: the largest logit over the unmasked positions,
        and the attention weights' entropy in nats, averaged over batch,
        heads and queries (a query with no unmasked key counts 0).
    """
    ops = keras.ops
    q = ops.cast(ops.stop_gradient(query), "float32") * float(scale)
    k = ops.cast(ops.stop_gradient(key), "float32")
    heads, key_heads = q.shape[2], k.shape[2]
    if key_heads != heads:
        k = (repeat_kv or repeat_heads)(k, heads // key_heads)
    logits = ops.einsum("btnh,bsnh->bnts", q, k)
    if soft_cap is not None:
        logits = ops.tanh(logits / float(soft_cap)) * float(soft_cap)
    t, s = logits.shape[-2], logits.shape[-1]
    allowed = ops.ones_like(logits, dtype="bool")
    if mask is not None:
        allowed = ops.logical_and(allowed, ops.expand_dims(ops.cast(mask, "bool"), 1))
    if causal:
        rows = ops.expand_dims(ops.arange(t), 1) + (s - t)
        allowed = ops.logical_and(allowed, ops.expand_dims(ops.arange(s), 0) <= rows)
    if window is not None:
        rows = ops.expand_dims(ops.arange(t), 1) + ops.cast(offset, "int32")
        distance = ops.abs(ops.expand_dims(ops.arange(s), 0) - rows)
        allowed = ops.logical_and(allowed, distance <= int(window) - 1)
    largest = ops.max(ops.where(allowed, logits, float("-inf")))
    shifted = ops.where(allowed, logits - ops.max(ops.where(allowed, logits, -1e30), -1, True), 0.0)
    weights = ops.where(allowed, ops.exp(shifted), 0.0)
    total = ops.sum(weights, axis=-1, keepdims=True)
    p = weights / ops.maximum(total, 1e-30)
    entropy = -ops.sum(ops.where(p > 0, p * ops.log(ops.maximum(p, 1e-30)), 0.0), axis=-1)
    return ops.stack([largest, ops.mean(entropy)])


# -- attention families --------------------------------------------------------------------------
class Unreadable(Exception):
    """An attention layer's call the probe cannot read; the message says why."""


def repeat_heads(key, groups: int):
    """Each key/value head ``groups`` times in a row, so query head ``n`` meets key head
    ``n // groups``: ``ops.repeat(key, groups, axis=2)``, as Keras' ``GroupedQueryAttention``
    and Llama's ``call`` repeat it, and as Gemma's ``(K, G)`` reshape of the query pairs them."""
    return keras.ops.repeat(key, groups, axis=2)


def _nothing(layer: keras.layers.Layer) -> None:
    return None


def _keras_hub(*names: str) -> Callable[[keras.layers.Layer], bool]:
    """Matches a layer whose ``_compute_attention`` is that of KerasHub's class named one of
    ``names`` (read off the class, so keras_hub is never imported here): the class itself or
    a subclass keeping its method. A subclass with its own (T5Gemma's) is no member."""

    def matches(layer: keras.layers.Layer) -> bool:
        owner = next(
            (c for c in type(layer).__mro__ if internals.COMPUTE_ATTENTION in vars(c)), None
        )
        return (
            owner is not None
            and owner.__module__.split(".")[0] == "keras_hub"
            and owner.__name__ in names
        )

    return matches


def _hub_scale(layer: keras.layers.Layer, head_dim: int) -> float | None:
    return internals.keras_hub_attention_scale(layer)


def _gemma_scale(layer: keras.layers.Layer, head_dim: int) -> float:
    """``CachedGemmaAttention``'s ``query_normalization``."""
    if layer.query_head_dim_normalize:
        return 1.0 / float(np.sqrt(layer.head_dim))
    return 1.0 / float(np.sqrt(layer.hidden_dim // layer.num_query_heads))


def _switched_window(layer: keras.layers.Layer) -> int | None:
    """Gemma's and Qwen's window: ``sliding_window_size`` where
    ``use_sliding_window_attention``."""
    if not layer.use_sliding_window_attention:
        return None
    if getattr(layer, "use_bidirectional_attention", False):  # Gemma 3's embedding models
        raise Unreadable("its bidirectional sliding window is not read")
    return int(layer.sliding_window_size)


def _sized_window(layer: keras.layers.Layer) -> int | None:
    """Qwen3's window: ``sliding_window_size`` where set."""
    return int(layer.sliding_window_size) if layer.sliding_window_size else None


def _soft_cap(layer: keras.layers.Layer) -> float | None:
    return None if layer.logit_soft_cap is None else float(layer.logit_soft_cap)


@dataclasses.dataclass(frozen=True)
class AttentionFamily:
    """How the probe reads the ``_compute_attention`` call of one family of attention layers.

    Every family's method takes the projected query ``(B, T, N, H)``, key
    ``(B, S, K, H)`` and value first and the mask ``(B, T, S)`` (True, or 1:
    attend) fourth, by position or name.

    Attributes:
        name: the family's name, in warnings.
        matches: whether a layer belongs to the family (the first family that
            matches in :data:`ATTENTION_FAMILIES` reads it).
        scale: ``(layer, H) -> factor`` the layer multiplies ``q . k`` by; None:
            unreadable.
        soft_cap: ``layer -> c`` or None: the layer's logits are ``c * tanh(l / c)``.
        window: ``layer -> w`` or None: the sliding window the method itself
            applies (a window the caller builds into the mask, as Mistral's
            decoder does, needs none).
        causal: the argument of the method asking for a causal mask, if any.
        offset: the argument giving the first query's position in the window.
        repeat_kv: ``(key, groups) -> key`` with one key head per query head,
            where the method gets fewer key heads than query heads.
    """

    name: str
    matches: Callable[[keras.layers.Layer], bool]
    scale: Callable[[keras.layers.Layer, int], float | None]
    soft_cap: Callable[[keras.layers.Layer], float | None] = _nothing
    window: Callable[[keras.layers.Layer], int | None] = _nothing
    causal: str | None = None
    offset: str | None = None
    repeat_kv: Callable = repeat_heads


#: The attention layers ``attention_logits`` measures, one entry per family.
ATTENTION_FAMILIES: tuple[AttentionFamily, ...] = (
    AttentionFamily(
        "keras MultiHeadAttention",
        lambda layer: isinstance(layer, keras.layers.MultiHeadAttention),
        lambda layer, head_dim: 1.0 / float(np.sqrt(layer.key_dim)),
        causal="use_causal_mask",
    ),
    AttentionFamily(
        "keras GroupedQueryAttention",
        lambda layer: isinstance(layer, keras.layers.GroupQueryAttention),
        lambda layer, head_dim: 1.0 / float(np.sqrt(layer.head_dim)),
        causal="use_causal_mask",
    ),
    AttentionFamily(
        "KerasHub scaled dot-product attention",
        _keras_hub(
            "LlamaAttention",
            "CachedMistralAttention",
            "CachedMixtralAttention",
            "Phi3Attention",
            "GPTNeoXAttention",
            "SmolLM3Attention",
        ),
        _hub_scale,
    ),
    AttentionFamily(
        "KerasHub Qwen attention",
        _keras_hub("QwenAttention", "QwenMoeAttention"),
        _hub_scale,
        window=_switched_window,
        offset="cache_update_index",
    ),
    AttentionFamily(
        "KerasHub Qwen3 attention",
        _keras_hub("Qwen3Attention", "Qwen3MoeAttention", "Qwen3_5Attention"),
        _hub_scale,
        window=_sized_window,
        offset="cache_update_index",
    ),
    AttentionFamily(
        "KerasHub Gemma attention",
        _keras_hub("CachedGemmaAttention", "CachedGemma3Attention"),
        _gemma_scale,
        soft_cap=_soft_cap,
        window=_switched_window,
        offset="cache_update_index",
    ),
)


def attention_family(layer: keras.layers.Layer) -> AttentionFamily | None:
    """The first family of :data:`ATTENTION_FAMILIES` that ``layer`` belongs to, if any."""
    return next((f for f in ATTENTION_FAMILIES if f.matches(layer)), None)


def looks_like_attention(layer: keras.layers.Layer) -> bool:
    """An attention layer by its method or its class name, measured or not."""
    return internals.computes_attention(layer) or "attention" in type(layer).__name__.lower()


def read_attention_call(
    family: AttentionFamily, layer: keras.layers.Layer, compute: Callable, args, kwargs
):
    """The :func:`attention_stats` of one ``_compute_attention(*args, **kwargs)`` call.

    Raises:
        Unreadable: where the call is not one the family reads.
    """
    try:
        bound = inspect.signature(compute).bind(*args, **kwargs)
    except TypeError as error:
        raise Unreadable(f"its call does not bind ({error})") from None
    bound.apply_defaults()
    values = list(bound.arguments.values())
    if len(values) < 4:
        raise Unreadable("its method takes fewer than query, key, value and mask")
    query, key, _, mask = values[:4]
    q_shape, k_shape = tuple(query.shape), tuple(key.shape)
    if len(q_shape) != 4 or len(k_shape) != 4:
        raise Unreadable(f"attention over several axes (query {q_shape}, key {k_shape})")
    if q_shape[-1] != k_shape[-1] or not k_shape[2] or q_shape[2] % k_shape[2]:
        raise Unreadable(f"query heads {q_shape} do not pair with key heads {k_shape}")
    scale = family.scale(layer, q_shape[-1])
    if scale is None:
        raise Unreadable("its scale is not readable")
    causal = bool(bound.arguments.get(family.causal, False)) if family.causal else False
    offset = bound.arguments.get(family.offset) if family.offset else None
    return attention_stats(
        query,
        key,
        scale,
        mask,
        causal,
        soft_cap=family.soft_cap(layer),
        window=family.window(layer),
        offset=0 if offset is None else offset,
        repeat_kv=family.repeat_kv,
    )


def logit_stats(logits):
    """``[mean log Z, largest |logit|]`` of logits over their last axis."""
    ops = keras.ops
    z = ops.cast(ops.stop_gradient(logits), "float32")
    return ops.stack([ops.mean(ops.logsumexp(z, axis=-1)), ops.max(ops.abs(z))])


def probability_head(model: keras.layers.Layer) -> str | None:
    """The name of the squashing activation (softmax, sigmoid) of ``model``'s last layer, if any."""
    leaves, _ = leaf_and_composite_layers(model)
    outputs = getattr(model, "outputs", None)
    last = leaves[-1] if leaves else None
    if outputs:  # a functional model: the layer that made the first output
        history = internals.keras_history(outputs[0])
        last = history[0] if history is not None else last
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "") or ""
    return name if name in ("softmax", "sigmoid", "log_softmax") else None


def attention_layers(
    model: keras.layers.Layer,
) -> tuple[list[tuple[keras.layers.Layer, AttentionFamily]], list[keras.layers.Layer]]:
    """The attention layers inside ``model``, each once, in layer order: those of a family
    (with it), and those that look like attention but belong to none (not measured)."""
    leaves, composites = leaf_and_composite_layers(model)
    found = [(layer, attention_family(layer)) for layer in composites]
    found = [(layer, f) for layer, f in found if f and internals.computes_attention(layer)]
    measured = {id(layer) for layer, _ in found}
    unread = []
    for layer in [*composites, *leaves]:
        if id(layer) in measured or not looks_like_attention(layer):
            continue
        inner = internals.flatten_layers(layer, include_self=False, recursive=True)
        if not any(id(sub) in measured for sub in inner):  # not a block around measured ones
            unread.append(layer)
    return found, unread


class ForwardProbe:
    """Routes a model's layer calls and keeps, per logged step, what the forward pass showed.

    Args:
        model: the model whose layers are routed.
        group_of: ``id(variable) -> group index`` for the logged variables.
        groups: how many groups there are.
        collecting: called at each routed call; True when this step records.
        activations: measure each group's output (``activation_stats``).
        attention: measure each attention layer's logits (``attention_logits``).
        logits: measure the model's output logits (``output_logits``).
        loss: keep the step's loss (``detect_spikes``).

    Raises:
        ValueError: with ``logits``, for a model whose last layer outputs
            probabilities (softmax or sigmoid).
    """

    def __init__(
        self,
        model: keras.layers.Layer,
        group_of: dict[int, int],
        groups: int,
        collecting: Callable[[], bool],
        *,
        activations: bool = False,
        attention: bool = False,
        logits: bool = False,
        loss: bool = False,
    ) -> None:
        squashed = probability_head(model) if logits else None
        if squashed:
            raise ValueError(
                f"`output_logits` needs a model that outputs logits; {model.name!r} ends in "
                f"{squashed}, whose probabilities hide them. Build the head without the "
                "activation and train with from_logits=True."
            )
        self._logits_model = model if logits else None
        self._loss_model = model if loss else None
        self.groups = groups
        self._collecting = collecting
        self._routed, _ = leaf_and_composite_layers(model) if activations else ([], [])
        self._group = {}  # id(layer) -> its group, for layers that own logged variables
        for layer in self._routed:
            owned = [group_of[id(v)] for v in layer.trainable_weights if id(v) in group_of]
            if owned:
                self._group[id(layer)] = owned[0]
        self._kind = {id(layer): saturating_kind(layer) for layer in self._routed}
        self.saturating = self._saturating_groups()
        found, unread = attention_layers(model) if attention else ([], [])
        self.attention = [layer for layer, _ in found]
        self._families = [family for _, family in found]
        self._unread: set[int] = set()  # attention layers named in a warning
        if unread:
            self._warn_unread(unread, "no family the probe reads, so no tags")
        self._group_outputs: dict[int, tuple] = {}  # group -> (its output, saturating kind)
        self._attention_stats: dict[int, object] = {}
        self._logit_stats = None
        self._loss = None
        self._current: int | None = None
        self._restore: list[Callable[[], None]] = []

    def _saturating_groups(self) -> tuple[bool, ...]:
        """Per group, whether its output (by the attribution rule, in layer order) saturates."""
        kinds: list[str | None] = [None] * self.groups
        current = None
        for layer in self._routed:
            current = self._group.get(id(layer), current)
            kind = self._kind[id(layer)]
            if current is not None and (id(layer) in self._group or kind is not None):
                kinds[current] = kind
        return tuple(kind is not None for kind in kinds)

    # -- routing ---------------------------------------------------------------------
    def install(self) -> None:
        """Shadow each routed layer's ``call`` (and each attention layer's
        ``_compute_attention``) with an instance attribute, past Keras' tracking."""
        if self._restore:
            return
        for layer in self._routed:
            self._restore.append(self._route(layer, "call", self._observe_output))
        for index, layer in enumerate(self.attention):

            def measured(compute, *args, _index=index, _layer=layer, **kwargs):
                if self._collecting():
                    self._observe_attention(_index, _layer, compute, args, kwargs)
                return compute(*args, **kwargs)

            self._restore.append(internals.route_compute_attention(layer, measured))
        if self._logits_model is not None:
            self._restore.append(self._route(self._logits_model, "call", self._observe_logits))
        if self._loss_model is not None:
            self._restore.append(self._route(self._loss_model, "compute_loss", self._observe_loss))

    def _route(self, owner: keras.layers.Layer, name: str, observe: Callable) -> Callable[[], None]:
        """Routes ``owner.<name>`` (``call``, ``compute_loss``: public methods) so that a
        recording step's result reaches ``observe(owner, result)``; returns the undoing."""
        method = getattr(owner, name)

        def routed(*args, **kwargs):
            result = method(*args, **kwargs)
            if self._collecting():
                observe(owner, result)
            return result

        return shadow(owner, name, routed)

    def uninstall(self) -> None:
        for restore in reversed(self._restore):
            restore()
        self._restore = []
        self._reset()

    def _reset(self) -> None:
        self._group_outputs, self._attention_stats, self._current = {}, {}, None
        self._logit_stats = self._loss = None

    def _observe_loss(self, model: keras.layers.Layer, loss) -> None:
        self._loss = keras.ops.reshape(keras.ops.cast(keras.ops.stop_gradient(loss), "float32"), ())

    def _observe_logits(self, model: keras.layers.Layer, output) -> None:
        y = first_tensor(output)
        if "float" in str(getattr(y, "dtype", "")):
            self._logit_stats = logit_stats(y)

    def _observe_output(self, layer: keras.layers.Layer, output) -> None:
        group = self._group.get(id(layer))
        if group is None:  # parameter-free: part of the group called before it
            group = self._current
        self._current = group
        y = first_tensor(output)
        if group is None or "float" not in str(getattr(y, "dtype", "")):
            return
        self._group_outputs[group] = (y, self._kind[id(layer)])  # reduced in take()

    def _observe_attention(self, index: int, layer, compute: Callable, args: tuple, kwargs: dict):
        if index in self._unread:
            return
        try:
            stats = read_attention_call(self._families[index], layer, compute, args, kwargs)
        except (Unreadable, AttributeError) as reason:  # AttributeError: a family's attribute
            self._unread.add(index)
            self._warn_unread([layer], f"{reason}, so its tags read NaN")
            return
        self._attention_stats[index] = stats

    def _warn_unread(self, layers: list, reason: str) -> None:
        """One warning naming attention layers not measured, and why."""
        names = ", ".join(f"`{layer.path}` ({type(layer).__name__})" for layer in layers)
        warn(
            f"attention_logits does not measure {names}: {reason} (the families it reads: "
            "keras_initzoo.callbacks.capture.forward.ATTENTION_FAMILIES)."
        )

    # -- the step's result -----------------------------------------------------------
    def section_count(self) -> int:
        """How many sections :meth:`take` returns."""
        count = len(ACTIVATION_SECTIONS) if self._routed else 0
        count += len(ATTENTION_SECTIONS) if self.attention else 0
        count += len(LOGIT_SECTIONS) if self._logits_model is not None else 0
        return count + (len(LOSS_SECTIONS) if self._loss_model is not None else 0)

    def take(self) -> list:
        """This step's forward sections, in the row's order (activations, attention,
        output logits; each group, attention layer or 1 long), and a reset.

        A group (or attention layer) no call reached gives NaN.
        """
        sections = []
        if self._routed:
            stats = outputs_stats(self._group_outputs)
            sections += self._table(stats, self.groups, len(ACTIVATION_SECTIONS))
        if self.attention:
            sections += self._table(
                self._attention_stats, len(self.attention), len(ATTENTION_SECTIONS)
            )
        if self._logits_model is not None:
            found = {} if self._logit_stats is None else {0: self._logit_stats}
            sections += self._table(found, 1, len(LOGIT_SECTIONS))
        if self._loss_model is not None:
            found = {} if self._loss is None else {0: keras.ops.reshape(self._loss, (1,))}
            sections += self._table(found, 1, len(LOSS_SECTIONS))
        self._reset()
        return sections

    @staticmethod
    def _table(stats: dict, count: int, width: int) -> list:
        ops = keras.ops
        missing = ops.convert_to_tensor(np.full(width, np.nan, np.float32))
        table = ops.stack([stats.get(i, missing) for i in range(count)], axis=1)
        return [table[i] for i in range(width)]


def saturating_names(groups: Sequence[str], saturating: Sequence[bool]) -> tuple[str, ...]:
    """The names of the groups whose output saturates (those with ``act_saturated``)."""
    return tuple(g for g, s in zip(groups, saturating, strict=True) if s)
