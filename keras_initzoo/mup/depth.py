"""Depth in kiz.mup: the residual branches of a model, matched to a shallower base's.

A deeper model holds more variables than its base, so they cannot be
matched by position as two widths of one architecture are. Each variable is
placed instead by the residual stream that :func:`kiz.residual_structure`
finds (one probed forward pass): it sits in the branch of some join, or
outside every branch (the embedding, the readout, a final normalization, a
projection shortcut). Outside variables are matched in order; a branch of
the model is matched to the base branch of the same layout (the same layers
holding variables of the same names and ranks) nearest to it in relative
depth, so a transformer's attention branches meet attention branches and
its MLP branches meet MLP branches.

What the papers leave open, and what is chosen here:

* **What ``L`` counts.** CompleteP and depth-muP scale each branch by
  ``L**-alpha`` with ``L`` the number of blocks; a transformer block holds
  two branches (attention, MLP), both scaled by the same ``L**-alpha``
  (nanoGPT-mup's ``completep`` branch does so). Here ``m_L = L / L_base``
  counts the joins of the stream; for blocks of a fixed layout this is the
  ratio of blocks, and no block count need be given.
* **Blocks of more than one layer** (transformer blocks, bottleneck ResNet
  blocks). Depth-muP reports that its rule does not transfer for blocks
  deeper than one layer; CompleteP scales the whole branch output by
  ``L**-alpha`` and gives every hidden weight of the branch the same
  learning-rate factor ``m_L**(alpha-1)``, whatever the branch's inner depth.
  That is what is done here: every variable in a branch is a ``branch``
  variable, the last layer that scales the branch's output carries the
  multiplier. Nothing scales with a branch's inner depth.
* **Projection shortcuts** (a ResNet stage's first block) are outside the
  branches: they keep width factors only; their block's branch is scaled
  like any other.
* **Where the multiplier goes.** Keras layers have no multiplier, and a
  multiplier inserted at an ``Add`` would have to rewrite the user's model
  (and survive saving); so it is carried by the branch's last layer whose
  parameters scale its output: a kernel layer with a linear or ReLU
  activation (positively homogeneous), or a normalization with a scale. The
  reparametrization is exact (see :mod:`keras_initzoo._records`). A branch
  with no such layer, or one whose last kernel layer has another activation,
  is refused with its name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from keras_initzoo._records import DepthRecord
from keras_initzoo.models.residual import Node, trace
from keras_initzoo.models.walk import NORMALIZATION

# the exponent alpha of the branch multiplier L**-alpha, per rule
DEPTH_RULES = {"completep": 1.0, "depth_mup": 0.5}


@dataclass
class Stream:
    """Where each variable of one model sits: in which join's branch, or outside.

    ``branches[j]`` lists the leaf layers of join ``j``'s branch in call
    order, ``carriers[j]`` the one that carries its multiplier (or None),
    ``blocks[j]`` the join's block name; ``branch_of`` maps ``id(variable)``
    to its join.
    """

    model: keras.layers.Layer
    blocks: list[str]
    branches: list[list[keras.layers.Layer]]
    carriers: list[keras.layers.Layer | None]
    refusals: list[str | None]
    branch_of: dict[int, int]

    @property
    def length(self) -> int:
        """``L``: the number of residual branches."""
        return len(self.branches)

    def layout(self, join: int) -> tuple:
        """What a branch must share with its counterpart: layer types, variable names, ranks."""
        return tuple(
            (type(layer).__name__, tuple((v.name, len(v.shape)) for v in layer.weights))
            for layer in self.branches[join]
        )

    def outside(self) -> list:
        """The variables in no branch, in the model's order."""
        return [v for v in self.model.weights if id(v) not in self.branch_of]

    def in_branch(self, join: int) -> list:
        """The variables of join ``join``'s branch, in call order."""
        return [v for layer in self.branches[join] for v in layer.weights]


def _positively_homogeneous(activation: Any) -> bool:
    """Whether ``f(c x) = c f(x)`` for ``c > 0`` (linear, ReLU): measured, not named."""
    if activation is None:
        return True
    values = np.linspace(-3.0, 3.0, 61, dtype="float32")
    once = keras.ops.convert_to_numpy(activation(keras.ops.convert_to_tensor(values)))
    twice = keras.ops.convert_to_numpy(activation(keras.ops.convert_to_tensor(2.0 * values)))
    return bool(np.allclose(twice, 2.0 * once, rtol=1e-5, atol=1e-6))


def _carrier(join, side: list[Node]) -> tuple[keras.layers.Layer | None, str | None]:
    """The layer that carries the branch multiplier, or None and why not."""
    nodes = {node.path: node for node in side if node.kind == "layer"}
    carrier = nodes.get(join.scalable) if join.scalable else None
    if carrier is None:
        return None, "no layer whose parameters scale the branch's output"
    layer = carrier.layer
    if not isinstance(layer, NORMALIZATION) and not _positively_homogeneous(
        getattr(layer, "activation", None)
    ):
        return None, (
            f"its last kernel layer {carrier.path} has a nonlinear activation "
            f"({getattr(layer.activation, '__name__', layer.activation)}), so scaling its "
            "weights does not scale the branch"
        )
    for node in side:
        if node.index > carrier.index and node.kind == "layer":
            activation = getattr(node.layer, "activation", None)
            if node.layer.weights or not _positively_homogeneous(activation):
                return None, f"{node.path} after {carrier.path} does not pass a scale through"
    return layer, None


def stream(model: keras.layers.Layer, data: Any = None) -> Stream:
    """The residual branches of ``model`` and the variables each holds (one probed pass).

    Args:
        model: a built Keras model or layer.
        data: a batch for the probe, or None for a synthetic one.

    Returns:
        A :class:`Stream`.
    """
    found = trace(model, data)
    nodes = found.nodes

    def ancestry(index: int) -> set[int]:
        return {index} | set(nodes[index].ancestors)

    blocks, branches, carriers, refusals = [], [], [], []
    branch_of: dict[int, int] = {}
    for number, join in enumerate(found.joins):
        side = [nodes[i] for i in sorted(ancestry(join.branch_end) - ancestry(join.skip))]
        layers = list({id(n.layer): n.layer for n in side if n.kind == "layer"}.values())
        carrier, refusal = _carrier(join, side)
        blocks.append(join.block)
        branches.append(layers)
        carriers.append(carrier)
        refusals.append(refusal)
        for layer in layers:
            for variable in layer.weights:
                branch_of.setdefault(id(variable), number)  # an inner branch keeps its own
    return Stream(model, blocks, branches, carriers, refusals, branch_of)


def _base_join(mine: Stream, theirs: Stream, join: int, name: str) -> int:
    """The join of ``theirs`` with ``join``'s layout, nearest in relative depth."""
    layout = mine.layout(join)
    same = [k for k in range(theirs.length) if theirs.layout(k) == layout]
    if not same:
        raise ValueError(
            f"`{name}` does not match `model`: the branch of {mine.blocks[join]} (layers "
            f"{[layer.name for layer in mine.branches[join]]}) has no branch of the same layout "
            f"in `{name}`. Pass the same architecture with fewer (or more) blocks."
        )
    place = (join + 0.5) / mine.length
    return min(same, key=lambda k: abs((k + 0.5) / theirs.length - place))


def counterparts(
    model: keras.layers.Layer, other: keras.layers.Layer, name: str, data: Any = None
) -> tuple[list, Stream, Stream]:
    """``other``'s variable for each of ``model.weights``, matched by the residual stream.

    Args:
        model: the built model being parametrized.
        other: the same architecture at another depth (and width).
        name: what ``other`` is called in errors (``"base"`` or ``"delta"``).
        data: a batch for the probe, or None for a synthetic one.

    Returns:
        ``(variables, model's stream, other's stream)``: ``variables[i]`` is
        the counterpart of ``model.weights[i]``.
    """
    mine, theirs = stream(model, data), stream(other, data)
    if not mine.length or not theirs.length:
        which = "`model`" if not mine.length else f"`{name}`"
        raise ValueError(
            f"`{name}` does not match `model`: it has {len(other.weights)} variables, the model "
            f"{len(model.weights)}, and {which} has no residual branch to tell depth by. Pass "
            "another instance of the same architecture (another width or depth)."
        )
    outside_mine, outside_theirs = mine.outside(), theirs.outside()
    if len(outside_mine) != len(outside_theirs):
        raise ValueError(
            f"`{name}` does not match `model` outside the residual branches: "
            f"{len(outside_theirs)} variables there against the model's {len(outside_mine)}."
        )
    matched = {id(a): b for a, b in zip(outside_mine, outside_theirs, strict=True)}
    for join in range(mine.length):
        theirs_join = _base_join(mine, theirs, join, name)
        pairs = zip(mine.in_branch(join), theirs.in_branch(theirs_join), strict=True)
        for a, b in pairs:
            matched.setdefault(id(a), b)
    result = []
    for index, variable in enumerate(model.weights):
        counterpart = matched[id(variable)]
        if variable.name != counterpart.name or len(variable.shape) != len(counterpart.shape):
            raise ValueError(
                f"`{name}` does not match `model` at variable #{index}: {variable.path} "
                f"{tuple(variable.shape)} in the model, {counterpart.path} "
                f"{tuple(counterpart.shape)} in `{name}`."
            )
        result.append(counterpart)
    return result, mine, theirs


def nonzero_mean_branches(mine: Stream) -> list[str]:
    """The blocks whose branch ends in an activation (ReLU): outputs of nonzero mean.

    A branch whose carrier is linear (or a normalization, whose offset starts
    at zero) averages to zero over its random init, and ``L`` such branches
    add like a random walk; after ReLU every unit has a positive mean, and
    those means add coherently across blocks.

    Args:
        mine: the model's residual stream.

    Returns:
        The block names, in the stream's order (each once).
    """
    found = []
    for block, carrier in zip(mine.blocks, mine.carriers, strict=True):
        activation = getattr(carrier, "activation", None)
        if activation is None or getattr(activation, "__name__", "") == "linear":
            continue
        if block not in found:
            found.append(block)
    return found


def depth_records(mine: Stream, base_length: int, alpha: float) -> dict[int, DepthRecord]:
    """Each branch variable's :class:`DepthRecord` by id, ``m_L = L / L_base``.

    Args:
        mine: the model's residual stream.
        base_length: the number of residual branches of the base model.
        alpha: the rule's exponent (1 for CompleteP, 1/2 for depth-muP).

    Returns:
        Each trainable branch variable's record by ``id(variable)``; empty
        when the depths are equal.

    Raises:
        ValueError: when a branch has no layer to carry its multiplier (see
            the module).
    """
    depth_mult = mine.length / base_length
    if math.isclose(depth_mult, 1.0):
        return {}
    records: dict[int, DepthRecord] = {}
    for join in range(mine.length):
        carrier = mine.carriers[join]
        if carrier is None:
            raise ValueError(
                f"the residual branch of {mine.blocks[join]} cannot carry its depth multiplier: "
                f"{mine.refusals[join]}. End the branch with a Dense (or EinsumDense, Conv) "
                "layer without activation (or with ReLU), or pass depth=None."
            )
        carried = {id(v) for v in carrier.weights}
        for variable in mine.in_branch(join):
            if mine.branch_of.get(id(variable)) != join or not variable.trainable:
                continue
            role = "carrier" if id(variable) in carried else "branch"
            records[id(variable)] = DepthRecord(mine.blocks[join], role, depth_mult, alpha)
    return records
