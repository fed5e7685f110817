"""Train the config's MLP under one scheme, or under several for a comparison.

``initzoo demo``, ``initzoo compare`` and the scripts in ``examples/`` all go
through :func:`run_comparison` / :func:`train_scheme` and :func:`layer_stats`,
so a number printed by the CLI and one plotted by an example mean the same thing.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import keras

from .config import ExperimentConfig, Scheme, resolve_scheme, scheme_label
from .data import Dataset, get_dataset
from .model import build_mlp, loss_fn, make_optimizer
from .seed import set_seed
from .stats import LayerStats, depth_ratio, layer_stats, per_layer_change
from .summaries import EpochScalars, fresh_run_dir, write_depth_profile


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
    n_classes: int | None = None  # of the dataset: chance is a loss of ln(n_classes)

    @property
    def chance_loss(self) -> float:
        """The cross-entropy of a uniform guess, ``ln(n_classes)``: where a stalled run stays."""
        return math.log(self.n_classes) if self.n_classes else math.nan

    @property
    def final_loss(self) -> float:
        """Training loss of the last epoch."""
        return float(self.history["loss"][-1])

    @property
    def signal_ratio(self) -> float:
        """``|dL/dh|`` at the first hidden layer over the last, at init (:func:`depth_ratio`).

        ``h`` is a layer's output, so ``|dL/dh|`` is the backward signal every
        weight gradient below it is made from. NaN when the last hidden layer
        gets no signal at all (all-zero weights).
        """
        return depth_ratio(self.init_stats, "backprop_norm")

    @property
    def signal_per_layer(self) -> float:
        """The factor ``|dL/dh|`` changes by per layer on its way back, at init.

        :func:`~keras_initzoo.experiments.stats.per_layer_change`: ~1 level
        across depth (He under ReLU), < 1 vanishing, > 1 exploding.
        """
        return per_layer_change(self.init_stats, "backprop_norm")


def _interactive_stdout() -> bool:
    """Whether standard output is a terminal or a notebook, where a bar can redraw itself.

    Keras' ``Progbar`` writes ANSI colour codes and backspaces at ``verbose=1``
    whatever the output (it counts any POSIX system as a live display), so
    :func:`progress_bar` asks this first: a log file or a pipe gets plain lines.
    """
    import sys

    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


def progress_bar(epochs: int) -> keras.utils.Progbar:
    """A Keras progress bar counting ``epochs`` epochs, showing the latest epoch's loss.

    On a terminal it redraws itself in place (Keras' ``verbose=1``); elsewhere
    (output redirected to a file or a pipe) it writes one plain line when done,
    with no ANSI codes (``verbose=2``).

    Args:
        epochs: the number of epochs the bar counts to.

    Returns:
        The bar; move it with ``update`` (see :class:`EpochProgress`).
    """
    return keras.utils.Progbar(
        epochs,
        verbose=1 if _interactive_stdout() else 2,
        unit_name="epoch",
        stateful_metrics=["loss"],
    )


class EpochProgress(keras.callbacks.Callback):
    """Moves a progress bar on by one at each epoch's end; several fits can share one bar.

    ``done`` is where the bar stands when this fit starts.
    """

    def __init__(self, bar: keras.utils.Progbar, done: int = 0) -> None:
        super().__init__()
        self.bar = bar
        self.done = done

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self.done += 1
        loss = (logs or {}).get("loss")
        self.bar.update(self.done, values=None if loss is None else [("loss", float(loss))])


def _gradient_logger(log_dir: str, update_freq: int) -> keras.callbacks.Callback:
    import keras_initzoo as kiz

    return kiz.GradientNormLogger(log_dir, update_freq=update_freq)


def train_scheme(
    scheme: Scheme,
    config: ExperimentConfig,
    data: Dataset | None = None,
    log_dir: str | None = None,
    progress: bool = False,
    keep_activations: int = 0,
    keep_model: bool = False,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> SchemeResult:
    """Build the config's MLP under ``scheme``, measure it at init, train it, evaluate it.

    With ``log_dir`` the run is written there for TensorBoard: GradientNormLogger
    gradient norms per layer and step (and its depth heatmap, ``grad_norm_by_depth``),
    epoch loss/accuracy, and the init depth profile. ``progress`` shows a bar over
    the epochs; ``callbacks`` are added to the fit.

    Args:
        scheme: the kernel initializer, a ``zoo_*`` alias or a config dict.
        config: the model, data and training settings.
        data: the dataset (default None: the config's, drawn with its seed).
        log_dir: the TensorBoard run directory (default None: nothing written).
        progress: show a progress bar (default False).
        keep_activations: output values kept per layer at init, for the
            histograms (default 0: none).
        keep_model: keep the trained model in the result (default False).
        callbacks: more Keras callbacks for the fit (default none).

    Returns:
        The scheme's :class:`SchemeResult`: init statistics, history, test
        scores.
    """
    resolve_scheme(scheme)
    data = data or get_dataset(config.dataset, seed=config.seed, n_samples=config.n_samples)
    start = time.perf_counter()
    # Same seed for every scheme: same data order, same random draws, only the scheme differs.
    set_seed(config.seed)
    model = build_mlp(config, scheme, data.input_dim, data.n_classes)
    probe = min(256, len(data.x_train))
    init_stats = layer_stats(
        model, data.x_train[:probe], data.y_train[:probe], keep_activations=keep_activations
    )
    model.compile(optimizer=make_optimizer(config), loss=loss_fn(), metrics=["accuracy"])
    fit_callbacks: list[keras.callbacks.Callback] = []
    if log_dir is not None:
        fresh_run_dir(log_dir)
        write_depth_profile(log_dir, init_stats)
        fit_callbacks += [_gradient_logger(log_dir, config.grad_log_freq), EpochScalars(log_dir)]
    if progress:
        fit_callbacks.append(EpochProgress(progress_bar(config.epochs)))
    fit_callbacks += callbacks
    fit = model.fit(
        data.x_train,
        data.y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=(data.x_test, data.y_test),
        callbacks=fit_callbacks,
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
        data.n_classes,
    )


def run_comparison(
    schemes: Sequence[Scheme],
    config: ExperimentConfig,
    logdir: str | None = None,
    progress: bool = False,
    keep_activations: int = 0,
) -> list[SchemeResult]:
    """Train the same model once per scheme; one TensorBoard run per scheme under ``logdir``.

    ``progress`` shows one bar for the whole comparison, schemes x epochs.

    Args:
        schemes: the initializers to compare, aliases or config dicts.
        config: the settings every scheme shares.
        logdir: the parent of the per-scheme TensorBoard runs (default None:
            nothing written).
        progress: show a progress bar (default False).
        keep_activations: output values kept per layer at init (default 0).

    Returns:
        One :class:`SchemeResult` per scheme, in order.
    """
    schemes = [resolve_scheme(s) for s in schemes]  # fail before any training starts
    data = get_dataset(config.dataset, seed=config.seed, n_samples=config.n_samples)
    bar = None
    if progress:
        labels = ", ".join(scheme_label(s) for s in schemes)
        print(f"training {labels}: {config.epochs} epochs each")
        bar = progress_bar(len(schemes) * config.epochs)
    return [
        train_scheme(
            s,
            config,
            data,
            log_dir=os.path.join(logdir, scheme_label(s)) if logdir is not None else None,
            keep_activations=keep_activations,
            callbacks=[EpochProgress(bar, i * config.epochs)] if bar is not None else (),
        )
        for i, s in enumerate(schemes)
    ]
