"""Seeds: one instance never repeats itself; the same seed and order reproduce exactly."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_initzoo as kiz
from keras_initzoo.initializers import base

SCHEMES = {info.alias: info for info in kiz.list_initializers()}
RANDOM_ALIASES = [alias for alias, info in SCHEMES.items() if info.cls.draws_randomly]


def _three_kernels(initializer):
    model = keras.Sequential(
        [keras.Input((16,))]
        + [keras.layers.Dense(16, kernel_initializer=initializer) for _ in range(3)]
    )
    return [np.asarray(layer.kernel) for layer in model.layers]


@pytest.mark.parametrize("alias", RANDOM_ALIASES)
@pytest.mark.parametrize("seed", [None, 7])
def test_one_instance_shared_by_layers_gives_different_kernels(alias, seed):
    kernels = _three_kernels(SCHEMES[alias].make(seed=seed))
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.allclose(kernels[i], kernels[j])


@pytest.mark.parametrize("alias", RANDOM_ALIASES)
def test_same_int_seed_and_order_reproduce_the_weights(alias):
    make = SCHEMES[alias].make
    keras.backend.clear_session()
    first = _three_kernels(make(seed=123))
    keras.backend.clear_session()  # restarts the seed streams, as it restarts layer names
    second = _three_kernels(make(seed=123))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    other = _three_kernels(make(seed=124))
    assert not np.allclose(first[0], other[0])


def test_every_seed_stream_fits_the_backends_seed_state():
    """Streams are uint32, half of them 2**31 or more; PyTorch keeps seeds in int32.

    There a stream from 2**31 on passes as its two's complement, which Keras
    reads back as the same uint32 (``& 0xFFFFFFFF``); int64 (TensorFlow) and
    uint32 (JAX) hold it as it is. Before, such a seed raised on PyTorch.
    """
    keras.backend.clear_session()
    streams = [base._next_stream(7) for _ in range(32)]
    assert max(streams) >= 2**31 > min(streams)
    keras.backend.clear_session()
    generators = [base.make_seed_generator(7) for _ in range(32)]
    states = [int(keras.ops.convert_to_numpy(g.state)[0]) % 2**32 for g in generators]
    assert states == streams
    keras.backend.clear_session()
    kernels = [np.asarray(kiz.HeNormal(seed=7)((4, 4))) for _ in range(32)]
    assert len({kernel.tobytes() for kernel in kernels}) == 32


def test_seed_generator_is_accepted_and_shared():
    generator = keras.random.SeedGenerator(5)
    he, glorot = kiz.HeNormal(seed=generator), kiz.GlorotUniform(seed=generator)
    assert he.seed_generator is generator and glorot.seed_generator is generator
    assert he.seed is generator and kiz.HeNormal(seed=7).seed == 7  # as given, as in Keras
    first = np.asarray(he((4, 4)))
    glorot((4, 4))  # advances the shared generator
    np.testing.assert_array_equal(first, kiz.HeNormal(seed=keras.random.SeedGenerator(5))((4, 4)))
    assert not np.allclose(first, he((4, 4)))


def test_instances_rebuilt_from_one_config_draw_different_kernels():
    config = kiz.HeNormal(seed=9).get_config()
    clones = [kiz.HeNormal.from_config(config) for _ in range(3)]
    kernels = [np.asarray(clone((32, 32))) for clone in clones]
    assert not np.allclose(kernels[0], kernels[1]) and not np.allclose(kernels[1], kernels[2])


def _seeds():
    return [None, 7, keras.random.SeedGenerator(7, name="named_generator")]


@pytest.mark.parametrize("alias", sorted(SCHEMES))
@pytest.mark.parametrize("seed_kind", range(3), ids=["none", "int", "generator"])
def test_config_round_trips_unchanged_for_every_seed_kind(alias, seed_kind):
    """Three save/load cycles leave the config as it was: no drift of seed or name."""
    initializer = SCHEMES[alias].make(seed=_seeds()[seed_kind])
    config = initializer.get_config()
    for _ in range(3):
        initializer = type(initializer).from_config(json.loads(json.dumps(config)))
        assert initializer.get_config() == config
    assert type(initializer).from_config(config) == initializer


def test_clones_of_a_generator_seeded_config_still_differ():
    """A config naming a SeedGenerator rebuilds equal configs, yet clones draw anew."""
    config = kiz.HeNormal(seed=keras.random.SeedGenerator(7)).get_config()
    clones = [kiz.HeNormal.from_config(config) for _ in range(2)]
    assert clones[0] == clones[1]
    assert not np.allclose(clones[0]((16, 16)), clones[1]((16, 16)))


REPRO = """
import keras, numpy as np, keras_initzoo as kiz
init = kiz.HeNormal(seed=2024)
m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, kernel_initializer=init),
                      keras.layers.Dense(8, kernel_initializer=init)])
print(float(np.asarray(m.layers[0].kernel).sum()), float(np.asarray(m.layers[1].kernel).sum()))
"""


@pytest.mark.slow
def test_same_seed_reproduces_across_processes():
    runs = [
        subprocess.run([sys.executable, "-c", REPRO], capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    first, second = (float(v) for v in runs[0].split())
    assert first != second
