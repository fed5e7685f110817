"""Gradient capture inside the real train step: one module per Keras backend.

Only the running backend's module is imported, so on JAX and PyTorch nothing
here loads TensorFlow.
"""

from __future__ import annotations

import keras

from keras_initzoo.callbacks.capture.base import (
    NOTHING,
    Capture,
    Record,
    innermost_optimizer,
    is_due,
)
from keras_initzoo.callbacks.options import LoggerOptions

__all__ = ["NOTHING", "Capture", "Record", "capture_for", "innermost_optimizer", "is_due"]


def capture_for(model, options: LoggerOptions, **settings) -> Capture:
    """The capture of Keras' running backend for ``model`` (see :class:`Capture`).

    Args:
        model: the model whose train step records (see :class:`Capture`).
        options: what to record, the logger's checked options.
        **settings: :class:`Capture`'s keyword arguments: ``rows``, ``gate_in_graph``.

    Returns:
        A :class:`TensorFlowCapture`, :class:`JaxCapture` or :class:`TorchCapture`.

    Raises:
        RuntimeError: on another Keras backend.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from keras_initzoo.callbacks.capture.tensorflow import TensorFlowCapture as cls
    elif backend == "jax":
        from keras_initzoo.callbacks.capture.jax import JaxCapture as cls
    elif backend == "torch":
        from keras_initzoo.callbacks.capture.torch import TorchCapture as cls
    else:
        raise RuntimeError(
            "GradientNormLogger runs on the TensorFlow, JAX and PyTorch backends; "
            f"Keras runs on {backend!r}."
        )
    return cls(model, options, **settings)
