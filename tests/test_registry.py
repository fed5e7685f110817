"""Aliases, kiz.get, list_initializers, and the README table kept in step."""

import pathlib
import subprocess
import sys

import keras
import pytest

import keras_initzoo as kiz
from keras_initzoo.registry import comparison_table, markdown_table

# The tables live on the documentation site's scheme page (moved from the README).
README = pathlib.Path(__file__).resolve().parents[1] / "docs" / "reference" / "schemes.md"
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
    "zoo_torch": "TorchDefault",
    "zoo_lecun": "LecunNormal",
    "zoo_lecun_uniform": "LecunUniform",
    "zoo_orthogonal": "Orthogonal",
    "zoo_variance_scaling": "VarianceScaling",
    "zoo_ones": "Ones",
    "zoo_identity": "Identity",
    "zoo_truncated_normal": "TruncatedNormal",
    "zoo_dirac": "Dirac",
    "zoo_delta_orthogonal": "DeltaOrthogonal",
    "zoo_hadamard": "ZerO",
    "zoo_sparse": "Sparse",
    "zoo_gelu": "GainScaled",
    "zoo_silu": "GainScaled",
    "zoo_swish": "GainScaled",
    "zoo_mish": "GainScaled",
    "zoo_elu": "GainScaled",
    "zoo_softplus": "GainScaled",
}


def test_every_api_alias_is_registered_with_its_class():
    records = {info.alias: info for info in kiz.list_initializers()}
    assert {alias: info.class_name for alias, info in records.items()} == API_ALIASES
    custom = keras.saving.get_custom_objects()
    for alias, class_name in API_ALIASES.items():
        assert f"keras_initzoo>{class_name}" in custom
        if not records[alias].preset:
            assert custom[alias] is getattr(kiz, class_name)
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


@pytest.mark.parametrize("name", ["gelu", "silu", "swish", "mish", "elu", "softplus"])
def test_activation_aliases_preset_the_activation(name):
    through_keras = keras.initializers.get(f"zoo_{name}")
    assert through_keras == kiz.get(f"zoo_{name}") == kiz.GainScaled(activation=name)
    assert through_keras.scale == pytest.approx(kiz.gain(name) ** 2)
    layer = keras.layers.Dense(4, kernel_initializer=f"zoo_{name}")
    assert layer.kernel_initializer.activation == name


def test_get_accepts_alias_class_name_config_and_instance():
    he = kiz.HeNormal(negative_slope=0.1, seed=3)
    assert kiz.get(he) is he
    assert isinstance(kiz.get("HeNormal"), kiz.HeNormal)
    assert isinstance(kiz.get("zoo_kaiming"), kiz.HeNormal)
    assert kiz.get(keras.initializers.serialize(he)) == he
    assert kiz.get({"class_name": "HeNormal", "config": he.get_config()}) == he
    with pytest.raises(ValueError, match="identifier"):
        kiz.get(3.0)


def test_get_passes_none_and_keras_initializers_through_as_keras_does():
    assert kiz.get(None) is None is keras.initializers.get(None)
    builtin = keras.initializers.HeNormal(seed=1)
    assert kiz.get(builtin) is builtin


@pytest.mark.parametrize(
    "peer_name, alias",
    [
        ("he_normal", "zoo_he"),
        ("kaiming_normal_", "zoo_he"),
        ("xavier_uniform_", "zoo_glorot"),
        ("glorot_normal", "zoo_glorot_normal"),
        ("lecun_normal", "zoo_lecun"),
        ("trunc_normal_", "zoo_truncated_normal"),
        ("eye_", "zoo_identity"),
        ("RandomNormal", "zoo_normal"),
    ],
)
def test_a_peer_librarys_name_suggests_its_zoo_alias_first(peer_name, alias):
    with pytest.raises(ValueError, match=f"Did you mean '{alias}'"):
        kiz.get(peer_name)


def test_every_peer_name_exists_in_the_installed_keras():
    """The comparison table's Keras column names real Keras initializers."""
    for info in kiz.list_initializers():
        name = info.peers.get("keras")
        if name is not None:
            assert isinstance(getattr(keras.initializers, name)(), keras.initializers.Initializer)


@pytest.mark.parametrize(
    "library, module", [("pytorch", "torch.nn.init"), ("jax", "jax.nn.initializers")]
)
def test_every_peer_name_exists_in_the_installed_peer(library, module):
    """The comparison table's PyTorch and JAX columns name real functions there."""
    installed = pytest.importorskip(module)
    names = {info.peers[library] for info in kiz.list_initializers() if library in info.peers}
    names |= {peers[library] for _, peers in kiz.registry.TOOL_PEERS if library in peers}
    assert names, library
    assert [name for name in sorted(names) if not callable(getattr(installed, name, None))] == []


@pytest.mark.parametrize(
    "marker, generate",
    [("scheme-table", markdown_table), ("comparison-table", comparison_table)],
)
def test_readme_tables_are_generated_from_the_registry(marker, generate):
    text = README.read_text(encoding="utf-8")
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    assert start in text and end in text, f"{README.name} lost its {marker} markers"
    table = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == generate(), (
        f"{README.name}'s {marker} disagrees with keras_initzoo.list_initializers(); "
        "regenerate it with `python -m keras_initzoo.registry`."
    )


NEW_SCHEME = """
import keras
import keras_initzoo as kiz
from keras_initzoo.initializers.base import ZooInitializer, scheme

@scheme("zoo_halves", distribution="all 0.5", variance="0", activations="none",
        reference="a test", peers={"pytorch": "halves_"})
class Halves(ZooInitializer):
    draws_randomly = False

    def draw(self, shape, dtype):
        return keras.ops.full(shape, 0.5, dtype=dtype)

kiz.register()
layer = keras.layers.Dense(2, kernel_initializer="zoo_halves")
layer.build((None, 3))
assert (layer.kernel.numpy() == 0.5).all()
assert kiz.get("zoo_halves") == Halves()
assert kiz.list_initializers()[-1].alias == "zoo_halves"
assert "| `zoo_halves` | `Halves` |" in kiz.registry.markdown_table()
assert "`halves_`" in kiz.registry.comparison_table()
config = keras.initializers.serialize(Halves())
assert keras.initializers.deserialize(config) == Halves()
print("ok")
"""


@pytest.mark.slow
def test_a_new_scheme_is_one_decorated_class(tmp_path):
    """Nothing else to edit: the class alone reaches Keras, get, the tables and saving."""
    script = tmp_path / "new_scheme.py"
    script.write_text(NEW_SCHEME)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_all_lists_every_public_name_and_each_resolves():
    import types

    import keras_initzoo

    assert len(set(keras_initzoo.__all__)) == len(keras_initzoo.__all__)
    for name in keras_initzoo.__all__:
        assert getattr(keras_initzoo, name) is not None, name
    # everything public defined or imported at the top, modules of the package aside
    # unless listed as namespaces (control: a name added without __all__ fails here)
    public = {
        name
        for name, value in vars(keras_initzoo).items()
        if not name.startswith("_")
        and not (isinstance(value, types.ModuleType) and name not in keras_initzoo.__all__)
    }
    assert public | {"GradientNormLogger"} == set(keras_initzoo.__all__)
    namespace: dict = {}
    exec("from keras_initzoo import *", namespace)  # noqa: S102 -- the star import itself
    assert set(namespace) - {"__builtins__"} == set(keras_initzoo.__all__)
