"""Whole-model tools: find every kernel with its true fans, re-draw, calibrate, report.

:func:`walk` finds each kernel of a built model and the fans its layer gives
it; :func:`reinitialize`, :func:`auto_initialize` and :func:`lsuv` re-draw
them in place and :func:`signal_report` measures the signal; each returns a
:class:`Report`.
"""

from keras_initzoo.models.auto import auto_initialize
from keras_initzoo.models.data import synthetic_batch
from keras_initzoo.models.draw import draw_kernel, resolve
from keras_initzoo.models.lsuv import lsuv
from keras_initzoo.models.recipes import RECIPES, Recipe, apply_recipe, recipes_table
from keras_initzoo.models.reinitialize import reinitialize
from keras_initzoo.models.report import Report
from keras_initzoo.models.residual import residual_structure
from keras_initzoo.models.signal import SignalReport, signal_report
from keras_initzoo.models.walk import KernelSite, LeftAlone, Walk, einsum_axes, walk
