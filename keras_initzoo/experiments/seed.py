"""One seed for the data order, the initial weights and every random draw of an experiment."""

from __future__ import annotations

import random

import keras
import numpy as np

from keras_initzoo import _keras_internals as internals


def set_seed(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)``, less its TensorFlow seed on JAX and PyTorch.

    Keras seeds TensorFlow wherever it is installed (for ``tf.data``), and so
    imports it; the experiments feed NumPy arrays, so on the other backends
    that seed seeds nothing they use. The rest is Keras' own: the global seed,
    a fresh global ``SeedGenerator``, Python's, NumPy's and torch's seeds
    (``tests/test_experiments.py`` checks that the draws match Keras').
    """
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    internals.reset_global_seed(seed)  # private Keras names: see tests/test_keras_internals.py
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
