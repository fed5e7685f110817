"""The experiments' model, loss and optimizer, built from an :class:`ExperimentConfig`."""

from __future__ import annotations

import keras

from .config import ExperimentConfig, Scheme


def build_mlp(
    config: ExperimentConfig, scheme: Scheme, input_dim: int, n_classes: int
) -> keras.Sequential:
    """``depth`` hidden Dense layers of ``width`` units and a logits layer, all under ``scheme``.

    Layers are named ``dense_01`` ... and ``output`` so TensorBoard sorts them by depth.

    Args:
        config: gives ``depth``, ``width`` and ``activation``.
        scheme: the kernel initializer of every layer, a ``zoo_*`` alias or a
            config dict.
        input_dim: the number of input features.
        n_classes: the number of logits.

    Returns:
        The built, uncompiled ``keras.Sequential`` model.
    """
    layers: list[keras.layers.Layer] = [keras.Input((input_dim,))]
    for i in range(1, config.depth + 1):
        layers.append(
            keras.layers.Dense(
                config.width,
                activation=config.activation,
                kernel_initializer=scheme,
                name=f"dense_{i:02d}",
            )
        )
    layers.append(keras.layers.Dense(n_classes, kernel_initializer=scheme, name="output"))
    return keras.Sequential(layers, name=f"mlp_{config.depth}x{config.width}")


def loss_fn() -> keras.losses.Loss:
    """Cross-entropy on logits: stays finite longer than on softmax when a scheme explodes."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_optimizer(config: ExperimentConfig) -> keras.optimizers.Optimizer:
    """SGD with the config's momentum, or Adam; both with its learning rate and clipnorm."""
    if config.optimizer == "adam":
        return keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm)
    return keras.optimizers.SGD(
        config.learning_rate, momentum=config.momentum, global_clipnorm=config.clipnorm
    )
