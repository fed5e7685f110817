"""Width transfer: the maximal update parametrization (muP) for Keras models.

:func:`parametrize` records which axes of each variable grow with width and
re-draws the kernels; :class:`Adam`, :class:`AdamW` and :class:`SGD` apply
the per-variable multipliers; :func:`coord_check` shows whether activations
stay the same size across widths during the first steps.
"""

from keras_initzoo.mup.coord_check import CoordReport, coord_check
from keras_initzoo.mup.infshape import InfShape, infshape_of
from keras_initzoo.mup.optimizers import SGD, Adam, AdamW, MupOptimizer
from keras_initzoo.mup.parametrize import is_parametrized, parametrize
