"""Every keras_initzoo initializer, grouped by family."""

from keras_initzoo.initializers.base import ZooInitializer
from keras_initzoo.initializers.constant import Constant, Zeros
from keras_initzoo.initializers.orthogonal import Orthogonal
from keras_initzoo.initializers.simple import (
    LargeRandom,
    SimpleNormal,
    SimpleUniform,
    SmallRandom,
    StandardNormal,
)
from keras_initzoo.initializers.variance_scaling import (
    EpsilonUniform,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    VarianceScaling,
)

__all__ = [
    "Constant",
    "EpsilonUniform",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "LargeRandom",
    "LecunNormal",
    "LecunUniform",
    "Orthogonal",
    "SimpleNormal",
    "SimpleUniform",
    "SmallRandom",
    "StandardNormal",
    "VarianceScaling",
    "Zeros",
    "ZooInitializer",
]
