"""Bad input gets a ValueError naming the argument; property tests over random input."""

import json

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_initzoo as kiz

ALIASES = [info.alias for info in kiz.list_initializers()]


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: kiz.SimpleUniform(limit=0), "limit"),
        (lambda: kiz.SimpleUniform(limit=-1), "limit"),
        (lambda: kiz.SimpleNormal(stddev=float("nan")), "stddev"),
        (lambda: kiz.SmallRandom(scale=-0.01), "scale"),
        (lambda: kiz.LargeRandom(scale=float("inf")), "scale"),
        (lambda: kiz.EpsilonUniform(epsilon=0.0), "epsilon"),
        (lambda: kiz.Orthogonal(gain=0), "gain"),
        (lambda: kiz.GlorotUniform(gain=-2), "gain"),
        (lambda: kiz.VarianceScaling(scale=0), "scale"),
        (lambda: kiz.VarianceScaling(scale="2"), "scale"),
        (lambda: kiz.VarianceScaling(mode="fan_sum"), "mode"),
        (lambda: kiz.VarianceScaling(distribution="cauchy"), "distribution"),
        (lambda: kiz.HeNormal(mode="fan_avg"), "mode"),
        (lambda: kiz.HeNormal(negative_slope=-0.1), "negative_slope"),
        (lambda: kiz.HeNormal(negative_slope=True), "negative_slope"),
        (lambda: kiz.Constant(value=float("nan")), "value"),
        (lambda: kiz.HeNormal(seed=-1), "seed"),
        (lambda: kiz.HeNormal(seed=1.5), "seed"),
        (lambda: kiz.HeNormal(seed="42"), "seed"),
        (lambda: kiz.HeNormal(input_axes=[0]), "output_axes"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()


@pytest.mark.parametrize("dtype", ["int32", "bool", "uint8", "complex64", "not-a-dtype"])
def test_non_float_dtype_is_rejected(dtype):
    with pytest.raises(ValueError, match="`dtype`"):
        kiz.HeNormal()((2, 2), dtype=dtype)


@pytest.mark.parametrize("shape", [(2, -1), (2.0, 3), (None, 3), (True, 2), "ab", 5])
def test_bad_shape_is_rejected(shape):
    with pytest.raises(ValueError, match="`shape`"):
        kiz.GlorotUniform()(shape)


def test_orthogonal_needs_rank_two():
    with pytest.raises(ValueError, match="rank >= 2"):
        kiz.Orthogonal()((5,))


def test_unknown_zoo_alias_names_the_closest():
    with pytest.raises(ValueError, match="zoo_he") as error:
        kiz.get("zoo_hee")
    assert "Did you mean" in str(error.value)
    with pytest.raises(ValueError, match="zoo_glorot"):
        keras.initializers.get("zoo_glorot") and kiz.get("zoo_glorott")


@pytest.mark.parametrize(
    "config, fragment",
    [
        ({"class_name": "HeNormal", "config": {"negative_slop": 0.1}}, "Unknown key"),
        ({"class_name": "HeNormal", "config": {"mode": 3}}, "`mode`"),
        ({"class_name": "SimpleUniform", "config": {"limit": "0.1"}}, "`limit`"),
        ({"class_name": "HeNormal", "config": {"seed": {"class_name": "Lambda"}}}, "`seed`"),
        ({"class_name": "os.system", "config": {}}, "Unknown initializer"),
        ({"config": {}}, "class_name"),
    ],
)
def test_bad_config_dicts_are_rejected(config, fragment):
    with pytest.raises(ValueError, match=fragment):
        kiz.get(config)


def test_from_config_never_executes_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = {
        "class_name": "__lambda__",
        "config": {"code": f"open({str(marker)!r}, 'w')", "defaults": None, "closure": None},
    }
    for config in (
        {"class_name": "HeNormal", "config": {"seed": payload}},
        {"class_name": "Constant", "config": {"value": payload}},
        {
            "class_name": "keras_initzoo>GlorotUniform",
            "config": {"input_axes": payload, "output_axes": [1]},
        },
    ):
        with pytest.raises(ValueError):
            kiz.get(config)
    assert not marker.exists()


# -- property tests ---------------------------------------------------------

dims = st.integers(min_value=-2, max_value=5) | st.sampled_from([2.5, None, True])
shapes = st.lists(dims, min_size=0, max_size=4).map(tuple)
dtypes = st.sampled_from(["float16", "bfloat16", "float32", "float64", "int32", "bool", None])
numbers = st.sampled_from([-1.0, 0.0, 1e-3, 0.5, 2.0, float("nan"), float("inf"), "1", None])


@st.composite
def configs(draw):
    alias = draw(st.sampled_from(ALIASES))
    cls = kiz.registry.ALIASES[alias]
    arguments = {}
    for name in cls._constructor_arguments():
        if name in {"seed", "input_axes", "output_axes"} or draw(st.booleans()):
            continue
        if name == "mode":
            arguments[name] = draw(st.sampled_from(["fan_in", "fan_out", "fan_avg", "x"]))
        elif name == "distribution":
            arguments[name] = draw(st.sampled_from(["uniform", "normal", "truncated_normal", "x"]))
        elif name == "column_axis":
            arguments[name] = draw(st.integers(min_value=-5, max_value=5))
        else:
            arguments[name] = draw(numbers)
    arguments["seed"] = draw(st.none() | st.integers(min_value=-3, max_value=2**33))
    return cls, arguments


@settings(max_examples=150, deadline=None)
@given(configs(), shapes, dtypes)
def test_any_input_gives_a_valid_tensor_or_a_value_error(config, shape, dtype):
    cls, arguments = config
    try:
        initializer = cls(**arguments)
        value = initializer(shape, dtype=dtype)
    except ValueError:
        return
    # no error: the shape, the dtype and the finiteness must all be right
    assert tuple(value.shape) == shape
    expected = dtype or keras.config.floatx()
    assert keras.backend.standardize_dtype(value.dtype) == expected
    assert np.isfinite(np.asarray(value, dtype="float64")).all()
    # and the config round-trips through JSON
    restored = cls.from_config(json.loads(json.dumps(initializer.get_config())))
    assert restored == initializer
