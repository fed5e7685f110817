"""Keras callbacks of keras_initzoo."""

from keras_initzoo.callbacks.gradient_norm import GradientNormLogger

__all__ = ["GradientNormLogger"]
