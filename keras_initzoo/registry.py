"""The ``zoo_*`` aliases: registration with Keras, lookup and the scheme table.

Nothing here lists a scheme: every row comes from the ``@scheme`` decorator on
the scheme's class (see :mod:`keras_initzoo.initializers.base`).
"""

from __future__ import annotations

import difflib
from typing import Any

import keras
import numpy as np

from keras_initzoo import initializers as _family_modules  # noqa: F401  (defines the rows)
from keras_initzoo.initializers.base import PEER_LIBRARIES, SCHEMES, InitializerInfo, ZooInitializer
from keras_initzoo.initializers.constant import Constant

PACKAGE = "keras_initzoo"

# Lookups derived from SCHEMES by register(), which importing the package calls.
ALIASES: dict[str, InitializerInfo] = {}
CLASSES: dict[str, type[ZooInitializer]] = {}
# "he_normal", "HeNormal" and "kaiming_normal_" all lead to zoo_he: the first
# alias of the first class a peer name belongs to.
_PEER_NAMES: dict[str, str] = {}


def _peer_key(name: str) -> str:
    return name.lower().replace("_", "")


def register() -> None:
    """Registers every scheme's class and aliases with Keras; idempotent.

    Importing the package calls it, so you need not unless you define a scheme
    of your own: decorate its class with
    :func:`keras_initzoo.initializers.base.scheme`, then call ``register()``
    once the class is defined. It takes no arguments and returns None; what it
    does:

    * each class is registered with
      ``keras.saving.register_keras_serializable(package="keras_initzoo")``, so
      a saved model names it ``"keras_initzoo>HeNormal"`` and
      ``keras.saving.load_model`` finds it without ``custom_objects``;
    * each ``zoo_*`` alias goes into ``keras.saving.get_custom_objects()``, so
      ``keras.initializers.get("zoo_he")`` and any layer argument that takes
      an initializer accept it. An alias without a preset maps to its class;
      one with a preset (``zoo_gelu``) to its :class:`InitializerInfo` row,
      whose ``from_config`` Keras calls when it builds the alias by name;
    * :func:`get` and :func:`list_initializers` see the same aliases, and
      :func:`get` suggests ``zoo_he`` for a peer library's ``"he_normal"``.

    A scheme of your own, for example::

        from keras_initzoo.initializers.base import scheme

        @scheme("zoo_half_he", distribution="truncated normal", variance="1/fan_in",
                activations="relu, for residual branches", reference="my notes")
        class HalfHe(kiz.VarianceScaling):
            def __init__(self, seed=None):
                super().__init__(scale=1.0, seed=seed)

        kiz.register()
        keras.layers.Dense(64, kernel_initializer="zoo_half_he")

    Examples:
        >>> register()  # again: nothing changes
        >>> keras.initializers.get("zoo_he")
        HeNormal(negative_slope=0.0, mode='fan_in', seed=None, ...)
        >>> keras.initializers.get("zoo_gelu").activation
        'gelu'
        >>> keras.saving.get_registered_name(type(get("zoo_he")))
        'keras_initzoo>HeNormal'
    """
    ALIASES.clear()
    ALIASES.update((info.alias, info) for info in SCHEMES)
    CLASSES.clear()
    CLASSES.update((info.class_name, info.cls) for info in SCHEMES)
    _PEER_NAMES.clear()
    for info in SCHEMES:
        for name in info.peers.values():
            _PEER_NAMES.setdefault(_peer_key(name), info.alias)
    for cls in CLASSES.values():
        keras.saving.register_keras_serializable(package=PACKAGE)(cls)
    keras.saving.get_custom_objects().update(
        {alias: info if info.preset else info.cls for alias, info in ALIASES.items()}
    )


def list_initializers() -> list[InitializerInfo]:
    """One record per alias: alias, class, distribution, variance, activations, reference.

    Examples:
        >>> [info.alias for info in list_initializers()][:3]
        ['zoo_constant', 'zoo_zeros', 'zoo_ones']
    """
    return list(SCHEMES)


def _unknown(identifier: str) -> ValueError:
    names = [*ALIASES, *CLASSES]
    close = difflib.get_close_matches(identifier, names, n=3, cutoff=0.5)
    peer = _PEER_NAMES.get(_peer_key(identifier))
    if peer is not None:  # a peer library's name: its zoo alias comes first
        close = [peer, *(name for name in close if name != peer)][:3]
    hint = f" Did you mean {', '.join(repr(name) for name in close)}?" if close else ""
    return ValueError(
        f"Unknown initializer {identifier!r}.{hint} "
        f"Known aliases: {', '.join(ALIASES)} (see keras_initzoo.list_initializers())."
    )


def _lookup(name: str) -> InitializerInfo | type[ZooInitializer]:
    found = ALIASES.get(name) or CLASSES.get(name)
    if found is None:
        raise _unknown(name)
    return found


def get(identifier: Any) -> keras.initializers.Initializer | None:
    """Returns the initializer an alias, class name, config dict or instance names.

    A config dict takes the form ``{"class_name": ..., "config": {...}}`` that
    ``keras.initializers.serialize`` writes; its ``class_name`` may also be the
    registered name ``"keras_initzoo>HeNormal"``. Only keras_initzoo classes are
    built, so a config never runs other code. ``None`` gives ``None`` and any
    ``keras.initializers.Initializer`` instance is returned as it is, as in
    ``keras.initializers.get``; an array or tensor gives a :class:`Constant`
    of it (Keras gives a function, which cannot be saved).

    Args:
        identifier: a ``zoo_*`` alias or a keras_initzoo class name (a new
            instance with its defaults, or the alias' preset), a keras_initzoo
            class, a config dict, an array or tensor, an initializer instance,
            or None.

    Returns:
        A ``keras.initializers.Initializer``, or None for None.

    Raises:
        ValueError: for an unknown name (naming the closest aliases) or an
            identifier of another type.

    Examples:
        >>> get("zoo_kaiming")
        HeNormal(negative_slope=0.0, mode='fan_in', seed=None, ...)
        >>> get({"class_name": "SimpleUniform", "config": {"limit": 0.05}}).limit
        0.05
        >>> get(None) is None
        True
    """
    if identifier is None or isinstance(identifier, keras.initializers.Initializer):
        return identifier
    if isinstance(identifier, str):
        found = _lookup(identifier)
        return found.make() if isinstance(found, InitializerInfo) else found()
    if isinstance(identifier, type) and issubclass(identifier, ZooInitializer):
        return identifier()
    if isinstance(identifier, np.ndarray) or keras.ops.is_tensor(identifier):
        return Constant(identifier)
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        config = identifier.get("config", {})
        if not isinstance(name, str):
            raise ValueError(
                "A config dict must have a string 'class_name'; "
                f"received identifier={identifier!r}."
            )
        return _lookup(name.removeprefix(f"{PACKAGE}>")).from_config(config)
    raise ValueError(
        "`identifier` must be None, a zoo alias, a class name, a config dict, an array or a "
        f"keras.initializers.Initializer; received {identifier!r} of type "
        f"{type(identifier).__name__}."
    )


def markdown_table() -> str:
    """The README's scheme table, generated from :func:`list_initializers`."""
    lines = [
        "| alias | class | draws | variance | suits | reference |",
        "|---|---|---|---|---|---|",
    ]
    for info in SCHEMES:
        lines.append(
            f"| `{info.alias}` | `{info.class_name}` | {info.distribution} | {info.variance} "
            f"| {info.activations} | {info.reference} |"
        )
    return "\n".join(lines)


# What the zoo has beside its schemes, with the peers' nearest equivalent.
TOOL_PEERS = (
    ("`kiz.calculate_gain` (PyTorch's table)", {"pytorch": "calculate_gain"}),
    ("`kiz.gain`: exact gain of any activation", {}),
    ("`batch_axes` on every fan-scaled class", {"jax": "variance_scaling"}),
    ("`kiz.depthwise_axes`, `kiz.conv_transpose_axes`", {}),
)


def comparison_table() -> str:
    """The README's table of which library has which scheme, from each row's ``peers``.

    One line per scheme (its first alias), then the tools of :data:`TOOL_PEERS`;
    a dash where a library lacks it.
    """
    header = ["keras_initzoo", "Keras", "PyTorch (`torch.nn.init`)", "JAX (`jax.nn.initializers`)"]
    rows: list[tuple[str, dict]] = []
    seen: set = set()
    for info in SCHEMES:
        key = (info.cls, tuple(sorted(info.preset.items())))
        if key not in seen:
            seen.add(key)
            rows.append((f"`{info.alias}`", info.peers))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, peers in [*rows, *TOOL_PEERS]:
        cells = [f"`{peers[lib]}`" if lib in peers else "–" for lib in PEER_LIBRARIES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # prints the README tables
    # The copy `initzoo list` ships is the command line's: python -m keras_initzoo_cli.schemes
    print(markdown_table())
    print()
    print(comparison_table())
