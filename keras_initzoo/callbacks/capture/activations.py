"""Each group's output statistics, computed inside the real train step (``activation_stats``).

Every leaf layer's ``call`` is routed through :class:`ActivationProbe` while a
fit logs activations. In a step that records (the recording variant of the
traced train function on TensorFlow and JAX; a recorded step on PyTorch) the
probe reduces the layer's output, on the device, to four numbers:

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
is measured after the tanh. The statistics are of the batch the step trains
on, in training mode, with the gradient stopped (they cost no backward work).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

from keras_initzoo.callbacks.rows import ACTIVATION_SECTIONS
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


class ActivationProbe:
    """Routes the leaf layers' calls of a model and keeps the last output statistics per group.

    Args:
        model: the model whose layers are routed.
        group_of: ``id(variable) -> group index`` for the logged variables.
        groups: how many groups there are.
        collecting: called at each layer call; True when this step records.
    """

    def __init__(
        self,
        model: keras.layers.Layer,
        group_of: dict[int, int],
        groups: int,
        collecting: Callable[[], bool],
    ) -> None:
        self.groups = groups
        self._collecting = collecting
        self._routed, _ = leaf_and_composite_layers(model)
        self._group = {}  # id(layer) -> its group, for layers that own logged variables
        for layer in self._routed:
            owned = [group_of[id(v)] for v in layer.trainable_weights if id(v) in group_of]
            if owned:
                self._group[id(layer)] = owned[0]
        self._kind = {id(layer): saturating_kind(layer) for layer in self._routed}
        self.saturating = self._saturating_groups()
        self._stats: dict[int, object] = {}
        self._current: int | None = None
        self._shadowed: list = []

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
        """Shadow each leaf layer's ``call`` (an instance attribute, past Keras' tracking)."""
        if self._shadowed:
            return
        for layer in self._routed:
            own = layer.__dict__.get("call")
            call = layer.call

            def routed(*args, _layer=layer, _call=call, **kwargs):
                output = _call(*args, **kwargs)
                if self._collecting():
                    self._observe(_layer, output)
                return output

            object.__setattr__(layer, "call", routed)
            self._shadowed.append((layer, own))

    def uninstall(self) -> None:
        for layer, own in self._shadowed:
            if own is None:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", own)
        self._shadowed = []
        self._stats, self._current = {}, None

    def _observe(self, layer: keras.layers.Layer, output) -> None:
        group = self._group.get(id(layer))
        if group is None:  # parameter-free: part of the group called before it
            group = self._current
        self._current = group
        y = first_tensor(output)
        if group is None or not hasattr(y, "shape") or not hasattr(y, "dtype"):
            return
        if "float" not in str(getattr(y, "dtype", "")):
            return
        self._stats[group] = output_stats(y, self._kind[id(layer)])

    # -- the step's result -----------------------------------------------------------
    def take(self) -> list:
        """The four section vectors (``ACTIVATION_SECTIONS``, each ``groups`` long) of this
        step, and a reset.

        A group no layer call reached gives NaN.
        """
        ops = keras.ops
        missing = ops.convert_to_tensor(np.full(4, np.nan, np.float32))
        per_group = [self._stats.get(g, missing) for g in range(self.groups)]
        self._stats, self._current = {}, None
        table = ops.stack(per_group, axis=1)  # (4, groups)
        return [table[i] for i in range(len(ACTIVATION_SECTIONS))]


def saturating_names(groups: Sequence[str], saturating: Sequence[bool]) -> tuple[str, ...]:
    """The names of the groups whose output saturates (those with ``act_saturated``)."""
    return tuple(g for g, s in zip(groups, saturating, strict=True) if s)
