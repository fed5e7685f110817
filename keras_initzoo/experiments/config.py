"""What stays fixed while the initialization scheme varies, checked on creation; scheme names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from keras_initzoo_cli.settings import ACTIVATIONS, DATASETS, OPTIMIZERS

from .._validation import check_choice, check_in_range, check_int, check_positive

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "OPTIMIZERS",
    "ExperimentConfig",
    "Scheme",
    "parse_schemes",
    "resolve_scheme",
    "scheme_label",
    "with_overrides",
]

# A Keras initializer identifier: an alias ("zoo_he") or a config dict
# ({"class_name": "zoo_constant", "config": {"value": 0.5}}).
Scheme = str | Mapping[str, Any]


@dataclass(frozen=True)
class ExperimentConfig:
    """What stays fixed while the initialization scheme varies.

    Every field is checked on creation; a bad one raises ``ValueError`` naming
    it and what is allowed:

    >>> ExperimentConfig(dataset="nope")
    Traceback (most recent call last):
    ...
    ValueError: `dataset` must be one of ['blobs', 'spirals', 'digits']; received dataset='nope'.
    """

    depth: int = 16
    width: int = 32
    activation: str = "relu"
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 0.01
    # Plain SGD (with momentum) on purpose: Adam rescales each weight's step and
    # so hides a good part of what a bad initialization does to the gradients.
    optimizer: str = "sgd"
    momentum: float = 0.9
    # Caps the global gradient norm: lets a well-initialized very deep net train at a
    # useful learning rate without the odd spike blowing it up. It scales large
    # gradients down only, so it does not rescue a scheme whose gradients vanish.
    clipnorm: float | None = None
    dataset: str = "blobs"
    # Caps the dataset's size (train and test together; digits: the training part).
    n_samples: int | None = None
    seed: int = 0
    grad_log_freq: int = 1

    def __post_init__(self) -> None:
        checked: dict[str, object] = {}
        for name in ("depth", "width", "epochs", "batch_size", "grad_log_freq"):
            checked[name] = check_int(name, getattr(self, name), minimum=1)
        checked["seed"] = check_int("seed", self.seed, minimum=0)
        checked["learning_rate"] = check_positive("learning_rate", self.learning_rate)
        # SGD's momentum: 0 is plain SGD, 1 never forgets a gradient (Keras' own bounds).
        checked["momentum"] = check_in_range("momentum", self.momentum, 0.0, 1.0)
        if self.clipnorm is not None:
            checked["clipnorm"] = check_positive("clipnorm", self.clipnorm)
        if self.n_samples is not None:
            checked["n_samples"] = check_int(
                "n_samples",
                self.n_samples,
                minimum=2,
                what="None or an integer >= 2 (one training and one test sample)",
            )
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("dataset", self.dataset, DATASETS)
        for name, value in checked.items():  # canonical types: momentum=0 becomes 0.0
            object.__setattr__(self, name, value)


def with_overrides(config: ExperimentConfig, **overrides: object) -> ExperimentConfig:
    """``config`` with the non-None ``overrides`` applied (validation runs again)."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def scheme_label(scheme: Scheme) -> str:
    """A short name for tables and run folders: the alias, or ``alias(key=value)`` for a dict."""
    if isinstance(scheme, str):
        return scheme
    config = scheme.get("config") or {}
    args = ",".join(f"{k}={v}" for k, v in config.items() if v is not None)
    return f"{scheme['class_name']}({args})" if args else str(scheme["class_name"])


def resolve_scheme(scheme: Scheme) -> Scheme:
    """Check that ``scheme`` names a registered initializer; return it unchanged.

    Errors come from :func:`keras_initzoo.get`, which names the closest aliases.
    """
    import keras_initzoo as kiz

    kiz.get(scheme)
    return scheme


def parse_schemes(text: str) -> list[str]:
    """Split a comma-separated scheme list, check each one, drop duplicates."""
    schemes = [s.strip() for s in text.split(",") if s.strip()]
    if not schemes:
        raise ValueError("no scheme given; pass e.g. --schemes zoo_he,zoo_glorot")
    return [resolve_scheme(s) for s in dict.fromkeys(schemes)]
