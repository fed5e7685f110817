"""One engine for every experiment: build a deep MLP under a scheme, measure it, train it.

``initzoo demo``, ``initzoo compare`` and the scripts in ``examples/`` all go
through :func:`run_comparison` / :func:`train_scheme` and :func:`layer_stats`,
so a number printed by the CLI and one plotted by an example mean the same thing.
"""

from __future__ import annotations

import glob
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .._validation import check_choice, check_int, check_positive
from .data import Dataset, get_dataset

ACTIVATIONS = ("relu", "tanh", "sigmoid", "selu", "elu", "gelu", "linear")
OPTIMIZERS = ("sgd", "adam")

# A Keras initializer identifier: an alias ("zoo_he") or a config dict
# ({"class_name": "zoo_constant", "config": {"value": 0.5}}).
Scheme = str | Mapping[str, Any]


@dataclass(frozen=True)
class ExperimentConfig:
    """What stays fixed while the initialization scheme varies."""

    depth: int = 16
    width: int = 32
    activation: str = "relu"
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 0.01
    # Plain SGD (with momentum) on purpose: Adam rescales each weight's step and
    # so hides a good part of what a bad initialization does to the gradients.
    optimizer: str = "sgd"
    momentum: float = 0.9
    # Caps the global gradient norm: lets a well-initialized very deep net train at a
    # useful learning rate without the odd spike blowing it up. It scales large
    # gradients down only, so it does not rescue a scheme whose gradients vanish.
    clipnorm: float | None = None
    dataset: str = "blobs"
    n_samples: int | None = None
    seed: int = 0
    grad_log_freq: int = 1

    def __post_init__(self) -> None:
        for name in ("depth", "width", "epochs", "batch_size", "grad_log_freq"):
            check_int(name, getattr(self, name), minimum=1)
        check_positive("learning_rate", self.learning_rate)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)


@dataclass
class LayerStats:
    """Signal statistics of one Dense layer for one batch, at the moment measured."""

    name: str
    activation_mean: float
    activation_std: float
    grad_norm: float  # L2 norm of d(loss)/d(kernel and bias): what GradientNormLogger logs
    backprop_norm: float  # L2 norm of d(loss)/d(layer output): the signal sent back down
    activations: np.ndarray | None = None  # a sample of the layer's outputs, for histograms


@dataclass
class SchemeResult:
    """What one training run under one scheme produced."""

    scheme: str  # its label (see scheme_label)
    config: ExperimentConfig
    init_stats: list[LayerStats]
    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float
    seconds: float
    log_dir: str | None = None
    model: keras.Model | None = field(default=None, repr=False)

    @property
    def final_loss(self) -> float:
        """Training loss of the last epoch."""
        return float(self.history["loss"][-1])

    @property
    def grad_ratio(self) -> float:
        """Gradient norm of the first hidden layer over the last hidden layer, at init.

        About 1 when a scheme keeps the backward signal level across depth; far
        below 1 when gradients vanish on the way to the input, far above when they
        explode. NaN when the last layer gets no gradient at all (all-zero init).
        """
        return depth_ratio(self.init_stats, "grad_norm")


def scheme_label(scheme: Scheme) -> str:
    """A short name for tables and run folders: the alias, or ``alias(key=value)`` for a dict."""
    if isinstance(scheme, str):
        return scheme
    config = scheme.get("config") or {}
    args = ",".join(f"{k}={v}" for k, v in config.items() if v is not None)
    return f"{scheme['class_name']}({args})" if args else str(scheme["class_name"])


def depth_ratio(stats: Sequence[LayerStats], attr: str = "backprop_norm") -> float:
    """``attr`` of the first hidden layer over the last hidden layer's.

    ~1: the signal keeps its size across depth; << 1: it vanishes on its way to
    the input; >> 1: it explodes. NaN when the last hidden layer gets nothing.
    """
    hidden = stats[:-1] or stats
    first, last = getattr(hidden[0], attr), getattr(hidden[-1], attr)
    return first / last if last > 0 and math.isfinite(last) else math.nan


def resolve_scheme(scheme: Scheme) -> Scheme:
    """Check that ``scheme`` names a registered initializer; return it unchanged.

    Errors come from :func:`keras_initzoo.get`, which names the closest aliases.
    """
    import keras_initzoo as kiz

    kiz.get(scheme)
    return scheme


def parse_schemes(text: str) -> list[str]:
    """Split a comma-separated scheme list, check each one, drop duplicates."""
    schemes = [s.strip() for s in text.split(",") if s.strip()]
    if not schemes:
        raise ValueError("no scheme given; pass e.g. --schemes zoo_he,zoo_glorot")
    return [resolve_scheme(s) for s in dict.fromkeys(schemes)]


def build_mlp(
    config: ExperimentConfig, scheme: Scheme, input_dim: int, n_classes: int
) -> keras.Sequential:
    """``depth`` hidden Dense layers of ``width`` units and a logits layer, all under ``scheme``.

    Layers are named ``dense_01`` ... and ``output`` so TensorBoard sorts them by depth.
    """
    layers: list[keras.layers.Layer] = [keras.Input((input_dim,))]
    for i in range(1, config.depth + 1):
        layers.append(
            keras.layers.Dense(
                config.width,
                activation=config.activation,
                kernel_initializer=scheme,
                name=f"dense_{i:02d}",
            )
        )
    layers.append(keras.layers.Dense(n_classes, kernel_initializer=scheme, name="output"))
    return keras.Sequential(layers, name=f"mlp_{config.depth}x{config.width}")


def _loss_fn() -> keras.losses.Loss:
    # Logits + from_logits keeps the loss finite longer when a scheme explodes.
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def layer_stats(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    loss_fn: Callable | None = None,
    keep_activations: int = 0,
) -> list[LayerStats]:
    """Per-Dense-layer activation mean/std and gradient norms for one batch.

    Runs the layers one by one under a GradientTape, so it works for any
    Sequential stack of Dense layers. ``keep_activations`` > 0 keeps that many
    output values per layer (for histograms).
    """
    loss_fn = loss_fn or _loss_fn()
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    outputs = []
    with tf.GradientTape() as tape:
        h = tf.convert_to_tensor(x)
        for layer in model.layers:
            h = layer(h)
            if isinstance(layer, keras.layers.Dense):
                outputs.append(h)
        loss = loss_fn(y, h)
    weights = [[w.value for w in layer.trainable_weights] for layer in dense]
    flat = [w for ws in weights for w in ws]
    grads = tape.gradient(loss, flat + outputs, unconnected_gradients="zero")
    weight_grads, output_grads = grads[: len(flat)], grads[len(flat) :]
    stats, i = [], 0
    for layer, out, out_grad, ws in zip(dense, outputs, output_grads, weights, strict=True):
        layer_grads = weight_grads[i : i + len(ws)]
        i += len(ws)
        values = np.asarray(out, dtype="float64")
        sample = values.ravel()[:keep_activations].copy() if keep_activations else None
        stats.append(
            LayerStats(
                layer.name,
                float(values.mean()),
                float(values.std()),
                grad_norm=float(tf.linalg.global_norm(layer_grads)),
                backprop_norm=float(tf.norm(out_grad)),
                activations=sample,
            )
        )
    return stats


class EpochScalars(keras.callbacks.Callback):
    """Write each epoch's logs as TensorBoard scalars ``loss/train``, ``loss/validation``...

    Kept next to the GradientNormLogger's event file in the same run folder, so
    one scheme is one run in TensorBoard.
    """

    def __init__(self, log_dir: str) -> None:
        super().__init__()
        self._writer = tf.summary.create_file_writer(log_dir)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        with self._writer.as_default():
            for key, value in (logs or {}).items():
                tag = f"{key[4:]}/validation" if key.startswith("val_") else f"{key}/train"
                tf.summary.scalar(tag, float(value), step=epoch + 1)
        self._writer.flush()

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        self._writer.close()


class _ProgressBar(keras.callbacks.Callback):
    """One keras Progbar per scheme, counting batches of the whole run."""

    def __init__(self, label: str, total_steps: int) -> None:
        super().__init__()
        print(label)
        self._bar = keras.utils.Progbar(total_steps, stateful_metrics=["loss"])
        self._done = 0

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        self._done += 1
        self._bar.update(self._done, values=[("loss", float((logs or {}).get("loss", 0.0)))])


def write_depth_profile(log_dir: str, stats: Sequence[LayerStats]) -> None:
    """Log init statistics against depth (step = layer index): a depth profile in TensorBoard.

    The log10 copies exist because TensorBoard charts start on a linear axis, where
    1e-15 and 1e-2 both look like 0; 0, inf and NaN have no log and are left out.
    """
    with tf.summary.create_file_writer(log_dir).as_default() as writer:
        for depth, s in enumerate(stats, start=1):
            for name in ("activation_std", "backprop_norm", "grad_norm"):
                value = getattr(s, name)
                tf.summary.scalar(f"init_by_depth/{name}", value, step=depth)
                if value > 0 and math.isfinite(value):
                    tf.summary.scalar(f"init_by_depth/log10_{name}", math.log10(value), step=depth)
        writer.flush()


def write_scalar_series(
    log_dir: str, series: Mapping[str, Sequence[float]], start_step: int = 0
) -> None:
    """Write ``{tag: values}`` to one TensorBoard run, value i at step ``start_step + i``."""
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for tag, values in series.items():
            for i, value in enumerate(values):
                tf.summary.scalar(tag, float(value), step=start_step + i)
    writer.close()


def fresh_run_dir(log_dir: str) -> str:
    """Remove old event files of this run so a rerun replaces it instead of appending to it."""
    os.makedirs(log_dir, exist_ok=True)
    for path in glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True):
        os.remove(path)
    return log_dir


def _gradient_logger(log_dir: str, update_freq: int) -> keras.callbacks.Callback:
    import keras_initzoo as kiz

    return kiz.GradientNormLogger(log_dir, update_freq=update_freq)


def make_optimizer(config: ExperimentConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "adam":
        return keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm)
    return keras.optimizers.SGD(
        config.learning_rate, momentum=config.momentum, global_clipnorm=config.clipnorm
    )


def train_scheme(
    scheme: Scheme,
    config: ExperimentConfig,
    data: Dataset | None = None,
    log_dir: str | None = None,
    progress: bool = False,
    keep_activations: int = 0,
    keep_model: bool = False,
) -> SchemeResult:
    """Build the config's MLP under ``scheme``, measure it at init, train it, evaluate it.

    With ``log_dir`` the run is written there for TensorBoard: GradientNormLogger
    gradient norms per layer and step, epoch loss/accuracy, and the init depth profile.
    """
    resolve_scheme(scheme)
    data = data or get_dataset(config.dataset, seed=config.seed, n_samples=config.n_samples)
    start = time.perf_counter()
    # Same seed for every scheme: same data order, same random draws, only the scheme differs.
    keras.utils.set_random_seed(config.seed)
    model = build_mlp(config, scheme, data.input_dim, data.n_classes)
    probe = min(256, len(data.x_train))
    init_stats = layer_stats(
        model, data.x_train[:probe], data.y_train[:probe], keep_activations=keep_activations
    )
    model.compile(optimizer=make_optimizer(config), loss=_loss_fn(), metrics=["accuracy"])
    callbacks: list[keras.callbacks.Callback] = []
    if log_dir is not None:
        fresh_run_dir(log_dir)
        write_depth_profile(log_dir, init_stats)
        callbacks += [_gradient_logger(log_dir, config.grad_log_freq), EpochScalars(log_dir)]
    if progress:
        steps = math.ceil(len(data.x_train) / config.batch_size) * config.epochs
        callbacks.append(_ProgressBar(scheme_label(scheme), steps))
    fit = model.fit(
        data.x_train,
        data.y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=(data.x_test, data.y_test),
        callbacks=callbacks,
        verbose=0,
    )
    test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    return SchemeResult(
        scheme_label(scheme),
        config,
        init_stats,
        history,
        float(test_loss),
        float(test_accuracy),
        time.perf_counter() - start,
        log_dir,
        model if keep_model else None,
    )


def run_comparison(
    schemes: Sequence[Scheme],
    config: ExperimentConfig,
    logdir: str | None = None,
    progress: bool = False,
    keep_activations: int = 0,
) -> list[SchemeResult]:
    """Train the same model once per scheme; one TensorBoard run per scheme under ``logdir``."""
    schemes = [resolve_scheme(s) for s in schemes]  # fail before any training starts
    data = get_dataset(config.dataset, seed=config.seed, n_samples=config.n_samples)
    return [
        train_scheme(
            s,
            config,
            data,
            log_dir=os.path.join(logdir, scheme_label(s)) if logdir is not None else None,
            progress=progress,
            keep_activations=keep_activations,
        )
        for s in schemes
    ]


def _fmt(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else str(value)


def format_table(results: Sequence[SchemeResult]) -> str:
    """A plain-text table, one row per scheme, for the terminal."""
    if not results:
        return "(no results)"
    depth = results[0].config.depth
    headers = [
        "scheme",
        "final loss",
        "test acc",
        "|g| L1 @init",
        f"|g| L{depth} @init",
        f"ratio L1/L{depth}",
    ]
    rows = []
    for r in results:
        hidden = r.init_stats[:-1] or r.init_stats
        rows.append(
            [
                r.scheme,
                _fmt(r.final_loss, ".4f"),
                _fmt(r.test_accuracy, ".3f"),
                _fmt(hidden[0].grad_norm, ".2e"),
                _fmt(hidden[-1].grad_norm, ".2e"),
                _fmt(r.grad_ratio, ".2e"),
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def with_overrides(config: ExperimentConfig, **overrides: object) -> ExperimentConfig:
    """``config`` with the non-None ``overrides`` applied (validation runs again)."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
