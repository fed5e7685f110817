"""The one place that knows the layout of a GradientNormLogger row, by section name.

The capture writes one float64 row per recorded step, its sections in the
order of :class:`RowLayout`; the callback decodes a row by name into the values
of its scalar tags. Norm sections hold ``sum(x**2)``; decoding takes the root.

======================  =================  =====================================
section                 width              tag(s)
======================  =================  =====================================
``step``                1                  (the event's step; -1: never written)
``nonfinite``           1                  ``grad_nonfinite/count`` (if counted)
``global``              1                  ``grad_norm/global``
``groups``              groups             ``grad_norm/<group>``
``variables``           variables          ``grad_norm_per_variable/<path>``
``weights``             groups             ``weight_norm/<group>``
``updates``             groups             ``update_ratio/<group>`` (/ weights),
                                           ``update_rms/<group>`` (/ entries)
``eps_small``           groups             ``adam_eps_share/<group>`` (/ entries)
``spectral``            kernels            ``update_spectral/<kernel path>``
``clipped_global``      1                  ``grad_norm_clipped/global``
``clipped_groups``      groups             ``grad_norm_clipped/<group>``
``act_sq``              groups             ``act_rms/<group>`` (mean of squares)
``act_mean``            groups             ``act_mean/<group>``
``act_dead``            groups             ``act_dead/<group>``
``act_saturated``       groups             ``act_saturated/<group>`` (saturating
                                           outputs only)
``attn_max``            attention layers   ``attn_logit_max/<layer>``
``attn_entropy``        attention layers   ``attn_entropy/<layer>``
``logits_log_z``        1                  ``logits/log_z``
``logits_max_abs``      1                  ``logits/max_abs``
``loss``                1                  (the step's loss, for detect_spikes)
======================  =================  =====================================
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

EMPTY = -1.0  # the step of a row never written


@dataclass(frozen=True)
class RowLayout:
    """The sections of a row, in order, with the names of what they hold."""

    groups: tuple[str, ...]
    variables: tuple[str, ...] = ()
    count_nonfinite: bool = False
    weight_norms: bool = False
    update_ratio: bool = False
    log_clipped: bool = False
    activation_stats: bool = False
    saturating: tuple[str, ...] = ()  # groups whose output saturates (act_saturated)
    attention: tuple[str, ...] = ()  # attention layers' paths (attention_logits)
    output_logits: bool = False
    optimizer_stats: bool = False
    adam: bool = False  # an Adam-family optimizer: its epsilon share is logged
    group_sizes: tuple[int, ...] = ()  # entries per group, for the per-entry statistics
    spectral: tuple[str, ...] = ()  # kernels' paths (spectral_updates)
    detect_spikes: bool = False  # the row carries the step's loss

    @functools.cached_property  # read for every logged row: derived once
    def sections(self) -> tuple[tuple[str, int], ...]:
        n = len(self.groups)
        sections = [("step", 1), ("nonfinite", 1), ("global", 1), ("groups", n)]
        if self.variables:
            sections.append(("variables", len(self.variables)))
        updates = self.update_ratio or self.optimizer_stats or bool(self.spectral)
        if self.weight_norms or updates:  # ratios divide by the weight norms
            sections.append(("weights", n))
        if updates:
            sections.append(("updates", n))
        if self.optimizer_stats and self.adam:
            sections.append(("eps_small", n))
        if self.spectral:
            sections.append(("spectral", len(self.spectral)))
        if self.log_clipped:
            sections += [("clipped_global", 1), ("clipped_groups", n)]
        if self.activation_stats:
            sections += [(name, n) for name in ACTIVATION_SECTIONS]
        if self.attention:
            sections += [(name, len(self.attention)) for name in ATTENTION_SECTIONS]
        if self.output_logits:
            sections += [(name, 1) for name in LOGIT_SECTIONS]
        if self.detect_spikes:
            sections += [(name, 1) for name in LOSS_SECTIONS]
        return tuple(sections)

    @property
    def width(self) -> int:
        return sum(width for _, width in self.sections)

    def span(self, name: str) -> slice:
        """The columns of section ``name``."""
        start = 0
        for section, width in self.sections:
            if section == name:
                return slice(start, start + width)
            start += width
        raise KeyError(f"The row has no section {name!r}.")

    def has(self, name: str) -> bool:
        return any(section == name for section, _ in self.sections)

    def order(self) -> list[str]:
        """Section names in row order: how the capture concatenates its parts."""
        return [name for name, _ in self.sections]

    def decode(self, row: np.ndarray) -> dict[str, np.ndarray]:
        """One row as ``{section: values}``."""
        return {name: row[self.span(name)] for name, _ in self.sections}

    def tags(self) -> list[str]:
        """The scalar tags of :meth:`values`, in the same order."""
        tags = ["grad_nonfinite/count"] if self.count_nonfinite else []
        tags += ["grad_norm/global", *(f"grad_norm/{g}" for g in self.groups)]
        tags += [f"grad_norm_per_variable/{v}" for v in self.variables]
        if self.weight_norms or self.update_ratio:
            tags += [f"weight_norm/{g}" for g in self.groups]
        if self.update_ratio:
            tags += [f"update_ratio/{g}" for g in self.groups]
        if self.optimizer_stats:
            tags += [f"update_rms/{g}" for g in self.groups]
            tags += [f"adam_eps_share/{g}" for g in self.groups] if self.adam else []
        tags += [f"update_spectral/{k}" for k in self.spectral]
        if self.log_clipped:
            tags += ["grad_norm_clipped/global", *(f"grad_norm_clipped/{g}" for g in self.groups)]
        if self.activation_stats:
            for prefix in ("act_rms", "act_mean", "act_dead"):
                tags += [f"{prefix}/{g}" for g in self.groups]
            tags += [f"act_saturated/{g}" for g in self.saturating]
        tags += [f"attn_logit_max/{a}" for a in self.attention]
        tags += [f"attn_entropy/{a}" for a in self.attention]
        if self.output_logits:
            tags += ["logits/log_z", "logits/max_abs"]
        return tags

    def values(self, row: np.ndarray) -> np.ndarray:
        """The scalar values of one row, aligned with :meth:`tags`."""
        part = self.decode(row)
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN stays NaN: logged honestly
            root = {name: np.sqrt(v) for name, v in part.items() if name not in NOT_NORMS}
            values = [part["nonfinite"]] if self.count_nonfinite else []
            values += [root["global"], root["groups"], root.get("variables", _NONE)]
            if self.weight_norms or self.update_ratio:
                values.append(root["weights"])
            if self.update_ratio:
                # A zero-initialized layer has no relative scale: inf or NaN, honestly.
                values.append(root["updates"] / root["weights"])
            if self.optimizer_stats:
                sizes = np.asarray(self.group_sizes, np.float64)
                values.append(np.sqrt(part["updates"] / sizes))
                if self.adam:
                    values.append(part["eps_small"] / sizes)
            if self.spectral:
                values.append(part["spectral"])
            if self.log_clipped:
                values += [root["clipped_global"], root["clipped_groups"]]
            if self.activation_stats:
                values += [root["act_sq"], part["act_mean"], part["act_dead"]]
                saturating = [g in self.saturating for g in self.groups]
                values.append(part["act_saturated"][np.asarray(saturating, bool)])
            if self.attention:
                values += [part["attn_max"], part["attn_entropy"]]
            if self.output_logits:
                values += [part[name] for name in LOGIT_SECTIONS]
        return np.concatenate(values)

    def group_norms(self, row: np.ndarray, section: str = "groups") -> np.ndarray:
        """The per-group gradient norms of one row (``"clipped_groups"`` after clipping)."""
        with np.errstate(invalid="ignore"):
            return np.sqrt(row[self.span(section)])


ACTIVATION_SECTIONS = ("act_sq", "act_mean", "act_dead", "act_saturated")
ATTENTION_SECTIONS = ("attn_max", "attn_entropy")
LOGIT_SECTIONS = ("logits_log_z", "logits_max_abs")
LOSS_SECTIONS = ("loss",)  # the step's loss, for detect_spikes (no tag of its own)
NOT_NORMS = (
    "step",
    "nonfinite",
    "eps_small",
    "spectral",
    *ACTIVATION_SECTIONS[1:],
    *ATTENTION_SECTIONS,
    *LOGIT_SECTIONS,
    *LOSS_SECTIONS,
)
_NONE = np.zeros(0)


def layout_for(
    groups: Sequence[str],
    variables: Sequence[str],
    saturating: Sequence[str] = (),
    attention: Sequence[str] = (),
    **options: Any,
) -> RowLayout:
    """A :class:`RowLayout`; ``variables`` are listed only with ``per_variable``.

    Args:
        groups: the group names, in depth order.
        variables: the logged variables' paths.
        saturating: the groups whose outputs saturate (tanh, sigmoid,
            softsign; default none).
        attention: the attention layers' paths (default none).
        **options: the row switches (:data:`~keras_initzoo.callbacks.options.ROW_SWITCHES`)
            by name, ``per_variable`` among them.

    Returns:
        The :class:`RowLayout`.
    """
    per_variable = options.pop("per_variable", False)
    listed = tuple(variables) if per_variable else ()
    return RowLayout(
        tuple(groups),
        listed,
        saturating=tuple(saturating),
        attention=tuple(attention),
        **options,
    )


class RowOps(Protocol):
    """A backend's primitives for building a row: 1-D float vectors on its device."""

    def scalar(self, value: Any) -> Any:
        """``value`` (a number or a 0-d tensor) as a vector of one entry."""

    def total(self, values: Any) -> Any:
        """The sum of ``values``, as a vector of one entry."""

    def segment_sum(self, values: Any, segments: Sequence[int], n: int) -> Any:
        """``out[segments[i]] += values[i]``, the first ``len(segments)`` values; ``n`` long.

        Args:
            values: a 1-D vector on the device.
            segments: the output index of each value.
            n: the output's length.
        """

    def scatter(self, values: Any, positions: Sequence[int], n: int) -> Any:
        """``out[positions[i]] = values[i]``, the first ``len(positions)`` values; ``n`` long.

        Args:
            values: a 1-D vector on the device.
            positions: the output index of each value, each used once.
            n: the output's length; the other entries are 0.
        """

    def zeros(self, n: int) -> Any:
        """``n`` zeros."""

    def concat(self, parts: Sequence[Any]) -> Any:
        """The parts, one after the other, in the row's dtype."""


def build_row(
    layout: RowLayout,
    ops: RowOps,
    *,
    group_of: Sequence[int],
    grouped: Sequence[int],
    sums: Any,
    step: Any = 0,
    nonfinite: Any = 0.0,
    weights: Any = None,
    updates: Any = None,
    clipped: Any = None,
    eps_small: Any = None,
    spectral: Any = None,
    forward: Sequence[Any] = (),
) -> Any:
    """One recorded row, its sections in ``layout``'s order, from a backend's reductions.

    Args:
        layout: the row's sections.
        ops: the backend's primitives (:class:`RowOps`).
        group_of: the group of each logged variable, by variable index.
        grouped: the variable index of each of the first ``len(grouped)``
            entries of ``sums`` and ``clipped``; the entries after them are
            gradients of variables outside every group (global norm only).
        sums: ``sum(g**2)`` of each applied gradient.
        step: the step (a device scalar), or 0 where the host sets it on reading.
        nonfinite: how many gradient entries are NaN or inf (0 when not counted).
        weights: ``sum(w**2)`` of each logged variable before the update, by
            variable index, where the layout has ``weights``.
        updates: ``sum((w_after - w_before)**2)`` of each logged variable, by
            variable index, where the layout has ``updates``; None: zeros,
            filled in after the update (TensorFlow).
        clipped: ``sum(g**2)`` of each gradient after the optimizer's clipping,
            in the order of ``sums``, where the layout has the clipped sections.
        eps_small: how many entries of each logged variable have ``sqrt(v) <
            epsilon`` after the update, by variable index, where the layout has
            ``eps_small``; None: zeros, filled in after the update (TensorFlow).
        spectral: each logged kernel's spectral update size, where the layout
            has ``spectral``; None: zeros, filled in after the update (TensorFlow).
        forward: the forward pass's sections, where the layout has them: the
            activation sections (:data:`ACTIVATION_SECTIONS`), the attention
            ones (:data:`ATTENTION_SECTIONS`), then the output logits'
            (:data:`LOGIT_SECTIONS`).

    Returns:
        The row, ``layout.width`` entries.
    """
    n = len(layout.groups)
    segments = [group_of[i] for i in grouped]
    parts = {
        "step": ops.scalar(step),
        "nonfinite": ops.scalar(nonfinite),
        "global": ops.total(sums),
        "groups": ops.segment_sum(sums, segments, n),
    }
    if layout.has("variables"):
        parts["variables"] = ops.scatter(sums, grouped, len(layout.variables))
    if layout.has("weights"):
        parts["weights"] = ops.segment_sum(weights, group_of, n)
    if layout.has("updates"):
        parts["updates"] = (
            ops.zeros(n) if updates is None else ops.segment_sum(updates, group_of, n)
        )
    if layout.has("eps_small"):
        parts["eps_small"] = (
            ops.zeros(n) if eps_small is None else ops.segment_sum(eps_small, group_of, n)
        )
    if layout.spectral:
        parts["spectral"] = ops.zeros(len(layout.spectral)) if spectral is None else spectral
    if layout.log_clipped:
        parts["clipped_global"] = ops.total(clipped)
        parts["clipped_groups"] = ops.segment_sum(clipped, segments, n)
    names = ACTIVATION_SECTIONS if layout.activation_stats else ()
    names += ATTENTION_SECTIONS if layout.attention else ()
    names += LOGIT_SECTIONS if layout.output_logits else ()
    names += LOSS_SECTIONS if layout.detect_spikes else ()
    parts.update(zip(names, forward, strict=True))
    return ops.concat([parts[name] for name in layout.order()])
