"""Width and depth transfer: muP, CompleteP and depth-muP for Keras models.

:func:`parametrize` records which axes of each variable grow with width and
where each variable sits in the residual stream, and re-draws the kernels;
:class:`Adam`, :class:`AdamW` and :class:`SGD` apply the per-variable
multipliers; :func:`coord_check` shows whether activations stay the same
size across widths (and depths) during the first steps.

The per-variable records live in :mod:`keras_initzoo._records`, which the
whole-model tools read without importing this package: ``mup`` is built on
``models``, never the other way.
"""

from keras_initzoo._records import DepthRecord, InfShape, infshape_of
from keras_initzoo.mup.coordinates import CoordReport, coord_check
from keras_initzoo.mup.optimizers import SGD, Adam, AdamW, MupOptimizer
from keras_initzoo.mup.parametrization import DEPTH_RULES, is_parametrized, parametrize

__all__ = [
    "DEPTH_RULES",
    "SGD",
    "Adam",
    "AdamW",
    "CoordReport",
    "DepthRecord",
    "InfShape",
    "MupOptimizer",
    "coord_check",
    "infshape_of",
    "is_parametrized",
    "parametrize",
]
