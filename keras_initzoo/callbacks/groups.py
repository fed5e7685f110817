"""Which trainable variables form which logged group, in forward order.

Backend independent: only Keras layer and variable objects are touched.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import keras

from keras_initzoo import _keras_internals as internals

GroupBy = str | re.Pattern | Callable[[str], str]

# A repeated block in a flat layer name: MobileNetV2's block_10_expand,
# EfficientNet's block2b_expand_conv, ResNet's conv2_block1_1_conv.
_BLOCK_IN_NAME = re.compile(r"^(.*?block_?\d+[a-z]?)(?:_|$)")


@dataclass
class LayerGroup:
    """The trainable variables whose gradients form one ``grad_norm/<name>`` scalar."""

    name: str
    variables: list = field(default_factory=list)


def check_group_by(group_by: object) -> GroupBy:
    """Returns ``group_by`` if it is "layer", "block", a regex or a callable."""
    if group_by in ("layer", "block") or callable(group_by):
        return group_by
    if isinstance(group_by, re.Pattern):
        return group_by
    if isinstance(group_by, str):
        near = difflib.get_close_matches(group_by.lower(), ("layer", "block"), n=1, cutoff=0.7)
        if near and re.fullmatch(r"\w+", group_by):
            # a bare word next to a mode is a typo far more often than a regex
            raise ValueError(
                f"`group_by` must be 'layer', 'block', a regular expression or a callable; "
                f"received group_by={group_by!r}. Did you mean {near[0]!r}? (For a regex "
                f"that is this word, pass re.compile({group_by!r}).)"
            )
        try:
            return re.compile(group_by)
        except re.error as error:
            raise ValueError(
                f"`group_by` must be 'layer', 'block', a regular expression or a callable; "
                f"received group_by={group_by!r}, which is not a valid regex ({error})."
            ) from None
    raise ValueError(
        "`group_by` must be 'layer', 'block', a regular expression or a callable from "
        f"layer path to group name; received group_by={group_by!r}."
    )


def block_of(path: str) -> str:
    """The block a layer path names, read from the path alone (no model at hand).

    ``transformer_layer_3/self_attention/query`` -> ``transformer_layer_3``;
    ``block_10_expand`` -> ``block_10``; ``conv2_block1_1_conv`` -> ``conv2_block1``.
    :func:`resolve_layer_groups` refines this with the model's structure.
    """
    parts = path.split("/")
    if len(parts) > 1:
        return parts[0]
    return _flat_block(path)


def _flat_block(name: str) -> str:
    match = _BLOCK_IN_NAME.match(name)
    return match.group(1) if match else name


def _snake_case(name: str) -> str:
    """Keras' auto-name prefix of a class: ``TransformerBlock`` -> ``transformer_block``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _is_auto_named(layer: keras.layers.Layer) -> bool:
    """Whether Keras may have named ``layer``: its class in snake case, maybe ``_1``, ``_2``...

    Keras never numbers a name ``_0``, so ``block_0`` is the user's own.
    """
    prefix = re.escape(_snake_case(type(layer).__name__))
    return re.fullmatch(rf"{prefix}(_[1-9]\d*)?", layer.name) is not None


def _children(layer: keras.layers.Layer) -> list:
    return internals.flatten_layers(layer, include_self=False, recursive=False)


class _Blocks:
    """The block rule of ``group_by="block"``, on one model's layer tree.

    A *block* is a layer holding weighted sublayers whose structure (its class
    and, recursively, its weighted sublayers' classes) a sibling repeats: the
    outermost level where siblings repeat one another. A layer holding
    sublayers that is no block is looked into when blocks sit somewhere inside
    it (a wrapped backbone), else it is one group; a layer without sublayers
    is a block by its flat name (``block_3_expand`` -> ``block_3``) or its own
    group. Auto-named layers take their index among their parent's sublayers
    of the same class, numbered as Keras numbers a fresh process's layers.
    """

    def __init__(self, model: keras.layers.Layer) -> None:
        self.model = model
        self._signatures: dict[int, tuple] = {}
        self._inside: dict[int, bool] = {}
        self._names: dict[int, str] = {}

    def signature(self, layer) -> tuple:
        key = id(layer)
        if key not in self._signatures:
            self._signatures[key] = (
                type(layer).__qualname__,
                tuple(self.signature(c) for c in _children(layer) if c.trainable_variables),
            )
        return self._signatures[key]

    @staticmethod
    def holds_sublayers(layer) -> bool:
        return any(c.trainable_variables for c in _children(layer))

    def is_block(self, layer, parent) -> bool:
        if not self.holds_sublayers(layer):
            return False
        mine = self.signature(layer)
        return sum(self.signature(c) == mine for c in _children(parent) if c is not layer) > 0

    def has_blocks_inside(self, layer) -> bool:
        key = id(layer)
        if key not in self._inside:
            self._inside[key] = any(
                self.is_block(child, layer)
                or (self.holds_sublayers(child) and self.has_blocks_inside(child))
                or (not self.holds_sublayers(child) and _flat_block(child.name) != child.name)
                for child in _children(layer)
            )
        return self._inside[key]

    def name(self, layer, parent) -> str:
        """``layer``'s name in a group path: its own, or its index if Keras chose it."""
        if id(layer) in self._names:
            return self._names[id(layer)]
        prefix = _snake_case(type(layer).__name__)
        same_prefix = [c for c in _children(parent) if _snake_case(type(c).__name__) == prefix]
        for index, sibling in enumerate(same_prefix):
            name = sibling.name
            if _is_auto_named(sibling):  # a numbered name is never an explicit one
                name = prefix if index == 0 else f"{prefix}_{index}"
            self._names.setdefault(id(sibling), name)
        return self._names[id(layer)]

    def group(self, chain: tuple) -> str:
        """The group of the variables the last layer of ``chain`` (root first) owns."""
        if len(chain) == 1:  # the model's own variables
            model = self.model
            return _snake_case(type(model).__name__) if _is_auto_named(model) else model.name
        names = []
        for parent, layer in zip(chain[:-1], chain[1:], strict=True):
            names.append(self.name(layer, parent))
            if self.is_block(layer, parent):
                break
            if not self.holds_sublayers(layer):
                names[-1] = _flat_block(names[-1])
                break
            if not self.has_blocks_inside(layer):
                break
        return "/".join(names)


def _group_name(path: str, group_by: GroupBy) -> str:
    if group_by == "layer":
        return path
    if isinstance(group_by, re.Pattern):
        match = group_by.search(path)
        if match is None:
            return path
        return match.group(1) if match.groups() and match.group(1) else match.group(0)
    name = group_by(path)
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"`group_by` returned {name!r} for the layer {path!r}; it must return a "
            "non-empty group name."
        )
    return name


def _owners(model: keras.layers.Layer) -> list[tuple[tuple, list]]:
    """``(chain, trainable variables it owns itself)`` per layer, depth first, in order.

    ``chain`` runs from ``model`` down to the layer. A layer's own variables are
    those not owned by any of its sublayers; each shared layer and variable
    counts once, where it first appears.
    """
    found: list[tuple[tuple, list]] = []
    seen_layers: set[int] = set()
    seen_variables: set[int] = set()

    def visit(chain: tuple) -> None:
        layer = chain[-1]
        if id(layer) in seen_layers:
            return
        seen_layers.add(id(layer))
        children = _children(layer)
        for child in children:
            visit((*chain, child))
        inner = {id(v) for child in children for v in child.trainable_variables}
        own = [
            v
            for v in layer.trainable_variables
            if id(v) not in inner and id(v) not in seen_variables
        ]
        seen_variables.update(id(v) for v in own)
        if own:
            found.append((chain, own))

    visit((model,))
    return found


def _path(chain: tuple) -> str:
    """A layer's path relative to the model (``block_3/mlp/dense_1``), or the model's name."""
    return "/".join(layer.name for layer in chain[1:]) or chain[0].name


def resolve_layer_groups(model: keras.Model, group_by: GroupBy = "layer") -> list[LayerGroup]:
    """One group per layer that owns trainable variables, or per ``group_by`` name.

    Groups come in forward order: sublayers before the layer that holds them,
    in the order the model lists them (a functional model's topological order).
    Frozen layers own no trainable variables and give no group. Variables a
    model creates itself (``add_weight`` in a subclassed model) form a group
    named after the model.

    ``group_by="block"``: a block is a layer holding weighted sublayers whose
    structure (class and, recursively, its weighted sublayers' classes) one of
    its siblings repeats, taken at the outermost level where siblings repeat;
    a layer without sublayers is a block by its flat name (``block_3_expand``
    -> ``block_3``, ``conv2_block1_1_conv`` -> ``conv2_block1``). A wrapper that
    is no block itself (a backbone inside a bigger model) is looked into when
    blocks sit inside it, else it is one group. Groups are named by their
    path, with each auto-named layer numbered by its place among its parent's
    sublayers of the same class, as a fresh process names them, so the names
    do not change between builds:

    >>> inputs = keras.Input((4,))
    >>> x = inputs
    >>> for _ in range(2):
    ...     x = keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(4)])(x)
    >>> backbone = keras.Model(inputs, x, name="backbone")
    >>> model = keras.Sequential([backbone, keras.layers.Dense(1, name="head")])
    >>> [g.name for g in resolve_layer_groups(model, "block")]
    ['backbone/sequential', 'backbone/sequential_1', 'head']
    """
    group_by = check_group_by(group_by)
    blocks = _Blocks(model) if group_by == "block" else None
    groups: dict[str, LayerGroup] = {}
    for chain, variables in _owners(model):
        name = blocks.group(chain) if blocks else _group_name(_path(chain), group_by)
        groups.setdefault(name, LayerGroup(name)).variables.extend(variables)
    return list(groups.values())
