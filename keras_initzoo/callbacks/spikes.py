"""Spike detection on the host, over the rows the logger already reads (``detect_spikes``).

A small state record and pure functions, as optax does. Every logged row gives
each watched series a value: the step's loss (a positive loss: the log scale
needs it), the global gradient norm, each group's gradient norm, and, with
``activation_stats``, each group's output RMS. A value is a
spike when, in log10, it lies above the median of the series' last
:data:`WINDOW` logged values by more than :data:`THRESHOLD` robust standard
deviations (``1.4826 * MAD``) **and** by more than a factor
:data:`MIN_RATIO`.

Why this rule: norms grow and shrink by factors, so the log is the natural
scale; the median and the MAD ignore earlier spikes and a slow drift, where a
mean and a standard deviation would be dragged by them (the running
statistics of Composer's and llm-foundry's loss-spike callbacks are a window
of recent values too); the factor floor keeps a very quiet series, whose MAD
is nearly zero, from flagging a few per cent of noise.

Attention-logit growth is slow, not a spike: with ``attention_logits`` a
layer's largest logit is flagged once when it exceeds :data:`LOGIT_GROWTH`
times its first logged value. That is the rule of
``benchmarks/RESULTS_attention_logit_growth.md``, where it fired 101-128 steps
before the loss diverged, and never at a 4x lower rate or with QK-layernorm.

Which group started it: at the first flagged step of a rise, the shallowest
group whose output RMS jumped (a kernel scaled up makes its own output and
everything downstream jump, and nothing upstream), else the shallowest group
whose gradient norm jumped. Gradients alone blame early: scaling one layer's
kernel scales the backpropagated gradient of every layer upstream of it too.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

WINDOW = 32  # logged values per series in the running statistics
MIN_HISTORY = 8  # logged values a series needs before it can flag
THRESHOLD = 6.0  # robust standard deviations above the running median (log10)
MIN_RATIO = 2.0  # and at least this factor above it
_MAD_TO_STD = 1.4826  # the MAD of a normal distribution, in standard deviations
LOGIT_GROWTH = 10.0  # an attention layer's largest logit, over its first logged value


@dataclass
class SpikeState:
    """The running window of every watched series (log10 values), and whether the
    last row was already part of a flagged rise."""

    names: tuple[str, ...] = ()
    window: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    rising: bool = False
    first_logits: np.ndarray | None = None  # each attention layer's first largest logit
    first_step: int = 0
    grown: set = field(default_factory=set)  # attention layers already flagged


@dataclass(frozen=True)
class Spike:
    """One flagged step: what jumped, by how much, and where it started."""

    step: int
    jumped: tuple[tuple[str, float], ...]  # (series, factor over its running median)
    origin: str  # the group named as the start

    def markdown(self) -> str:
        """The text event: step, origin and the largest jumps."""
        top = sorted(self.jumped, key=lambda pair: -pair[1])[:5]
        listed = ", ".join(f"`{name}` x{factor:.3g}" for name, factor in top)
        return (
            f"**step {self.step}**: spike, started in `{self.origin}`. "
            f"Jumped past the running median: {listed}."
        )


def flagged(state: SpikeState, values: np.ndarray) -> np.ndarray:
    """Per series, the factor over its running median where it spikes, else 0."""
    if len(state.window) < MIN_HISTORY:
        return np.zeros(len(values))
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN series: never flags
        history = np.log10(np.stack(state.window))
        logs = np.log10(values)
        median = np.nanmedian(history, axis=0)
        spread = _MAD_TO_STD * np.nanmedian(np.abs(history - median), axis=0)
        excess = logs - median
        spikes = (excess > THRESHOLD * spread) & (excess > np.log10(MIN_RATIO))
        spikes &= np.isfinite(logs) | np.isinf(logs)  # NaN never; +inf always past
    return np.where(spikes, 10.0 ** np.where(spikes, excess, 0.0), 0.0)


def update(
    state: SpikeState,
    step: int,
    values: np.ndarray,
    groups: Sequence[str],
) -> Spike | None:
    """Adds one logged row's values (in ``state.names`` order) and returns the
    spike it starts, if any (a rise already flagged is not flagged again).

    Series names are ``loss``, ``grad_norm/global``, ``grad_norm/<group>`` and
    ``act_rms/<group>``; ``groups`` are the groups in depth order.

    Args:
        state: the running windows, updated in place.
        step: the logged step the row is of.
        values: the row's loss and norms (not their logs), in ``state.names``
            order.
        groups: the groups in depth order, to name where a rise started.

    Returns:
        The :class:`Spike` this row starts, or None.
    """
    values = np.asarray(values, dtype=np.float64)
    factors = flagged(state, values)
    state.window.append(np.where(np.isfinite(values), values, np.nan))
    if not factors.any():
        state.rising = False
        return None
    if state.rising:
        return None
    state.rising = True
    jumped = {name: float(f) for name, f in zip(state.names, factors, strict=True) if f}
    return Spike(step, tuple(jumped.items()), _origin(jumped, groups))


@dataclass(frozen=True)
class Growth:
    """An attention layer whose largest logit grew past :data:`LOGIT_GROWTH` times its start."""

    step: int
    layer: str
    factor: float
    since: int

    def markdown(self) -> str:
        return (
            f"**step {self.step}**: attention logits grew in `{self.layer}`: the largest is "
            f"x{self.factor:.3g} its value at step {self.since} (QK-layernorm, a lower "
            "learning rate or z-loss are the known remedies)."
        )


def logit_growth(
    state: SpikeState, step: int, layers: Sequence[str], largest: np.ndarray
) -> list[Growth]:
    """Attention layers whose largest logit first passes :data:`LOGIT_GROWTH` times its
    first logged value, each flagged once.

    Args:
        state: the running state; its first logits are set on the first call.
        step: the logged step.
        layers: the attention layers' paths.
        largest: each layer's largest pre-softmax logit at ``step``.

    Returns:
        One :class:`Growth` per layer newly flagged (an empty list if none).
    """
    largest = np.asarray(largest, dtype=np.float64)
    if state.first_logits is None:
        state.first_logits, state.first_step = largest, step
        return []
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = largest / state.first_logits
    found = []
    for layer, factor in zip(layers, factors, strict=True):
        if layer not in state.grown and factor > LOGIT_GROWTH:
            state.grown.add(layer)
            found.append(Growth(step, layer, float(factor), state.first_step))
    return found


def _origin(jumped: dict[str, float], groups: Sequence[str]) -> str:
    for prefix in ("act_rms/", "grad_norm/"):
        for group in groups:
            if f"{prefix}{group}" in jumped:
                return group
    return "global" if "grad_norm/global" in jumped else "loss"
