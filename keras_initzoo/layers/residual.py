"""ResidualGain: a trainable scalar on a residual branch (SkipInit, ReZero)."""

from __future__ import annotations

from typing import Any

import keras

from keras_initzoo._validation import check_finite


@keras.saving.register_keras_serializable(package="keras_initzoo")
class ResidualGain(keras.layers.Layer):
    """``y = alpha * x``: one trainable scalar ``alpha``, starting at ``initial``.

    Put on a residual branch, ``x + ResidualGain()(f(x))``, it makes the
    block the identity at initialization (``alpha = 0``), so the signal and
    its gradient pass through a network of any depth unchanged, without
    normalization; training moves each ``alpha`` away from zero. SkipInit
    (De & Smith 2020) puts the scalar at the end of the branch of a
    normalizer-free ResNet; ReZero (Bachlechner et al. 2020) does the same
    in transformers and drops the LayerNorm. The gradient reaching the
    branch's weights is zero while ``alpha`` is zero; ``alpha`` gets its
    gradient from ``f(x)``, so after one step every branch learns.

    Examples:
        >>> layer = ResidualGain()
        >>> keras.ops.convert_to_numpy(layer(keras.ops.ones((2, 3)))).tolist()
        [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
        >>> ResidualGain(initial=0.5).get_config()["initial"]
        0.5

    Args:
        initial: the starting value of ``alpha``, a finite number (0.0:
            each block starts as the identity).
        **kwargs: the base layer's arguments (``name``, ``dtype``, ...).

    Returns (when called):
        ``alpha * inputs``, of the inputs' shape.

    Raises:
        ValueError: if ``initial`` is not a finite real number.

    Reference: De and Smith, "Batch Normalization Biases Residual Blocks
    Towards the Identity Function in Deep Networks", NeurIPS 2020 (SkipInit);
    Bachlechner et al., "ReZero is All You Need: Fast Convergence at Large
    Depth", UAI 2021 (arXiv 2003.04887, 2020).
    """

    def __init__(self, initial: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial = check_finite("initial", initial)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        self.alpha = self.add_weight(
            name="alpha",
            shape=(),
            initializer=keras.initializers.Constant(self.initial),
            trainable=True,
        )

    def call(self, inputs: Any) -> Any:
        return inputs * keras.ops.cast(self.alpha, inputs.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "initial": self.initial}
