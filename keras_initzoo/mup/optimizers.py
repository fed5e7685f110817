"""Keras' Adam, AdamW and SGD with muP's per-variable learning-rate (and epsilon) multipliers.

Each optimizer reads the :class:`~keras_initzoo._records.InfShape` that
:func:`~keras_initzoo.mup.parametrize` left on every variable when it is
built, and keeps each variable's learning-rate and epsilon multipliers, in
the order of the variables it is built on, in its config: Keras saves a
compiled model's optimizer config and rebuilds the optimizer from it on load
(variable attributes are not saved, and variable paths change on loading),
so a loaded model trains on with the same multipliers. Each entry also
keeps the variable's :class:`~keras_initzoo._records.InfShape` (kind,
base shape, width multipliers), which ``build`` puts back on the variables
of a loaded model: the whole-model tools then refuse it, and
``signal_report`` knows its zero readout, as in the process that
parametrized it. The update
itself is Keras' own: variables are grouped by multiplier and each group
goes through the backend's ``_backend_update_step`` with
``learning_rate * multiplier``, inside the jitted stateless step on JAX, the
``tf.function`` (and ``tf.distribute`` merge) on TensorFlow, and through
Keras' fused ``torch._foreach`` update on PyTorch. So schedules,
``LossScaleOptimizer``, ``gradient_accumulation_steps``, EMA and
``GradientNormLogger`` work as with Keras' optimizers.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Mapping

import keras

from keras_initzoo import _keras_internals as internals
from keras_initzoo._records import ATTRIBUTE, InfShape, infshape_of


def _check_multipliers(multipliers: object) -> list[dict]:
    """The config's ``[{"variable", "shape", "learning_rate", "epsilon", "infshape"}, ...]``.

    ``infshape`` (the variable's :class:`InfShape` without path and shape) is
    optional: configs saved before it was kept load without it.
    """
    if multipliers is None:
        return []
    problem = None
    if not isinstance(multipliers, (list, tuple)):
        problem = multipliers
    else:
        for entry in multipliers:
            numbers_ok = isinstance(entry, Mapping) and all(
                isinstance(entry.get(key), numbers.Real)
                and not isinstance(entry.get(key), bool)
                and 0 < entry[key] < float("inf")
                for key in ("learning_rate", "epsilon")
            )
            if not numbers_ok or not isinstance(entry.get("variable"), str):
                problem = entry
                break
    if problem is not None:
        raise ValueError(
            "`multipliers` must list, per variable in the order the optimizer is built on, "
            '{"variable": name, "shape": [...], "learning_rate": x, "epsilon": y} with x, y '
            f"finite and > 0 (kiz.mup.parametrize fills it in); received {problem!r}."
        )
    checked = []
    for entry in multipliers:
        kept = {
            "variable": entry["variable"],
            "shape": [int(d) for d in entry.get("shape", [])],
            "learning_rate": float(entry["learning_rate"]),
            "epsilon": float(entry["epsilon"]),
        }
        if entry.get("infshape") is not None:  # checked here, not first on the loaded model
            record = InfShape.from_config(entry["variable"], kept["shape"], entry["infshape"])
            kept["infshape"] = record.to_config()
        checked.append(kept)
    return checked


def _torch_fused_step(optimizer: keras.optimizers.Optimizer):
    """On PyTorch, the ``torch._foreach`` update Keras swaps in for its exact classes.

    Keras replaces ``keras.optimizers.Adam`` (AdamW, SGD) by a fused class
    only when it is instantiated exactly, so a subclass would update one
    variable at a time; each multiplier group goes through the fused update
    instead (private Keras code: ``_keras_internals.torch_fused_update_step``).
    None on other backends.
    """
    if keras.backend.backend() != "torch":
        return None
    import torch

    update = internals.torch_fused_update_step(optimizer)
    if update is None:
        return None

    def step(grads, variables, learning_rate, _update=update):
        with torch.no_grad():
            _update(optimizer, grads, variables, learning_rate)

    return step


class MupOptimizer:
    """The muP part of :class:`Adam`, :class:`AdamW` and :class:`SGD` (a mixin).

    muP's multipliers (see :mod:`keras_initzoo._records`) scale the
    learning rate (a float, a schedule or a callable) per variable, and for
    Adam and AdamW the epsilon too.
    ``weight_decay`` is decoupled, as in all Keras optimizers: every step
    multiplies each variable by ``1 - learning_rate * weight_decay`` with the
    *base* learning rate, not the variable's scaled one, so the decay per
    step is the same at every width and depth. This is microsoft/mup's convention
    (``MuAdamW`` divides a hidden weight's rate by ``m`` and multiplies its
    decay by ``m``; the warning of mup's PR #73 is against coupled L2 decay in
    the gradient, which Keras does not do), and CompleteP's for ``alpha = 1``
    (nanoGPT-mup's ``completep`` branch multiplies a hidden weight's decay by
    ``m_N`` as its rate is divided by ``m_N``, keeping ``lr * weight_decay``;
    for ``alpha < 1`` it lets that product shrink as ``m_L**(alpha-1)``, which
    is not followed here: the decay per step never depends on depth). The
    depth factors of a model parametrized against a shallower base (rate,
    eps, LayerNorm and bias rates of every variable in a residual branch;
    see :mod:`keras_initzoo._records`) are part of each variable's
    multipliers and applied the same way. ``clipnorm``, ``global_clipnorm``
    and ``clipvalue`` act on gradients whose size changes with width under
    muP: a threshold tuned at the base width does not carry over.
    ``multipliers`` is filled in by :func:`kiz.mup.parametrize` and
    ``model.compile``; it is in the config so that saving keeps it.

    Args:
        *args (Any): the Keras optimizer's positional arguments.
        multipliers: the per-variable multipliers a saved config holds, one
            ``{"variable", "shape", "learning_rate", "epsilon", "infshape"}``
            entry per variable in the order the optimizer is built on
            (default None: taken at ``compile`` from the parametrized model;
            pass it only to rebuild a saved optimizer). Keyword only.
        **kwargs (Any): the Keras optimizer's keyword arguments.

    Raises:
        ValueError: if ``multipliers`` is not a list of entries with finite
            multipliers > 0.
    """

    def _multipliers_of(self, record: InfShape) -> list[float]:
        raise NotImplementedError

    def __init__(self, *args, multipliers: list | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._mup_multipliers = _check_multipliers(multipliers)
        self._mup_by_index: list[tuple[float, float]] = []

    def take_multipliers(self, variables) -> None:
        """Copies the multipliers of parametrized ``variables``, in order (``compile`` calls this).

        Raises when some of them were parametrized and others not; keeps the
        multipliers it holds (from a saved config) when none was.
        """
        variables = list(variables)
        records = [infshape_of(v) for v in variables]
        missing = [v.path for v, r in zip(variables, records, strict=True) if r is None]
        if len(missing) == len(variables):
            return
        if missing:
            raise ValueError(
                f"{type(self).__name__} (kiz.mup) has no muP multipliers for "
                f"{len(missing)} of its {len(variables)} variables ({', '.join(missing[:3])}"
                f"{', ...' if len(missing) > 3 else ''}): they were added after "
                "kiz.mup.parametrize. Parametrize the model as it is trained."
            )
        multipliers = [
            dict(
                zip(
                    ("variable", "shape", "learning_rate", "epsilon", "infshape"),
                    (v.name, list(v.shape), *self._multipliers_of(r), r.to_config()),
                    strict=True,
                )
            )
            for v, r in zip(variables, records, strict=True)
        ]
        if self.built and multipliers != self._mup_multipliers:
            # Built, it applies the multipliers it was built with (on JAX they
            # are constants of the traced step): new ones need a new optimizer.
            raise ValueError(
                f"{type(self).__name__} (kiz.mup) was built with the multipliers of an "
                "earlier kiz.mup.parametrize of this model: compile the model again with a "
                "new kiz.mup optimizer after parametrizing it anew."
            )
        self._mup_multipliers = multipliers

    def build(self, variables):
        if self.built:
            return
        # Before Keras' build, which sets ``built``: a first build takes them freely.
        self.take_multipliers(variables)
        super().build(variables)
        saved = self._mup_multipliers
        if not saved and variables:
            raise ValueError(
                f"{type(self).__name__} (kiz.mup) was built on variables that "
                f"kiz.mup.parametrize never saw (such as {variables[0].path}): call "
                "kiz.mup.parametrize(model, base=...) before training, or use a Keras "
                "optimizer for a model that is not parametrized."
            )
        found = [(v.name, list(v.shape)) for v in variables]
        if [(e["variable"], e["shape"]) for e in saved] != found:
            raise ValueError(
                f"{type(self).__name__} (kiz.mup) holds multipliers for {len(saved)} variables "
                f"that do not match the {len(variables)} it is built on: the saved optimizer "
                "belongs to another model (or the model changed after kiz.mup.parametrize)."
            )
        self._mup_by_index = [(e["learning_rate"], e["epsilon"]) for e in saved]
        self._restore_records(variables)

    def _restore_records(self, variables) -> None:
        """Puts the saved records back on the variables of a loaded model (``build`` calls this).

        Variable attributes are not saved, so on a model loaded with
        ``keras.saving.load_model`` (whose ``compile_from_config`` builds this
        optimizer) nothing would say it was parametrized: ``reinitialize``,
        ``lsuv`` and ``auto_initialize`` would undo muP's init, and
        ``signal_report`` would read a zero readout as vanishing. With the
        records back, every reader of :func:`infshape_of` sees the model as
        :func:`kiz.mup.parametrize` left it. A variable that has its record
        (the same process) keeps it.
        """
        for variable, entry in zip(variables, self._mup_multipliers, strict=True):
            if entry.get("infshape") is not None and infshape_of(variable) is None:
                record = InfShape.from_config(variable.path, variable.shape, entry["infshape"])
                setattr(variable, ATTRIBUTE, record)

    @contextlib.contextmanager
    def _epsilon_times(self, factor: float) -> Iterator[None]:
        """Inside the block ``self.epsilon`` is scaled by ``factor`` (read while tracing)."""
        if factor == 1.0 or not hasattr(self, "epsilon"):
            yield
            return
        epsilon = self.epsilon
        self.epsilon = epsilon * factor
        try:
            yield
        finally:
            self.epsilon = epsilon

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        step = _torch_fused_step(self) or super()._backend_update_step
        groups: dict[tuple[float, float], tuple[list, list]] = {}
        for grad, variable in zip(grads, trainable_variables, strict=True):
            key = self._mup_by_index[internals.variable_index(self, variable)]
            group = groups.setdefault(key, ([], []))
            group[0].append(grad)
            group[1].append(variable)
        for (rate, epsilon), (group_grads, group_variables) in groups.items():
            scaled = learning_rate if rate == 1.0 else learning_rate * rate
            with self._epsilon_times(epsilon):
                step(group_grads, group_variables, scaled)

    def get_config(self):
        config = super().get_config()
        config["multipliers"] = [dict(entry) for entry in self._mup_multipliers]
        return config


def epsilon_multiplier(optimizer: object, variable: object) -> float:
    """The factor a kiz.mup optimizer scales ``epsilon`` by for ``variable`` (1 for another)."""
    if not isinstance(optimizer, MupOptimizer) or not optimizer.built:
        return 1.0
    return float(optimizer._mup_by_index[internals.variable_index(optimizer, variable)][1])


class _AdamType(MupOptimizer):
    def _multipliers_of(self, record: InfShape) -> list[float]:
        return [record.adam_lr, record.epsilon]


@keras.saving.register_keras_serializable(package="keras_initzoo.mup")
class Adam(_AdamType, keras.optimizers.Adam):
    """Keras' Adam with muP's per-variable multipliers; Keras' arguments.

    The learning rate and ``epsilon`` are scaled per variable, ``epsilon`` by
    the scale of its gradient (``1/m_out``: muP shrinks the gradients of every
    variable that feeds a wide layer, and a fixed epsilon would stop being
    negligible as width grows). Weight decay, depth factors, clipping and
    ``multipliers``: :class:`MupOptimizer`.

    Args:
        *args (Any): the Keras optimizer's positional arguments (``learning_rate``, ...).
        multipliers: as :class:`MupOptimizer`'s (default None). Keyword only.
        **kwargs (Any): the Keras optimizer's keyword arguments, with Keras' defaults.

    Examples:
        >>> import keras_initzoo as kiz
        >>> def build(width):
        ...     return keras.Sequential([keras.Input((8,)),
        ...         keras.layers.Dense(width, activation="relu"), keras.layers.Dense(2)])
        >>> model = build(64)
        >>> _ = kiz.mup.parametrize(model, base=build(16))
        >>> model.compile(optimizer=kiz.mup.Adam(learning_rate=1e-3), loss="mse")
        >>> entry = model.optimizer.get_config()["multipliers"][2]   # the readout's kernel
        >>> entry["variable"], entry["shape"], entry["learning_rate"], entry["epsilon"]
        ('kernel', [64, 2], 0.25, 1.0)
    """


@keras.saving.register_keras_serializable(package="keras_initzoo.mup")
class AdamW(_AdamType, keras.optimizers.AdamW):
    """Keras' AdamW (default ``weight_decay=0.004``) with muP's multipliers.

    The learning rate and ``epsilon`` are scaled per variable, as :class:`Adam`
    scales them. Weight decay, depth factors, clipping and ``multipliers``:
    :class:`MupOptimizer`.

    Args:
        *args (Any): the Keras optimizer's positional arguments (``learning_rate``, ...).
        multipliers: as :class:`MupOptimizer`'s (default None). Keyword only.
        **kwargs (Any): the Keras optimizer's keyword arguments, with Keras' defaults.
    """


@keras.saving.register_keras_serializable(package="keras_initzoo.mup")
class SGD(MupOptimizer, keras.optimizers.SGD):
    """Keras' SGD (with momentum and Nesterov) with muP's multipliers.

    The learning rate is scaled per variable (``alpha**2 m_out / m_in``: input
    weights and biases step faster as width grows). Weight decay, depth
    factors, clipping and ``multipliers``: :class:`MupOptimizer`.

    Args:
        *args (Any): the Keras optimizer's positional arguments (``learning_rate``, ...).
        multipliers: as :class:`MupOptimizer`'s (default None). Keyword only.
        **kwargs (Any): the Keras optimizer's keyword arguments, with Keras' defaults.
    """

    def _multipliers_of(self, record: InfShape) -> list[float]:
        return [record.sgd_lr, 1.0]
