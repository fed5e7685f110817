"""keras_initzoo: choose, apply and check weight initialization in Keras 3.

Importing the package registers every initializer with Keras, so the
``zoo_*`` aliases work wherever Keras takes an initializer::

    import keras
    import keras_initzoo as kiz

    keras.layers.Dense(64, activation="relu", kernel_initializer="zoo_he")
"""

from keras_initzoo.callbacks import GradientNormLogger
from keras_initzoo.fans import compute_fans, conv_transpose_axes
from keras_initzoo.gains import calculate_gain, leaky_relu_gain
from keras_initzoo.initializers import (
    Constant,
    EpsilonUniform,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LargeRandom,
    LecunNormal,
    LecunUniform,
    Orthogonal,
    SimpleNormal,
    SimpleUniform,
    SmallRandom,
    StandardNormal,
    VarianceScaling,
    Zeros,
    ZooInitializer,
)
from keras_initzoo.registry import InitializerInfo, get, list_initializers, register

register()

__version__ = "0.1.0"
