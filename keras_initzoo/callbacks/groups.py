"""Which trainable variables form which logged group, in forward order.

Backend independent: only Keras layer and variable objects are touched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import keras

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
    """The repeated block a layer path belongs to, or the path itself.

    ``transformer_layer_3/self_attention/query`` -> ``transformer_layer_3``;
    ``block_10_expand`` -> ``block_10``; ``conv2_block1_1_conv`` -> ``conv2_block1``.
    """
    parts = path.split("/")
    if len(parts) > 1:
        return parts[0]
    match = _BLOCK_IN_NAME.match(path)
    return match.group(1) if match else path


def _group_name(path: str, group_by: GroupBy) -> str:
    if group_by == "layer":
        return path
    if group_by == "block":
        return block_of(path)
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


def _owners(model: keras.layers.Layer) -> list[tuple[str, list]]:
    """``(path, trainable variables it owns itself)`` per layer, depth first, in order.

    A layer's own variables are those not owned by any of its sublayers; each
    shared layer and variable counts once, where it first appears. Paths are
    relative to ``model`` (``block_3/mlp/dense_1``).
    """
    found: list[tuple[str, list]] = []
    seen_layers: set[int] = set()
    seen_variables: set[int] = set()

    def visit(layer, path: str) -> None:
        if id(layer) in seen_layers:
            return
        seen_layers.add(id(layer))
        children = list(layer._flatten_layers(include_self=False, recursive=False))
        for child in children:
            visit(child, f"{path}/{child.name}" if path else child.name)
        inner = {id(v) for child in children for v in child.trainable_variables}
        own = [
            v
            for v in layer.trainable_variables
            if id(v) not in inner and id(v) not in seen_variables
        ]
        seen_variables.update(id(v) for v in own)
        if own:
            found.append((path or layer.name, own))

    visit(model, "")
    return found


def resolve_layer_groups(model: keras.Model, group_by: GroupBy = "layer") -> list[LayerGroup]:
    """One group per layer that owns trainable variables, or per ``group_by`` name.

    Groups come in forward order: sublayers before the layer that holds them,
    in the order the model lists them (a functional model's topological order).
    Frozen layers own no trainable variables and give no group. Variables a
    model creates itself (``add_weight`` in a subclassed model) form a group
    named after the model.
    """
    groups: dict[str, LayerGroup] = {}
    for path, variables in _owners(model):
        name = _group_name(path, check_group_by(group_by))
        groups.setdefault(name, LayerGroup(name)).variables.extend(variables)
    return list(groups.values())
