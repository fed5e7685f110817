"""Gains: the weight-scale factor that makes unit pre-activation variance a fixed point.

In ``y = f(W x)`` with ``Var(W) = gain**2 / fan_in`` (mean zero), the next
pre-activation has variance ``gain**2 * E[x**2]`` whatever the mean of ``x``, so
the pre-activation variance ``q`` maps to ``q' = gain**2 * E[f(sqrt(q) z)**2]``,
``z ~ N(0, 1)``. ``gain**2 = 1 / E[f(z)**2]`` makes ``q = 1`` a fixed point.

- :func:`gain` computes that exact gain by quadrature for any Keras activation
  or elementwise callable.
- :func:`nf_gamma` computes ``1 / std(f(z))``, the constant normalizer-free
  networks multiply an activation by, the same way.
- :func:`calculate_gain` is PyTorch's ``torch.nn.init.calculate_gain`` table,
  value for value, for code ported from PyTorch.

They agree on linear (1), relu (``sqrt(2)``) and leaky_relu
(``sqrt(2 / (1 + a**2))``) and differ where PyTorch's entry is not the
second-moment gain:

==========  =======  =========================================================
activation  PyTorch  exact ``gain``
==========  =======  =========================================================
tanh        5/3      1.5925
sigmoid     1        1.8462 (E[f²] = 0.2934, mostly the mean's (1/2)²)
selu        3/4      1 (Klambauer et al. chose its constants for E[f²] = 1)
gelu        none     1.5335 (erf form)
silu        none     1.6765
==========  =======  =========================================================

A fixed point need not attract. For tanh the map's slope at ``q = 1`` is 0.46,
so deep stacks settle (at ``q = 1.18`` with 5/3). For GELU (1.14) and SiLU
(1.17) it repels: with the exact gain the signal drifts away, with He's
``sqrt(2)`` it vanishes, and no constant gain keeps it level
(``examples/06_exact_gains.py``).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np

from keras_initzoo import _keras_internals as internals
from keras_initzoo._validation import check_finite, check_non_negative, check_squarable

# PyTorch's torch.nn.init.calculate_gain table, verbatim.
_TORCH_LINEAR = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
_TORCH_GAINS = {
    **dict.fromkeys(_TORCH_LINEAR, 1.0),
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4.0,  # PyTorch's value, found empirically (pytorch/pytorch#50664)
}
_TORCH_NONLINEARITIES = (*_TORCH_GAINS, "leaky_relu")

# Quadrature for E[f(z)^2]: Gauss-Legendre of order _ORDER on panels of width _PANEL over
# [-_Z_MAX, _Z_MAX]; phi(12) ~ 5e-32, so truncation costs < 1e-20 even for exp. Keras' kinks
# and jumps (0, +-0.5, +-1, +-3, 6) fall on panel edges. Each panel's error is estimated from
# the last two Legendre coefficients of its integrand (an overestimate, by 5-100x in tests);
# panels over the budget are bisected and evaluated again, so a callable's off-grid kink or
# jump still gets _TOL. Smooth-per-panel integrands, every Keras activation's among them,
# estimate ~1e-16 and need the one evaluation only.
_Z_MAX = 12.0
_LARGEST = 1e150  # |f(z)| past this: f(z)**2 times the weights overflows float64
_PANEL = 0.25
_ORDER = 16
_TOL = 1e-9  # estimated relative error allowed in E[f(z)^2]
_MAX_SPLITS = 50  # a jump needs ~30 bisections; 0.25 / 2**50 is below float64 spacing
_MAX_PANELS = 2**14  # 262144 nodes: enough for hundreds of jumps, bounded for noise
_LEGENDRE = np.polynomial.legendre.leggauss(_ORDER)
# Row i maps samples at the nodes to Legendre coefficient i: c_i = (2i + 1)/2 sum w P_i g.
_TO_COEFFS = (
    np.polynomial.legendre.legvander(_LEGENDRE[0], _ORDER - 1).T
    * _LEGENDRE[1]
    * (np.arange(_ORDER)[:, None] + 0.5)
)
_NOT_ACTIVATIONS = ("get", "serialize", "deserialize")


def leaky_relu_gain(negative_slope: float = 0.0) -> float:
    """Gain of a leaky ReLU with slope ``a`` below zero: ``sqrt(2 / (1 + a**2))``.

    ``a = 0`` is the plain ReLU (gain ``sqrt(2)``), ``a = 1`` the identity.
    Any finite ``a >= 0`` is taken, as PyTorch's ``kaiming_*_(a=...)`` does:
    ``a = sqrt(5)`` gives gain ``sqrt(1/3)``, PyTorch's default for
    ``nn.Linear`` and ``nn.Conv*`` (:class:`keras_initzoo.TorchDefault`).

    Args:
        negative_slope: the slope ``a`` below zero, a finite number >= 0
            (default 0.0: the plain ReLU). Keras' ``leaky_relu`` defaults to 0.2,
            PyTorch's ``LeakyReLU`` to 0.01.

    Returns:
        The gain, a Python float.

    Examples:
        >>> round(leaky_relu_gain(0.2), 6)
        1.38675
        >>> round(leaky_relu_gain(math.sqrt(5)) ** 2, 6)   # 2 / (1 + 5)
        0.333333

    Reference: He et al., "Delving Deep into Rectifiers", ICCV 2015, eq. (15).
    """
    negative_slope = check_squarable(
        "negative_slope", check_non_negative("negative_slope", negative_slope)
    )
    return math.sqrt(2.0 / (1.0 + negative_slope**2))


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's ``torch.nn.init.calculate_gain``, value for value.

    ======================================  =====================================
    nonlinearity                            gain
    ======================================  =====================================
    linear, conv{1,2,3}d,                   1
    conv_transpose{1,2,3}d
    sigmoid                                 1
    tanh                                    5/3
    relu                                    sqrt(2)
    leaky_relu                              sqrt(2 / (1 + param**2)),
                                            ``param`` default 0.01
    selu                                    3/4
    ======================================  =====================================

    For code ported from PyTorch. Where it differs from the exact second-moment
    gain of :func:`gain`:

    - tanh: 5/3 ≈ 1.6667 (chosen by hand; PyTorch gives no derivation) vs
      1.5925. Tanh's fixed point attracts, so 5/3 only moves it: deep stacks
      settle at pre-activation variance 1.18 instead of 1.
    - sigmoid: 1 vs 1.8462. The exact gain counts the output's mean 1/2, which
      feeds the next layer's variance; with 1, deep stacks settle at 0.26.
    - selu: 3/4 vs 1. PyTorch chose 3/4 empirically for steadier gradients in
      rectangular layers (pytorch/pytorch#24991, #50664); its docs say to use
      ``nonlinearity="linear"`` (variance ``1 / fan_in``) for self-normalizing
      nets. With 3/4 deep stacks settle at variance 0.023, not 1.
    - gelu, silu: no entry (1.5335 and 1.6765 exact); PyTorch's ``kaiming_*_``
      take no custom gain either (pytorch/pytorch#54030).

    ``param`` is leaky_relu's negative slope: any finite real number, negative
    or above 1 included as in PyTorch, but not a bool. Unlike PyTorch, inf and
    nan are rejected (PyTorch returns 0 and nan) and NumPy scalars accepted.
    Other nonlinearities take ``param=None`` or ``0``, which PyTorch's
    ``kaiming_normal_(a=0, nonlinearity=...)`` passes; PyTorch ignores any other
    value there, which hides a mistake, so it is rejected here.

    Args:
        nonlinearity: a name in the table above, as PyTorch spells it
            (``"conv2d"``, ``"leaky_relu"``, ...).
        param: leaky_relu's negative slope (default None: PyTorch's 0.01);
            None or 0 for every other nonlinearity.

    Returns:
        PyTorch's gain, a Python float.

    Raises:
        ValueError: for a name not in the table, a ``param`` that is not a
            finite number, or a non-zero ``param`` with another nonlinearity.

    Examples:
        >>> round(calculate_gain("leaky_relu", 0.2), 4)
        1.3868
        >>> calculate_gain("selu")
        0.75

    Reference: ``torch.nn.init.calculate_gain``,
    https://pytorch.org/docs/stable/nn.init.html
    """
    if not isinstance(nonlinearity, str) or nonlinearity not in _TORCH_NONLINEARITIES:
        raise ValueError(
            f"`nonlinearity` must be one of {list(_TORCH_NONLINEARITIES)} (PyTorch's "
            f"calculate_gain table); received nonlinearity={nonlinearity!r}. For any "
            "other activation use keras_initzoo.gain(activation), the exact gain."
        )
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else check_finite("param", param, "a finite number")
        check_squarable("param", slope)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if param is not None and check_finite("param", param) != 0.0:
        raise ValueError(
            "`param` is leaky_relu's negative_slope and applies only to "
            f"nonlinearity='leaky_relu'; received nonlinearity={nonlinearity!r}, "
            f"param={param!r}."
        )
    return _TORCH_GAINS[nonlinearity]


def gain(activation: str | Callable[..., Any], **params: Any) -> float:
    """The exact gain ``g = 1 / sqrt(E[f(z)**2])``, ``z ~ N(0, 1)``, of an activation.

    ``E[f(z)**2] = ∫ f(z)² φ(z) dz``; with ``Var(W) = g**2 / fan_in`` it makes
    unit pre-activation variance a fixed point of ``x -> f(W x)``. ``activation``
    is a name ``keras.activations.get`` resolves ("relu", "gelu", "swish", ...)
    or an elementwise callable on float64 NumPy arrays; ``params`` go to it as
    keyword arguments. Keras' defaults apply: ``"gelu"`` is the erf form
    (``approximate=False``, 1.5335; ``approximate=True`` gives 1.5336) and
    ``"leaky_relu"`` has ``negative_slope=0.2``.

    No sampling: Gauss-Legendre of order 16 on panels of width 1/4 over
    [-12, 12], with edges also at every numeric parameter ``v`` and ``-v``, from
    one float64 evaluation of ``f`` on all the nodes. Every Keras activation is
    smooth inside those panels and integrates to ~1e-15. Panels whose
    estimated error exceeds 1e-9 (a callable's kink or jump elsewhere) are
    bisected and evaluated again, which measured ~1e-11. Results are cached
    for names and hashable callables with hashable parameters.

    The second moment counts the mean: sigmoid's E[f²] = 0.2934 is mostly
    (1/2)², so its gain, 1.8462, keeps the forward signal, not the gradient
    (sigmoid' <= 1/4). For GELU, SiLU and others that are ~x/2 near 0 and ~relu
    far out, the fixed point repels: with this gain a deep stack drifts up, with
    He's sqrt(2) it vanishes; see ``examples/06_exact_gains.py``.

    Args:
        activation: a name ``keras.activations.get`` resolves, or an
            elementwise callable on float64 NumPy arrays.
        **params: keyword arguments of the activation (none by default: its
            own defaults), e.g. ``negative_slope=0.1`` for leaky_relu.

    Returns:
        ``g``, a Python float (to about 1e-9 relative for Keras' activations).

    Raises:
        ValueError: if ``activation`` is neither a known name nor an
            elementwise callable, or ``params`` do not fit it or are not finite.

    Examples:
        >>> round(gain("relu"), 6)
        1.414214
        >>> round(gain("leaky_relu"), 6)  # Keras' default negative_slope=0.2
        1.38675
        >>> round(gain("leaky_relu", negative_slope=0.1), 6)
        1.407195
        >>> round(gain("tanh"), 4), round(gain("gelu"), 4), round(gain("silu"), 4)
        (1.5925, 1.5335, 1.6765)
        >>> round(gain(lambda x: np.maximum(x, 0.0)), 6)
        1.414214

    Reference: He et al., "Delving Deep into Rectifiers", ICCV 2015, sec. 2.2
    (the second-moment argument); Klambauer et al., "Self-Normalizing Neural
    Networks", NeurIPS 2017 (E[selu(z)²] = 1).
    """
    key = (activation, tuple(sorted(params.items())))
    try:
        hash(key)
    except TypeError:  # unhashable callable or parameter value: compute afresh
        return _gain(activation, params)
    return _cached_gain(*key)


def nf_gamma(activation: str | Callable[..., Any], **params: Any) -> float:
    """The NF-net constant ``gamma = 1 / std(f(z))``, ``z ~ N(0, 1)``, of an activation.

    ``Var f(z) = E[f(z)**2] - E[f(z)]**2`` with both moments integrated
    exactly (no sampling), on the same panels and nodes as :func:`gain`.
    Normalizer-free networks (NF-ResNets, NFNets) multiply each activation by
    ``gamma`` so that, with scaled weight-standardized layers
    (:class:`keras_initzoo.layers.WSConv2D`), a unit-variance pre-activation
    gives a unit-variance residual branch. It differs from :func:`gain`
    (``1 / sqrt(E[f(z)**2])``) by the mean: weight standardization removes the
    mean of each unit's weights, so the mean of ``f(z)`` no longer reaches
    the next layer and only the variance counts.

    ``relu`` gives ``1 / sqrt(1/2 - 1/(2 pi)) = 1.7128586``. DeepMind's NFNets
    code uses 1.7139588594, 1.7015043497 (gelu), 1.7881293297 (silu) and
    1.5939117670 (tanh), estimated from random samples: each is off by
    6e-4 to 1.4e-3 (up to 0.09 %), where these are exact to about 1e-9.

    Examples:
        >>> round(nf_gamma("relu"), 7)
        1.7128586
        >>> round(1 / math.sqrt(0.5 - 1 / (2 * math.pi)), 7)
        1.7128586
        >>> round(nf_gamma("gelu"), 4), round(nf_gamma("silu"), 4), round(nf_gamma("tanh"), 4)
        (1.7009, 1.7872, 1.5925)
        >>> round(nf_gamma("leaky_relu", negative_slope=0.1), 4)
        1.6306

    Args:
        activation: a name ``keras.activations.get`` resolves ("relu", "gelu",
            "silu", ...) or an elementwise callable on float64 NumPy arrays.
            Keras' defaults apply: ``"gelu"`` is the erf form
            (``approximate=True`` gives the tanh form), ``"leaky_relu"`` has
            ``negative_slope=0.2``.
        **params: keyword arguments of the activation, e.g.
            ``approximate=True`` for gelu, ``negative_slope=0.1`` for leaky_relu.

    Returns:
        ``gamma`` as a Python float, accurate to about 1e-9 relative for every
        Keras activation.

    Raises:
        ValueError: for an unknown activation name, a non-elementwise or
            non-callable ``activation``, parameters it does not take, values
            that are not finite, or an activation that is constant (zero
            variance, so no ``gamma``).

    Reference: Brock, De and Smith, "Characterizing signal propagation to
    close the performance gap in unnormalized ResNets", ICLR 2021 (the
    scaled activation ``gamma * f``); the constants of DeepMind's reference code,
    ``nfnets/base.py`` in google-deepmind/deepmind-research.
    """
    key = (activation, tuple(sorted(params.items())))
    try:
        hash(key)
    except TypeError:  # unhashable callable or parameter value: compute afresh
        return _nf_gamma(activation, params)
    return _cached_nf_gamma(*key)


@functools.lru_cache(maxsize=256)
def _cached_nf_gamma(activation: str | Callable[..., Any], items: tuple) -> float:
    return _nf_gamma(activation, dict(items))


def _nf_gamma(activation: str | Callable[..., Any], params: dict[str, Any]) -> float:
    fn, label = _resolve(activation)
    described = label + "".join(f", {k}={v!r}" for k, v in params.items())
    _check_params(fn, params, label)
    mean, second_moment = _moments(fn, params, described, with_mean=True)
    variance = second_moment - mean * mean
    # Below _TOL * E[f^2] the difference is the quadrature's error, not a variance.
    if not variance > _TOL * second_moment:
        raise ValueError(
            f"{described} is constant on N(0, 1) (Var f(z) = {variance:.3g} with "
            f"E[f(z)^2] = {second_moment:.6g}): no gamma brings its standard deviation to 1."
        )
    return 1.0 / math.sqrt(variance)


@functools.lru_cache(maxsize=256)
def _cached_gain(activation: str | Callable[..., Any], items: tuple) -> float:
    return _gain(activation, dict(items))


def _gain(activation: str | Callable[..., Any], params: dict[str, Any]) -> float:
    fn, label = _resolve(activation)
    described = label + "".join(f", {k}={v!r}" for k, v in params.items())
    _check_params(fn, params, label)
    second_moment = _second_moment(fn, params, described)
    if not second_moment > 0.0:
        raise ValueError(
            f"{described} is zero at every quadrature node in [-{_Z_MAX:g}, {_Z_MAX:g}]: "
            "E[f(z)^2] = 0, so no gain brings its second moment to 1."
        )
    return 1.0 / math.sqrt(second_moment)


def _resolve(activation: object) -> tuple[Callable[..., Any], str]:
    """The activation function and how errors name it."""
    if isinstance(activation, str):
        try:
            return keras.activations.get(activation), f"activation={activation!r}"
        except ValueError:
            names = [
                n
                for n in dir(keras.activations)
                if not n.startswith("_") and n not in _NOT_ACTIVATIONS
            ]
            close = difflib.get_close_matches(activation.lower(), names, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                "`activation` must be the name of a Keras activation or an elementwise "
                f"callable; received activation={activation!r}.{hint} Names: {names}."
            ) from None
    if callable(activation):
        return activation, f"activation={getattr(activation, '__name__', activation)!r}"
    raise ValueError(
        "`activation` must be the name of a Keras activation or an elementwise callable; "
        f"received activation={activation!r} of type {type(activation).__name__}."
    )


def _check_params(fn: Callable[..., Any], params: dict[str, Any], label: str) -> None:
    """Names in ``params`` the activation does not take, or required ones it lacks."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # ufuncs and builtins: the call itself will tell
        return
    if isinstance(getattr(fn, "__module__", None), str) and fn.__module__.startswith("keras"):
        for key, value in params.items():  # a list would be broadcast, or its first entry used
            if np.ndim(value) != 0:
                raise ValueError(
                    f"{label}'s parameter `{key}` must be a single number; received "
                    f"{key}={value!r}."
                )
    kinds = inspect.Parameter
    rest = list(signature.parameters.values())[1:]  # the first one takes the input
    if any(p.kind is kinds.VAR_KEYWORD for p in rest):
        return
    takes = [p for p in rest if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)]
    unknown = sorted(set(params) - {p.name for p in takes})
    missing = [p.name for p in takes if p.default is p.empty and p.name not in params]
    if unknown or missing:
        problem = f"does not take {unknown}" if unknown else f"also needs {missing}"
        raise ValueError(
            f"{label} {problem}: its parameters are {[p.name for p in takes]}; "
            f"received params={params!r}."
        )


def _second_moment(fn: Callable[..., Any], params: dict[str, Any], described: str) -> float:
    """E[f(z)^2] by adaptive panel Gauss-Legendre (see the constants above)."""
    return _moments(fn, params, described, with_mean=False)[1]


def _moments(
    fn: Callable[..., Any], params: dict[str, Any], described: str, with_mean: bool
) -> tuple[float, float]:
    """``(E[f(z)], E[f(z)^2])`` from the same evaluations of ``f`` on the same panels.

    E[f(z)^2] is converged to ``_TOL`` relative. With ``with_mean``, E[f(z)] is
    converged too, to ``_TOL * sqrt(E[f(z)^2])`` absolute (it may be 0, as for
    odd activations); without, the panels are split exactly as for E[f^2] alone
    and the mean returned is not converged.
    """
    edges = np.arange(-_Z_MAX, _Z_MAX + _PANEL / 2, _PANEL)
    # A numeric parameter is often where the activation bends or jumps (relu's threshold
    # and max_value, threshold's threshold): make it, and its negative, a panel edge.
    cuts = [abs(float(v)) for v in params.values() if _is_number(v) and abs(v) < _Z_MAX]
    edges = np.unique(np.concatenate([edges, cuts, np.negative(cuts)]))
    left, right = edges[:-1], edges[1:]
    values = _evaluate(fn, _nodes(left, right), params, described, probe=True)
    integral, error = _panel_rule(left, right, values)
    for _ in range(_MAX_SPLITS):
        total = integral.sum(axis=0)
        budget = _TOL * total[1], _TOL * math.sqrt(max(total[1], 0.0))
        converged = error[:, 1].sum() <= budget[0]
        split = error[:, 1] > budget[0] / len(error)
        if with_mean:
            converged = converged and error[:, 0].sum() <= budget[1]
            split |= error[:, 0] > budget[1] / len(error)
        if converged:
            return float(total[0]), float(total[1])
        if len(error) + split.sum() > _MAX_PANELS:
            break
        mid = (left[split] + right[split]) / 2.0
        halves = np.concatenate([left[split], mid]), np.concatenate([mid, right[split]])
        values = _evaluate(fn, _nodes(*halves), params, described, probe=False)
        new_integral, new_error = _panel_rule(*halves, values)
        keep = ~split
        left = np.concatenate([left[keep], halves[0]])
        right = np.concatenate([right[keep], halves[1]])
        integral = np.concatenate([integral[keep], new_integral])
        error = np.concatenate([error[keep], new_error])
    what = "E[f(z)] and E[f(z)^2]" if with_mean else "E[f(z)^2]"
    raise ValueError(
        f"{described} is too irregular to integrate: with {len(error)} panels the estimated "
        f"relative error of {what} is still {error[:, 1].sum() / integral[:, 1].sum():.1e}"
        + (f" and {error[:, 0].sum() / math.sqrt(integral[:, 1].sum()):.1e}." if with_mean else ".")
    )


def _nodes(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Gauss-Legendre nodes of every panel, one row per panel, flattened."""
    return ((left + right)[:, None] / 2.0 + (right - left)[:, None] / 2.0 * _LEGENDRE[0]).ravel()


def _panel_rule(
    left: np.ndarray, right: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each panel's integrals of f(z) phi(z) and f(z)^2 phi(z) (columns 0 and 1), and their
    error estimates."""
    nodes = _nodes(left, right)
    weighted = values * np.exp(-0.5 * nodes**2) / math.sqrt(2.0 * math.pi)
    # (panels, 2, order): the integrands f phi and f^2 phi at each panel's nodes
    integrand = np.stack([weighted, values * weighted], axis=-1).reshape(-1, _ORDER, 2)
    integrand = integrand.transpose(0, 2, 1)
    half = ((right - left) / 2.0)[:, None]
    coeffs = integrand @ _TO_COEFFS.T
    return half * (integrand @ _LEGENDRE[1]), half * np.abs(coeffs[..., -2:]).sum(axis=-1)


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


@contextlib.contextmanager
def _float64_scope() -> Iterator[None]:
    """Lets ``f`` compute in float64 on JAX for the call.

    JAX computes in float32 unless 64-bit values are enabled, and Keras' type
    promotion narrows float64 to float32 on JAX whatever JAX's setting
    (``keras.ops.tanh``, ``sin``, ``sinh``, ``cosh`` and ``arctan`` of a
    float64 array are float32 there, so the quadrature could not reach its
    tolerance for tanh). Both are lifted inside the block and restored after.
    """
    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    narrowing = internals.bit64_to_bit32_dtypes()  # read by keras.backend.result_type each call
    saved = narrowing.get("float64")
    narrowing["float64"] = "float64"
    try:
        with jax.enable_x64(True):
            yield
    finally:
        narrowing["float64"] = saved


def _evaluate(
    fn: Callable[..., Any], nodes: np.ndarray, params: dict[str, Any], described: str, probe: bool
) -> np.ndarray:
    """``f(nodes)`` in float64 from one call; with ``probe``, also checks ``f`` is elementwise.

    The probing call sees a ``(n, 2)`` array: the nodes, and a constant column. An
    elementwise ``f`` maps the constant column to a constant equal to ``f`` at that
    node; softmax-like functions (mixing along an axis) or shape changes (glu) don't.
    """
    k = int(np.argmin(np.abs(nodes - 0.7)))  # any node away from the usual kinks
    inputs = np.stack([nodes, np.full_like(nodes, nodes[k])], axis=1) if probe else nodes
    try:
        with _float64_scope():
            out = fn(inputs, **params)
            out = np.asarray(keras.ops.convert_to_numpy(out) if keras.ops.is_tensor(out) else out)
    except Exception as error:  # the activation's own error, reported against our arguments
        raise ValueError(
            f"{described} failed on a float64 array: {type(error).__name__}: {error}"
        ) from error
    if out.shape != inputs.shape or out.dtype.kind not in "biuf":
        raise ValueError(
            f"{described} must return real numbers of its input's shape; received "
            f"shape {out.shape} and dtype {out.dtype} for input shape {inputs.shape}."
        )
    out = out.astype("float64")
    if np.abs(out).max(initial=0.0) > _LARGEST:
        named = ", ".join(f"`{k}`={v!r}" for k, v in params.items()) or "no parameters"
        raise ValueError(
            f"{described} reaches {np.abs(out).max():.3g} in [-{_Z_MAX:g}, {_Z_MAX:g}]: its "
            f"second moment overflows float64 ({named})."
        )
    if not probe:
        out = out[:, None]
    bad = ~np.isfinite(out[:, 0])
    if bad.any():
        raise ValueError(
            f"{described} returned NaN or infinity at z={nodes[bad][0]:.6g} (one of "
            f"{int(bad.sum())} nodes in [-{_Z_MAX:g}, {_Z_MAX:g}]): E[f(z)^2] is undefined."
        )
    if probe and not np.allclose(out[:, 1], out[k, 0], rtol=1e-12, atol=0.0):
        raise ValueError(
            f"{described} must be elementwise (each unit f of its own pre-activation): "
            "it mixes entries along an axis, as softmax, log_softmax and sparsemax do."
        )
    return out[:, 0]
