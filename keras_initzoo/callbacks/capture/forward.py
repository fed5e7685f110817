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

**Attention logits** (``attention_logits``). For each
``keras.layers.MultiHeadAttention`` (KerasHub's ``CachedMultiHeadAttention``
and other subclasses too), the projected query and key its
``_compute_attention`` receives give the pre-softmax logits
``q . k / sqrt(key_dim)``, under the layer's mask (and causal mask): the
largest (``attn_logit_max/<layer>``) and the entropy of the attention weights
in nats, averaged over batch, heads and queries (``attn_entropy/<layer>``).
Keras' fused attention never forms the logits, so the probe forms them once
more on logged steps: one extra ``B x N x T x S x key_dim`` product per layer.

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

from collections.abc import Callable, Sequence

import keras
import numpy as np

from keras_initzoo import _keras_internals as internals
from keras_initzoo._shadowing import shadow
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


def output_stats(y, kind: str | None):
    """``[mean(y**2), mean(y), dead fraction, saturated fraction]`` of one layer output.

    The saturated fraction is NaN where ``kind`` is None (nothing to saturate).
    """
    ops = keras.ops
    y = ops.cast(ops.stop_gradient(y), "float32")
    units = ops.reshape(y, (-1, y.shape[-1])) if len(y.shape) > 1 else ops.reshape(y, (-1, 1))
    dead = ops.mean(ops.cast(ops.all(ops.equal(units, 0.0), axis=0), "float32"))
    if kind == "symmetric":
        saturated = ops.mean(ops.cast(ops.abs(y) > 1.0 - SATURATION_MARGIN, "float32"))
    elif kind == "unit":
        flat = ops.logical_or(y < SATURATION_MARGIN, y > 1.0 - SATURATION_MARGIN)
        saturated = ops.mean(ops.cast(flat, "float32"))
    else:
        saturated = ops.convert_to_tensor(float("nan"), "float32")
    return ops.stack([ops.mean(ops.square(y)), ops.mean(y), dead, saturated])


def attention_stats(query, key, key_dim: int, mask=None, causal: bool = False):
    """``[largest logit, mean entropy]`` of multi-head attention's pre-softmax logits.

    Args:
        query: ``(B, T, N, H)``, projected.
        key: ``(B, S, N, H)``, projected.
        key_dim: ``H``, whose root scales the logits (Keras' ``1 / sqrt(key_dim)``).
        mask: None, or booleans broadcastable to ``(B, T, S)`` (True: attend).
        causal: also mask key positions after each query's (Keras' causal mask,
            aligned at the end when ``S > T``).

    Returns:
        A float32 vector of 2: the largest logit over the unmasked positions,
        and the attention weights' entropy in nats, averaged over batch,
        heads and queries (a query with no unmasked key counts 0).
    """
    ops = keras.ops
    q = ops.cast(ops.stop_gradient(query), "float32") * (1.0 / float(np.sqrt(key_dim)))
    k = ops.cast(ops.stop_gradient(key), "float32")
    logits = ops.einsum("btnh,bsnh->bnts", q, k)
    t, s = logits.shape[-2], logits.shape[-1]
    allowed = ops.ones_like(logits, dtype="bool")
    if mask is not None:
        allowed = ops.logical_and(allowed, ops.expand_dims(ops.cast(mask, "bool"), 1))
    if causal:
        rows = ops.expand_dims(ops.arange(t), 1) + (s - t)
        allowed = ops.logical_and(allowed, ops.expand_dims(ops.arange(s), 0) <= rows)
    largest = ops.max(ops.where(allowed, logits, float("-inf")))
    shifted = ops.where(allowed, logits - ops.max(ops.where(allowed, logits, -1e30), -1, True), 0.0)
    weights = ops.where(allowed, ops.exp(shifted), 0.0)
    total = ops.sum(weights, axis=-1, keepdims=True)
    p = weights / ops.maximum(total, 1e-30)
    entropy = -ops.sum(ops.where(p > 0, p * ops.log(ops.maximum(p, 1e-30)), 0.0), axis=-1)
    return ops.stack([largest, ops.mean(entropy)])


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


def attention_layers(model: keras.layers.Layer) -> list[keras.layers.MultiHeadAttention]:
    """Every ``MultiHeadAttention`` inside ``model`` (subclasses too), each once, in layer order."""
    _, composites = leaf_and_composite_layers(model)
    return [layer for layer in composites if isinstance(layer, keras.layers.MultiHeadAttention)]


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
        self.attention = attention_layers(model) if attention else []
        self._output_stats: dict[int, object] = {}
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

            def measured(compute, query, key, value, *args, _index=index, _layer=layer, **kw):
                if self._collecting():
                    self._observe_attention(_index, _layer, query, key, args, kw)
                return compute(query, key, value, *args, **kw)

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
        self._output_stats, self._attention_stats, self._current = {}, {}, None
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
        self._output_stats[group] = output_stats(y, self._kind[id(layer)])

    def _observe_attention(self, index: int, layer, query, key, args: tuple, kwargs: dict):
        mask = kwargs.get("attention_mask", args[0] if args else None)
        causal = bool(kwargs.get("use_causal_mask", args[3] if len(args) > 3 else False))
        if len(query.shape) != 4 or len(key.shape) != 4:
            return  # attention over several axes: not measured
        self._attention_stats[index] = attention_stats(query, key, layer.key_dim, mask, causal)

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
            sections += self._table(self._output_stats, self.groups, len(ACTIVATION_SECTIONS))
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
