"""kiz.nf_gamma against scipy's adaptive quadrature, the closed form for relu, and bad input.

The references integrate the paper's formulas (scipy.special, not Keras) with
QUADPACK against the normal density, independently of the Gauss-Legendre
panels in ``keras_initzoo.gains``. Control: DeepMind's published relu
constant, sampled rather than integrated, fails the same 1e-6 comparison.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

import keras_initzoo as kiz
from keras_initzoo.gains import _cached_nf_gamma, nf_gamma

TOLERANCE = 1e-6
# nfnets/base.py in google-deepmind/deepmind-research: jax.nn.relu(x) * 1.7139588594436646
DEEPMIND_RELU = 1.7139588594


def _gelu_tanh(z: float) -> float:
    return 0.5 * z * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))


REFERENCES = {
    ("relu", ()): (lambda z: max(z, 0.0), (0.0,)),
    ("gelu", ()): (lambda z: 0.5 * z * (1.0 + special.erf(z / math.sqrt(2.0))), ()),
    ("gelu", (("approximate", True),)): (_gelu_tanh, ()),
    ("silu", ()): (lambda z: z * special.expit(z), ()),
    ("tanh", ()): (math.tanh, ()),
    ("sigmoid", ()): (special.expit, ()),
}


def quad_nf_gamma(f, kinks=()) -> float:
    """1 / std(f(z)), z ~ N(0, 1), by QUADPACK, split at the kinks."""
    edges = [-np.inf, *kinks, np.inf]

    def moment(power: int) -> float:
        return sum(
            integrate.quad(
                lambda z: f(z) ** power * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
                a,
                b,
                epsabs=1e-14,
                epsrel=1e-12,
                limit=200,
            )[0]
            for a, b in zip(edges[:-1], edges[1:], strict=True)
        )

    return 1.0 / math.sqrt(moment(2) - moment(1) ** 2)


@pytest.mark.parametrize("name, params", list(REFERENCES), ids=lambda v: str(v))
def test_matches_scipy_reference(name, params):
    f, kinks = REFERENCES[(name, params)]
    expected = quad_nf_gamma(f, kinks)
    assert abs(nf_gamma(name, **dict(params)) - expected) <= TOLERANCE


def test_relu_closed_form_and_deepmind_control():
    exact = 1.0 / math.sqrt(0.5 - 1.0 / (2.0 * math.pi))
    assert abs(nf_gamma("relu") - exact) <= 1e-12
    assert abs(quad_nf_gamma(REFERENCES[("relu", ())][0], (0.0,)) - exact) <= TOLERANCE
    # The control: the published constant is close (0.06 %), but the comparison
    # every value above passes rejects it.
    assert abs(DEEPMIND_RELU - exact) > TOLERANCE
    assert abs(DEEPMIND_RELU - exact) < 2e-3


def test_gelu_forms_differ_and_variance_not_second_moment():
    # The two GELU forms are different functions: their gammas differ by ~1e-5,
    # well above the tolerance, so the `approximate` parameter really reaches f.
    assert abs(nf_gamma("gelu") - nf_gamma("gelu", approximate=True)) > 5 * TOLERANCE
    # Sigmoid's mean 1/2 makes 1/std far from 1/sqrt(E[f^2]) (kiz.gain).
    assert nf_gamma("sigmoid") > 2.5 * kiz.gain("sigmoid")
    # An odd activation has mean 0: gamma equals the gain there.
    assert abs(nf_gamma("tanh") - kiz.gain("tanh")) <= 1e-12


def test_exported_callable_and_cached():
    assert kiz.nf_gamma is nf_gamma
    _cached_nf_gamma.cache_clear()
    first = nf_gamma("silu")
    assert nf_gamma("silu") == first
    assert _cached_nf_gamma.cache_info().hits == 1
    # An unhashable parameter skips the cache and gives the same value.
    assert nf_gamma(lambda x, slope: np.where(x > 0, x, x * slope[0]), slope=[0.0]) == (
        pytest.approx(nf_gamma("relu"), abs=1e-9)
    )


@pytest.mark.parametrize(
    "activation, params, match",
    [
        ("rellu", {}, r"`activation` must be the name of a Keras activation.*'relu'"),
        (3.0, {}, r"`activation` must be .* type float"),
        ("relu", {"slope": 0.1}, r"does not take \['slope'\]"),
        ("softmax", {}, "must be elementwise"),
        ("leaky_relu", {"negative_slope": float("nan")}, "NaN or infinity"),
        (lambda x: np.full_like(x, 2.0), {}, "constant on N\\(0, 1\\)"),
        (lambda x: np.zeros_like(x), {}, "constant on N\\(0, 1\\)"),
    ],
)
def test_bad_arguments_raise(activation, params, match):
    with pytest.raises(ValueError, match=match):
        nf_gamma(activation, **params)
