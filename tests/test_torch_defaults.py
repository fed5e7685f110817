"""PyTorch's defaults: ``zoo_torch``, He slopes above 1, and ``reinitialize(..., biases="torch")``.

Each torch rule's distribution is checked against the bound worked out here
from torch's own ``reset_parameters`` (not read back from
``keras_initzoo.models.torch_defaults``): no value beyond the bound, the
variance within a tolerance from the sample size, and a Kolmogorov-Smirnov
test at PyTorch's own threshold (p > 1e-4, as in its ``test/nn/test_init.py``).
Then a small model's per-parameter statistics are compared with the same
model built in PyTorch. Seeds are fixed, so each run draws the same numbers.
"""

from __future__ import annotations

import math
import pathlib
import random

import keras
import numpy as np
import pytest
from scipy import stats

import keras_initzoo as kiz
from keras_initzoo.initializers.variance_scaling import TRUNCATED_NORMAL_STDDEV
from keras_initzoo.models import torch_defaults

L = keras.layers
P_MIN = 1e-4  # PyTorch's _is_uniform / _is_normal threshold
# Kurtosis E[x^4] / E[x^2]^2 of each distribution: uniform 9/5, normal 3, and the sum of
# two iid uniforms (triangular) 2.4. The sample variance of n draws has relative standard
# error sqrt((kurtosis - 1) / n); 6 of them bound a fixed-seed check's chance of a false
# alarm at ~1e-9 while still catching a wrong fan (a factor 2 or more in most cases here).
KURTOSIS = {"uniform": 1.8, "triangular": 2.4, "normal": 3.0}


def values(variable) -> np.ndarray:
    return keras.ops.convert_to_numpy(variable).astype("float64").ravel()


def assert_distribution(x: np.ndarray, kind: str, bound: float, what: str) -> None:
    """``x`` is drawn from ``kind`` on ``[-bound, bound]`` (``bound``: std for the normal)."""
    n = x.size
    if kind == "uniform":
        variance, law = bound**2 / 3, stats.uniform(-bound, 2 * bound)
    elif kind == "triangular":  # U[-b/2, b/2] + U[-b/2, b/2]
        variance, law = bound**2 / 6, stats.triang(0.5, loc=-bound, scale=2 * bound)
    else:
        variance, law = bound**2, stats.norm(0.0, bound)
    if kind != "normal":
        # float32 rounding of the limit may put a draw a few ulps past it
        assert np.abs(x).max() <= bound * (1 + 1e-6), f"{what}: max {np.abs(x).max()} > {bound}"
    tolerance = 6 * math.sqrt((KURTOSIS[kind] - 1) / n)
    assert abs(x.var() / variance - 1) <= tolerance, f"{what}: var {x.var()} vs {variance}"
    p_value = stats.kstest(x, law.cdf).pvalue
    assert p_value > P_MIN, f"{what}: not {kind} on ±{bound} (KS p = {p_value:.2e})"


def reinit(layer: keras.layers.Layer, inputs: list) -> dict[str, dict]:
    """Builds ``layer`` on ``inputs``, spoils every variable, reinitializes as torch would.

    Returns the report's rows by variable path inside the layer.
    """
    out = layer(*inputs)
    model = keras.Model(inputs, out)
    for variable in model.weights:  # so that nothing passes by keeping what Keras drew
        variable.assign(keras.ops.full(variable.shape, 7.0, dtype=variable.dtype))
    report = kiz.reinitialize(model, kiz.TorchDefault(seed=12), biases="torch")
    return {row["path"].split("/", 1)[-1]: row for row in report}


def by_name(layer: keras.layers.Layer) -> dict[str, np.ndarray]:
    return {v.path.split("/", 1)[-1]: values(v) for v in layer.weights}


def inv_sqrt(n: int) -> float:
    return 1 / math.sqrt(n)


# Keras layer, its input shapes, {variable: (kind, bound)} from torch's reset_parameters:
# nn.Linear / nn.Conv*: weight and bias U[±1/sqrt(fan_in)], fan_in = weight.size(1) * k.
CASES = {
    "Dense -> nn.Linear(64, 512)": (
        L.Dense(512, name="l"),
        [(64,)],
        {"kernel": ("uniform", inv_sqrt(64)), "bias": ("uniform", inv_sqrt(64))},
    ),
    "Conv2D(groups=4) -> nn.Conv2d(16, 512, 3, groups=4)": (
        L.Conv2D(512, 3, groups=4, name="l"),
        [(8, 8, 16)],  # weight (512, 4, 3, 3): fan_in 36
        {"kernel": ("uniform", inv_sqrt(36)), "bias": ("uniform", inv_sqrt(36))},
    ),
    "Conv2DTranspose -> nn.ConvTranspose2d(8, 512, 3)": (
        L.Conv2DTranspose(512, 3, name="l"),
        [(6, 6, 8)],  # weight (8, 512, 3, 3): torch's fan_in is 512 * 9, not 8 * 9
        {"kernel": ("uniform", inv_sqrt(512 * 9)), "bias": ("uniform", inv_sqrt(512 * 9))},
    ),
    "DepthwiseConv2D -> nn.Conv2d(64, 512, 3, groups=64)": (
        L.DepthwiseConv2D(3, depth_multiplier=8, name="l"),
        [(6, 6, 64)],  # weight (512, 1, 3, 3): fan_in 9
        {"kernel": ("uniform", inv_sqrt(9)), "bias": ("uniform", inv_sqrt(9))},
    ),
    "SeparableConv2D -> depthwise nn.Conv2d(32, 64, 3, groups=32) + nn.Conv2d(64, 512, 1)": (
        L.SeparableConv2D(512, 3, depth_multiplier=2, name="l"),
        [(6, 6, 32)],
        {
            "depthwise_kernel": ("uniform", inv_sqrt(9)),
            "pointwise_kernel": ("uniform", inv_sqrt(64)),
            "bias": ("uniform", inv_sqrt(64)),  # the pointwise conv's bias
        },
    ),
    "Embedding -> nn.Embedding(1000, 64)": (
        L.Embedding(1000, 64, name="l"),
        [],
        {"embeddings": ("normal", 1.0)},
    ),
    # nn.LSTM / GRU / RNN: every weight and bias U[±1/sqrt(hidden)], b_ih + b_hh summed
    "LSTM -> nn.LSTM(32, 128)": (
        L.LSTM(128, name="l"),
        [(5, 32)],
        {
            "lstm_cell/kernel": ("uniform", inv_sqrt(128)),
            "lstm_cell/recurrent_kernel": ("uniform", inv_sqrt(128)),
            "lstm_cell/bias": ("triangular", 2 * inv_sqrt(128)),
        },
    ),
    "GRU(reset_after=True) -> nn.GRU(32, 128)": (
        L.GRU(128, name="l"),
        [(5, 32)],
        {
            "gru_cell/kernel": ("uniform", inv_sqrt(128)),
            "gru_cell/recurrent_kernel": ("uniform", inv_sqrt(128)),
            "gru_cell/bias": ("uniform", inv_sqrt(128)),  # (2, 384): b_ih and b_hh as rows
        },
    ),
    "GRU(reset_after=False): one bias, b_ih + b_hh": (
        L.GRU(128, reset_after=False, name="l"),
        [(5, 32)],
        {"gru_cell/bias": ("triangular", 2 * inv_sqrt(128))},
    ),
    "SimpleRNN -> nn.RNN(32, 512)": (
        L.SimpleRNN(512, name="l"),
        [(5, 32)],
        {
            "simple_rnn_cell/kernel": ("uniform", inv_sqrt(512)),
            "simple_rnn_cell/bias": ("triangular", 2 * inv_sqrt(512)),
        },
    ),
    # nn.MultiheadAttention(128, 4): xavier_uniform_ on in_proj_weight (384, 128), so
    # bound sqrt(6 / (128 + 384)); out_proj an nn.Linear(128, 128); biases zero
    "MultiHeadAttention -> nn.MultiheadAttention(128, 4)": (
        L.MultiHeadAttention(4, 32, name="l"),
        [(10, 128), (10, 128)],
        {
            "query/kernel": ("uniform", math.sqrt(6 / (128 + 3 * 128))),
            "key/kernel": ("uniform", math.sqrt(6 / (128 + 3 * 128))),
            "value/kernel": ("uniform", math.sqrt(6 / (128 + 3 * 128))),
            "attention_output/kernel": ("uniform", inv_sqrt(128)),
        },
    ),
    # kdim = vdim = 64 != 128: separate q_proj (128, 128), k_proj and v_proj (128, 64)
    "MultiHeadAttention, other key dim -> nn.MultiheadAttention(128, 4, kdim=64, vdim=64)": (
        L.MultiHeadAttention(4, 32, name="l"),
        [(10, 128), (10, 64)],
        {
            "query/kernel": ("uniform", math.sqrt(6 / (128 + 128))),
            "key/kernel": ("uniform", math.sqrt(6 / (64 + 128))),
            "value/kernel": ("uniform", math.sqrt(6 / (64 + 128))),
        },
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_torch_rule_draws_its_distribution_within_its_bound(case):
    layer, input_shapes, expected = CASES[case]
    layer = layer.__class__.from_config(layer.get_config())  # a fresh layer per run
    inputs = [keras.Input(shape) for shape in input_shapes] or [keras.Input((8,), dtype="int32")]
    rows = reinit(layer, inputs)
    drawn = by_name(layer)
    for name, (kind, bound) in expected.items():
        assert_distribution(drawn[name], kind, bound, f"{case}: {name}")
        if kind != "normal":
            assert rows[name]["bound"] == pytest.approx(bound, rel=1e-12), name


def test_attention_biases_are_zero_and_norms_ones_and_zeros():
    inputs = keras.Input((10, 32))
    x = L.BatchNormalization(name="bn")(inputs)
    x = L.LayerNormalization(name="ln")(x)
    x = L.MultiHeadAttention(4, 8, name="mha")(x, x)
    x = L.GroupNormalization(4, name="gn")(x)
    x = L.PReLU(name="prelu")(x)
    model = keras.Model(inputs, x)
    for variable in model.weights:
        variable.assign(keras.ops.full(variable.shape, 7.0, dtype=variable.dtype))
    report = kiz.reinitialize(model, "zoo_he", biases="torch")
    expected = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}
    expected |= {"bias": 0.0, "alpha": 0.25}  # MultiheadAttention's biases; nn.PReLU's init
    checked = [v for v in model.weights if v.name in expected]
    for variable in checked:
        assert np.all(values(variable) == expected[variable.name]), variable.path
    assert len(checked) == 4 + 2 + 4 + 2 + 1  # bn, ln, mha's q, k, v, output biases, gn, prelu
    # the normalization layers are no longer noted as left alone
    assert not any("normalization" in note for note in report.notes), report.notes


def test_he_kernels_with_torch_biases():
    model = keras.Sequential([keras.Input((64,)), L.Dense(512, name="d")], name="net")
    report = kiz.reinitialize(model, kiz.HeNormal(seed=3), biases="torch")
    kernel, bias = values(model.layers[0].kernel), values(model.layers[0].bias)
    assert kernel.var() == pytest.approx(2 / 64, rel=6 * math.sqrt(2 / kernel.size))
    assert np.abs(kernel).max() > inv_sqrt(64)  # He's truncated normal, not torch's uniform
    assert_distribution(bias, "uniform", inv_sqrt(64), "bias")
    assert [row["path"] for row in report] == ["net/d/kernel", "net/d/bias"]


@pytest.mark.parametrize("seed", [None, 4])
def test_torch_biases_beside_a_keras_initializer(seed):
    model = keras.Sequential([keras.Input((64,)), L.Dense(512, name="d")], name="net")
    kiz.reinitialize(model, keras.initializers.RandomNormal(stddev=0.01, seed=seed), biases="torch")
    assert_distribution(values(model.layers[0].bias), "uniform", inv_sqrt(64), "bias")
    # the kernel is Keras' draw: 32768 normal draws give its std to 0.4 % (one standard error)
    assert values(model.layers[0].kernel).std() == pytest.approx(0.01, rel=0.03)


def test_unit_forget_bias_is_overridden():
    layer = L.LSTM(128, name="l")  # unit_forget_bias=True puts ones on the forget gate
    reinit(layer, [keras.Input((5, 32))])
    forget = values(layer.cell.bias)[128:256]
    assert np.abs(forget).max() <= 2 * inv_sqrt(128) * (1 + 1e-6)
    assert abs(forget.mean()) < 6 * math.sqrt(2 / 3 / 128 / 128)  # 6 standard errors of 0
    assert layer.get_config()["unit_forget_bias"] is True  # the config is left as it was


def test_biases_zoo_torch_and_false_leave_biases_and_norms_alone():
    model = keras.Sequential(
        [keras.Input((8,)), L.Dense(16, name="d"), L.LayerNormalization()], name="net"
    )
    for variable in model.weights:
        variable.assign(keras.ops.full(variable.shape, 7.0, dtype=variable.dtype))
    report = kiz.reinitialize(model, kiz.TorchDefault(seed=1), biases=False)
    assert np.abs(values(model.layers[0].kernel)).max() <= inv_sqrt(8) * (1 + 1e-6)
    assert all(np.all(values(v) == 7.0) for v in model.weights if v.name != "kernel")
    assert [row["path"] for row in report] == ["net/d/kernel"]


def test_skipped_layers_keep_their_biases_and_norms():
    model = keras.Sequential(
        [
            keras.Input((8,)),
            L.Dense(16, name="d"),
            L.Dense(16, name="frozen"),
            L.BatchNormalization(name="bn"),
        ],
        name="net",
    )
    for variable in model.weights:
        variable.assign(keras.ops.full(variable.shape, 7.0, dtype=variable.dtype))
    kiz.reinitialize(model, "zoo_torch", biases="torch", skip=["frozen", "bn"])
    kept = [v for v in model.weights if v.path.startswith(("net/frozen/", "net/bn/"))]
    assert len(kept) == 6 and all(np.all(values(v) == 7.0) for v in kept)
    assert np.abs(values(model.layers[0].bias)).max() <= inv_sqrt(8) * (1 + 1e-6)


@pytest.mark.parametrize("bad", ["Torch", "zeros", 1, None, "pytorch"])
def test_biases_takes_false_true_or_torch(bad):
    model = keras.Sequential([keras.Input((8,)), L.Dense(4)])
    with pytest.raises(ValueError, match=r"`biases` must be False .* True .* or 'torch'"):
        kiz.reinitialize(model, "zoo_torch", biases=bad)


def test_the_same_seed_gives_the_same_torch_initialization():
    def run():
        keras.backend.clear_session()
        model = keras.Sequential([keras.Input((5, 8)), L.LSTM(16), L.Dense(4)])
        kiz.reinitialize(model, kiz.TorchDefault(seed=7), biases="torch")
        return [values(v) for v in model.weights]

    first, second = run(), run()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert len({a.tobytes() for a in first}) == len(first)  # no two variables alike


# -- zoo_torch on its own, and PyTorch's test_init.py properties of the He classes -----------


@pytest.mark.parametrize("shape, fan_in", [((300, 200), 300), ((3, 3, 40, 64), 360)])
def test_zoo_torch_is_kaiming_uniform_with_a_sqrt5(shape, fan_in):
    drawn = values(kiz.get("zoo_torch")(shape))
    assert_distribution(drawn, "uniform", inv_sqrt(fan_in), f"zoo_torch {shape}")
    assert kiz.TorchDefault().variance(shape) == pytest.approx(1 / (3 * fan_in), rel=1e-12)
    assert kiz.TorchDefault().variance(shape) == pytest.approx(
        kiz.HeUniform(negative_slope=math.sqrt(5)).variance(shape), rel=1e-15
    )


def _torch_suite_cases():
    """PyTorch's test_kaiming_{uniform,normal}: a in (0.1, 2) or the default 0, dims 2 and 4,
    both modes, sides of 20 to 25. The a > 1 cases are the ones [0, 1] used to reject."""
    rng = random.Random(123)  # PyTorch's setUp seeds `random` with 123
    for uniform in (True, False):
        for slope in (0.0, 0.5, 1.5, 2.0):
            for dims in (2, 4):
                for mode in ("fan_in", "fan_out"):
                    sides = [rng.randint(20, 25) for _ in range(dims)]
                    name = "uniform" if uniform else "normal"
                    yield pytest.param(
                        uniform, slope, sides, mode, id=f"{name}-a{slope}-{dims}d-{mode}"
                    )


@pytest.mark.parametrize("uniform, slope, torch_shape, mode", list(_torch_suite_cases()))
def test_pytorch_test_init_kaiming_properties(uniform, slope, torch_shape, mode):
    # PyTorch's layout (out, in, *k) is Keras' (*k, in, out)
    out, inp, *receptive = torch_shape
    shape = (*receptive, inp, out)
    k = math.prod(receptive)
    n = inp * k if mode == "fan_in" else out * k
    expected_std = math.sqrt(2.0 / ((1 + slope**2) * n))  # PyTorch's formula
    cls = kiz.HeUniform if uniform else kiz.HeNormal
    drawn = values(cls(negative_slope=slope, mode=mode, seed=5)(shape))
    if uniform:
        bounds = expected_std * math.sqrt(3.0)
        law = stats.uniform(-bounds, 2 * bounds)
    else:  # the zoo's He normal is truncated at 2 sigma and rescaled to keep the variance
        scale = expected_std / TRUNCATED_NORMAL_STDDEV
        law = stats.truncnorm(-2.0, 2.0, scale=scale)
    assert stats.kstest(drawn, law.cdf).pvalue > P_MIN


# -- a small model against the same model built in PyTorch -----------------------------------


def _keras_model():
    image, tokens = keras.Input((12, 12, 16)), keras.Input((10,), dtype="int32")
    x = L.Conv2D(128, 3, groups=4, name="conv")(image)
    x = L.Conv2DTranspose(64, 3, name="deconv")(x)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.Dense(256, name="fc")(L.GlobalAveragePooling2D()(x))
    t = L.Embedding(500, 128, name="emb")(tokens)
    t = L.LSTM(128, return_sequences=True, name="lstm")(t)
    t = L.GRU(128, return_sequences=True, name="gru")(t)
    t = L.MultiHeadAttention(4, 32, name="mha")(t, t)
    t = L.LayerNormalization(name="ln")(t)
    out = L.Dense(10, name="head")(L.Concatenate()([x, L.GlobalAveragePooling1D()(t)]))
    return keras.Model([image, tokens], out)


def _torch_model(nn):
    return nn.ModuleDict(
        {
            "conv": nn.Conv2d(16, 128, 3, groups=4),
            "deconv": nn.ConvTranspose2d(128, 64, 3),
            "dw": nn.Conv2d(64, 128, 3, groups=64),
            "bn": nn.BatchNorm2d(128),
            "fc": nn.Linear(128, 256),
            "emb": nn.Embedding(500, 128),
            "lstm": nn.LSTM(128, 128, batch_first=True),
            "gru": nn.GRU(128, 128, batch_first=True),
            "mha": nn.MultiheadAttention(128, 4, batch_first=True),
            "ln": nn.LayerNorm(128),
            "head": nn.Linear(384, 10),
        }
    )


def _pairs(model, torch_model):
    """``(name, kind, Keras values in torch's layout, torch values)`` per torch parameter."""
    w = {v.path: keras.ops.convert_to_numpy(v).astype("float64") for v in model.weights}
    t = {k: p.detach().numpy().astype("float64") for k, p in torch_model.named_parameters()}
    t |= {k: b.numpy().astype("float64") for k, b in torch_model.named_buffers() if "running" in k}
    conv = (
        3,
        2,
        0,
        1,
    )  # Keras (*k, in, out) and (*k, out, in) -> torch (out, in, *k) and (in, out, *k)
    qkv = np.concatenate(
        [w[f"mha/{p}/kernel"].reshape(128, 128) for p in ("query", "key", "value")], 1
    )
    qkv_bias = np.concatenate([w[f"mha/{p}/bias"].ravel() for p in ("query", "key", "value")])
    gru_bias = w["gru/gru_cell/bias"]  # (2, 384): b_ih, b_hh
    yield from [
        ("conv.weight", "uniform", w["conv/kernel"].transpose(conv), t["conv.weight"]),
        ("conv.bias", "uniform", w["conv/bias"], t["conv.bias"]),
        ("deconv.weight", "uniform", w["deconv/kernel"].transpose(conv), t["deconv.weight"]),
        ("deconv.bias", "uniform", w["deconv/bias"], t["deconv.bias"]),
        # depthwise (3, 3, 64, 2) -> torch (128, 1, 3, 3), output channel c * 2 + m
        (
            "dw.weight",
            "uniform",
            w["dw/kernel"].reshape(3, 3, 128).transpose(2, 0, 1)[:, None],
            t["dw.weight"],
        ),
        ("dw.bias", "uniform", w["dw/bias"], t["dw.bias"]),
        ("fc.weight", "uniform", w["fc/kernel"].T, t["fc.weight"]),
        ("fc.bias", "uniform", w["fc/bias"], t["fc.bias"]),
        ("emb.weight", "normal", w["emb/embeddings"], t["emb.weight"]),
        ("lstm.weight_ih_l0", "uniform", w["lstm/lstm_cell/kernel"].T, t["lstm.weight_ih_l0"]),
        (
            "lstm.weight_hh_l0",
            "uniform",
            w["lstm/lstm_cell/recurrent_kernel"].T,
            t["lstm.weight_hh_l0"],
        ),
        (
            "lstm.bias_ih_l0 + bias_hh_l0",
            "triangular",
            w["lstm/lstm_cell/bias"],
            t["lstm.bias_ih_l0"] + t["lstm.bias_hh_l0"],
        ),
        ("gru.weight_ih_l0", "uniform", w["gru/gru_cell/kernel"].T, t["gru.weight_ih_l0"]),
        (
            "gru.weight_hh_l0",
            "uniform",
            w["gru/gru_cell/recurrent_kernel"].T,
            t["gru.weight_hh_l0"],
        ),
        ("gru.bias_ih_l0", "uniform", gru_bias[0], t["gru.bias_ih_l0"]),
        ("gru.bias_hh_l0", "uniform", gru_bias[1], t["gru.bias_hh_l0"]),
        ("mha.in_proj_weight", "uniform", qkv.T, t["mha.in_proj_weight"]),
        ("mha.in_proj_bias", "zero", qkv_bias, t["mha.in_proj_bias"]),
        (
            "mha.out_proj.weight",
            "uniform",
            w["mha/attention_output/kernel"].reshape(128, 128).T,
            t["mha.out_proj.weight"],
        ),
        ("mha.out_proj.bias", "zero", w["mha/attention_output/bias"], t["mha.out_proj.bias"]),
        ("bn.weight", "constant", w["bn/gamma"], t["bn.weight"]),
        ("bn.bias", "constant", w["bn/beta"], t["bn.bias"]),
        ("bn.running_mean", "constant", w["bn/moving_mean"], t["bn.running_mean"]),
        ("bn.running_var", "constant", w["bn/moving_variance"], t["bn.running_var"]),
        ("ln.weight", "constant", w["ln/gamma"], t["ln.weight"]),
        ("ln.bias", "constant", w["ln/beta"], t["ln.bias"]),
        ("head.weight", "uniform", w["head/kernel"].T, t["head.weight"]),
        ("head.bias", "uniform", w["head/bias"], t["head.bias"]),
    ]


def test_a_small_model_matches_the_same_model_built_in_pytorch():
    torch = pytest.importorskip("torch", reason="comparing with PyTorch needs torch installed")
    torch.manual_seed(0)
    torch_model = _torch_model(torch.nn)
    model = _keras_model()
    for variable in model.weights:
        variable.assign(keras.ops.full(variable.shape, 7.0, dtype=variable.dtype))
    kiz.reinitialize(model, kiz.TorchDefault(seed=0), biases="torch")
    pairs = list(_pairs(model, torch_model))
    assert len(pairs) == 28
    compared = {name for name, *_ in pairs}
    # every torch parameter is compared (the LSTM's two biases as their sum)
    missing = {k for k, _ in torch_model.named_parameters()} - compared
    assert missing == {"lstm.bias_ih_l0", "lstm.bias_hh_l0"}, missing
    for name, kind, ours, theirs in pairs:
        assert ours.shape == theirs.shape, name
        if kind in ("constant", "zero"):
            np.testing.assert_array_equal(ours, theirs, err_msg=name)
            continue
        # std of n draws has relative standard error sqrt((kurtosis - 1) / (4 n)); the ratio
        # of two independent ones adds their variances; 6 of those standard errors
        tolerance = 6 * math.sqrt((KURTOSIS[kind] - 1) / 4 * (2 / ours.size))
        ratio = ours.std() / theirs.std()
        assert abs(ratio - 1) <= tolerance, (
            f"{name}: std {ours.std():.4g} vs torch {theirs.std():.4g}"
        )
        if kind == "uniform" and ours.size >= 100:
            # the largest of n uniform |draws| lies in [bound (1 - 10/n), bound] but for e^-10
            top, gap = np.abs(ours).max() / np.abs(theirs).max(), 10 / ours.size
            assert 1 - gap <= top <= 1 / (1 - gap), f"{name}: max |w| {top:.4f} x torch's"


def test_readme_table_is_the_rules():
    readme = pathlib.Path(__file__).resolve().parents[1] / "docs/how-to/porting-from-pytorch.md"
    text = readme.read_text(encoding="utf-8")
    table = text.split("<!-- torch-table:start -->", 1)[1].split("<!-- torch-table:end -->")[0]
    assert table.strip() == torch_defaults.markdown_table(), (
        "docs/how-to/porting-from-pytorch.md's torch table is stale: "
        "python -m keras_initzoo.models.torch_defaults"
    )
