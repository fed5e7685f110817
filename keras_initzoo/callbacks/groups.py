"""Map a model's trainable variables to the layers whose gradient norms are logged.

Backend independent: only Keras layer and variable objects are touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras


@dataclass
class LayerGroup:
    """The trainable variables whose gradients form one ``grad_norm/<name>`` scalar."""

    name: str
    path: tuple[str, ...]
    variables: list = field(default_factory=list)


def _sublayers(model: keras.Model) -> list:
    # ``Model.layers`` lists direct children for Sequential, functional and
    # subclassed models alike (the InputLayer carries no weights anyway).
    return list(model.layers)


def resolve_layer_groups(model: keras.Model) -> list[LayerGroup]:
    """Return one group per real layer that owns trainable variables.

    Nested and functional sub-models are descended into, so their layers appear
    by their own names; a plain (non-Model) layer keeps all of its variables,
    including those of layers it creates internally, as one group. A shared
    layer and a shared variable are counted once (first occurrence wins);
    frozen layers own no trainable variables and so give no group. Variables a
    model creates directly (``self.add_weight`` in a subclassed model) form a
    group named after that model. Names that clash (two sub-models each with a
    ``dense``) are replaced by their '/'-joined paths.
    """
    groups: list[LayerGroup] = []
    seen_layers: set[int] = set()
    seen_vars: set[int] = set()

    def take(variables) -> list:
        fresh = []
        for v in variables:
            if id(v) not in seen_vars:
                seen_vars.add(id(v))
                fresh.append(v)
        return fresh

    def visit(layer, path: tuple[str, ...]) -> None:
        if id(layer) in seen_layers:
            return
        seen_layers.add(id(layer))
        if isinstance(layer, keras.Model):
            for sub in _sublayers(layer):
                visit(sub, path + (sub.name,))
            own = take(layer.trainable_variables)
        else:
            own = take(layer.trainable_variables)
        if own:
            groups.append(LayerGroup(name=layer.name, path=path or (layer.name,), variables=own))

    visit(model, ())
    counts: dict[str, int] = {}
    for g in groups:
        counts[g.name] = counts.get(g.name, 0) + 1
    for g in groups:
        if counts[g.name] > 1:
            g.name = "/".join(g.path)
    return groups
