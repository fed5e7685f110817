"""Figures shared by the examples: depth profiles, activation histograms, loss curves.

matplotlib is imported lazily (it is in the ``examples`` extra, not a core
dependency) and always with the Agg backend, so nothing needs a display.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .stats import LayerStats

# Overlapping lines (two schemes that both stall) stay visible with distinct dashes.
LINESTYLES = ("-", "--", ":", "-.")

PANELS = {
    "activation_mean": ("activation mean", False),
    "activation_std": ("activation std", True),
    "backprop_norm": ("|dL/d output| (backprop signal)", True),
    "grad_norm": ("|dL/dW| (weight gradient)", True),
}


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, so no display is needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str) -> str:
    """Save ``fig`` as a PNG at ``path`` (folders created), close it, return the path."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return path


def _finite_positive(values: Sequence[float]) -> np.ndarray:
    # Log axes cannot show 0, inf or nan; masking them leaves a visible gap.
    arr = np.asarray(values, dtype="float64")
    return np.where(np.isfinite(arr) & (arr > 0), arr, np.nan)


def plot_depth_profiles(
    profiles: Mapping[str, Sequence[LayerStats]],
    path: str,
    title: str = "",
    panels: Sequence[str] = ("activation_std", "backprop_norm", "grad_norm"),
) -> str:
    """One line per scheme, layer index on x: how each statistic changes with depth at init.

    Args:
        profiles: each scheme's per-layer statistics, by label.
        path: where to write the PNG (folders are created).
        title: the figure's title (default ``""``: none).
        panels: the :class:`LayerStats` fields to plot, one panel each, among
            :data:`PANELS` (default: activation std, backprop norm, grad norm).

    Returns:
        ``path``, once the figure is written.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        label, log = PANELS[panel]
        for name, stats in profiles.items():
            values = [getattr(s, panel) for s in stats]
            x = np.arange(1, len(values) + 1)
            ax.plot(x, _finite_positive(values) if log else values, marker="o", ms=3, label=name)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("layer (1 = nearest the input)")
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_activation_histograms(
    profiles: Mapping[str, Sequence[LayerStats]], path: str, title: str = "", max_layers: int = 5
) -> str:
    """Glorot & Bengio style: per scheme, the distribution of each hidden layer's outputs.

    Needs stats measured with ``keep_activations > 0``.

    Args:
        profiles: each scheme's per-layer statistics (with kept activations),
            by label; one panel each.
        path: the PNG to write.
        title: the figure's title (default ``""``: none).
        max_layers: the most hidden layers drawn per panel, spread over the
            depth (default 5).

    Returns:
        ``path``, written.
    """
    plt = pyplot()
    fig, axes = plt.subplots(len(profiles), 1, figsize=(8, 2.4 * len(profiles)), squeeze=False)
    kept = [
        s.activations[np.isfinite(s.activations)]
        for stats in profiles.values()
        for s in stats[:-1]
        if s.activations is not None
    ]
    # One x-range for every panel, so a distribution collapsing to a spike stands out.
    lims = tuple(np.percentile(np.concatenate(kept), [0.5, 99.5])) if kept else None
    for ax, (name, stats) in zip(axes[:, 0], profiles.items(), strict=True):
        hidden = [s for s in stats[:-1] if s.activations is not None]
        picks = np.unique(
            np.linspace(0, len(hidden) - 1, min(max_layers, len(hidden))).round().astype(int)
        )
        for i in picks:
            values = hidden[i].activations[np.isfinite(hidden[i].activations)]
            ax.hist(
                values,
                bins=60,
                range=lims,
                histtype="step",
                weights=np.full(len(values), 1.0 / max(len(values), 1)),
                label=f"layer {i + 1} (std {hidden[i].activation_std:.2g})",
            )
        ax.set_title(name, fontsize=10)
        ax.set_ylabel("fraction")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("activation value")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    path: str,
    title: str = "",
    xlabel: str = "epoch",
    ylabel: str = "training loss",
    log: bool = True,
) -> str:
    """One line per name: loss (or any series) against epoch or step.

    Args:
        curves: each series by its label.
        path: the PNG file to write.
        title: the axes' title (default ``""``: none).
        xlabel: the x axis label (default ``"epoch"``).
        ylabel: the y axis label (default ``"training loss"``).
        log: a log y axis, where non-positive and non-finite values leave
            gaps (default True).

    Returns:
        The ``path`` written.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for k, (name, values) in enumerate(curves.items()):
        y = _finite_positive(values) if log else np.asarray(values, dtype="float64")
        ax.plot(
            np.arange(1, len(y) + 1),
            y,
            marker="o",
            ms=3,
            ls=LINESTYLES[k % len(LINESTYLES)],
            label=name,
        )
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_matrices(
    matrices: Mapping[str, np.ndarray],
    path: str,
    title: str = "",
    xlabel: str = "input feature",
    ylabel: str = "hidden unit",
) -> str:
    """Side-by-side heatmaps, e.g. a hidden layer's weights (one row per unit) by scheme.

    Args:
        matrices: each 2-D array by its label, one panel each.
        path: the PNG file to write.
        title: the figure's title (default ``""``: none).
        xlabel: each panel's x label (default ``"input feature"``).
        ylabel: each panel's y label (default ``"hidden unit"``).

    Returns:
        The ``path`` written to.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 3.4), squeeze=False)
    for ax, (name, matrix) in zip(axes[0], matrices.items(), strict=True):
        image = ax.imshow(matrix, aspect="auto", cmap="coolwarm")
        fig.colorbar(image, ax=ax, fraction=0.046)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
