"""Bad input gets a ValueError naming the argument; property tests over random input."""

import json
import math

import keras
import numpy as np
import pytest
from conftest import float64_scope
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
        kiz.get("zoo_glorott")
    assert isinstance(keras.initializers.get("zoo_glorot"), kiz.GlorotUniform)


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
# Each example builds one scheme with valid arguments, or with exactly one
# invalid argument, and calls it with a shape and dtype that are valid or not.
# The property: a ValueError comes exactly when something is invalid, and it
# names the argument at fault; otherwise the tensor has the right shape and
# dtype, holds finite numbers and the config round-trips through JSON.

SCHEMES = {info.alias: info for info in kiz.list_initializers()}
POSITIVE = st.floats(min_value=1e-3, max_value=10.0)
FINITE = st.floats(min_value=-10.0, max_value=10.0)
NOT_POSITIVE = st.sampled_from([0.0, -1.0, float("nan"), float("inf"), "1", True])
NOT_FINITE = st.sampled_from([float("nan"), float("inf"), "1", True])
ARGUMENTS = {  # name: (valid values, invalid values)
    "scale": (POSITIVE, NOT_POSITIVE),
    "stddev": (POSITIVE, NOT_POSITIVE),
    "gain": (POSITIVE, NOT_POSITIVE),
    "limit": (POSITIVE, NOT_POSITIVE),
    "epsilon": (st.none() | POSITIVE, NOT_POSITIVE),
    "mean": (FINITE, NOT_FINITE),
    "value": (FINITE, NOT_FINITE),
    # any finite a >= 0, as PyTorch's kaiming_*_(a=...): sqrt(5) is its nn.Linear default
    "negative_slope": (
        st.floats(0.0, 10.0) | st.just(math.sqrt(5.0)),
        st.sampled_from([-0.1, -2.0, float("nan"), float("inf"), "0", True]),
    ),
    "mode": (st.sampled_from(["fan_in", "fan_out"]), st.sampled_from(["fan_sum", 3, None])),
    "distribution": (
        st.sampled_from(["uniform", "normal", "untruncated_normal", "truncated_normal"]),
        st.sampled_from(["cauchy", 1]),
    ),
    "column_axis": (st.sampled_from([-1, 0, 1]), st.sampled_from([1.5, True, "0"])),
    "groups": (st.just(1), st.sampled_from([0, -1, 1.5, True])),
    "sparsity": (st.floats(0.0, 0.95), st.sampled_from([-0.1, 1.5, float("nan"), "0.5"])),
    "activation": (
        st.sampled_from(["relu", "gelu", "tanh", "silu"]),
        st.sampled_from(["nope", 3]),
    ),
    "activation_params": (st.none(), st.just({"bogus": 1.0})),
    "batch_axes": (st.just([]), st.sampled_from([[1.5], "a", [0, 0]])),
    "seed": (
        st.none() | st.integers(0, 2**32 - 1),
        st.sampled_from([-1, 2**33, 1.5, "42", True]),
    ),
}
FIXED = {"input_axes": None, "output_axes": None, "minval": None, "maxval": None}
# TruncatedNormal's bounds are a pair: drawn together, made invalid together
BOUNDS = (
    st.sampled_from([(-2.0, 2.0), (-1.0, 0.5), (0.0, float("inf"))]),
    st.sampled_from([(1.0, 1.0), (2.0, -2.0), (float("nan"), 1.0)]),
)

VALID_SHAPES = st.lists(st.integers(1, 5), min_size=2, max_size=2).map(tuple)
OTHER_SHAPES = st.lists(st.integers(0, 4), min_size=0, max_size=5).map(tuple)
BAD_SHAPES = st.sampled_from([(2, -1), (2.5, 3), (None, 3), (True, 2), "ab", 5])
VALID_DTYPES = st.sampled_from(["float16", "bfloat16", "float32", "float64", None])
BAD_DTYPES = st.sampled_from(["int32", "bool", "complex64", "nope"])


@st.composite
def cases(draw):
    info = SCHEMES[draw(st.sampled_from(sorted(SCHEMES)))]
    names = [n for n in info.cls._constructor_arguments() if n not in info.preset]
    names = [n for n in names if n not in FIXED]
    bad = draw(st.sampled_from([None, None, None, *names]))  # 3 in 4+ examples: all valid
    arguments = {**info.preset}
    for name in names:
        if name in ("lower", "upper"):
            continue
        valid, invalid = ARGUMENTS[name]
        arguments[name] = draw(invalid if name == bad else valid)
    if "lower" in names:
        bounds = draw(BOUNDS[1] if bad in ("lower", "upper") else BOUNDS[0])
        arguments["lower"], arguments["upper"] = bounds
        bad = "lower" if bad in ("lower", "upper") else bad
    shape_kind = draw(st.sampled_from(["valid"] * 6 + ["other", "bad"]))
    shape = draw({"valid": VALID_SHAPES, "other": OTHER_SHAPES, "bad": BAD_SHAPES}[shape_kind])
    dtype_bad = draw(st.integers(0, 7)) == 0
    dtype = draw(BAD_DTYPES if dtype_bad else VALID_DTYPES)
    return info, arguments, bad, shape, shape_kind, dtype, dtype_bad


@settings(max_examples=300, deadline=None)
@given(cases())
def test_value_error_exactly_when_input_is_invalid_and_it_names_the_culprit(case):
    info, arguments, bad, shape, shape_kind, dtype, dtype_bad = case
    if bad is not None:
        with pytest.raises(ValueError, match=f"`{bad}`"):
            info.cls(**arguments)
        return
    initializer = info.cls(**arguments)  # valid arguments never raise
    if shape_kind == "bad" or dtype_bad:
        with pytest.raises(ValueError, match="`shape`|`dtype`"):
            initializer(shape, dtype=dtype)
        return
    try:
        with float64_scope(dtype):
            value = initializer(shape, dtype=dtype)
    except ValueError as error:
        # only shapes a scheme does not define (rank, or an axis it needs) may fail
        assert shape_kind == "other", f"{info.alias} failed on {shape}: {error}"
        assert "`shape`" in str(error) or "`column_axis`" in str(error), str(error)
        return
    assert tuple(value.shape) == shape
    assert keras.backend.standardize_dtype(value.dtype) == (dtype or keras.config.floatx())
    if keras.backend.standardize_dtype(value.dtype) == "bfloat16":
        # TensorFlow cannot convert a 0-d bfloat16 tensor to NumPy; float32 holds every bfloat16
        value = keras.ops.cast(value, "float32")
    assert np.isfinite(np.asarray(keras.ops.convert_to_numpy(value), dtype="float64")).all()
    restored = info.cls.from_config(json.loads(json.dumps(initializer.get_config())))
    assert restored == initializer


def _tiny_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    return model


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: kiz.compute_fans((-1, 3)), "shape"),
        (lambda: kiz.compute_fans((float("nan"), 2)), "shape"),
        (lambda: kiz.compute_fans(("a", 2)), "shape"),
        (lambda: kiz.gain("elu", alpha=[2, 1]), "alpha"),
        (lambda: kiz.nf_gamma("elu", alpha=np.ones(2)), "alpha"),
        (lambda: kiz.GradientNormLogger("runs/x", histogram_bins=10**9), "histogram_bins"),
        (lambda: kiz.GradientNormLogger("a\x00b"), "log_dir"),
        (lambda: kiz.signal_report(None, np.ones((2, 4))), "model"),
        (lambda: kiz.signal_report(_tiny_model(), np.full((2, 4), 1e308)), "x"),
        (lambda: kiz.auto_initialize(_tiny_model(), np.full((2, 4), -1e300)), "data"),
    ],
)
def test_the_issues_bad_inputs_name_their_argument(call, argument):
    """Each was silently wrong or an unclear error (issue 24's fuzz findings)."""
    with pytest.raises(ValueError, match=f"`{argument}"):
        call()


def test_a_nan_loss_is_no_healthy_model():
    """Gradients that are NaN everywhere (a NaN loss) read 'exploding', not 'healthy'
    (control: the same model with finite targets reads healthy)."""
    model = _tiny_model()
    x = np.ones((8, 4), "float32")
    nan_loss = lambda y, y_pred: keras.ops.mean(y_pred) * float("nan")  # noqa: E731
    assert kiz.signal_report(model, x, np.zeros((8, 2)), loss=nan_loss).verdict == "exploding"
    assert kiz.signal_report(model, x, np.zeros((8, 2)), loss="mse").verdict == "healthy"


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: kiz.gain("elu", alpha=1e308), "alpha"),
        (lambda: kiz.GradientNormLogger("runs/x", update_freq=np.array([1, 2])), "update_freq"),
        (lambda: kiz.mup.is_parametrized(3), "model"),
        (lambda: kiz.Report(rows=3), "rows"),
        (lambda: kiz.Report([{"a": 1}], columns=5), "columns"),
        (lambda: kiz.Report(notes=[1]), "notes"),
        (lambda: kiz.Dirac()((2**31, 2**31)), "shape"),  # 16 EiB: refused before allocating
        (lambda: kiz.HeNormal()((2**20, 2**20, 2**10)), "shape"),
    ],
)
def test_more_bad_inputs_name_their_argument(call, argument):
    with pytest.raises((ValueError, TypeError), match=f"`{argument}"):
        call()
