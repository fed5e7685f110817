"""Per-variable records of kiz.mup: which axes grow with width, where the variable sits in depth.

This module imports nothing else from the package, so that the whole-model
tools (:mod:`keras_initzoo.models`) can read a record (to refuse a
parametrized model) while :mod:`keras_initzoo.mup` builds on those tools:
the imports run one way, ``mup`` above ``models`` above this module.

Width (:class:`InfShape`).

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

Depth (:class:`DepthRecord`). A variable inside a residual branch ``h + b F(h)``
of a model with ``L`` branches, parametrized against a base with ``L_base``,
has the depth multiplier ``m_L = L / L_base`` and the branch multiplier
``b = m_L**-alpha``: ``alpha = 1`` is CompleteP (Dey et al., "Don't be lazy:
CompleteP enables compute-efficient deep transformers", NeurIPS 2025),
``alpha = 1/2`` depth-muP (Yang, Yu, Zhu & Hayou, Tensor Programs VI, 2023).
With ``b`` on the branch's output, Table 1 of CompleteP gives:

============  =================  ====================  ====================  ==============
role          init std           Adam lr               SGD lr                Adam eps
============  =================  ====================  ====================  ==============
``branch``    1                  ``m_L**(alpha-1)``    ``m_L**(2alpha-1)``   ``m_L**-alpha``
``carrier``   ``b``              ``1 / m_L``           ``1 / m_L``           1
============  =================  ====================  ====================  ==============

A Keras layer has no multiplier, so ``b`` is carried by the branch's last
layer whose parameters scale its output linearly (its *carrier*: the second
kernel of an MLP, attention's output projection): by muP's symmetry (forward
multiplier ``a``, init ``c``, Adam rate ``r``, eps ``e`` act as ``(a t, c/t,
r/t, e t)``; SGD ``r/t**2``) the carrier's weights are drawn ``b`` times
larger, its Adam rate is ``b m_L**(alpha-1) = 1/m_L``, its eps ``m_L**-alpha
/ b = 1``: the same training as ``h + b F(h)``, at no cost in the forward
pass. The SGD column is depth-muP's rule (each branch moves the stream by
``1/L`` per step) for general ``alpha``. Every factor is 1 at the base depth,
and multiplies the width factors of :class:`InfShape`.
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


DEPTH_ROLES = ("branch", "carrier")


@dataclass(frozen=True)
class DepthRecord:
    """One variable's residual branch and its depth multipliers (see the module's table).

    ``block`` names the branch's join (as :func:`kiz.residual_structure` does),
    ``role`` is ``"carrier"`` for the variables of the layer that carries the
    branch multiplier, ``"branch"`` for the others in the branch;
    ``depth_mult`` is ``m_L = L / L_base``, ``alpha`` the exponent of the
    branch multiplier ``m_L**-alpha``.

    Attributes:
        block: the branch's join, as :func:`kiz.residual_structure` names it.
        role: ``"carrier"`` or ``"branch"``, as above.
        depth_mult: ``m_L = L / L_base``, > 0.
        alpha: the exponent, > 0: 1 for CompleteP, 1/2 for depth-muP.

    Examples:
        >>> hidden = DepthRecord("block3", "branch", 8.0, 1.0)
        >>> hidden.branch_multiplier, hidden.adam_lr, hidden.epsilon
        (0.125, 1.0, 0.125)
        >>> DepthRecord("block3", "carrier", 4.0, 0.5).adam_lr
        0.25
    """

    block: str
    role: str
    depth_mult: float
    alpha: float

    @property
    def branch_multiplier(self) -> float:
        """``b = m_L**-alpha``, the factor on the branch's output."""
        return self.depth_mult**-self.alpha

    @property
    def init_std(self) -> float:
        """The factor on the init std: ``b`` on the carrier, 1 elsewhere."""
        return self.branch_multiplier if self.role == "carrier" else 1.0

    @property
    def adam_lr(self) -> float:
        """The factor on an Adam-type rate: ``m_L**(alpha-1)``, times ``b`` on the carrier."""
        return self.depth_mult ** (self.alpha - 1.0) * self.init_std

    @property
    def sgd_lr(self) -> float:
        """The factor on an SGD-type rate: ``m_L**(2 alpha-1)``, times ``b**2`` on the carrier."""
        return self.depth_mult ** (2.0 * self.alpha - 1.0) * self.init_std**2

    @property
    def epsilon(self) -> float:
        """The factor on Adam's eps: the gradient's scale, ``m_L**-alpha`` (1 on the carrier)."""
        return self.branch_multiplier / self.init_std

    def to_config(self) -> dict:
        """The record as JSON."""
        return {
            "block": self.block,
            "role": self.role,
            "depth_mult": self.depth_mult,
            "alpha": self.alpha,
        }

    @classmethod
    def from_config(cls, path: str, config: object) -> DepthRecord:
        """The record :meth:`to_config` saved, for the variable at ``path``."""
        ok = (
            isinstance(config, Mapping)
            and isinstance(config.get("block"), str)
            and config.get("role") in DEPTH_ROLES
            and all(
                isinstance(config.get(key), numbers.Real)
                and not isinstance(config.get(key), bool)
                and 0 < config[key] < math.inf
                for key in ("depth_mult", "alpha")
            )
        )
        if not ok:
            raise ValueError(
                f"the depth record of {path} must hold block (a name), role (one of "
                f"{list(DEPTH_ROLES)}), depth_mult and alpha (finite, > 0), as kiz.mup's "
                f"optimizers save it; received {config!r}."
            )
        return cls(
            config["block"], config["role"], float(config["depth_mult"]), float(config["alpha"])
        )


@dataclass(frozen=True)
class InfShape:
    """One variable's infinite axes, its kind and width multipliers.

    ``infinite[k]`` says whether axis ``k`` grows with width. ``fan_in_mult``
    and ``fan_out_mult`` are the model's fans over the base's (1 on a finite
    side); a vector's multiplier is ``fan_out_mult``. ``attention`` is the
    factor ``alpha`` on an attention query's logits (1 elsewhere). ``depth``
    is the variable's :class:`DepthRecord` when it sits in a residual branch
    of a model parametrized against a shallower base (None elsewhere); its
    factors multiply the width factors below.

    Attributes:
        path: the variable's path.
        shape: its shape in the model.
        base_shape: its shape in the base model.
        infinite: per axis, whether it grows with width.
        kind: ``"input"``, ``"hidden"``, ``"output"``, ``"vector"`` or
            ``"fixed"`` (the module's table).
        fan_in_mult: ``m_in``, the model's fan-in over the base's (default
            1.0: a finite side).
        fan_out_mult: ``m_out``, likewise for the fan-out (default 1.0).
        attention: ``alpha`` on an attention query's logits (default 1.0).
        depth: the :class:`DepthRecord` (default None: outside any residual
            branch, or no depth scaling).

    Examples:
        >>> hidden = InfShape("h/kernel", (512, 512), (128, 128), (True, True), "hidden", 4.0, 4.0)
        >>> hidden.adam_lr, hidden.sgd_lr, hidden.epsilon, hidden.init_std
        (0.25, 1.0, 0.25, 1.0)
        >>> readout = InfShape(
        ...     "out/kernel", (512, 10), (128, 10), (True, False), "output", 4.0, 1.0)
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
    depth: DepthRecord | None = None

    @property
    def _depth(self) -> DepthRecord:
        return self.depth if self.depth is not None else _NO_DEPTH

    @property
    def width_mult(self) -> float:
        """microsoft/mup's ``width_mult``: a matrix's fan-in multiplier, else the one that grows."""
        return self.fan_in_mult if self.kind in ("hidden", "output") else self.fan_out_mult

    @property
    def init_std(self) -> float:
        """The factor on the ``sqrt(scale / fan_in)`` standard deviation of the re-draw."""
        readout = 1.0 / math.sqrt(self.fan_in_mult) if self.kind == "output" else 1.0
        return readout * self.attention * self._depth.init_std

    @property
    def adam_lr(self) -> float:
        """The factor on an Adam-type learning rate: ``alpha / m_in`` (times the depth factor)."""
        return self.attention / self.fan_in_mult * self._depth.adam_lr

    @property
    def sgd_lr(self) -> float:
        """The factor on an SGD-type learning rate: ``alpha**2 m_out / m_in`` (times depth's)."""
        return self.attention**2 * self.fan_out_mult / self.fan_in_mult * self._depth.sgd_lr

    @property
    def epsilon(self) -> float:
        """The factor on Adam's epsilon: ``1 / (alpha m_out)``, the scale of this gradient.

        Under muP the gradient of every variable whose output grows with width
        shrinks as ``1 / m_out`` (the readout's small init makes the backward
        signal ``O(1/width)``), and a query's by ``1/alpha``; epsilon follows it,
        so ``epsilon / sqrt(v)`` is the same at every width and Adam stays
        the scale-free update muP assumes. Inside a residual branch the
        gradient carries the branch multiplier too (CompleteP's
        ``m_N**-1 m_L**-alpha``), and only there: the embedding's and the
        readout's eps keep no depth factor. (EleutherAI/nanoGPT-mup's
        ``completep`` branch, as of May 2025, scaled its one global eps for
        every parameter group; its January 2026 fix separates the hidden
        layers' eps from the embedding's, which is what a per-variable eps
        does here.)
        """
        return self._depth.epsilon / (self.attention * self.fan_out_mult)

    def to_config(self) -> dict:
        """The record without path and shape, as JSON: what the optimizers save per variable."""
        return {
            "kind": self.kind,
            "base_shape": list(self.base_shape),
            "infinite": list(self.infinite),
            "fan_in_mult": self.fan_in_mult,
            "fan_out_mult": self.fan_out_mult,
            "attention": self.attention,
            **({"depth": self.depth.to_config()} if self.depth is not None else {}),
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
            None if config.get("depth") is None else DepthRecord.from_config(path, config["depth"]),
        )


_NO_DEPTH = DepthRecord("", "branch", 1.0, 1.0)  # every factor 1


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
