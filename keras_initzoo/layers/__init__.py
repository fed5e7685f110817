"""Layers the residual-stream recipes insert, each saving and loading on every Keras backend.

- :class:`ResidualGain`: ``y = alpha * x`` with one trainable scalar that
  starts at zero (SkipInit, ReZero), so each residual block starts as the
  identity.
- :class:`WSDense`, :class:`WSConv2D`: scaled weight standardization with a
  learnable per-output gain (NF-ResNets, NFNets), and
  :func:`standardize_kernel`, the pure function they call.

Each class is registered with
``keras.saving.register_keras_serializable(package="keras_initzoo")``, so a
model holding them saves with ``model.save("m.keras")`` and loads with
``keras.models.load_model`` once ``keras_initzoo`` is imported.
"""

from keras_initzoo.layers.residual import ResidualGain
from keras_initzoo.layers.standardization import WSConv2D, WSDense, standardize_kernel

__all__ = ["ResidualGain", "WSConv2D", "WSDense", "standardize_kernel"]
