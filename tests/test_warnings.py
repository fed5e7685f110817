"""keras_initzoo/_warnings.py: the logger's warnings name the user's line."""

from __future__ import annotations

import warnings

import keras
import numpy as np

import keras_initzoo as kiz
from keras_initzoo import _warnings


def test_a_fit_warning_points_at_the_fit_call_not_the_package(tmp_path):
    """A non-finite gradient warns from inside Keras' callback loop (a backend-dependent
    depth of Keras, TensorFlow or JAX frames); the warning names this file and the
    ``fit`` line. Control: the same warning with a fixed ``stacklevel=2`` names the
    package's own file."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((8, 4), "float32"), np.full((8, 1), np.nan, "float32")
    logger = kiz.GradientNormLogger(str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_line = _line_after()
        model.fit(x, y, verbose=0, callbacks=[logger])
    ours = [w for w in caught if "GradientNormLogger" in str(w.message)]
    assert ours, [str(w.message) for w in caught]
    assert {(w.filename, w.lineno) for w in ours} == {(__file__, fit_line)}


def test_the_control_a_fixed_stacklevel_lands_inside_keras(tmp_path):
    """What the walk replaces: a hook warning with a fixed ``stacklevel=2`` names a
    frame of Keras' callback machinery, not the user's line."""

    class FixedLevel(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            warnings.warn("fixed", stacklevel=2)

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(np.ones((8, 4)), np.ones((8, 1)), verbose=0, callbacks=[FixedLevel()])
    fixed = [w for w in caught if str(w.message) == "fixed"]
    assert fixed and all("keras" in w.filename and w.filename != __file__ for w in fixed)


def test_warn_outside_any_framework_names_its_caller():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line_after()
        _warnings.warn("walked")
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)


def _line_after() -> int:
    """The line number after the caller's line."""
    import sys

    return sys._getframe(1).f_lineno + 1
