"""Adaptive gradient clipping (AGC) for any Keras optimizer, kiz.mup's included.

AGC (Brock et al. 2021, NFNets) clips each output unit's gradient relative to
that unit's weights::

    ||G_i|| > lambda * max(||W_i||, eps)   =>   G_i <- G_i * lambda * max(||W_i||, eps) / ||G_i||

with ``lambda = clipping`` (default 0.01), ``eps = 1e-3`` and ``i`` the output
unit: the norm is taken over every axis but the last for kernels, over the
whole tensor for scalars and vectors (biases, gains; also any tensor with at
most one axis longer than 1), as DeepMind's reference
(``nfnets/agc_optax.py`` in google-deepmind/deepmind-research) does. For
3-D kernels the reference reduces axis 0 only (its Haiku multi-head layout);
Keras' 3-D kernels (Conv1D ``(width, in, out)``, attention output
``(heads, head_dim, out)``) keep the output unit on the last axis, so all
leading axes are reduced here, as for 2-D and 4-D kernels.

Usage::

    opt = kiz.optimizers.adaptive_clipping(keras.optimizers.SGD(0.1, momentum=0.9))
    model.compile(optimizer=opt, loss=...)        # also kiz.mup.Adam(), "adam", ...

Why this shape. :func:`adaptive_clipping` returns the optimizer it is given,
with AGC switched on: its class becomes ``AGC(<its class>)``, a subclass of
its own class and of :class:`AGC`, registered with Keras as
``keras_initzoo>AGC(<registered name of its class>)``, and AGC's settings go
into its config under ``"adaptive_clipping"``. So

- it is the same optimizer, with its own arguments, state and update rule
  (on PyTorch Keras' fused ``torch._foreach`` class where Keras uses one), and
  every ``isinstance`` check still holds: ``kiz.mup``'s multipliers are still
  found, ``LossScaleOptimizer`` wraps it as any optimizer;
- saving is strict and code-free: ``model.save`` writes the class's
  registered name and a config of JSON values, ``keras.models.load_model``
  rebuilds ``AGC(Adam)`` from the registry, and an unknown key or a bad value
  in ``"adaptive_clipping"`` raises ``ValueError`` on loading. Importing
  keras_initzoo registers the AGC class of every optimizer class in
  ``keras.optimizers`` and of ``kiz.mup.Adam``, ``AdamW`` and ``SGD``; for an
  optimizer class of your own call ``kiz.optimizers.agc_class(MyOptimizer)``
  before loading (``adaptive_clipping`` does it when it first meets the class).

A wrapper optimizer (as ``LossScaleOptimizer``) would hide the optimizer's
class from those checks and from Keras' fused PyTorch update; a plain
attribute would not be saved; a callable in the config would be code in the
config.

Where it acts. Keras clips in ``_clip_gradients(grads)``, which sees no
variables; AGC needs the weights. ``_backend_apply_gradients(grads,
trainable_variables)`` is the one method of Keras' optimizer that sees the
gradients with their variables on every backend, before the clipping, the
weight decay and the update (inside JAX's stateless scope, so the weights it
reads are the traced values of that step). It computes each variable's limit
``lambda * max(||W_i||, eps)`` from the weights before the update, and
``_clip_gradients`` applies them, followed by Keras' own ``clipnorm``,
``global_clipnorm`` or ``clipvalue`` if one is set. Both names are private
Keras API; they are overridden in :class:`AGC` only, and
``tests/test_agc.py`` fails if Keras stops calling them.

``GradientNormLogger(log_clipped=True)`` clips the applied gradients outside
the update with :func:`clip_as_applied`. Where it holds the weights from
before the update (JAX: the step's traced values, under a
``LossScaleOptimizer`` too; TensorFlow, when it asks before the update for
``weight_norms`` or ``update_ratio``: the variables) it passes them, and the
limits come from them. Otherwise (PyTorch, and TensorFlow after the update)
the limits of the last update serve, its gradients being the ones asked
about. So the ``grad_norm_clipped/*`` scalars are the AGC-clipped norms of
that step on every backend. A call to ``_clip_gradients`` outside an update
with neither falls back to the weights as they are now (TensorFlow and
PyTorch), or to Keras' clipping alone with a warning (JAX).
"""

from __future__ import annotations

import contextlib
import re
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from keras_initzoo import _keras_internals as internals
from keras_initzoo._validation import check_positive
from keras_initzoo.mup import optimizers as _mup_optimizers

ops = keras.ops

CLIPPING = 0.01
EPS = 1e-3
# The reference's max(||G_i||, 1e-6): it only guards the division (agc_optax.my_clip).
_GRAD_FLOOR = 1e-6
_KEYS = ("clipping", "eps", "exclude")

__all__ = ["AGC", "adaptive_clipping", "agc_class", "clip_unitwise", "unitwise_norm"]


@dataclass(frozen=True)
class _Settings:
    """AGC's settings; a plain object, so Keras' attribute tracker leaves it alone."""

    clipping: float
    eps: float
    exclude: tuple[str, ...]

    def to_config(self) -> dict[str, Any]:
        return {"clipping": self.clipping, "eps": self.eps, "exclude": list(self.exclude)}


def _check_exclude(exclude: object) -> tuple[str, ...]:
    if exclude is None:
        return ()
    if isinstance(exclude, str) or not isinstance(exclude, Sequence):
        raise ValueError(
            "`exclude` must be None or a list of regular expressions searched in each "
            f"variable's path (as Keras' exclude_from_weight_decay); received exclude={exclude!r}."
        )
    for pattern in exclude:
        if not isinstance(pattern, str):
            raise ValueError(
                "`exclude` must list regular expressions (strings); received "
                f"exclude={list(exclude)!r} with {pattern!r}."
            )
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(
                f"`exclude` holds {pattern!r}, not a regular expression ({error}); received "
                f"exclude={list(exclude)!r}."
            ) from None
    return tuple(exclude)


def _settings(clipping: object, eps: object, exclude: object) -> _Settings:
    return _Settings(
        check_positive("clipping", clipping), check_positive("eps", eps), _check_exclude(exclude)
    )


def _settings_from_config(config: object) -> _Settings:
    """The ``"adaptive_clipping"`` entry of an optimizer's config, checked strictly."""
    if config is None:
        return _settings(CLIPPING, EPS, None)
    if not isinstance(config, Mapping) or set(config) - set(_KEYS):
        raise ValueError(
            f"`adaptive_clipping` must be a dict with keys among {list(_KEYS)}; received "
            f"adaptive_clipping={config!r}."
        )
    return _settings(
        config.get("clipping", CLIPPING), config.get("eps", EPS), config.get("exclude")
    )


class _State:
    """Limits of the update in progress and of the last one (not tracked by Keras)."""

    def __init__(self) -> None:
        self.limits: list | None = None  # set during _backend_apply_gradients
        self.last: tuple | None = None  # (limits, shapes, trace context) of the last update
        self.warned = False


# -- the arithmetic ----------------------------------------------------------------------------
def _unit_axes(shape: Sequence[int]) -> tuple[int, ...] | None:
    """The axes of one output unit: all but the last; None (all) for scalars and vectors."""
    if sum(1 for d in shape if d != 1) <= 1:
        return None
    return tuple(range(len(shape) - 1))


def _compute_dtype(x: Any) -> str:
    dtype = keras.backend.standardize_dtype(x.dtype)
    return "float32" if dtype in ("float16", "bfloat16") else dtype


def _norm(x: Any) -> Any:
    x = ops.convert_to_tensor(x)
    x = ops.cast(x, _compute_dtype(x))
    shape = tuple(x.shape)
    axes = _unit_axes(shape)
    if axes is None:  # keepdims with axis=None drops every axis on PyTorch: reshape instead
        return ops.reshape(ops.sqrt(ops.sum(ops.square(x))), (1,) * len(shape))
    return ops.sqrt(ops.sum(ops.square(x), axis=axes, keepdims=True))


def unitwise_norm(x: Any) -> Any:
    """The L2 norm of each output unit of ``x`` (see the module docstring for the axes).

    Examples:
        >>> import numpy as np
        >>> w = np.array([[3.0, 0.0], [4.0, 1.0]])    # (fan_in, units)
        >>> keras.ops.convert_to_numpy(unitwise_norm(w)).tolist()
        [[5.0, 1.0]]
        >>> float(keras.ops.convert_to_numpy(unitwise_norm(np.array([3.0, 4.0]))).item())
        5.0

    Args:
        x: a float tensor, variable or NumPy array.

    Returns:
        The norms, with ``x``'s rank (reduced axes kept with size 1), in
        float32 for 16-bit ``x``.
    """
    return _norm(x)


def _limit(weight: Any, clipping: float, eps: float) -> Any:
    """``clipping * max(||W_i||, eps)`` per output unit."""
    return clipping * ops.maximum(_norm(weight), eps)


def _clip(grad: Any, limit: Any) -> Any:
    grad = ops.convert_to_tensor(grad)
    norm = _norm(grad)
    factor = ops.where(norm < limit, 1.0, limit / ops.maximum(norm, _GRAD_FLOOR))
    return grad * ops.cast(factor, grad.dtype)


def clip_unitwise(grad: Any, weight: Any, clipping: float = CLIPPING, eps: float = EPS) -> Any:
    """AGC of one gradient: each unit's norm at most ``clipping * max(||W_i||, eps)``.

    ``G_i`` is kept where ``||G_i|| < clipping * max(||W_i||, eps)`` and
    otherwise scaled down to that norm. For custom training loops; an
    optimizer from :func:`adaptive_clipping` does this to every gradient.

    Examples:
        >>> import numpy as np
        >>> w = np.array([[3.0, 0.0], [4.0, 0.0]])   # unit norms 5 and 0 (eps: 1e-3)
        >>> g = np.array([[1.0, 1.0], [0.0, 0.0]])
        >>> clipped = keras.ops.convert_to_numpy(clip_unitwise(g, w, clipping=0.1))
        >>> clipped.astype("float64").round(6).tolist()   # limits 0.1 * 5 and 0.1 * 1e-3
        [[0.5, 0.0001], [0.0, 0.0]]

    Args:
        grad: the gradient, a float tensor or array.
        weight: the weights it belongs to, of the same shape.
        clipping: ``lambda``, the largest ratio of gradient to weight norm, > 0.
        eps: the weight norm below which the limit stays ``clipping * eps``,
            > 0, so that zero-initialized weights can still move.

    Returns:
        The clipped gradient, of ``grad``'s shape and dtype.

    Raises:
        ValueError: for ``clipping`` or ``eps`` not > 0, or shapes that differ.

    Reference: Brock, De, Smith and Simonyan, "High-Performance Large-Scale
    Image Recognition Without Normalization", ICML 2021.
    """
    settings = _settings(clipping, eps, None)
    grad, weight = ops.convert_to_tensor(grad), ops.convert_to_tensor(weight)
    if tuple(grad.shape) != tuple(weight.shape):
        raise ValueError(
            "`grad` and `weight` must have the same shape; received "
            f"{tuple(grad.shape)} and {tuple(weight.shape)}."
        )
    return _clip(grad, _limit(weight, settings.clipping, settings.eps))


# -- private Keras and backend access ----------------------------------------------------------
def _trace_context() -> object:
    """What identifies the trace tensors made now belong to; equal within one trace.

    TensorFlow: the graph being built (None when eager); JAX: the current
    trace (``jax.extend.core.get_opaque_trace_state``); PyTorch: None (eager).
    Limits from another trace (a graph traced earlier, a ``cond`` branch)
    cannot be used here.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
    if backend == "jax":
        from jax.extend.core import get_opaque_trace_state

        return get_opaque_trace_state()
    return None


def _weak_refs(tensors: Sequence) -> list | None:
    """Weak references to ``tensors`` (None where a tensor type takes none)."""
    try:
        return [None if t is None else weakref.ref(t) for t in tensors]
    except TypeError:
        return None


def _same_update(last: tuple, grads: list, shapes: list) -> bool:
    """Whether ``grads`` are those of the update ``last`` was made for.

    JAX: the same trace (``GradientNormLogger`` traces its call right after
    the update). PyTorch: always (eager; the logger asks after each update).
    TensorFlow: the same tensor objects (eager or traced; the logger passes
    the applied gradients themselves), or, in a graph, the same graph (under
    a ``tf.distribute`` strategy the logger sums the replicas' parts into new
    tensors). A call before the update (the logger's order when it also
    reads the weights) sees the previous update's tensors, or another
    graph's, and gets no match.
    """
    _, last_shapes, context, refs = last
    if last_shapes != shapes:
        return False
    backend = keras.backend.backend()
    if backend == "torch":
        return True
    if backend == "jax":
        return context == _trace_context()
    if refs is not None and all(
        (r is None and g is None) or (r is not None and r() is g)
        for r, g in zip(refs, grads, strict=True)
    ):
        return True
    return context is not None and context == _trace_context()


@contextlib.contextmanager
def _no_grad() -> Iterator[None]:
    """On PyTorch, reading the weights for the limits must not build an autograd graph."""
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    with torch.no_grad():
        yield


def _public_class(cls: type) -> type:
    """The ``keras.optimizers`` class a backend's class stands for (else ``cls``).

    Private Keras behaviour: on PyTorch ``keras.optimizers.Adam(...)`` returns
    an instance of ``keras.src.backend.torch.optimizers.torch_adam.Adam``
    (``TorchOptimizer.__new__``), a subclass of the public class; the AGC class
    is named, registered and saved after the public one.
    """
    if internals.is_backend_class(cls):
        for base in cls.__mro__[1:]:
            if getattr(keras.optimizers, base.__name__, None) is base:
                return base
    return cls


def _update_class(public: type) -> type:
    """The class Keras instantiates for ``public`` on this backend (its fused one on PyTorch).

    Private Keras behaviour: ``TorchOptimizer.__new__`` swaps Keras' own
    classes for their ``torch._foreach`` versions; ``__new__`` alone (no
    ``__init__``) says which, without importing Keras' private modules.
    """
    if keras.backend.backend() != "torch":
        return public
    return type(public.__new__(public))


def clip_as_applied(
    optimizer: Any, grads: list, variables: Sequence, values: Sequence | None = None
) -> list:
    """``grads`` (of ``variables``) clipped by ``optimizer``'s own rule, as its update does.

    Keras' ``clipnorm``, ``global_clipnorm`` or ``clipvalue``; for an
    :class:`AGC` optimizer, AGC first, its limits from ``values`` (the weights
    before the update, in the order of ``variables``) when given. Without
    them an AGC optimizer pairs the gradients with its last update's limits
    (see the module docstring).

    Args:
        optimizer: the Keras optimizer whose rule applies.
        grads: the gradients, one per variable.
        variables: the variables, in the order of ``grads``.
        values: the variables' values before the update (default None: see
            above).

    Returns:
        The clipped gradients, a list in the order of ``grads``.
    """
    if values is not None and isinstance(optimizer, AGC):
        return optimizer.clip_with_weights(grads, variables, values)
    return internals.clip_gradients(optimizer, grads)


def _wrappers() -> tuple[type, ...]:
    """Optimizers that wrap others and override ``apply``: AGC goes on what they wrap."""
    names = ("LossScaleOptimizer", "MultiOptimizer")  # MultiOptimizer: recent Keras only
    return tuple(getattr(keras.optimizers, n) for n in names if hasattr(keras.optimizers, n))


# -- the optimizer part ------------------------------------------------------------------------
class AGC:
    """The base class of every optimizer with adaptive gradient clipping.

    Get one with :func:`adaptive_clipping` (any optimizer instance) or
    :func:`agc_class` (the class, to construct or to register before
    loading); ``isinstance(optimizer, kiz.optimizers.AGC)`` tells whether
    AGC is on. The classes are ``AGC(<optimizer class>)``, this class first in
    their bases: it takes the optimizer's own arguments and
    ``adaptive_clipping={"clipping": 0.01, "eps": 1e-3, "exclude": []}``.

    Args:
        *args: the wrapped optimizer's positional arguments (``learning_rate``, ...).
        adaptive_clipping: AGC's settings, a dict with keys among
            ``"clipping"`` (``lambda``, > 0, default 0.01), ``"eps"`` (> 0,
            default 1e-3) and ``"exclude"`` (regular expressions of variable
            paths left unclipped, default none), as :func:`adaptive_clipping`
            takes them; default None: all three defaults. Keyword only; it is
            the entry the optimizer's config saves.
        **kwargs: the wrapped optimizer's keyword arguments.

    Raises:
        ValueError: if ``adaptive_clipping`` has other keys or values out of range.
    """

    def __init__(self, *args: Any, adaptive_clipping: Mapping | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _switch_on(self, _settings_from_config(adaptive_clipping))

    @property
    def agc_clipping(self) -> float:
        """``lambda``: the largest ratio of a unit's gradient norm to its weight norm."""
        return self._agc_settings.clipping

    @property
    def agc_eps(self) -> float:
        """The weight norm below which a unit's limit stays ``clipping * agc_eps``."""
        return self._agc_settings.eps

    @property
    def agc_exclude(self) -> tuple[str, ...]:
        """Regular expressions: variables whose path matches one are not clipped."""
        return self._agc_settings.exclude

    def _agc_limits(self, variables: Sequence, values: Sequence | None = None) -> list:
        """Each variable's per-unit limit (None: not clipped), from ``values`` if given
        (the variables' values in a traced step), else from the variables themselves."""
        settings = self._agc_settings
        patterns = [re.compile(p) for p in settings.exclude]
        limits = []
        with _no_grad():
            for variable, value in zip(variables, values or variables, strict=True):
                path = getattr(variable, "path", getattr(variable, "name", ""))
                if any(p.search(path) for p in patterns):
                    limits.append(None)
                else:
                    limits.append(_limit(value, settings.clipping, settings.eps))
        return limits

    def clip_with_weights(self, grads: list, variables: Sequence, values: Sequence) -> list:
        """``grads`` clipped as this optimizer's update clips them, AGC's limits from ``values``.

        ``values`` are the weights of ``variables`` before the update: what
        :class:`~keras_initzoo.GradientNormLogger` has (``log_clipped=True``).

        Args:
            grads: the gradients, one per variable, in the order of ``variables``.
            variables: the trainable variables, whose paths ``exclude`` matches.
            values: the variables' values before the update, one per variable.

        Returns:
            The clipped gradients, a list in the same order: AGC's limit per
            unit, then the optimizer's own ``clipnorm``, ``global_clipnorm``
            or ``clipvalue``.
        """
        state = self._agc_state
        state.limits = self._agc_limits(variables, values)
        try:
            return internals.clip_gradients(self, grads)
        finally:
            state.limits = None

    # Private Keras API (see the module docstring): the only optimizer method that sees
    # the gradients together with their variables, on every backend, before clipping.
    def _backend_apply_gradients(self, grads: list, trainable_variables: list) -> Any:
        state = self._agc_state
        limits = self._agc_limits(trainable_variables)
        shapes = [tuple(v.shape) for v in trainable_variables]
        state.last = (limits, shapes, _trace_context(), _weak_refs(grads))
        state.limits = limits
        try:
            return super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            state.limits = None

    # Private Keras API: where Keras clips (and GradientNormLogger(log_clipped=True) asks).
    def _clip_gradients(self, grads: list) -> list:
        grads = list(grads)
        limits = self._agc_state.limits
        if limits is None or len(limits) != len(grads):
            limits = self._limits_outside_update(grads)
        if limits is not None:
            with _no_grad():
                grads = [
                    g if g is None or limit is None else _clip(g, limit)
                    for g, limit in zip(grads, limits, strict=True)
                ]
        return super()._clip_gradients(grads)

    def _limits_outside_update(self, grads: list) -> list | None:
        """Limits for gradients clipped outside an update (GradientNormLogger's call).

        Those of the last update if ``grads`` are its gradients (see
        :func:`_same_update`); else, on TensorFlow and PyTorch, from the
        weights as they are now; else None, with a warning, where no weights
        can be paired with ``grads``.
        """
        state = self._agc_state
        shapes = [None if g is None else tuple(g.shape) for g in grads]
        if state.last is not None and _same_update(state.last, grads, shapes):
            return state.last[0]
        if keras.backend.backend() != "jax":  # JAX: the variables hold no traced value
            variables = [
                v
                for v in internals.optimizer_trainable_variables(self)
                if not getattr(v, "overwrite_with_gradient", False)
            ]
            if [tuple(v.shape) for v in variables] == shapes:
                return self._agc_limits(variables)
        if not state.warned:
            state.warned = True
            warnings.warn(
                f"{type(self).__name__}: gradients were clipped outside an update with no "
                "weights to pair them with: that result has Keras' clipping only, without "
                "AGC. The updates themselves are clipped. Pass the weights: "
                "kiz.optimizers.clip_as_applied(optimizer, grads, variables, values).",
                stacklevel=2,
            )
        return None

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["adaptive_clipping"] = self._agc_settings.to_config()
        return config


def _switch_on(optimizer: Any, settings: _Settings) -> None:
    optimizer._agc_settings = settings
    if not isinstance(getattr(optimizer, "_agc_state", None), _State):
        optimizer._agc_state = _State()


_CLASSES: dict[type, type] = {}


def agc_class(optimizer_class: type) -> type:
    """The optimizer class with AGC, ``AGC(<class>)``, made and registered once.

    Importing keras_initzoo registers it for every class in
    ``keras.optimizers`` and for ``kiz.mup.Adam``, ``AdamW`` and ``SGD``. For
    an optimizer class of your own (itself registered with Keras), call this
    before ``keras.models.load_model`` reads a model saved with it.

    Examples:
        >>> import keras_initzoo as kiz
        >>> cls = agc_class(keras.optimizers.SGD)
        >>> cls.__name__, keras.saving.get_registered_name(cls)
        ('AGC(SGD)', 'keras_initzoo>AGC(SGD)')
        >>> opt = cls(learning_rate=0.1, adaptive_clipping={"clipping": 0.02})
        >>> opt.get_config()["adaptive_clipping"]
        {'clipping': 0.02, 'eps': 0.001, 'exclude': []}
        >>> agc_class(kiz.mup.Adam).__name__
        'AGC(keras_initzoo.mup>Adam)'

    Args:
        optimizer_class: a subclass of ``keras.optimizers.Optimizer``, not a
            wrapper (``LossScaleOptimizer``, ``MultiOptimizer``).

    Returns:
        The AGC class (the class itself if it already has AGC).

    Raises:
        ValueError: for anything else.
    """
    if not isinstance(optimizer_class, type) or not issubclass(
        optimizer_class, keras.optimizers.Optimizer
    ):
        raise ValueError(
            "`optimizer_class` must be a subclass of keras.optimizers.Optimizer; received "
            f"optimizer_class={optimizer_class!r}."
        )
    if issubclass(optimizer_class, AGC):
        return optimizer_class
    if issubclass(optimizer_class, _wrappers()):
        raise ValueError(
            f"`optimizer_class` must be an optimizer that updates variables itself, not the "
            f"wrapper {optimizer_class.__name__}: switch AGC on for the optimizers it wraps; "
            f"received optimizer_class={optimizer_class!r}."
        )
    public = _public_class(optimizer_class)
    cls = _CLASSES.get(public)
    if cls is None:
        base_name = keras.saving.get_registered_name(public)
        name = f"AGC({base_name})"
        cls = type(
            name,
            (AGC, _update_class(public)),
            {
                "__module__": __name__,
                "__qualname__": name,
                "__doc__": f"{public.__name__} with adaptive gradient clipping (see AGC).",
            },
        )
        keras.saving.register_keras_serializable(package="keras_initzoo", name=name)(cls)
        _CLASSES[public] = cls
    return cls


def adaptive_clipping(
    optimizer: Any,
    clipping: float = CLIPPING,
    eps: float = EPS,
    *,
    exclude: Sequence[str] | None = None,
) -> keras.optimizers.Optimizer:
    """Switches adaptive gradient clipping on for ``optimizer``; returns the same optimizer.

    Each gradient ``G`` of a variable ``W`` is clipped unit-wise before the
    update: ``G_i <- G_i * min(1, clipping * max(||W_i||, eps) / ||G_i||)``
    (norms per output unit, see :func:`unitwise_norm`), then Keras'
    ``clipnorm``, ``global_clipnorm`` or ``clipvalue`` if set, then weight
    decay and the optimizer's update. The weights are those before the
    update. The optimizer's class becomes ``AGC(<its class>)`` and the
    settings are in its config, so the model saves and loads with them (see
    the module docstring). NFNets use ``clipping`` 0.01 to 0.16 (smaller for
    larger batches) and leave the final classifier unclipped:
    ``exclude=["classifier"]`` with the layer named so.

    Examples:
        >>> import keras_initzoo as kiz
        >>> opt = adaptive_clipping(keras.optimizers.SGD(0.1), clipping=0.02)
        >>> type(opt).__name__, isinstance(opt, keras.optimizers.SGD), isinstance(opt, AGC)
        ('AGC(SGD)', True, True)
        >>> opt.get_config()["adaptive_clipping"]
        {'clipping': 0.02, 'eps': 0.001, 'exclude': []}
        >>> type(adaptive_clipping(kiz.mup.Adam())).__name__
        'AGC(keras_initzoo.mup>Adam)'

    Args:
        optimizer: a Keras optimizer not yet built (not yet used to train),
            a name or config ``keras.optimizers.get`` takes (``"adam"``), or a
            ``LossScaleOptimizer``, whose inner optimizer gets AGC.
        clipping: ``lambda``, the largest ratio of a unit's gradient norm to
            its weight norm, a number > 0 (default 0.01).
        eps: the weight norm below which a unit's limit stays
            ``clipping * eps``, > 0 (default 1e-3), so that zero-initialized
            weights and gains can still move.
        exclude: regular expressions; a variable whose path one of them
            matches (``re.search``, as Keras' ``exclude_from_weight_decay``)
            is not clipped. Paths come from layer names: name the layers.

    Returns:
        ``optimizer`` itself (for a name, the optimizer made from it), with
        AGC on. Called again, it replaces the settings.

    Raises:
        ValueError: for an optimizer that is built already (its train step
            may be traced without AGC: compile with a new one), a wrapper
            other than ``LossScaleOptimizer``, anything not an optimizer,
            ``clipping`` or ``eps`` not > 0, or a bad ``exclude``.

    Reference: Brock, De, Smith and Simonyan, "High-Performance Large-Scale
    Image Recognition Without Normalization", ICML 2021; DeepMind's
    ``nfnets/agc_optax.py`` (google-deepmind/deepmind-research).
    """
    settings = _settings(clipping, eps, exclude)
    if isinstance(optimizer, (str, Mapping)):
        optimizer = keras.optimizers.get(optimizer)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        adaptive_clipping(optimizer.inner_optimizer, clipping, eps, exclude=exclude)
        return optimizer
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            "`optimizer` must be a Keras optimizer, a name such as 'adam' or a "
            f"LossScaleOptimizer; received optimizer={optimizer!r}."
        )
    if optimizer.built:
        raise ValueError(
            "`optimizer` is built already (it has been used to train, and its train step "
            "may be compiled without AGC): switch AGC on for a new optimizer and compile "
            f"the model with it; received optimizer={type(optimizer).__name__}."
        )
    cls = agc_class(type(optimizer))
    if type(optimizer) is not cls:
        optimizer.__class__ = cls
    _switch_on(optimizer, settings)
    return optimizer


def _register_known() -> None:
    """The AGC class of every optimizer class in keras.optimizers and of kiz.mup's."""
    known = [
        obj
        for obj in vars(keras.optimizers).values()
        if isinstance(obj, type)
        and issubclass(obj, keras.optimizers.Optimizer)
        and obj is not keras.optimizers.Optimizer
        and not issubclass(obj, _wrappers())
    ]
    known += [_mup_optimizers.Adam, _mup_optimizers.AdamW, _mup_optimizers.SGD]
    for cls in known:
        agc_class(cls)


_register_known()
