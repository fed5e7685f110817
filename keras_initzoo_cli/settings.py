"""Plain constants shared by the ``initzoo`` command line and :mod:`keras_initzoo.experiments`.

Importing this module imports nothing else (no Keras, TensorFlow or NumPy), so
the command line builds its parser, with these as the ``choices``, without
loading a framework; :mod:`keras_initzoo.experiments` validates against the same
tuples.
"""

from __future__ import annotations

VERSION = "0.1.0"  # keras_initzoo.__version__; a test keeps the two equal

ACTIVATIONS = ("relu", "tanh", "sigmoid", "selu", "elu", "gelu", "linear")
OPTIMIZERS = ("sgd", "adam")
DATASETS = ("blobs", "spirals", "digits")

# `initzoo demo`: `compare` with settings that show the lesson in well under a
# minute on two CPU cores.
DEMO_SCHEMES = ("zoo_he", "zoo_glorot", "zoo_small", "zoo_large", "zoo_zeros")
DEMO_SETTINGS = {"depth": 12, "width": 32, "activation": "relu", "epochs": 5, "dataset": "blobs"}
# `initzoo demo --quick`: the same model on half the data for 2 epochs, in batches of 16 so
# that zoo_he still takes 96 steps and trains (measured test accuracy 0.84-0.97, 4 seeds x 3
# backends) while zoo_glorot lags (final loss 1.7-3.8x He's).
DEMO_QUICK_SETTINGS = {**DEMO_SETTINGS, "epochs": 2, "n_samples": 1024, "batch_size": 16}
