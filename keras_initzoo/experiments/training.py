"""Train the config's MLP under one scheme, or under several for a comparison.

``initzoo demo``, ``initzoo compare`` and the scripts in ``examples/`` all go
through :func:`run_comparison` / :func:`train_scheme` and :func:`layer_stats`,
so a number printed by the CLI and one plotted by an example mean the same thing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import keras

from .config import ExperimentConfig, Scheme, resolve_scheme, scheme_label
from .data import Dataset, get_dataset
from .model import build_mlp, loss_fn, make_optimizer
from .seed import set_seed
from .stats import LayerStats, depth_ratio, layer_stats
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


def progress_bar(epochs: int) -> keras.utils.Progbar:
    """A Keras progress bar counting ``epochs`` epochs, showing the latest epoch's loss."""
    return keras.utils.Progbar(epochs, unit_name="epoch", stateful_metrics=["loss"])


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
