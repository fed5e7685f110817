"""Width transfer: the maximal update parametrization (muP) for Keras models.

:func:`parametrize` records which axes of each variable grow with width and
re-draws the kernels; :class:`Adam`, :class:`AdamW` and :class:`SGD` apply
the per-variable multipliers; :func:`coord_check` shows whether activations
stay the same size across widths during the first steps.

The optimizers load with the package, so that Keras finds them when it
loads a saved model; the rest loads on first use: the whole-model tools
import :mod:`keras_initzoo.mup.infshape` (to refuse a parametrized model),
which must not pull in the tools themselves.
"""

import importlib

from keras_initzoo.mup.infshape import InfShape, infshape_of
from keras_initzoo.mup.optimizers import SGD, Adam, AdamW, MupOptimizer

# (the modules are not named after the functions: importing a submodule sets
# the package attribute of its name)
_HOMES = {
    "parametrize": "parametrization",
    "is_parametrized": "parametrization",
    "coord_check": "coordinates",
    "CoordReport": "coordinates",
}
__all__ = sorted([*_HOMES, "InfShape", "infshape_of", "SGD", "Adam", "AdamW", "MupOptimizer"])


def __getattr__(name: str):
    if name in _HOMES:
        value = getattr(importlib.import_module(f"keras_initzoo.mup.{_HOMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_initzoo.mup' has no attribute {name!r}")
