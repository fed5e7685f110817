"""Every alias survives every way a Keras model is saved and loaded.

Every path here but the SavedModel export exists on every Keras backend, and
``test_backends.py`` runs this file under JAX and PyTorch too; files saved on
one backend and loaded on another are ``test_cross_backend.py``'s.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_initzoo as kiz

ALIASES = [info.alias for info in kiz.list_initializers()]
X = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")


def _zoo_model():
    """One Dense layer per alias, named after it, with non-default arguments where possible."""
    inputs = keras.Input((6,))
    outputs = []
    for alias in ALIASES:
        initializer = kiz.get(alias)
        if alias == "zoo_he":
            initializer = kiz.HeNormal(negative_slope=0.1, mode="fan_out", seed=3)
        layer = keras.layers.Dense(3, kernel_initializer=initializer, name=alias)
        outputs.append(layer(inputs))
    return keras.Model(inputs, keras.layers.Concatenate()(outputs))


@pytest.fixture(scope="module")
def model():
    return _zoo_model()


def _assert_same_initializers(original, restored):
    for alias in ALIASES:
        before = original.get_layer(alias).kernel_initializer
        after = restored.get_layer(alias).kernel_initializer
        assert type(after) is type(before), alias
        assert after.get_config() == before.get_config(), alias


def test_get_config_from_config_round_trip_for_every_alias():
    for alias in ALIASES:
        initializer = kiz.get(alias)
        config = json.loads(json.dumps(initializer.get_config()))  # JSON types only
        assert type(initializer).from_config(config) == initializer


def test_json_round_trip(model):
    restored = keras.models.model_from_json(model.to_json())
    _assert_same_initializers(model, restored)


def test_clone_model(model):
    clone = keras.models.clone_model(model)
    _assert_same_initializers(model, clone)
    assert clone.predict(X, verbose=0).shape == model.predict(X, verbose=0).shape


@pytest.mark.parametrize("suffix", [".keras", ".h5"])  # native format and legacy HDF5
def test_save_and_load_model(model, tmp_path, suffix):
    path = tmp_path / f"zoo{suffix}"
    model.save(path)
    restored = keras.models.load_model(path)
    _assert_same_initializers(model, restored)
    np.testing.assert_array_equal(restored.predict(X, verbose=0), model.predict(X, verbose=0))


def test_serialize_keras_object_round_trip(model):
    for alias in ALIASES:
        initializer = model.get_layer(alias).kernel_initializer
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(initializer)))
        assert config["registered_name"].startswith("keras_initzoo>"), alias
        restored = keras.saving.deserialize_keras_object(config)
        assert type(restored) is type(initializer), alias
        assert restored.get_config() == initializer.get_config(), alias
    config = keras.saving.serialize_keras_object(model)
    _assert_same_initializers(model, keras.saving.deserialize_keras_object(config))


def test_model_get_config_from_config_round_trip(model):
    restored = keras.Model.from_config(json.loads(json.dumps(model.get_config())))
    _assert_same_initializers(model, restored)


def test_save_weights_and_load_weights(model, tmp_path):
    path = tmp_path / "zoo.weights.h5"
    model.save_weights(path)
    fresh = _zoo_model()  # new draws: every random kernel differs until loaded
    assert not np.array_equal(fresh.predict(X, verbose=0), model.predict(X, verbose=0))
    fresh.load_weights(path)
    for before, after in zip(model.weights, fresh.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(after), keras.ops.convert_to_numpy(before)
        )
    np.testing.assert_array_equal(fresh.predict(X, verbose=0), model.predict(X, verbose=0))


@pytest.mark.slow
@pytest.mark.tensorflow_only(reason="TensorFlow's SavedModel export")
def test_tensorflow_saved_model_export(model, tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    served = tf.saved_model.load(path)
    np.testing.assert_allclose(served.serve(X).numpy(), model(X).numpy(), rtol=0, atol=1e-6)


FRESH_LOAD = """
import json, sys
import numpy as np
import keras
{import_line}
model = keras.models.load_model(sys.argv[1])
print(json.dumps({{
    "classes": {{l.name: type(l.kernel_initializer).__name__ for l in model.layers
                 if hasattr(l, "kernel_initializer")}},
    "output": model.predict(np.load(sys.argv[2]), verbose=0).tolist(),
}}))
"""


def _load_in_fresh_process(tmp_path, model, import_line):
    path = tmp_path / "zoo.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", X)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_LOAD.format(import_line=import_line),
            str(path),
            str(tmp_path / "x.npy"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.slow
def test_keras_file_loads_in_a_fresh_process_that_imports_keras_initzoo(model, tmp_path):
    result = _load_in_fresh_process(tmp_path, model, "import keras_initzoo")
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["classes"] == {
        alias: type(model.get_layer(alias).kernel_initializer).__name__ for alias in ALIASES
    }
    np.testing.assert_array_equal(np.array(loaded["output"]), model.predict(X, verbose=0))


@pytest.mark.slow
@pytest.mark.parametrize(
    "alias",
    ["zoo_he", "zoo_glorot", "zoo_lecun", "zoo_small", "zoo_orthogonal", "zoo_gelu", "zoo_ones"],
)
def test_loading_without_the_import_fails_instead_of_substituting(alias, tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, kernel_initializer=alias)])
    result = _load_in_fresh_process(tmp_path, model, "")
    assert result.returncode != 0, f"{alias} loaded without keras_initzoo: {result.stdout}"
    assert "could not be deserialized" in result.stderr or "Could not locate" in result.stderr
