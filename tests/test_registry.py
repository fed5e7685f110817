"""Aliases, kiz.get, list_initializers, and the README table kept in step."""

import pathlib

import keras
import pytest

import keras_initzoo as kiz
from keras_initzoo.registry import markdown_table

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
API_ALIASES = {
    "zoo_zeros": "Zeros",
    "zoo_constant": "Constant",
    "zoo_uniform": "SimpleUniform",
    "zoo_normal": "SimpleNormal",
    "zoo_small": "SmallRandom",
    "zoo_large": "LargeRandom",
    "zoo_standard_normal": "StandardNormal",
    "zoo_epsilon": "EpsilonUniform",
    "zoo_glorot": "GlorotUniform",
    "zoo_xavier": "GlorotUniform",
    "zoo_glorot_normal": "GlorotNormal",
    "zoo_he": "HeNormal",
    "zoo_kaiming": "HeNormal",
    "zoo_he_uniform": "HeUniform",
    "zoo_lecun": "LecunNormal",
    "zoo_lecun_uniform": "LecunUniform",
    "zoo_orthogonal": "Orthogonal",
    "zoo_variance_scaling": "VarianceScaling",
}


def test_every_api_alias_is_registered_with_its_class():
    records = {info.alias: info for info in kiz.list_initializers()}
    assert {alias: info.class_name for alias, info in records.items()} == API_ALIASES
    custom = keras.saving.get_custom_objects()
    for alias, class_name in API_ALIASES.items():
        assert custom[alias] is getattr(kiz, class_name)
        assert f"keras_initzoo>{class_name}" in custom
        assert issubclass(getattr(kiz, class_name), keras.initializers.Initializer)
        assert type(keras.initializers.get(alias)).__name__ == class_name


def test_records_are_complete():
    for info in kiz.list_initializers():
        assert info.distribution and info.variance and info.activations and info.reference


@pytest.mark.parametrize("alias", sorted(API_ALIASES))
def test_alias_works_in_a_layer(alias):
    layer = keras.layers.Dense(4, kernel_initializer=alias)
    layer.build((None, 3))
    assert type(layer.kernel_initializer).__name__ == API_ALIASES[alias]
    assert tuple(layer.kernel.shape) == (3, 4)


def test_get_accepts_alias_class_name_config_and_instance():
    he = kiz.HeNormal(negative_slope=0.1, seed=3)
    assert kiz.get(he) is he
    assert isinstance(kiz.get("HeNormal"), kiz.HeNormal)
    assert isinstance(kiz.get("zoo_kaiming"), kiz.HeNormal)
    assert kiz.get(keras.initializers.serialize(he)) == he
    assert kiz.get({"class_name": "HeNormal", "config": he.get_config()}) == he
    with pytest.raises(ValueError, match="identifier"):
        kiz.get(3.0)


def test_readme_table_is_generated_from_the_registry():
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- scheme-table:start -->", "<!-- scheme-table:end -->"
    assert start in text and end in text, "README.md lost its scheme-table markers"
    table = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == markdown_table(), (
        "README.md's scheme table disagrees with keras_initzoo.list_initializers(); "
        "regenerate it with `python -m keras_initzoo.registry`."
    )
