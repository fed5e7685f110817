"""How signal flows through a model at initialization: per-layer statistics and a verdict."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from keras_initzoo._records import infshape_of
from keras_initzoo._validation import check_bool
from keras_initzoo.models.auto import Kind, SignalKinds, gain_of
from keras_initzoo.models.data import as_batch, check_built, fit_data
from keras_initzoo.models.losses import model_loss
from keras_initzoo.models.propagate import propagate
from keras_initzoo.models.report import Report
from keras_initzoo.models.residual import ResidualTrace, trace
from keras_initzoo.models.trace import first_tensor, intercept, leaf_layers, state_kept
from keras_initzoo.models.walk import walk

# A signal whose RMS moves by more than 2**DRIFT_OCTAVES from the first layer's is not healthy.
DRIFT_OCTAVES = 4.0
# A residual sum more than 2**BLOCK_OCTAVES times its skip's RMS: the branch swamps the stream.
BLOCK_OCTAVES = 2.0
SATURATED = {"tanh": 0.99, "sigmoid": 0.99}  # |tanh| or |2 sigmoid - 1| above this
_SATURATING_SHARE = 0.5  # a tanh/sigmoid layer with more saturated units than this explodes


class SignalReport(Report):
    """A :class:`Report` with a ``verdict``, the layer ``where`` trouble starts, and ``plot``.

    :func:`signal_report` makes it; ``verdict`` is ``"healthy"`` or the trouble
    found, ``where`` the layer it starts at (None when healthy), ``stream`` one
    row per residual join and ``loss`` which loss the gradients are of.

    Args:
        rows: the per-layer rows, as :class:`Report` (default ``()``).
        columns: the columns to print (default None: every key of the rows).
        title: the line above the table (default ``""``). Keyword only.
        notes: the lines below it (default ``()``). Keyword only.
    """

    verdict: str = "healthy"
    where: str | None = None
    stream: list[dict] = []  # per residual join (set on each report, never shared)
    loss: str | None = None  # which loss the gradients are of

    def __str__(self) -> str:
        where = f", starting at {self.where}" if self.where else ""
        return f"{super().__str__()}\nverdict: {self.verdict}{where}"

    def plot(self, path: str) -> str:
        """Writes the depth plot as a PNG and returns ``path``.

        With residual joins, the first panel is Brock et al.'s (2021)
        signal-propagation plot: per block, the stream's average channel
        squared mean and average channel variance, and the variance over all
        entries, measured and predicted through the graph. Then activation
        RMS and, with targets, gradient norm by layer, in call order.
        """
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError("`plot` needs matplotlib: pip install matplotlib") from error
        depth = np.arange(1, len(self) + 1)
        rms = np.array([_or_nan(row["act rms"]) for row in self])
        grads = np.array([_or_nan(row["grad norm"]) for row in self])
        stream = getattr(self, "stream", [])
        panels = [name for name, shown in (
            ("stream", bool(stream)), ("rms", True), ("grad", np.isfinite(grads).any())
        ) if shown]  # fmt: skip
        figure, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)))
        axes = np.atleast_1d(axes)
        for axis, panel in zip(axes, panels, strict=True):
            if panel == "stream":
                blocks = np.arange(1, len(stream) + 1)
                axis.semilogy(
                    blocks,
                    [e["channel var"] for e in stream],
                    marker="o",
                    markersize=3,
                    label="average channel variance",
                )
                axis.semilogy(
                    blocks,
                    [e["channel mean^2"] for e in stream],
                    marker="s",
                    markersize=3,
                    label="average channel squared mean",
                )
                if all("predicted var" in e for e in stream):
                    for key, style in (("var", "-"), ("predicted var", "--")):
                        axis.semilogy(
                            blocks,
                            [_or_nan(e[key]) for e in stream],
                            linestyle=style,
                            color="black" if style == "--" else "gray",
                            label=f"{key.replace('var', 'variance')} (all entries)",
                        )
                axis.set_xlabel("residual block (stream order)")
                axis.set_ylabel("residual stream")
                axis.legend(fontsize=8)
            elif panel == "rms":
                axis.semilogy(depth, rms, marker="o", markersize=3)
                axis.set_ylabel("activation RMS")
                axis.set_xlabel("layer (call order)")
            else:
                axis.semilogy(depth, grads, marker="o", markersize=3, color="tab:red")
                axis.set_ylabel("gradient norm")
                axis.set_xlabel("layer (call order)")
            axis.grid(True, which="both", alpha=0.3)
        axes[0].set_title(f"signal at initialization: {self.verdict}")
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        plt.close(figure)
        return path


def _or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _is_traced(tensor: Any) -> bool:
    if keras.backend.backend() != "jax":
        return False
    import jax

    return isinstance(tensor, jax.core.Tracer)


def _probed(output: Any) -> bool:
    """Whether the pass takes the gradient with respect to this layer output."""
    return keras.ops.is_tensor(output) and keras.backend.is_float_dtype(output.dtype)


def _norm(gradient: Any) -> float:
    values = np.asarray(keras.ops.convert_to_numpy(gradient), dtype="float64")
    return float(np.sqrt(np.sum(np.square(values))))


class _SignalPass:
    """The one per-layer forward-and-backward pass (see :func:`layer_signals`).

    Every leaf layer's call goes through :meth:`handler`, which measures the
    first call of each layer. With ``output_gradients`` a zero "probe" is
    added to each layer's output during the backward pass: the gradient with
    respect to the probe is the gradient with respect to that output, whatever
    feeds it (a frozen first layer included), and ``x + 0`` leaves every value
    as it was.
    """

    def __init__(
        self, model: keras.Model, output_gradients: bool, keep: int, training: bool = False
    ) -> None:
        self.model = model
        self.training = training
        self.order: list[int] = []  # layer ids in the order of their first call
        self.output_gradients = output_gradients
        self.keep = keep
        self.sites = {
            id(site.layer): site for site in walk(model).kernels if site.role != "recurrent_kernel"
        }
        self.kinds = SignalKinds()
        self.rows: dict[int, dict] = {}
        # JAX's backward pass is traced: those outputs are measured once the trace is done
        self.traced: dict[int, Any] = {}
        self.traced_layers: dict[int, tuple[keras.layers.Layer, Kind]] = {}
        self.measuring = True  # False in JAX's shape-only trace
        self.probe: Any = None  # (layer, output) -> output, while probing
        self.probed: set[int] = set()

    def handler(self, layer, call, args, kwargs):
        output = call(*args, **kwargs)
        if self.probe is not None and id(layer) not in self.probed and _probed(output):
            self.probed.add(id(layer))
            output = self.probe(layer, output)
        if not self.measuring:
            return output
        fed_by = self.kinds.fed_by(args, kwargs)
        self.kinds.record(layer, args, kwargs, output)  # the probed tensor is what flows on
        key = id(layer)
        if key not in self.rows and key not in self.traced:
            self.order.append(key)
            tensor = first_tensor(output)
            if _is_traced(tensor):
                self.traced[key], self.traced_layers[key] = tensor, (layer, fed_by)
            else:
                self.rows[key] = self._row(layer, tensor, fed_by)
        return output

    def _row(self, layer, output, fed_by: Kind) -> dict:
        row = _layer_row(layer, output, fed_by, self.sites.get(id(layer)))
        if self.keep:
            values = np.asarray(keras.ops.convert_to_numpy(output), dtype="float64")
            row["sample"] = values.ravel()[: self.keep].copy()
        return row

    def run(self, batch: Any, y: Any, loss: Any) -> tuple[dict[str, float], dict[int, Any]]:
        """Measures every layer; returns gradient norms by variable path and by layer id."""
        with intercept(leaf_layers(self.model), self.handler):
            grads = self._forward_and_gradients(batch, y, loss)
        for key, output in self.traced.items():
            layer, fed_by = self.traced_layers[key]
            self.rows[key] = self._row(layer, output, fed_by)
        return grads

    def _forward_and_gradients(self, batch, y, loss):
        """Runs the model once and, with targets, takes one backward pass of the loss.

        On JAX that pass is traced by ``jax.grad``: the layer outputs it put in
        ``traced`` come back from it as its auxiliary output, and replace the
        tracers there; the probes' shapes come from a shape-only trace first.
        """
        model = self.model
        variables = model.trainable_variables
        if y is None or not (variables or self.output_gradients):
            model(batch, training=self.training)
            return {}, {}
        backend = keras.backend.backend()
        probes: dict[int, Any] = {}
        if backend == "tensorflow":
            import tensorflow as tf

            def watched(layer, output):
                probes[id(layer)] = tf.zeros_like(output)
                tape.watch(probes[id(layer)])
                return output + probes[id(layer)]

            with tf.GradientTape() as tape:
                self.probe = watched if self.output_gradients else None
                value = loss(y, model(batch, training=self.training))
            grads = tape.gradient(value, [*variables, *probes.values()])
        elif backend == "torch":
            import torch

            def leaf(layer, output):
                probes[id(layer)] = torch.zeros_like(output, requires_grad=True)
                return output + probes[id(layer)]

            with torch.enable_grad():
                self.probe = leaf if self.output_gradients else None
                value = loss(y, model(batch, training=self.training))
                inputs = [*(v.value for v in variables), *probes.values()]
                grads = torch.autograd.grad(value, inputs, allow_unused=True)
        else:  # jax: one pass, a stateless call traced by jax.grad
            import jax

            trainable = [v.value for v in variables]
            others = [v.value for v in model.non_trainable_variables]

            def predict(values):
                return model.stateless_call(values, others, batch, training=self.training)[0]

            if self.output_gradients:
                self.measuring, self.probe = False, _shape_recorder(probes)
                jax.eval_shape(predict, trainable)
                self.measuring, self.probed = True, set()
                probes = {k: jax.numpy.zeros(s.shape, s.dtype) for k, s in probes.items()}

            def loss_of(values, probe_values):
                if self.output_gradients:
                    self.probe = lambda layer, output: output + probe_values[id(layer)]
                return loss(y, predict(values)), dict(self.traced)

            (grads, probe_grads), values = jax.grad(loss_of, argnums=(0, 1), has_aux=True)(
                trainable, probes
            )
            self.traced.update(values)
            grads = [*grads, *(probe_grads[k] for k in probes)]
        self.probe = None
        by_path = {
            v.path: _norm(g)
            for v, g in zip(variables, grads[: len(variables)], strict=True)
            if g is not None
        }
        by_layer = dict(zip(probes, grads[len(variables) :], strict=True))
        return by_path, by_layer


def _shape_recorder(shapes: dict[int, Any]):
    """A probe that only records each output's shape and dtype (JAX's shape-only trace)."""
    import jax

    def record(layer, output):
        shapes[id(layer)] = jax.ShapeDtypeStruct(output.shape, output.dtype)
        return output

    return record


def layer_signals(
    model: keras.Model,
    x: Any,
    y: Any = None,
    loss: Any = None,
    *,
    output_gradients: bool = False,
    keep: int = 0,
    training: bool = False,
) -> list[dict]:
    """The per-layer pass behind :func:`signal_report` and the experiments, on every backend.

    One forward pass on ``x`` and, with targets ``y``, one backward pass of
    ``loss(y, y_pred)`` (by default the compiled loss, or the one that fits
    ``y`` and the output: :func:`keras_initzoo.models.losses.model_loss`), by
    the backend's own autodiff (``tf.GradientTape``, ``torch.autograd``,
    ``jax.grad``). One row per layer that ran, in forward
    order, with :func:`signal_report`'s columns (``grad norm`` is the L2 norm
    of the layer's variables' gradients, None without targets or variables).
    With ``output_gradients`` a row also holds ``out grad norm``,
    ``||dL/d output||_2``: the signal the layer sends back down (0 where the
    loss does not depend on it; JAX traces the model once more for the
    shapes). ``keep`` > 0 keeps that many values of each output as
    ``sample`` and, with ``output_gradients``, of its gradient as
    ``out grad sample``. ``training`` is the mode the model runs in; the
    model's state (moving statistics, dropout seeds) is put back afterwards.
    Rows come in the order the layers are first called.

    Args:
        model: a built Keras model.
        x: a batch of its inputs.
        y: the matching targets (default None: no backward pass).
        loss: the loss to differentiate (default None: the compiled one, or
            the one that fits ``y``).
        output_gradients: also give each layer's ``out grad norm`` (default
            False). Keyword only, as the rest.
        keep: how many values of each output to keep as ``sample`` (default
            0: none).
        training: the mode the model runs in (default False: inference).

    Returns:
        One row dict per layer that ran, in forward order.

    Examples:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="hidden"),
        ...                           keras.layers.Dense(1, name="head")], name="net")
        >>> rows = layer_signals(model, np.ones((2, 4)), np.zeros((2, 1)),
        ...     loss=lambda y, y_pred: keras.ops.sum(y_pred), output_gradients=True)
        >>> [row["layer"] for row in rows], rows[-1]["out grad norm"]  # dL/d head = ones((2, 1))
        (['net/hidden', 'net/head'], 1.414...)
    """
    check_built(model)
    batch = as_batch(x, name="x")
    targets = None if y is None else as_batch(y, name="y")
    if targets is not None and loss is None:
        loss = model_loss(model, batch, targets)
    if targets is not None:  # a loss may subtract them from the backend's tensors
        targets = keras.tree.map_structure(keras.ops.convert_to_tensor, targets)
    signal = _SignalPass(model, output_gradients, keep, training)
    with state_kept(model):  # a training-mode pass moves BatchNormalization's averages
        grad_norms, output_grads = signal.run(batch, targets, loss)
    layers = {id(layer): layer for layer in leaf_layers(model)}
    rows = []
    for key in signal.order:
        layer, row = layers.get(key), signal.rows.get(key)
        if layer is None or row is None:
            continue
        prefix = f"{layer.path}/" if layer.path else None
        owned = [n for p, n in grad_norms.items() if prefix and p.startswith(prefix)]
        row["grad norm"] = float(np.sqrt(sum(n**2 for n in owned))) if owned else None
        if output_gradients:
            gradient = output_grads.get(id(layer))
            row["out grad norm"] = None if targets is None else _norm_or_zero(gradient)
            if keep and gradient is not None:
                values = np.asarray(keras.ops.convert_to_numpy(gradient), dtype="float64")
                row["out grad sample"] = values.ravel()[:keep].copy()
        rows.append(row)
    return rows


def _norm_or_zero(gradient: Any) -> float:
    return 0.0 if gradient is None else _norm(gradient)


def signal_report(
    model: keras.Model,
    x: Any,
    y: Any = None,
    loss: Any = None,
    *,
    training: bool = True,
) -> SignalReport:
    """Per layer at initialization: weights against their target, activations, gradients.

    Measured as the first training step sees the model: with
    ``training=True`` (the default) normalization layers use the batch's
    statistics and Dropout drops, as in ``fit``; ``training=False`` measures
    inference (BatchNormalization then uses its moving statistics, at first
    mean 0 and variance 1, and passes an unnormalized signal through). The
    model's state is put back afterwards. ``x`` may be anything ``fit`` takes:
    arrays, dicts, lists, ``(x, y)`` or ``(x, y, sample_weight)``, the first
    batches of a ``tf.data.Dataset``, a ``PyDataset`` or a generator.

    One forward pass on ``x`` (and, with targets ``y``, one backward pass of
    ``loss``, else the compiled loss, else the loss that fits ``y`` and the
    output: see :mod:`keras_initzoo.models.losses`; the report's ``loss`` and
    a note say which) gives, for every layer in the order it is called:

    * ``block``: the residual block and the part of it (branch, branch end,
      shortcut) that the layer's kernels belong to
      (:func:`~keras_initzoo.models.residual.residual_structure`);
    * ``weight var`` and ``target var``: the variance of its kernel against
      ``gain(f)**2 / fan_in``, ``f`` the nonlinearity that feeds it;
    * ``act mean``, ``act std`` and ``act rms`` of its output;
    * ``dead``: the share of ReLU-family units (channels) that are zero for
      every sample; ``saturated``: the share of tanh or sigmoid outputs
      beyond 0.99 of their range;
    * ``grad norm``: the L2 norm of its variables' gradients.

    ``report.stream`` has one entry per residual join: the RMS of the skip,
    the branch and the sum, the sum's average channel squared mean and
    variance (Brock et al. 2021's signal-propagation plot, drawn by
    :meth:`SignalReport.plot`), and its variance predicted analytically
    through the graph (:mod:`~keras_initzoo.models.propagate`).

    The verdict is judged where each signal should stay level, never against
    an unrelated first layer (a small embedding is no explosion):

    * along the residual stream: a join whose RMS has moved by more than
      ``2**4`` from the stream's entry;
    * in each block: a sum more than ``4`` times its skip's RMS (the branch
      swamps the stream);
    * inside each branch, and among the layers outside every branch: a
      weighted layer whose RMS has moved by more than ``2**4`` from the
      first weighted layer of its group (or, for tanh and sigmoid, most
      units saturated).

    ``where`` names the first layer or block past ``2**1`` in that direction.

    Examples:
        >>> model = keras.Sequential([keras.Input((32,))] + [keras.layers.Dense(
        ...     32, activation="relu", kernel_initializer="zoo_small") for _ in range(10)])
        >>> signal_report(model, keras.random.normal((64, 32), seed=0)).verdict
        'vanishing'

    Args:
        model: a built Keras model.
        x: the inputs, or ``(x, y)`` / ``(x, y, sample_weight)`` as ``fit`` takes them.
        y: targets for the gradient norms (or inside ``x``); None for none.
        loss: any Keras loss identifier or callable ``loss(y_true, y_pred)``.
        training: the mode the model is measured in (True: as ``fit``'s first step).

    Returns:
        A :class:`SignalReport`. ``x`` or ``y`` holding NaN or inf, or a ``y``
        no loss fits, raise a ValueError that says where.
    """
    check_built(model)
    training = check_bool("training", training)
    data = fit_data(x, "x", model=model)
    if y is not None and data.y is not None:
        raise ValueError("`y` was given twice: inside `x` (as `(x, y)`) and as `y`; give it once.")
    batch = data.x
    targets = data.y if y is None else as_batch(y, "y")
    fitted = None if targets is None else model_loss(model, batch, targets, loss)
    structure = trace(model, batch, training=training, name="x")
    rows = layer_signals(model, batch, targets, loss=fitted, training=training)
    report = SignalReport(
        title="Signal at initialization, layer by layer",
        columns=(
            "layer",
            "class",
            "block",
            "weight var",
            "target var",
            "act mean",
            "act std",
            "act rms",
            "dead",
            "saturated",
            "grad norm",
        ),
    )
    roles = structure.block_of()
    for row in rows:
        block, role = roles.get(row["layer"], (None, None))
        report.add(block=f"{block} {role}" if block else None, **row)
    report.stream = _stream(structure)
    predicted = {row["node"]: row for row in propagate(model, structure, training)}
    for entry, join in zip(report.stream, structure.joins, strict=True):
        entry["predicted var"] = predicted[join.node]["pred var"]
        entry["var"] = predicted[join.node]["var"]
    zero_readouts = _zero_readouts(model)
    report.verdict, report.where = _verdict(report, zero_readouts)
    mode = "training" if training else "inference"
    report.notes.append(
        f"measured in {mode} mode (training={training}): "
        + ("normalization uses the batch's statistics, Dropout drops" if training
           else "BatchNormalization uses its moving statistics, Dropout passes all")
    )  # fmt: skip
    if structure.joins:
        report.notes.append(
            f"{len(structure.joins)} residual joins: the verdict follows the stream, each block "
            "and each branch (report.stream, kiz.residual_structure)"
        )
    if zero_readouts:
        report.notes.append(
            f"zero readout by design (kiz.mup.parametrize(zero_readout=True)): "
            f"{', '.join(sorted(zero_readouts))} left out of the verdict"
        )
    if targets is None:
        report.notes.append("no targets given: no gradient norms (pass y for them)")
    else:
        report.loss = fitted.description
        report.notes.append(f"loss: {fitted.description}")
    return report


def _channel_stats(tensor: Any) -> tuple[float, float, float]:
    """RMS, average channel squared mean and average channel variance (channels last)."""
    values = np.asarray(keras.ops.convert_to_numpy(tensor), dtype="float64")
    per_channel = values.reshape(-1, values.shape[-1]) if values.ndim >= 2 else values[:, None]
    means = per_channel.mean(axis=0)
    return (
        float(np.sqrt(np.mean(values**2))),
        float(np.mean(means**2)),
        float(np.mean(per_channel.var(axis=0))),
    )


def _stream(structure: ResidualTrace) -> list[dict]:
    """Per join: the skip's, the branch's and the sum's RMS, the sum's channel statistics."""
    entries = []
    for join in structure.joins:
        nodes = structure.nodes
        skip, branch, out = (nodes[i].tensor for i in (join.skip, join.branch_end, join.node))
        rms, squared_mean, variance = _channel_stats(out)
        entries.append(
            {
                "block": join.block,
                "depth": join.depth,
                "identity": join.identity,
                "skip rms": _channel_stats(skip)[0],
                "branch rms": _channel_stats(branch)[0],
                "rms": rms,
                "channel mean^2": squared_mean,
                "channel var": variance,
            }
        )
    return entries


def _layer_row(layer, output, fed_by: Kind, site) -> dict:
    values = np.asarray(keras.ops.convert_to_numpy(output), dtype="float64")
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU)):
        name = "relu"
    dead = saturated = None
    if name in ("relu", "relu6", "leaky_relu", "elu") and values.ndim >= 2:
        per_unit = values.reshape(-1, values.shape[-1])
        dead = float(np.mean(np.all(per_unit <= 0.0, axis=0)))
    if name in SATURATED:
        centred = values if name == "tanh" else 2.0 * values - 1.0
        saturated = float(np.mean(np.abs(centred) > SATURATED[name]))
    weight_var = target_var = None
    if site is not None:
        weight = np.asarray(keras.ops.convert_to_numpy(site.variable), dtype="float64")
        weight_var = float(weight.var())
        target_var = gain_of(fed_by)[0] ** 2 / max(1, site.fan_in)
    return {
        "layer": layer.path or layer.name,  # a layer without weights has no path
        "class": type(layer).__name__,
        "weight var": weight_var,
        "target var": target_var,
        "act mean": float(values.mean()),
        "act std": float(values.std()),
        "act rms": float(np.sqrt(np.mean(values**2))),
        "dead": dead,
        "saturated": saturated,
        "activation": name or None,
    }


def _zero_readouts(model: keras.Model) -> set[str]:
    """Paths of the layers whose muP readout kernel is zero: silent at t = 0 on purpose."""
    return {
        site.layer.path or site.layer.name
        for site in walk(model).kernels
        if getattr(infshape_of(site.variable), "kind", None) == "output"
        and not np.any(keras.ops.convert_to_numpy(site.variable))
    }


def _octaves(value: float, reference: float) -> float:
    if not math.isfinite(value):
        return math.inf
    if value <= 0.0:
        return -math.inf
    return math.log2(value / reference)


def _drift(values: list[tuple[str, float]]) -> tuple[str, str | None] | None:
    """A drift verdict for values that should stay level, judged against the first of them."""
    if not values:
        return None
    first_path, first = values[0]
    if not math.isfinite(first) or first == 0.0:
        return ("exploding" if not math.isfinite(first) else "vanishing"), first_path
    octaves = [(path, _octaves(value, first)) for path, value in values]
    if max(o for _, o in octaves) > DRIFT_OCTAVES:
        return "exploding", next(p for p, o in octaves if o > 1.0)
    if min(o for _, o in octaves) < -DRIFT_OCTAVES:
        return "vanishing", next(p for p, o in octaves if o < -1.0)
    return None


def _verdict(report: SignalReport, by_design: set[str] = frozenset()) -> tuple[str, str | None]:
    """The verdict along the stream, per block, per branch and over the other weighted layers."""
    broken = [
        r["layer"]
        for r in report
        if r["grad norm"] is not None and not math.isfinite(r["grad norm"])
    ]
    if broken:  # a NaN loss, or gradients past float range: nothing else can be read
        return "exploding", broken[0]
    saturating = [r["layer"] for r in report if (r["saturated"] or 0.0) > _SATURATING_SHARE]
    probabilities = {r["layer"] for r in report if r.get("activation") == "softmax"}
    if saturating:
        return "exploding", saturating[0]
    stream = getattr(report, "stream", [])
    found = []
    if stream:  # the stream, from its entry (the first join's skip) on
        levels = [("stream entry", stream[0]["skip rms"])]
        levels += [(entry["block"], entry["rms"]) for entry in stream]
        found.append(_drift(levels))
        for entry in stream:
            if entry["identity"] and _octaves(entry["rms"], entry["skip rms"]) > BLOCK_OCTAVES:
                found.append(("exploding", entry["block"]))
    # Outside the branches, weighted layers follow one another: their drift compounds. Inside
    # a branch (a few layers, a gate squaring scales) only its end counts, against the stream.
    plain = [
        (row["layer"], row["act rms"])
        for row in report
        if row["weight var"] is not None
        and row["layer"] not in by_design
        and (row.get("block") or "").rsplit(" ", 2)[-1] not in ("branch", "end")
        and row["layer"] not in probabilities
    ]
    found.append(_drift(plain))
    found = [f for f in found if f is not None]
    if not found:
        return "healthy", None
    order = {row["layer"]: i for i, row in enumerate(report)}
    blocks = {entry["block"]: i for i, entry in enumerate(stream)}

    def position(item: tuple[str, str | None]) -> float:
        where = item[1]
        if where in order:
            return order[where]
        first = [
            i for i, row in enumerate(report) if (row.get("block") or "").startswith(f"{where} ")
        ]
        # a block none of whose layers has a row (or the stream's entry): by stream order,
        # ahead of every layer row
        return first[0] if first else blocks.get(where, 0) * 1e-3

    return min(found, key=position)
