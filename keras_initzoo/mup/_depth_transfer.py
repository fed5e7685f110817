"""Learning-rate transfer across depth (and width) on digits: what the benchmarks and a test share.

Pre-LN residual MLP blocks (LayerNorm, Dense+ReLU, Dense, Add) between an
embedding Dense and a LayerNorm + readout, trained with Adam by
``model.fit`` on sklearn's 1,797 digits (pixels / 16). One run is one rule,
size, learning rate and seed; its result is the last epoch's training loss
(Keras' mean over that epoch), nan once it diverged. The rules:

* ``"completep"``, ``"depth_mup"``: :func:`keras_initzoo.mup.parametrize`
  against the base size with that depth rule, :class:`keras_initzoo.mup.Adam`;
* ``"none"``: the same with ``depth=None`` (muP for width only);
* ``"standard"``: the model as Keras builds it and ``keras.optimizers.Adam``.

Used by ``benchmarks/mup_depth_lr_transfer.py``,
``benchmarks/mup_width_depth_transfer.py`` and
``tests/test_mup_width_depth_transfer.py``; the coordinate check across width
and depth at once (:func:`width_depth_grid`, :func:`base_ratios`,
:func:`plot_width_depth`) by ``benchmarks/mup_width_depth_coord_check.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np

if TYPE_CHECKING:
    from keras_initzoo.mup.coordinates import CoordReport

RULES = ("completep", "depth_mup", "none", "standard")


def residual_mlp(width: int, depth: int, inputs: int = 64) -> keras.Model:
    """``inputs`` (digits: 64 pixels) -> embedding -> ``depth`` pre-LN residual MLP blocks
    -> LayerNorm -> 10 logits."""
    inputs = keras.Input((inputs,))
    x = keras.layers.Dense(width, name="embed")(inputs)
    for i in range(depth):
        h = keras.layers.LayerNormalization(name=f"b{i}_ln")(x)
        h = keras.layers.Dense(width, activation="relu", name=f"b{i}_fc1")(h)
        h = keras.layers.Dense(width, name=f"b{i}_fc2")(h)
        x = keras.layers.Add(name=f"b{i}_add")([x, h])
    x = keras.layers.LayerNormalization(name="final_ln")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="readout")(x))


def pre_ln_transformer_blocks(x, width: int, depth: int):
    """``depth`` pre-LN blocks on ``x``: LayerNorm, 2-head ``MultiHeadAttention``, Add;
    LayerNorm, Dense ReLU at twice the width, Dense, Add."""
    for i in range(depth):
        h = keras.layers.LayerNormalization(name=f"t{i}_ln1")(x)
        h = keras.layers.MultiHeadAttention(2, width // 2, name=f"t{i}_attention")(h, h)
        x = keras.layers.Add(name=f"t{i}_attn_add")([x, h])
        h = keras.layers.LayerNormalization(name=f"t{i}_ln2")(x)
        h = keras.layers.Dense(2 * width, activation="relu", name=f"t{i}_up")(h)
        h = keras.layers.Dense(width, name=f"t{i}_down")(h)
        x = keras.layers.Add(name=f"t{i}_mlp_add")([x, h])
    return x


def digits(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The digits of sklearn: ``x`` (pixels / 16, float32), ``y`` (int32), the first ``limit``."""
    from sklearn.datasets import load_digits

    found = load_digits()
    x = (found.data / 16.0).astype("float32")
    y = found.target.astype("int32")
    return (x, y) if limit is None else (x[:limit], y[:limit])


def _model(rule, width, depth, seed, x, *, base_width, base_depth, build=None) -> keras.Model:
    """A fresh, compiled model of ``rule`` (see the module) at ``width`` x ``depth``.

    ``build(width, depth)`` makes the model; by default :func:`residual_mlp` on ``x``'s features.
    """
    from keras_initzoo.mup.optimizers import Adam
    from keras_initzoo.mup.parametrization import parametrize

    if rule not in RULES:
        raise ValueError(f"`rule` must be one of {RULES}; received {rule!r}.")
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    if build is None:

        def build(width, depth):
            return residual_mlp(width, depth, x.shape[-1])

    model = build(width, depth)
    if rule == "standard":
        optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    else:
        base = build(base_width, base_depth)
        depth_rule = None if rule == "none" else rule
        parametrize(model, base, depth=depth_rule, seed=seed, data=x[:64])
        optimizer = Adam(learning_rate=1e-3)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _fit(model, rate, seed, x, y, epochs, batch_size) -> float:
    """Trains ``epochs`` epochs at ``rate``, shuffled by ``seed``; the last epoch's loss."""
    model.optimizer.learning_rate.assign(rate)
    # the order is drawn here, not by fit's shuffle=True: its draws on PyTorch and
    # JAX do not start over with keras.utils.set_random_seed in a second fit
    order = np.random.default_rng(seed)
    loss = float("nan")
    for _ in range(epochs):
        shuffled = order.permutation(len(x))
        history = model.fit(
            x[shuffled], y[shuffled], epochs=1, batch_size=batch_size, verbose=0, shuffle=False
        )
        loss = history.history["loss"][-1]
        if not np.isfinite(loss):
            return float("nan")
    return float(loss)


def final_loss(
    rule: str,
    width: int,
    depth: int,
    rate: float,
    seed: int,
    x: np.ndarray,
    y: np.ndarray,
    *,
    base_width: int,
    base_depth: int,
    epochs: int,
    batch_size: int = 64,
) -> float:
    """The last epoch's training loss of one run on a fresh model (nan once it diverged).

    The session is cleared and ``keras.utils.set_random_seed(seed)`` set
    first, so a run does not depend on the runs before it in the process.
    """
    model = _model(rule, width, depth, seed, x, base_width=base_width, base_depth=base_depth)
    return _fit(model, rate, seed, x, y, epochs, batch_size)


def sweep(
    rule: str,
    width: int,
    depth: int,
    exponents: Sequence[int],
    seeds: Sequence[int],
    x: np.ndarray,
    y: np.ndarray,
    *,
    base_width: int,
    base_depth: int,
    epochs: int,
    batch_size: int = 64,
    build: Callable[[int, int], keras.Model] | None = None,
) -> np.ndarray:
    """Final losses of shape ``(seeds, rates)`` at rates ``2**e`` for ``e`` in ``exponents``.

    Each seed builds, parametrizes and compiles one model (as :func:`final_loss`
    does) and trains it at every rate from the same start: its weights and the
    optimizer's state are put back before each rate, and the same order of
    batches drawn. The compiled step is reused, which on JAX and TensorFlow saves
    a compilation per run; the results are those of :func:`final_loss` (tested).
    ``build(width, depth)`` makes another model than :func:`residual_mlp` (its loss:
    sparse categorical cross-entropy on logits, so ``y`` may hold a label per token).
    """
    runs = np.full((len(seeds), len(exponents)), np.nan)
    for i, seed in enumerate(seeds):
        model = _model(
            rule, width, depth, seed, x, base_width=base_width, base_depth=base_depth, build=build
        )
        model.optimizer.build(model.trainable_variables)
        weights = [keras.ops.convert_to_numpy(v) for v in model.weights]
        state = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]
        for j, exponent in enumerate(exponents):
            for variable, value in zip(model.weights, weights, strict=True):
                variable.assign(value)
            for variable, value in zip(model.optimizer.variables, state, strict=True):
                variable.assign(value)
            runs[i, j] = _fit(model, 2.0**exponent, seed, x, y, epochs, batch_size)
    return runs


def best(runs: np.ndarray) -> int:
    """The index of the rate with the lowest mean loss over seeds (a diverged seed loses it)."""
    return int(np.nanargmin(runs.mean(axis=0)))


def optimum(runs: np.ndarray, exponents: Sequence[int]) -> float:
    """The best log2 rate between grid points: the vertex of a parabola in log loss.

    The parabola passes through the best rate's mean loss and its two
    neighbours' (in ``log`` of the loss, against the exponent); its vertex
    lies within half a grid step of the best rate. A best rate at the grid's
    edge, or a neighbour that diverged, is returned as it is.
    """
    means = np.log(runs.mean(axis=0))
    i = best(runs)
    if i in (0, len(exponents) - 1) or not np.all(np.isfinite(means[i - 1 : i + 2])):
        return float(exponents[i])
    left, middle, right = means[i - 1 : i + 2]
    step = exponents[i + 1] - exponents[i]
    curvature = left - 2.0 * middle + right  # > 0: the middle is the lowest of the three
    return float(exponents[i] + 0.5 * step * (left - right) / curvature)


def transfer(base_runs: np.ndarray, target_runs: np.ndarray, exponents: Sequence[int]) -> dict:
    """How the base's best rate does at the target size, from two sweeps over ``exponents``.

    Returns ``base_best`` and ``target_best`` (log2 rates), ``at_base_best``
    (the target's mean loss at the base's best rate), ``target_min`` (its
    lowest mean loss on the grid), ``ratio`` (the two divided, >= 1),
    ``shift`` (target best minus base best, in grid points), and between grid
    points (:func:`optimum`) ``base_optimum``, ``target_optimum`` and
    ``optimum_shift`` (in log2 of the rate).
    """
    means = target_runs.mean(axis=0)
    b, t = best(base_runs), best(target_runs)
    base_optimum, target_optimum = optimum(base_runs, exponents), optimum(target_runs, exponents)
    at = float(means[b])
    return {
        "base_best": int(exponents[b]),
        "target_best": int(exponents[t]),
        "at_base_best": at,
        "target_min": float(means[t]),
        "ratio": at / float(means[t]) if np.isfinite(at) else float("inf"),
        "shift": t - b,
        "base_optimum": base_optimum,
        "target_optimum": target_optimum,
        "optimum_shift": target_optimum - base_optimum,
    }


def plot_sweep(results: dict, path: str, title: str, *, clip: float = 2.5) -> None:
    """One panel per rule (CompleteP | depth-muP | width-only muP) of a depth sweep: the mean
    final loss over seeds against the log2 rate, one curve per depth, each best rate starred.

    ``results`` is the JSON the depth benchmarks write (``exponents``, ``args["seeds"]``,
    ``losses[rule][depth]`` of shape (seeds, rates)); losses at or above ``clip``, and
    diverged runs, are drawn at ``clip``. Needs matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exponents = results["exponents"]
    titles = {
        "completep": "CompleteP",
        "depth_mup": "depth-muP",
        "none": "width-only muP (depth=None)",
    }
    rules = [r for r in ("completep", "depth_mup", "none") if r in results["losses"]]
    rules += [r for r in results["losses"] if r not in rules]
    figure, axes = plt.subplots(1, len(rules), figsize=(5.5 * len(rules), 4.2), sharey=True)
    axes = np.atleast_1d(axes)
    depths = sorted({int(d) for bests in results["losses"].values() for d in bests})
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(depths)))
    for axis, rule in zip(axes, rules, strict=True):
        for color, depth in zip(colors, depths, strict=True):
            losses = results["losses"][rule].get(str(depth), results["losses"][rule].get(depth))
            if losses is None:
                continue
            means = np.array(losses, dtype=float).mean(axis=0)
            drawn = np.where(np.isfinite(means), np.minimum(means, clip), clip)
            axis.plot(exponents, drawn, "o-", color=color, label=f"depth {depth}", markersize=4)
            if np.isfinite(means).any():
                k = int(np.nanargmin(means))
                axis.plot(exponents[k], drawn[k], "*", color=color, markersize=15,
                          markeredgecolor="black")  # fmt: skip
        axis.set_title(titles.get(rule, rule))
        axis.set_xlabel("log2 Adam learning rate")
        axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"final training loss (mean of {len(results['args']['seeds'])} seeds)")
    axes[-1].legend(title="blocks (\u2605 best)")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def width_depth_grid(
    report: CoordReport, quantity: str, t: int = -1
) -> tuple[np.ndarray, list[int]]:
    """One quantity of a depth coordinate check run at several widths, as a depth x width grid.

    Args:
        report: a :class:`~keras_initzoo.mup.coordinates.CoordReport` of
            ``kiz.mup.coord_check(..., depths=...)`` (``axis == "depth"``).
        quantity: ``"stream"``, ``"stream change"`` or ``"block update"``.
        t: the index of the step in ``report.values`` (0 is ``t = 1``, before
            the first step; default -1, after the last).

    Returns:
        ``(grid, widths)``: the mean over seeds, shape ``(depths, widths)``,
        rows in ``report.widths`` order (the depths, smallest first), and the
        widths of its columns, narrowest first.
    """
    if report.axis != "depth":
        raise ValueError("`report` must come from coord_check(..., depths=...).")
    columns = {
        int(name.rsplit(" ", 1)[1]): index
        for index, name in enumerate(report.layers)
        if name.startswith(f"{quantity} @ width ")
    }
    if not columns:
        raise ValueError(f"`report` has no quantity {quantity!r}; it has {report.layers}.")
    widths = sorted(columns)
    means = report.values.mean(axis=1)  # (depths, t, quantities x widths)
    return means[:, t, [columns[w] for w in widths]], widths


def base_ratios(
    report: CoordReport, quantities: Sequence[str] = ("stream", "stream change"), t: int = -1
) -> dict[str, float]:
    """Each quantity at the deepest and widest size over the base's (shallowest, narrowest).

    Args:
        report: a depth coordinate check (see :func:`width_depth_grid`).
        quantities: the quantities to compare (default the stream and its change).
        t: the step index (default -1, after the last step).

    Returns:
        ``{quantity: ratio}``; 1 means the largest model's coordinate is the base's.
    """
    out = {}
    for quantity in quantities:
        grid, _ = width_depth_grid(report, quantity, t)
        out[quantity] = float(grid[-1, -1] / grid[0, 0])
    return out


def plot_width_depth(
    reports: Mapping[str, CoordReport],
    path: str,
    title: str,
    *,
    quantities: Sequence[str] = ("stream", "stream change"),
    band: float = 1.5,
) -> str:
    """Depth coordinate checks at several widths, one column per rule, in one picture.

    Each panel draws one quantity after the last step against depth (log 2),
    one line per width; the gray band is the base's value (shallowest,
    narrowest) times ``1 / band`` to ``band``, and the corner gives the deepest
    and widest size over the base.

    Args:
        reports: ``{column title: report}``, each a depth coordinate check run
            at the same widths and depths (see :func:`width_depth_grid`).
        path: where the PNG goes (folders are made).
        title: the figure's title.
        quantities: one row each (default the stream and its change).
        band: the half-width of the band, a factor (default 1.5).

    Returns:
        ``path``.
    """
    from keras_initzoo.experiments.plotting import pyplot, save_figure

    plt = pyplot()
    from matplotlib import ticker

    figure, axes = plt.subplots(
        len(quantities), len(reports), figsize=(4.4 * len(reports), 3.3 * len(quantities)),
        sharex=True, sharey="row", squeeze=False,
    )  # fmt: skip
    labels = {
        "stream": "RMS after the last block",
        "stream change": "its change since t = 1",
        "block update": "a block's update (mean)",
    }
    for column, (name, report) in enumerate(reports.items()):
        depths = list(report.widths)
        steps = report.values.shape[2] - 1
        for row, quantity in enumerate(quantities):
            axis = axes[row][column]
            grid, widths = width_depth_grid(report, quantity)
            colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(widths)))
            base = grid[0, 0]
            axis.axhspan(base / band, base * band, color="0.85", zorder=0,
                         label=f"base x 1/{band:g} .. {band:g}")  # fmt: skip
            for index, (width, color) in enumerate(zip(widths, colors, strict=True)):
                axis.plot(depths, grid[:, index], marker="o", markersize=4, color=color,
                          label=f"width {width}")  # fmt: skip
            axis.text(
                0.03, 0.95, f"{depths[-1]} x {widths[-1]} / {depths[0]} x {widths[0]}: "
                f"{grid[-1, -1] / base:.2f}", transform=axis.transAxes, va="top", fontsize=8,
            )  # fmt: skip
            axis.set_xscale("log", base=2)
            axis.set_yscale("log", base=2)
            axis.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            axis.set_xticks(depths, [str(d) for d in depths])
            axis.minorticks_off()
            axis.grid(True, which="both", alpha=0.3)
            axis.set_title(f"{name}: {quantity}, t = {steps + 1}", fontsize=10)
            if column == 0:
                axis.set_ylabel(labels.get(quantity, quantity))
        axes[-1][column].set_xlabel("depth (blocks)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)
