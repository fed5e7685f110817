"""The ``zoo_*`` aliases: registration with Keras, lookup and the scheme table."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Any

import keras

from keras_initzoo import initializers as _init
from keras_initzoo.initializers.base import ZooInitializer

PACKAGE = "keras_initzoo"


@dataclass(frozen=True)
class InitializerInfo:
    """One row of the scheme table: what an alias draws and when to use it."""

    alias: str
    cls: type[ZooInitializer]
    distribution: str
    variance: str
    activations: str
    reference: str

    @property
    def class_name(self) -> str:
        return self.cls.__name__


_GLOROT = "Glorot & Bengio 2010"
_HE = "He et al. 2015"

_INFOS = (
    InitializerInfo(
        "zoo_zeros",
        _init.Zeros,
        "all zeros",
        "0",
        "biases only: fails to break symmetry",
        "lessons: the symmetry problem",
    ),
    InitializerInfo(
        "zoo_constant",
        _init.Constant,
        "one constant `value`=0.5",
        "0",
        "biases only: fails to break symmetry",
        "lessons: the symmetry problem",
    ),
    InitializerInfo(
        "zoo_uniform",
        _init.SimpleUniform,
        "U[-limit, limit], limit=0.1",
        "limit²/3",
        "shallow nets",
        "course's simple initialization",
    ),
    InitializerInfo(
        "zoo_normal",
        _init.SimpleNormal,
        "N(0, stddev²), stddev=0.1",
        "stddev²",
        "shallow nets",
        "course's simple initialization",
    ),
    InitializerInfo(
        "zoo_small",
        _init.SmallRandom,
        "scale·N(0, 1), scale=0.01",
        "scale²",
        "shallow nets: vanishes with depth",
        "lessons: small random values",
    ),
    InitializerInfo(
        "zoo_large",
        _init.LargeRandom,
        "scale·N(0, 1), scale=10",
        "scale²",
        "none: explodes or saturates",
        "lessons: large random values",
    ),
    InitializerInfo(
        "zoo_standard_normal",
        _init.StandardNormal,
        "N(0, 1)",
        "1",
        "none: pre-2010 practice",
        _GLOROT,
    ),
    InitializerInfo(
        "zoo_epsilon",
        _init.EpsilonUniform,
        "U[-ε, ε], ε = √6/√(fan_in+fan_out) unless given",
        "ε²/3",
        "tanh, sigmoid",
        "lessons: breaking symmetry",
    ),
    InitializerInfo(
        "zoo_glorot",
        _init.GlorotUniform,
        "uniform",
        "1/fan_avg",
        "linear, tanh, sigmoid, softmax",
        _GLOROT,
    ),
    InitializerInfo(
        "zoo_glorot_normal",
        _init.GlorotNormal,
        "truncated normal",
        "1/fan_avg",
        "linear, tanh, sigmoid, softmax",
        _GLOROT,
    ),
    InitializerInfo(
        "zoo_he",
        _init.HeNormal,
        "truncated normal",
        "2/((1+a²)·fan_in)",
        "relu, leaky_relu, gelu, swish",
        _HE,
    ),
    InitializerInfo(
        "zoo_he_uniform",
        _init.HeUniform,
        "uniform",
        "2/((1+a²)·fan_in)",
        "relu, leaky_relu, gelu, swish",
        _HE,
    ),
    InitializerInfo(
        "zoo_lecun",
        _init.LecunNormal,
        "truncated normal",
        "1/fan_in",
        "selu",
        "LeCun et al. 1998; Klambauer et al. 2017",
    ),
    InitializerInfo(
        "zoo_lecun_uniform", _init.LecunUniform, "uniform", "1/fan_in", "selu", "LeCun et al. 1998"
    ),
    InitializerInfo(
        "zoo_orthogonal",
        _init.Orthogonal,
        "(semi-)orthogonal × gain",
        "gain²/max(rows, cols), WᵀW = gain²·I",
        "linear, tanh, RNNs",
        "Saxe et al. 2013",
    ),
    InitializerInfo(
        "zoo_variance_scaling",
        _init.VarianceScaling,
        "truncated normal, normal or uniform",
        "scale/fan",
        "any, with the right scale",
        "the general family",
    ),
)

# Second names for the same scheme, each listed as a row of its own.
_SYNONYMS = {"zoo_xavier": "zoo_glorot", "zoo_kaiming": "zoo_he"}
_INFOS = tuple(
    info
    for first in _INFOS
    for info in (
        first,
        *(replace(first, alias=s) for s, of in _SYNONYMS.items() if of == first.alias),
    )
)

ALIASES: dict[str, type[ZooInitializer]] = {info.alias: info.cls for info in _INFOS}
CLASSES: dict[str, type[ZooInitializer]] = {info.class_name: info.cls for info in _INFOS}


def register() -> None:
    """Registers every class and alias with Keras; idempotent (done on import)."""
    custom_objects = keras.saving.get_custom_objects()
    for cls in CLASSES.values():
        keras.saving.register_keras_serializable(package=PACKAGE)(cls)
    custom_objects.update(ALIASES)


def list_initializers() -> list[InitializerInfo]:
    """One record per alias: alias, class, distribution, variance, activations, reference.

    Example:

    >>> [info.alias for info in list_initializers()][:3]
    ['zoo_zeros', 'zoo_constant', 'zoo_uniform']
    """
    return list(_INFOS)


def _unknown(identifier: str) -> ValueError:
    names = [*ALIASES, *CLASSES]
    close = difflib.get_close_matches(identifier, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(name) for name in close)}?" if close else ""
    return ValueError(
        f"Unknown initializer {identifier!r}.{hint} "
        f"Known aliases: {', '.join(ALIASES)} (see keras_initzoo.list_initializers())."
    )


def get(identifier: Any) -> ZooInitializer:
    """Returns the initializer an alias, class name, config dict or instance names.

    Example:

    >>> get("zoo_he")
    HeNormal(negative_slope=0.0, mode='fan_in', seed=None, input_axes=None, output_axes=None)
    >>> get({"class_name": "SimpleUniform", "config": {"limit": 0.05}}).limit
    0.05

    A config dict takes the form ``{"class_name": ..., "config": {...}}`` that
    ``keras.initializers.serialize`` writes; its ``class_name`` may also be the
    registered name ``"keras_initzoo>HeNormal"``. Only keras_initzoo classes are
    built, so a config never runs other code.
    """
    if isinstance(identifier, ZooInitializer):
        return identifier
    if isinstance(identifier, str):
        cls = ALIASES.get(identifier) or CLASSES.get(identifier)
        if cls is None:
            raise _unknown(identifier)
        return cls()
    if isinstance(identifier, type) and issubclass(identifier, ZooInitializer):
        return identifier()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        config = identifier.get("config", {})
        if not isinstance(name, str):
            raise ValueError(
                "A config dict must have a string 'class_name'; "
                f"received identifier={identifier!r}."
            )
        name = name.removeprefix(f"{PACKAGE}>")
        cls = ALIASES.get(name) or CLASSES.get(name)
        if cls is None:
            raise _unknown(name)
        return cls.from_config(config)
    raise ValueError(
        "`identifier` must be a zoo alias, a class name, a config dict or an "
        f"initializer instance; received {identifier!r} of type {type(identifier).__name__}."
    )


def markdown_table() -> str:
    """The README's scheme table, generated from :func:`list_initializers`."""
    lines = [
        "| alias | class | draws | variance | suits | reference |",
        "|---|---|---|---|---|---|",
    ]
    for info in _INFOS:
        lines.append(
            f"| `{info.alias}` | `{info.class_name}` | {info.distribution} | {info.variance} "
            f"| {info.activations} | {info.reference} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # regenerates the README table
    print(markdown_table())
