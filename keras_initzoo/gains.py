"""Gains: the factor that keeps an activation's output variance equal to its input's.

A layer ``y = f(W x)`` with ``Var(W) = gain**2 / fan_in`` keeps the second
moment of the signal constant through depth when ``gain**2 = 1 / E[f(z)**2]``
for ``z ~ N(0, 1)``. The closed forms here follow He et al. (2015) for the
rectifier family and the conventions of Glorot & Bengio (2010) and Klambauer
et al. (2017) for the rest.
"""

from __future__ import annotations

import math

from keras_initzoo._validation import check_in_range

# gain for activations whose gain needs no parameter
_FIXED_GAINS = {
    "linear": 1.0,
    "identity": 1.0,
    "sigmoid": 1.0,
    "softmax": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 1.0,  # LeCun normal is what makes SELU self-normalizing
}


def leaky_relu_gain(negative_slope: float = 0.0) -> float:
    """Gain of a leaky ReLU with slope ``a`` below zero: ``sqrt(2 / (1 + a**2))``.

    ``a = 0`` is the plain ReLU (gain ``sqrt(2)``), ``a = 1`` the identity.

    Reference: He et al., "Delving Deep into Rectifiers", ICCV 2015, eq. (15).
    """
    negative_slope = check_in_range("negative_slope", negative_slope, 0.0, 1.0)
    return math.sqrt(2.0 / (1.0 + negative_slope**2))


def calculate_gain(activation: str, negative_slope: float | None = None) -> float:
    """Returns the recommended gain for ``activation``.

    ================  ==========================
    activation        gain
    ================  ==========================
    linear, identity  1
    sigmoid, softmax  1
    tanh              5/3
    relu              sqrt(2)
    leaky_relu        sqrt(2 / (1 + a**2))
    selu              1 (LeCun; Klambauer 2017)
    ================  ==========================

    Example:

    >>> round(calculate_gain("leaky_relu", 0.2), 4)
    1.3868
    """
    if activation == "leaky_relu":
        return leaky_relu_gain(0.01 if negative_slope is None else negative_slope)
    if activation not in _FIXED_GAINS:
        raise ValueError(
            "`activation` must be one of "
            f"{sorted([*_FIXED_GAINS, 'leaky_relu'])}; received activation={activation!r}."
        )
    if negative_slope is not None:
        raise ValueError(
            f"`negative_slope` applies only to activation='leaky_relu'; "
            f"received activation={activation!r}, negative_slope={negative_slope!r}."
        )
    return _FIXED_GAINS[activation]
