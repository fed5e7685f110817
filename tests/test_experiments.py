"""The experiment engine's own contracts: a config checked on creation, one progress bar."""

from __future__ import annotations

import re

import pytest

from keras_initzoo.experiments import (
    DATASETS,
    ExperimentConfig,
    format_table,
    run_comparison,
    with_overrides,
)
from keras_initzoo_cli import settings


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("dataset", "nope", "must be one of ['blobs', 'spirals', 'digits']"),
        ("dataset", None, "must be one of"),
        ("momentum", -0.1, "must lie in [0.0, 1.0]"),
        ("momentum", 1.5, "must lie in [0.0, 1.0]"),
        ("momentum", float("nan"), "must be a finite number"),
        ("n_samples", 0, "must be None or an integer >= 2"),
        ("n_samples", 1, "must be None or an integer >= 2"),
        ("n_samples", 2.5, "must be None or an integer >= 2"),
        ("clipnorm", 0.0, "must be a finite number > 0"),
        ("seed", -1, "must be an integer >= 0"),
        ("seed", True, "must be an integer >= 0"),
        ("depth", 0, "must be an integer >= 1"),
        ("learning_rate", 0, "must be a finite number > 0"),
        ("activation", "relux", "must be one of"),
        ("optimizer", "rmsprop", "must be one of ['sgd', 'adam']"),
    ],
)
def test_config_rejects_a_bad_field_naming_it_and_what_is_allowed(field, value, allowed):
    with pytest.raises(ValueError, match=re.escape(f"`{field}` {allowed}")):
        ExperimentConfig(**{field: value})


def test_config_checks_overrides_too():
    with pytest.raises(ValueError, match="`dataset` must be one of"):
        with_overrides(ExperimentConfig(), dataset="mnist")


def test_config_keeps_good_values_in_canonical_types():
    config = ExperimentConfig(momentum=0, n_samples=2, clipnorm=1, learning_rate=1)
    assert (config.momentum, config.clipnorm, config.learning_rate) == (0.0, 1.0, 1.0)
    assert all(isinstance(v, float) for v in (config.momentum, config.clipnorm))
    assert config.n_samples == 2 and config.dataset in DATASETS


def test_choices_are_the_cli_s():
    # The CLI offers, without importing Keras, exactly what the engine accepts.
    from keras_initzoo import experiments

    assert experiments.ACTIVATIONS is settings.ACTIVATIONS
    assert experiments.OPTIMIZERS is settings.OPTIMIZERS
    assert experiments.DATASETS is settings.DATASETS
    for name, value in settings.DEMO_SETTINGS.items():
        ExperimentConfig(**{name: value})


def test_one_progress_bar_over_schemes_and_epochs(capsys):
    config = ExperimentConfig(depth=2, width=8, epochs=2, n_samples=64, batch_size=32)
    results = run_comparison(("zoo_he", "zoo_small"), config, progress=True)
    out = capsys.readouterr().out
    assert out.count("training zoo_he, zoo_small: 2 epochs each") == 1
    assert "4/4" in out and "/epoch" in out and "/step" not in out
    assert [line.split()[0] for line in format_table(results).splitlines()[2:]] == [
        "zoo_he",
        "zoo_small",
    ]


def test_no_progress_prints_nothing(capsys):
    config = ExperimentConfig(depth=2, width=8, epochs=1, n_samples=64, batch_size=32)
    run_comparison(("zoo_he",), config)
    assert capsys.readouterr().out == ""


def test_set_seed_draws_what_keras_set_random_seed_draws():
    """experiments.set_seed reproduces Keras' seeding (it reaches into keras.src on JAX
    and PyTorch to leave TensorFlow unloaded): the same global seed, the same draws of
    an unseeded initializer and of keras.random, Python's and NumPy's."""
    import random

    import keras
    import numpy as np
    from keras.src.utils.rng_utils import get_random_seed

    from keras_initzoo.experiments import set_seed
    from keras_initzoo.experiments.seed import set_seed as direct

    def draws(seeding):
        seeding(7)
        layer = keras.layers.Dense(4, kernel_initializer="zoo_he")
        layer.build((None, 3))
        return (
            get_random_seed(),
            keras.ops.convert_to_numpy(layer.kernel).tolist(),
            keras.ops.convert_to_numpy(keras.random.normal((3,))).tolist(),
            random.random(),
            np.random.random(),
        )

    assert set_seed is direct
    assert draws(set_seed) == draws(keras.utils.set_random_seed)
