"""One seed for the data order, the initial weights and every random draw of an experiment."""

from __future__ import annotations

import random

import keras
import numpy as np


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
    # Private Keras names: the test above fails loudly when they change.
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
