"""The coordinate check: does every layer's output keep its size across widths while training?"""

from __future__ import annotations

import io
import math
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from tensorboard.compat.proto import summary_pb2

from keras_initzoo import _keras_internals as internals
from keras_initzoo._records import infshape_of
from keras_initzoo._validation import (
    check_choice,
    check_int,
    check_positive_float32,
)
from keras_initzoo.models.data import as_batch
from keras_initzoo.models.report import Report
from keras_initzoo.models.residual import trace
from keras_initzoo.models.trace import first_tensor, intercept, leaf_layers
from keras_initzoo.models.walk import walk
from keras_initzoo.mup.depth import DEPTH_RULES
from keras_initzoo.mup.optimizers import SGD, Adam
from keras_initzoo.mup.parametrization import infshapes, parametrize, redraw

# microsoft/mup's bound: under muP each layer's mean |output| at widths 4x
# apart agrees within this factor (widest over narrowest, either way).
TOLERANCE = 1.2
# the depth check's bound (deepest over shallowest, either way): CompleteP's stream
# stays within it from 2 to 32 blocks, width-only muP's leaves it
DEPTH_TOLERANCE = 1.5
DEFAULT_LEARNING_RATE = {"adam": 1e-3, "sgd": 0.1}  # mup's coord-check defaults
_SEED_STRIDE = 100_003  # seeds of (seed, width) pairs stay distinct for widths below it
_OPTIMIZERS = {"adam": (Adam, keras.optimizers.Adam), "sgd": (SGD, keras.optimizers.SGD)}


class CoordReport(Report):
    """Rows ``(layer, t)`` of mean |output| per width, a verdict, a plot and a TensorBoard view.

    ``t = 1`` is before the first step, ``t = k + 1`` after step ``k``.
    ``values`` holds every measurement, shape ``(widths, seeds, steps + 1,
    layers)``. :func:`coord_check` makes it.

    Args:
        rows: the ``(layer, t)`` rows, as :class:`~keras_initzoo.Report`
            (default ``()``).
        columns: the columns to print (default None: every key of the rows).
        title: the line above the table (default ``""``). Keyword only.
        notes: the lines below it (default ``()``). Keyword only.
    """

    verdict: str = "stable"
    where: str | None = None
    axis: str = "width"  # what the columns vary: "width", or "depth" for the depth check
    widths: tuple[int, ...] = ()
    layers: tuple[str, ...] = ()
    values: np.ndarray | None = None

    def __str__(self) -> str:
        where = f" at {self.where}" if self.where else ""
        return f"{super().__str__()}\nverdict: {self.verdict}{where}"

    def plot(self, path: str) -> str:
        """Writes one panel per step, mean |output| against width on log axes, as a PNG."""
        from keras_initzoo.experiments.plotting import save_figure

        return save_figure(self._figure(), path)

    def _figure(self) -> Any:
        from keras_initzoo.experiments.plotting import pyplot

        try:
            plt = pyplot()
        except ImportError as error:
            raise ImportError("`plot` needs matplotlib: pip install matplotlib") from error
        means = self.values.mean(axis=1)  # (widths, t, layers)
        panels = means.shape[1]
        figure, axes = plt.subplots(
            1, panels, figsize=(3.2 * panels, 3.4), sharey=True, squeeze=False
        )
        for t, axis in enumerate(axes[0]):
            for index, name in enumerate(self.layers):
                curve = np.where(means[:, t, index] > 0, means[:, t, index], np.nan)
                axis.plot(self.widths, curve, marker="o", markersize=3, label=name)
            axis.set_xscale("log")
            axis.set_xticks(self.widths, [str(w) for w in self.widths], minor=False)
            axis.minorticks_off()
            axis.set_yscale("log")
            axis.set_title(f"t = {t + 1}")
            axis.set_xlabel(self.axis)
            axis.grid(True, which="both", alpha=0.3)
        axes[0][0].set_ylabel("mean |output|")
        axes[0][-1].legend(fontsize=6, loc="best")
        figure.suptitle(self._headline)
        figure.tight_layout()
        return figure

    def write_tensorboard(
        self, log_dir: str | os.PathLike, *, image: bool | None = None
    ) -> list[str]:
        """Writes the check as TensorBoard runs under ``log_dir``; returns their folders.

        One run per width, ``width_<w>`` (zero-padded, so that TensorBoard
        lists them in order of width), each with one scalar per layer,
        ``coord/<layer>``: the layer's mean |output|, averaged over seeds, at
        step ``t`` as in the report's rows (``t = 1`` before the first
        optimizer step, ``t = k + 1`` after step ``k``, mup's numbering). The
        Scalars tab so overlays the widths on one chart per layer: under muP
        the lines lie on each other (switch the y axis to log to compare
        sizes). The run ``summary`` holds the report and its verdict as text
        (``coord_check/report``) and :meth:`plot`'s figure as an image
        (``coord_check/plot``): by default when matplotlib is installed,
        ``image=True`` requires it, ``image=False`` leaves it out.

        Written through the package's own event writer, so no TensorFlow is
        loaded on JAX or PyTorch. Event files that an earlier call left in
        these run folders are removed: a rerun replaces the view.

        Example (``tensorboard --logdir runs/coord`` then shows it):

        >>> report.write_tensorboard("runs/coord")  # doctest: +SKIP
        ['runs/coord/width_0256', 'runs/coord/width_1024', 'runs/coord/summary']
        """
        from keras_initzoo.callbacks.writer import EventWriter, image_summary, text_summary
        from keras_initzoo.experiments.summaries import fresh_run_dir

        if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
            raise ValueError(f"`log_dir` must be a folder path; received log_dir={log_dir!r}.")
        log_dir = os.fspath(log_dir)
        if image is not None and not isinstance(image, bool):
            raise ValueError(f"`image` must be None, True or False; received image={image!r}.")
        png = self._png(required=bool(image)) if image is not False else None
        means = self.values.mean(axis=1)  # (widths, t, layers)
        digits = len(str(max(self.widths)))
        tags = [f"coord/{name}" for name in self.layers]
        runs = []
        for w_index, width in enumerate(self.widths):
            run = f"{self.axis}_{width:0{digits}d}"
            writer = EventWriter(fresh_run_dir(os.path.join(log_dir, run)))
            for t, sizes in enumerate(means[w_index]):
                values = [
                    summary_pb2.Summary.Value(tag=tag, simple_value=size)
                    for tag, size in zip(tags, sizes, strict=True)
                ]
                writer.write_summary(t + 1, summary_pb2.Summary(value=values))
            writer.close()
            runs.append(os.path.dirname(writer.path))
        writer = EventWriter(fresh_run_dir(os.path.join(log_dir, "summary")))
        # four spaces: Markdown's preformatted block keeps the table's columns
        text = "\n".join("    " + line for line in str(self).splitlines())
        writer.write_summary(0, text_summary("coord_check/report", text))
        if png is not None:
            writer.write_summary(0, image_summary("coord_check/plot", png, self._headline))
        writer.close()
        return [*runs, os.path.dirname(writer.path)]

    def _png(self, required: bool) -> bytes | None:
        """:meth:`plot`'s figure as PNG bytes; None without matplotlib unless ``required``."""
        try:
            figure = self._figure()
        except ImportError:
            if required:
                raise
            return None
        from keras_initzoo.experiments.plotting import pyplot

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        pyplot().close(figure)
        return buffer.getvalue()

    @property
    def _headline(self) -> str:
        return f"{self.title}: {self.verdict}" + (f" at {self.where}" if self.where else "")


def _check_sizes(name: str, sizes: object) -> tuple[int, ...]:
    """``widths`` or ``depths``: at least two different integers > 0, sorted."""
    if (
        not isinstance(sizes, Sequence)
        or isinstance(sizes, str)
        or len(set(sizes)) < 2
        or not all(
            isinstance(w, numbers.Integral) and not isinstance(w, bool) and w > 0 for w in sizes
        )
    ):
        raise ValueError(
            f"`{name}` must list at least two different integers > 0; received {name}={sizes!r}."
        )
    return tuple(sorted({int(w) for w in sizes}))


def _loss_for(y: Any, loss: Any) -> Any:
    if loss is not None:
        return loss
    dtype = keras.backend.standardize_dtype(np.asarray(y).dtype)
    if "int" in dtype:  # class ids against logits
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return "mean_squared_error"


def _attention_factor(layer: keras.layers.Layer) -> float:
    """The ``alpha`` a parametrized attention query carries (1 for any other layer)."""
    factors = [getattr(infshape_of(v), "attention", 1.0) for v in layer.trainable_variables]
    return factors[0] if factors else 1.0


def _mean_abs_outputs(model: keras.Model, layers: list, x: Any) -> list[float]:
    """The mean |output| of each of ``layers`` in one eager forward pass (nan if not called).

    A query's output is divided by its ``alpha``: muP's own coordinate, whose
    logits are ``q.k / d`` (the query here carries ``alpha`` for Keras'
    ``1/sqrt(d)``).
    """
    values: dict[int, float] = {}

    def handler(layer, call, args, kwargs):
        output = call(*args, **kwargs)
        if id(layer) not in values:
            array = keras.ops.convert_to_numpy(first_tensor(output))
            size = float(np.mean(np.abs(np.asarray(array, dtype="float64"))))
            values[id(layer)] = size / _attention_factor(layer)
        return output

    with intercept(layers, handler):
        model(x, training=False)
    return [values.get(id(layer), math.nan) for layer in layers]


def _measured_layers(model: keras.Model) -> list:
    """The leaf layers of ``model``, each recurrent cell replaced by the RNN layer that runs it.

    A cell is called once per time step, the first time from a zero state,
    where its recurrent kernel plays no part; the RNN layer's output (as
    microsoft/mup's hooks see a torch ``nn.LSTM``'s) is the cell's state after
    the recurrent kernel has acted at every step.
    """
    recurrent = [
        layer
        for layer in internals.flatten_layers(model, include_self=False, recursive=True)
        if isinstance(layer, keras.layers.RNN)
    ]
    cells = {
        id(leaf): rnn
        for rnn in recurrent
        for leaf in internals.flatten_layers(rnn, include_self=False, recursive=True)
    }
    measured: dict[int, keras.layers.Layer] = {}
    for layer in leaf_layers(model):
        chosen = cells.get(id(layer), layer)
        measured.setdefault(id(chosen), chosen)
    return list(measured.values())


def _label(layer: keras.layers.Layer) -> str:
    """The layer's path inside its model (the model's own, numbered, name left out)."""
    path = layer.path or layer.name
    return path.split("/", 1)[1] if "/" in path else path


def _ratio(narrow: float, wide: float) -> float:
    if not (math.isfinite(narrow) and math.isfinite(wide)):
        return math.inf
    if narrow == wide:  # a zero readout at t = 1 is 0 at every width
        return 1.0
    return math.inf if narrow == 0.0 else wide / narrow


def coord_check(
    build: Callable[[int], keras.Model],
    widths: Sequence[int],
    x: Any,
    y: Any,
    *,
    base_width: int | None = None,
    parametrization: str = "mup",
    optimizer: str = "adam",
    learning_rate: float | None = None,
    loss: Any = None,
    steps: int = 3,
    seeds: int = 2,
    zero_readout: bool = False,
    zero_query: bool = False,
    depths: Sequence[int] | None = None,
    depth: str | None = "completep",
) -> CoordReport:
    """The coordinate check of microsoft/mup: mean |output| per layer against width (or depth).

    For each seed and width, ``build(width)`` is parametrized against
    ``build(base_width)`` (default: the narrowest), compiled with the
    optimizer at ``learning_rate`` (default 1e-3 for Adam, 0.1 for SGD, as
    mup's) and ``loss`` (default: sparse categorical cross-entropy on logits
    for integer ``y``, else mean squared error), and trained ``steps`` steps
    with ``train_on_batch`` on the one batch ``(x, y)``. Every leaf layer's
    mean |output| on ``x`` (a recurrent layer's, not its cell's) is measured
    at ``t = 1`` (before the first step) and after each step. Under muP each
    stays the same size across widths; ``parametrization="standard"`` draws
    the same fan-in init without muP's multipliers and uses Keras' optimizer
    (Tensor Programs V's standard parametrization), where the updates grow
    with width.

    The ``verdict`` is "stable" when every layer's mean |output| at the widest
    width is within a factor :data:`TOLERANCE` (1.2) of the narrowest's at
    every ``t``; otherwise "blows up" or "vanishes", ``where`` naming the
    layer (and ``t``) that moves most. Under muP a readout that is not zero
    starts at ``1/sqrt(width)`` of the base's, by design, until its updates
    dominate: a readout that shrinks is not counted (``zero_readout=True``
    starts it at exactly 0; ``zero_query`` is :func:`parametrize`'s). The
    query of attention is measured divided by the ``alpha`` it carries.

    **Across depth** (``depths`` given): ``build(width, depth)`` is
    parametrized against ``build(widths[0], depths[0])`` with the ``depth``
    rule (``"completep"``, ``"depth_mup"``, or None for width-only muP) and
    trained as above; at each ``t`` one probed pass
    (:func:`keras_initzoo.models.residual.trace`) reads the residual stream:
    its RMS after the last block (``stream``), how far that moved since
    ``t = 1`` (``stream change``, RMS of the difference), and the mean over
    blocks of how far each block's branch output moved (``block update``,
    which should shrink as ``1/L`` under CompleteP, each block's share).
    Rows are ``(quantity @ width, t)``, columns the depths; the verdict
    holds ``stream`` and ``stream change`` to a factor :data:`DEPTH_TOLERANCE`
    (1.5) between the deepest and the shallowest.

    Examples:
        >>> def build(width):
        ...     return keras.Sequential([keras.Input((8,)),
        ...         keras.layers.Dense(width, activation="relu"), keras.layers.Dense(8)])
        >>> x = np.random.default_rng(0).standard_normal((32, 8)).astype("float32")
        >>> report = coord_check(build, [64, 256], x, x, steps=1, seeds=2, zero_readout=True)
        >>> report.verdict
        'stable'

    Args:
        build: ``build(width)`` (``build(width, depth)`` with ``depths``) makes
            a new, built model.
        widths: the widths (at least two; with ``depths``, one is enough).
        x: one batch of inputs.
        y: its targets.
        base_width: the width the model is parametrized against (the
            narrowest by default).
        parametrization: ``"mup"`` (default) or ``"standard"``.
        optimizer: ``"adam"`` (default) or ``"sgd"``.
        learning_rate: the base rate (default None: mup's defaults, 1e-3 Adam,
            0.1 SGD).
        loss: a Keras loss (default None: chosen from ``y``'s dtype).
        steps: optimizer steps after ``t = 1`` (default 3).
        seeds: repeats, averaged (default 2).
        zero_readout: start the readout at 0 (default False).
        zero_query: start each attention query at 0 (default False).
        depths: the numbers of blocks to compare (at least two), or None
            (default) for the check across width.
        depth: the depth rule of :func:`parametrize` for the check across depth
            (default ``"completep"``; the check across depth is under muP only:
            ``parametrization`` must be ``"mup"`` with ``depths``).

    Returns:
        A :class:`CoordReport`: one row per layer and ``t`` with the mean over
        seeds at each width and the widest-to-narrowest ratio (across depth:
        one row per quantity, width and ``t``, the depths as columns).
    """
    if depths is not None:
        if parametrization != "mup":
            raise ValueError(
                "`parametrization` must be 'mup' with `depths` (the check across depth "
                f"compares depth rules under muP; depth=None is width-only muP), got "
                f"{parametrization!r}."
            )
        return depth_check(
            build, widths, depths, x, y, depth=depth, optimizer=optimizer,
            learning_rate=learning_rate, loss=loss, steps=steps, seeds=seeds,
            zero_readout=zero_readout,
        )  # fmt: skip
    widths = _check_sizes("widths", widths)
    parametrization = check_choice("parametrization", parametrization, ("mup", "standard"))
    optimizer = check_choice("optimizer", optimizer, tuple(_OPTIMIZERS))
    rate = DEFAULT_LEARNING_RATE[optimizer] if learning_rate is None else learning_rate
    rate = check_positive_float32("learning_rate", rate)
    steps = check_int("steps", steps, minimum=0)
    seeds = check_int("seeds", seeds, minimum=1)
    base_width = widths[0] if base_width is None else check_int("base_width", base_width, 1)
    batch = as_batch(x, name="x")
    targets = as_batch(y, name="y")
    mup_class, keras_class = _OPTIMIZERS[optimizer]
    values = np.full((len(widths), seeds, steps + 1, 0), math.nan)
    names: list[str] = []
    readouts: set[int] = set()
    for seed in range(seeds):
        base = build(base_width)
        other = next(w for w in widths if w != base_width)
        for w_index, width in enumerate(widths):
            model = build(width)
            delta = build(other) if width == base_width else None
            # every kernel is re-drawn from this seed (keras.utils.set_random_seed
            # would import TensorFlow on every backend), from a generator of its
            # own: the zoo's integer seed takes the next stream of its family on
            # each use, and the draws would depend on earlier calls in the process
            draw_seed = keras.random.SeedGenerator(_SEED_STRIDE * seed + width)
            if parametrization == "mup":
                parametrize(
                    model,
                    base,
                    delta,
                    zero_readout=zero_readout,
                    zero_query=zero_query,
                    seed=draw_seed,
                )
                chosen = mup_class(learning_rate=rate)
            else:
                records = infshapes(model, base, delta)
                redraw(walk(model).kernels, records, standard=True, seed=draw_seed)
                chosen = keras_class(learning_rate=rate)
            model.compile(optimizer=chosen, loss=_loss_for(targets, loss))
            layers = _measured_layers(model)
            if not names:
                names = [_label(layer) for layer in layers]
                values = np.full((len(widths), seeds, steps + 1, len(layers)), math.nan)
                readouts = {
                    i
                    for i, layer in enumerate(layers)
                    if any(
                        getattr(infshape_of(v), "kind", None) == "output"
                        for v in layer.trainable_variables
                    )
                }
            if len(layers) != len(names):
                raise ValueError(
                    f"`build({width})` has {len(layers)} layers, `build({widths[0]})` "
                    f"{len(names)}: `build` must give the same architecture at every width."
                )
            values[w_index, seed, 0] = _mean_abs_outputs(model, layers, batch)
            for t in range(1, steps + 1):
                model.train_on_batch(batch, targets)
                values[w_index, seed, t] = _mean_abs_outputs(model, layers, batch)
    called = [i for i in range(len(names)) if not np.isnan(values[..., i]).all()]
    readouts = {called.index(i) for i in readouts if i in called}
    names = [names[i] for i in called]  # an InputLayer is never called
    values = values[..., called]
    return _report(values, widths, names, readouts, parametrization, optimizer, rate, zero_readout)


def _report(
    values,
    widths,
    names,
    readouts,
    parametrization,
    optimizer,
    rate,
    zero_readout,
    *,
    axis: str = "width",
    tolerance: float = TOLERANCE,
):
    means = values.mean(axis=1)  # (widths, t, layers)
    columns = ("layer", "t", *(f"{axis} {w}" for w in widths), "ratio")
    report = CoordReport(
        columns=columns,
        title=f"coordinate check{' across depth' if axis == 'depth' else ''}: "
        f"{parametrization}, {optimizer} at {rate:g}",
    )
    report.axis = axis
    worst, worst_octaves = None, 0.0
    for index, name in enumerate(names):
        for t in range(means.shape[1]):
            ratio = _ratio(means[0, t, index], means[-1, t, index])
            report.add(
                layer=name,
                t=t + 1,
                ratio=ratio,
                **{f"{axis} {w}": means[i, t, index] for i, w in enumerate(widths)},
            )
            by_design = (
                parametrization == "mup" and not zero_readout and index in readouts and ratio < 1
            )
            octaves = math.inf if ratio in (0.0, math.inf) else abs(math.log2(ratio))
            if not by_design and octaves > math.log2(tolerance) and octaves > worst_octaves:
                worst, worst_octaves = (name, t + 1, ratio), octaves
    if worst is not None:
        name, t, ratio = worst
        report.verdict = "blows up" if ratio > 1 else "vanishes"
        report.where = f"{name} (t={t}: x{ratio:.3g} from {axis} {widths[0]} to {widths[-1]})"
    if parametrization == "mup" and not zero_readout and readouts:
        report.notes.append(
            "the readout starts at 1/sqrt(width) of the base's, by design: its shrinking "
            "is not counted (zero_readout=True starts it at 0)"
        )
    report.widths, report.layers, report.values = tuple(widths), tuple(names), values
    return report


DEPTH_QUANTITIES = ("stream", "stream change", "block update")


def _rms(array: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(array, dtype="float64"))))


def _stream_tensors(model: keras.Model, x: Any) -> tuple[np.ndarray, list[np.ndarray]]:
    """The stream after the last join, and each join's branch term, in one probed pass."""
    branches: list[np.ndarray] = []
    last: list[np.ndarray] = []

    def on_join(join, skip, branch):
        skip_value = np.asarray(keras.ops.convert_to_numpy(skip), dtype="float64")
        term = join.beta * np.asarray(keras.ops.convert_to_numpy(branch), dtype="float64")
        branches.append(term)
        last[:] = [join.alpha * skip_value + term]
        return None

    trace(model, x, training=False, on_join=on_join)
    if not branches:
        raise ValueError(
            f"the model `build` made ({model.name!r}) has no residual join: the check across "
            "depth reads the residual stream (see kiz.residual_structure)."
        )
    return last[0], branches


def depth_check(
    build: Callable[[int, int], keras.Model],
    widths: Sequence[int],
    depths: Sequence[int],
    x: Any,
    y: Any,
    *,
    depth: str | None = "completep",
    optimizer: str = "adam",
    learning_rate: float | None = None,
    loss: Any = None,
    steps: int = 3,
    seeds: int = 2,
    zero_readout: bool = False,
) -> CoordReport:
    """The coordinate check across depth (:func:`coord_check` with ``depths``; see there).

    Args:
        build: ``build(width, depth)`` makes a new, built model with ``depth`` blocks.
        widths: one or more widths.
        depths: at least two numbers of blocks; the smallest is the base's.
        x: one batch of inputs.
        y: its targets.
        depth: ``"completep"``, ``"depth_mup"`` or None (width-only muP).
        optimizer: ``"adam"`` or ``"sgd"``.
        learning_rate: the base rate.
        loss: a Keras loss (default from ``y``'s dtype).
        steps: optimizer steps after ``t = 1``.
        seeds: repeats, averaged.
        zero_readout: start the readout at 0.

    Returns:
        A :class:`CoordReport` with ``axis == "depth"``: rows ``(quantity @
        width, t)``, a column per depth, and ``values`` of shape ``(depths,
        seeds, steps + 1, quantities x widths)``.
    """
    if not isinstance(widths, Sequence) or isinstance(widths, str) or not widths:
        raise ValueError(f"`widths` must list one or more integers > 0; received {widths!r}.")
    widths = tuple(sorted({check_int("widths", w, minimum=1) for w in widths}))
    depths = _check_sizes("depths", depths)
    if depth is not None:
        check_choice("depth", depth, DEPTH_RULES)
    optimizer = check_choice("optimizer", optimizer, tuple(_OPTIMIZERS))
    rate = DEFAULT_LEARNING_RATE[optimizer] if learning_rate is None else learning_rate
    rate = check_positive_float32("learning_rate", rate)
    steps = check_int("steps", steps, minimum=0)
    seeds = check_int("seeds", seeds, minimum=1)
    batch, targets = as_batch(x, name="x"), as_batch(y, name="y")
    mup_class = _OPTIMIZERS[optimizer][0]
    names = [f"{q} @ width {w}" for q in DEPTH_QUANTITIES for w in widths]
    values = np.full((len(depths), seeds, steps + 1, len(names)), math.nan)
    for seed in range(seeds):
        base = build(widths[0], depths[0])
        for w_index, width in enumerate(widths):
            delta = build(widths[1], depths[0]) if width == widths[0] and len(widths) > 1 else None
            for d_index, blocks in enumerate(depths):
                model = build(width, blocks)
                draw_seed = keras.random.SeedGenerator(_SEED_STRIDE * seed + 7919 * blocks + width)
                parametrize(
                    model, base, delta, zero_readout=zero_readout, seed=draw_seed, depth=depth
                )
                # Eager: a few steps of a deep model cost far less to run than to trace.
                model.compile(
                    optimizer=mup_class(learning_rate=rate),
                    loss=_loss_for(targets, loss),
                    run_eagerly=True,
                )
                first_stream, first_branches = _stream_tensors(model, batch)
                for t in range(steps + 1):
                    if t:
                        model.train_on_batch(batch, targets)
                        stream, branches = _stream_tensors(model, batch)
                    else:
                        stream, branches = first_stream, first_branches
                    updates = [_rms(b - b0) for b, b0 in zip(branches, first_branches, strict=True)]
                    measured = (_rms(stream), _rms(stream - first_stream), float(np.mean(updates)))
                    for q_index, value in enumerate(measured):
                        values[d_index, seed, t, q_index * len(widths) + w_index] = value
    rule = depth if depth is not None else "width-only muP"
    report = _report(
        values, depths, names, set(), rule, optimizer, rate, True,
        axis="depth", tolerance=DEPTH_TOLERANCE,
    )  # fmt: skip
    # a block's own update shrinks with depth by design (1/L under CompleteP): not judged
    judged = [i for i, name in enumerate(names) if not name.startswith("block update")]
    _depth_verdict(report, values, depths, names, judged)
    return report


def _depth_verdict(report, values, depths, names, judged) -> None:
    """The verdict from ``stream`` and ``stream change`` only, every depth against every other."""
    means = values.mean(axis=1)  # (depths, t, quantities)
    report.verdict, report.where = "stable", None
    worst = 0.0
    for index in judged:
        for t in range(means.shape[1]):
            column = means[:, t, index]
            if np.all(column == 0.0):  # no change yet at t = 1
                continue
            spread = math.inf if np.any(column <= 0) else float(column.max() / column.min())
            if spread > DEPTH_TOLERANCE and spread > worst:
                worst = spread
                grows = column[-1] > column[0]
                report.verdict = "blows up" if grows else "vanishes"
                report.where = (
                    f"{names[index]} (t={t + 1}: x{spread:.3g} between depths "
                    f"{depths[int(column.argmin())]} and {depths[int(column.argmax())]})"
                )
