# ruff: noqa: I001  (the import order is the scheme table's order)
"""Every keras_initzoo initializer, by family; importing a family module registers its schemes.

The import order below is the order of the scheme table.
"""

from keras_initzoo.initializers.base import InitializerInfo, ZooInitializer
from keras_initzoo.initializers.constant import Constant, Ones, Zeros
from keras_initzoo.initializers.simple import (
    LargeRandom,
    SimpleNormal,
    SimpleUniform,
    SmallRandom,
    StandardNormal,
    TruncatedNormal,
)
from keras_initzoo.initializers.variance_scaling import (
    EpsilonUniform,
    GainScaled,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LecunNormal,
    LecunUniform,
    TorchDefault,
    VarianceScaling,
)
from keras_initzoo.initializers.orthogonal import Orthogonal
from keras_initzoo.initializers.structured import Dirac, DeltaOrthogonal, Identity, ZerO
from keras_initzoo.initializers.sparse import Sparse
