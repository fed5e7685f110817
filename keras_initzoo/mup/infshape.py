"""Which axes of one variable grow with width, and the multipliers muP derives from them.

The record of microsoft/mup's ``infshape`` per parameter, for Keras: an axis
is *infinite* when it differs between the base model and the delta model
(without a delta: between the base and the model itself), as in mup's
``set_base_shapes``. mup reads a torch weight ``(out, in)``; Keras kernels
are ``(in, out)``, ``(*k, in, out)`` or an ``EinsumDense`` layout, so the
sides are taken from the fans :func:`keras_initzoo.models.walk.walk` gives
each kernel: a side is infinite when its fan differs, and its width
multiplier is ``m = fan(model) / fan(base)``.

==========  ==============  ===================  ==========  ==============  ===========
kind        fans that grow  init variance        Adam lr     SGD lr          Adam eps
==========  ==============  ===================  ==========  ==============  ===========
``input``   fan_out         ``s/fan_in``         ``1``       ``m_out``       ``1/m_out``
``hidden``  both            ``s/fan_in``         ``1/m_in``  ``m_out/m_in``  ``1/m_out``
``output``  fan_in          ``s/(fan_in m_in)``  ``1/m_in``  ``1/m_in``      ``1``
``vector``  its one axis    kept                 ``1``       ``m``           ``1/m``
``fixed``   none            ``s/fan_in``         ``1``       ``1``           ``1``
==========  ==============  ===================  ==========  ==============  ===========

(multipliers of the learning rate and epsilon tuned at the base width; ``s``
the kernel initializer's scale). This is Table 3 of Tensor Programs V with
every width measured against the base, so that at the base width every
multiplier is 1 and the model is the one you tuned. The readout's ``1/m``
output multiplier of mup's ``MuReadout`` is moved into its init and learning
rate by muP's symmetry (a forward multiplier ``a``, init ``b`` and Adam rate
``c`` act as ``(a theta, b/theta, c/theta)``; for SGD ``c/theta**2``), because a
Keras ``Dense`` has no multiplier. A query kernel of attention whose head size
``d`` grows carries ``alpha = sqrt(d_base/d)`` the same way (see
:func:`keras_initzoo.mup.parametrize`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

KINDS = ("input", "hidden", "output", "vector", "fixed")

# The attribute of a keras.Variable that holds its record in this process
# (variable attributes are not saved: the optimizers keep a copy in their config).
ATTRIBUTE = "_kiz_infshape"


@dataclass(frozen=True)
class InfShape:
    """One variable's infinite axes, its kind and width multipliers.

    ``infinite[k]`` says whether axis ``k`` grows with width. ``fan_in_mult``
    and ``fan_out_mult`` are the model's fans over the base's (1 on a finite
    side); a vector's multiplier is ``fan_out_mult``. ``attention`` is the
    factor ``alpha`` on an attention query's logits (1 elsewhere).

    Example:

    >>> hidden = InfShape("h/kernel", (512, 512), (128, 128), (True, True), "hidden", 4.0, 4.0)
    >>> hidden.adam_lr, hidden.sgd_lr, hidden.epsilon, hidden.init_std
    (0.25, 1.0, 0.25, 1.0)
    >>> readout = InfShape("out/kernel", (512, 10), (128, 10), (True, False), "output", 4.0, 1.0)
    >>> readout.adam_lr, readout.sgd_lr, readout.epsilon, readout.init_std
    (0.25, 0.25, 1.0, 0.5)
    """

    path: str
    shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    infinite: tuple[bool, ...]
    kind: str
    fan_in_mult: float = 1.0
    fan_out_mult: float = 1.0
    attention: float = 1.0

    @property
    def width_mult(self) -> float:
        """mup's ``width_mult``: the fan-in multiplier of a matrix, else the one that grows."""
        return self.fan_in_mult if self.kind in ("hidden", "output") else self.fan_out_mult

    @property
    def init_std(self) -> float:
        """The factor on the ``sqrt(scale / fan_in)`` standard deviation of the re-draw."""
        readout = 1.0 / math.sqrt(self.fan_in_mult) if self.kind == "output" else 1.0
        return readout * self.attention

    @property
    def adam_lr(self) -> float:
        """The factor on an Adam-type learning rate: ``alpha / m_in``."""
        return self.attention / self.fan_in_mult

    @property
    def sgd_lr(self) -> float:
        """The factor on an SGD-type learning rate: ``alpha**2 m_out / m_in``."""
        return self.attention**2 * self.fan_out_mult / self.fan_in_mult

    @property
    def epsilon(self) -> float:
        """The factor on Adam's epsilon: ``1 / (alpha m_out)``, the scale of this gradient.

        Under muP the gradient of every variable whose output grows with width
        shrinks as ``1 / m_out`` (the readout's small init makes the backward
        signal ``O(1/width)``), and a query's by ``1/alpha``; epsilon follows it,
        so ``epsilon / sqrt(v)`` is the same at every width and Adam stays
        the scale-free update muP assumes.
        """
        return 1.0 / (self.attention * self.fan_out_mult)

    def to_config(self) -> dict:
        """The record without path and shape, as JSON: what the optimizers save per variable."""
        return {
            "kind": self.kind,
            "base_shape": list(self.base_shape),
            "infinite": list(self.infinite),
            "fan_in_mult": self.fan_in_mult,
            "fan_out_mult": self.fan_out_mult,
            "attention": self.attention,
        }

    @classmethod
    def from_config(cls, path: str, shape: Sequence[int], config: Mapping) -> InfShape:
        """The record :meth:`to_config` saved, on the variable at ``path`` of ``shape``."""
        shape = tuple(int(d) for d in shape)
        numbers_ok = all(
            isinstance(config.get(key), numbers.Real)
            and not isinstance(config.get(key), bool)
            and 0 < config[key] < math.inf
            for key in ("fan_in_mult", "fan_out_mult", "attention")
        )
        base_shape, infinite = config.get("base_shape"), config.get("infinite")
        if (
            config.get("kind") not in KINDS
            or not numbers_ok
            or not isinstance(base_shape, (list, tuple))
            or not isinstance(infinite, (list, tuple))
            or not len(base_shape) == len(infinite) == len(shape)
            or not all(isinstance(i, bool) for i in infinite)
            or not all(isinstance(d, numbers.Integral) and d > 0 for d in base_shape)
        ):
            raise ValueError(
                f"the muP record of {path} {shape} must hold kind (one of {list(KINDS)}), "
                "base_shape and infinite (one entry per axis) and fan_in_mult, fan_out_mult, "
                f"attention (finite, > 0), as kiz.mup's optimizers save it; received {config!r}."
            )
        return cls(
            path,
            shape,
            tuple(int(d) for d in base_shape),
            tuple(infinite),
            config["kind"],
            float(config["fan_in_mult"]),
            float(config["fan_out_mult"]),
            float(config["attention"]),
        )


def infshape_of(variable: object) -> InfShape | None:
    """The record :func:`keras_initzoo.mup.parametrize` left on ``variable``, if any."""
    return getattr(variable, ATTRIBUTE, None)


def refuse_if_parametrized(variables: Iterable[object], tool: str, model: object = None) -> None:
    """Raises when any of ``variables`` was parametrized: ``tool`` would undo muP's init.

    A variable was parametrized when it carries a record: from
    :func:`kiz.mup.parametrize` in this process, or restored by a kiz.mup
    optimizer built on a loaded model. ``model``'s optimizer counts too when
    it is a kiz.mup optimizer holding multipliers, built or not (a saved
    config without the records still holds them).
    """
    parametrized = [v for v in variables if infshape_of(v) is not None]
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's
    # (duck-typed: kiz.mup.optimizers imports this module)
    held = getattr(optimizer, "_mup_multipliers", None)
    if parametrized or held:
        where = (
            f"{parametrized[0].path} and {len(parametrized) - 1} more"
            if parametrized
            else f"its optimizer {type(optimizer).__name__} holds muP multipliers"
        )
        raise ValueError(
            f"`model` was parametrized by kiz.mup.parametrize ({where}): `{tool}` would "
            "re-draw its kernels and undo the muP init that its optimizer's learning-rate "
            "multipliers assume. Build the model again, or call kiz.mup.parametrize again "
            "after it."
        )
