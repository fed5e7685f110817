"""keras_initzoo: choose, apply and check weight initialization in Keras 3.

Importing the package registers every initializer with Keras, so the
``zoo_*`` aliases work wherever Keras takes an initializer::

    import keras
    import keras_initzoo as kiz

    keras.layers.Dense(64, activation="relu", kernel_initializer="zoo_he")

``GradientNormLogger`` loads on first use, so importing the package loads no
backend-specific code.
"""

from keras_initzoo import layers, models, mup, optimizers
from keras_initzoo.fans import compute_fans, conv_transpose_axes, depthwise_axes
from keras_initzoo.gains import calculate_gain, gain, leaky_relu_gain, nf_gamma
from keras_initzoo.initializers import (
    Constant,
    DeltaOrthogonal,
    Dirac,
    EpsilonUniform,
    GainScaled,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Identity,
    InitializerInfo,
    LargeRandom,
    LecunNormal,
    LecunUniform,
    Ones,
    Orthogonal,
    SimpleNormal,
    SimpleUniform,
    SmallRandom,
    Sparse,
    StandardNormal,
    TorchDefault,
    TruncatedNormal,
    VarianceScaling,
    ZerO,
    Zeros,
    ZooInitializer,
)
from keras_initzoo.models import (
    Report,
    SignalReport,
    auto_initialize,
    lsuv,
    reinitialize,
    residual_structure,
    signal_report,
)
from keras_initzoo.registry import get, list_initializers, register

register()

__version__ = "0.1.0"

# Every public name (``GradientNormLogger`` loads on first use); tests/test_registry.py
# checks that each resolves and that nothing public is left out.
__all__ = [
    # initializers
    "Constant", "DeltaOrthogonal", "Dirac", "EpsilonUniform", "GainScaled", "GlorotNormal",
    "GlorotUniform", "HeNormal", "HeUniform", "Identity", "InitializerInfo", "LargeRandom",
    "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "SimpleNormal", "SimpleUniform",
    "SmallRandom", "Sparse", "StandardNormal", "TorchDefault", "TruncatedNormal",
    "VarianceScaling", "ZerO", "Zeros", "ZooInitializer",
    # the registry, fans and gains
    "get", "list_initializers", "register", "compute_fans", "conv_transpose_axes",
    "depthwise_axes", "calculate_gain", "gain", "leaky_relu_gain", "nf_gamma",
    # whole-model tools
    "Report", "SignalReport", "auto_initialize", "lsuv", "reinitialize", "residual_structure",
    "signal_report",
    # the callback, and the namespaces
    "GradientNormLogger", "layers", "models", "mup", "optimizers",
]  # fmt: skip


def __getattr__(name: str):
    if name == "GradientNormLogger":
        from keras_initzoo.callbacks import GradientNormLogger

        return GradientNormLogger
    raise AttributeError(f"module 'keras_initzoo' has no attribute {name!r}")
