"""GradientNormLogger: per-layer gradient L2 norms of the applied gradients, to TensorBoard."""

from __future__ import annotations

import math
import os
import tempfile
import warnings

import keras
import numpy as np

from keras_initzoo.callbacks.capture import Columns, GradientCapture, innermost_optimizer
from keras_initzoo.callbacks.layout import charts_for, layout_summary
from keras_initzoo.callbacks.writer import EventWriter, histogram_summary, scalar_summary


def _check_int(name: str, value, minimum: int, allowed: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be {allowed}; got {value!r}.")
    return int(value)


def _check_log_dir(log_dir) -> str:
    if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
        raise ValueError(
            f"`log_dir` must be a non-empty path (str or os.PathLike) to a writable "
            f"directory; got {log_dir!r}."
        )
    path = os.fspath(log_dir)
    if "://" in path:  # gs://, hdfs:// ...: left to TensorFlow's file system layer
        return path
    try:
        os.makedirs(path, exist_ok=True)
        # os.access lies for root and on some mounts: really try to write.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ValueError(
            f"`log_dir` must be a writable directory (it is created if missing); "
            f"{path!r} is not: {err}"
        ) from err
    return path


class GradientNormLogger(keras.callbacks.Callback):
    """Log the L2 norm of the gradients the optimizer applies, per layer, to TensorBoard.

    No extra forward or backward pass: the optimizer's ``apply`` is wrapped before
    the train function is traced, and the norms are reduced on the device inside
    the compiled train step. They are read to the host once per logged train
    function call (one array for all layers), never once per variable.

    What is logged at step ``t`` (the optimizer's iteration count after the
    update, so the first step is 1, like ``keras.callbacks.TensorBoard``):

    * ``grad_norm/<layer>``: ``sqrt(sum over the layer's trainable variables v of
      sum(g_v ** 2))`` — one norm for all of the layer's weights together;
    * ``grad_norm/global``: the same over all trainable variables;
    * ``grad_nonfinite/count``: how many gradient entries are NaN or inf (0 when
      the global norm is finite; counted only when it is not);
    * with ``per_variable=True``: ``grad_norm_per_variable/<variable path>``;
    * with ``weight_norms=True``: ``weight_norm/<layer>``, the layer's weight norm
      before the update;
    * with ``update_ratio=True``: ``update_ratio/<layer>`` =
      ``||w_after - w_before|| / ||w_before||`` (also logs the weight norms);
      costs one copy of the weights, made on logged steps only;
    * with ``histogram_freq=k``: ``grad_hist/<layer>`` histograms every ``k`` steps.

    Steps ``1, 1 + update_freq, 1 + 2 * update_freq, ...`` are logged, so the
    first step, the one that shows the initialization, always is.

    A custom-scalars layout (TensorBoard's "Custom Scalars" tab) puts all
    ``grad_norm/*`` tags on one multi-line chart.

    Which gradients: those handed to the optimizer that updates the weights —
    unscaled under mixed precision (the ``LossScaleOptimizer``'s inner
    optimizer is wrapped; steps it skips for non-finite gradients are not
    logged), divided by a static ``loss_scale_factor``, and summed over the
    replicas of a ``tf.distribute`` strategy (single-host strategies such as
    ``MirroredStrategy``). They are logged **before** gradient clipping
    (``clipnorm``, ``global_clipnorm``, ``clipvalue``) and weight decay, so a
    clipped run shows how large the raw gradients were. Layers are those of
    nested and functional sub-models, each shared layer once, frozen layers
    not at all.

    Example::

        import keras_initzoo as kiz

        cb = kiz.GradientNormLogger(log_dir="runs/he", update_freq=1)
        model.fit(x, y, epochs=3, callbacks=[cb])
        # tensorboard --logdir runs   -> Custom Scalars: one line per layer

    Args:
        log_dir: directory for the event file; created if missing, must be
            writable (checked here, not mid-training).
        update_freq: log every this many optimizer steps (a positive int), or
            ``"batch"`` for every step.
        per_variable: also log each variable's gradient norm.
        weight_norms: also log each layer's weight norm.
        update_ratio: also log each layer's update-to-weight norm ratio.
        histogram_freq: log gradient histograms every this many steps (0: never).
        histogram_bins: buckets per histogram.
        stop_on_nonfinite: stop training (``model.stop_training = True``, with a
            warning naming the step and layers) when a logged step has NaN or inf
            gradients.

    Raises:
        ValueError: for a bad argument (naming it and what is allowed), and in
            ``on_train_begin`` for a model without an optimizer.
        RuntimeError: in ``on_train_begin`` when Keras runs on a backend other
            than TensorFlow.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike = "logs/grad_norm",
        update_freq: int | str = 1,
        *,
        per_variable: bool = False,
        weight_norms: bool = False,
        update_ratio: bool = False,
        histogram_freq: int = 0,
        histogram_bins: int = 30,
        stop_on_nonfinite: bool = False,
    ) -> None:
        super().__init__()
        if update_freq == "batch":
            update_freq = 1
        self.update_freq = _check_int(
            "update_freq", update_freq, 1, "a positive integer (log every N steps) or 'batch'"
        )
        self.histogram_freq = _check_int(
            "histogram_freq", histogram_freq, 0, "a non-negative integer (0 turns histograms off)"
        )
        self.histogram_bins = _check_int("histogram_bins", histogram_bins, 1, "a positive integer")
        for name, flag in (
            ("per_variable", per_variable),
            ("weight_norms", weight_norms),
            ("update_ratio", update_ratio),
            ("stop_on_nonfinite", stop_on_nonfinite),
        ):
            if not isinstance(flag, (bool, np.bool_)):
                raise ValueError(f"`{name}` must be True or False; got {flag!r}.")
        self.log_dir = _check_log_dir(log_dir)
        self.per_variable = bool(per_variable)
        self.weight_norms = bool(weight_norms or update_ratio)
        self.update_ratio = bool(update_ratio)
        self.stop_on_nonfinite = bool(stop_on_nonfinite)
        self._capture: GradientCapture | None = None
        self._writer: EventWriter | None = None
        self._tags: list[str] = []
        self._hist_tags: list[str] = []
        self._last_logged = 0
        self._last_hist = 0
        self._iter = 0
        self._batch_begin = 0
        self._warned_nonfinite = False

    # -- setup ------------------------------------------------------------------------
    def on_train_begin(self, logs=None) -> None:
        if keras.backend.backend() != "tensorflow":
            raise RuntimeError(
                "GradientNormLogger needs the TensorFlow backend; Keras runs on "
                f"{keras.backend.backend()!r}."
            )
        model = self.model
        if getattr(model, "optimizer", None) is None:
            raise ValueError("GradientNormLogger needs a model compiled with an optimizer.")
        # Open the file now so even a short or failing run leaves the layout.
        self._open_writer()
        self._capture = GradientCapture(
            model,
            update_freq=self.update_freq,
            rows=max(1, int(getattr(model, "steps_per_execution", 1) or 1)),
            per_variable=self.per_variable,
            weight_norms=self.weight_norms,
            update_ratio=self.update_ratio,
            histogram_freq=self.histogram_freq,
            histogram_bins=self.histogram_bins,
        )
        # Built now if the model is; a subclassed model builds in the first trace.
        self._capture.build()
        self._capture.install(model.optimizer)
        # fit() built the train function before on_train_begin; a function traced
        # by an earlier fit would not see the wrapped apply, so build a fresh one.
        model.make_train_function(force=True)
        self._tags = []
        # One read per fit: steps continue across fit calls and initial_epoch resumes.
        self._iter = int(innermost_optimizer(model.optimizer).iterations.numpy())
        # The buffer is fresh: nothing in it predates this fit.
        self._last_logged = self._iter
        self._last_hist = self._iter
        self._warned_nonfinite = False

    def _scalar_tags(self, capture: GradientCapture) -> list[str]:
        cols: Columns = capture.cols
        layers = [g.name for g in capture.groups]
        tags = ["grad_nonfinite/count", "grad_norm/global"] + [f"grad_norm/{n}" for n in layers]
        if cols.per_variable:
            tags += [f"grad_norm_per_variable/{v.path}" for v in capture.variables]
        if cols.weight_norms or cols.update_ratio:
            tags += [f"weight_norm/{n}" for n in layers]
        if cols.update_ratio:
            tags += [f"update_ratio/{n}" for n in layers]
        return tags

    def _open_writer(self) -> None:
        if self._writer is None:
            self._writer = EventWriter(self.log_dir)
            step = int(innermost_optimizer(self.model.optimizer).iterations.numpy())
            # Written at the current step: an earlier step would make TensorBoard
            # purge the newer points it already holds ("out of order" restart logic).
            charts = charts_for(weight_norms=self.weight_norms, update_ratio=self.update_ratio)
            self._writer.write_summary(step, layout_summary(charts))

    # -- per batch --------------------------------------------------------------------
    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        self._batch_begin = batch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if self._capture is None:
            return
        # With steps_per_execution > 1, one call covers batches begin..batch.
        lo = self._iter
        self._iter += max(1, batch - self._batch_begin + 1)
        if not self._capture.built:
            # Keras calls no optimizer for a model without trainable weights.
            warnings.warn(
                "GradientNormLogger: the model has no trainable weights, so there are no "
                "gradients to log.",
                stacklevel=2,
            )
            self._capture.uninstall()
            self._capture = None
            return
        if not self._tags:
            self._tags = self._scalar_tags(self._capture)
            self._hist_tags = [f"grad_hist/{g.name}" for g in self._capture.groups]
        if _crosses(lo, self._iter, self.update_freq):
            self._flush_rows(expected=_last_multiple(self._iter, self.update_freq))
        if self.histogram_freq and _crosses(lo, self._iter, self.histogram_freq):
            self._flush_histograms()

    def _flush_rows(self, expected: int) -> None:
        capture = self._capture
        data = capture.read()
        steps = data[:, Columns.STEP]
        fresh = np.flatnonzero(steps > self._last_logged)
        for r in fresh[np.argsort(steps[fresh])]:
            self._log_row(int(steps[r]), data[r], capture.cols)
        newest = int(steps[fresh].max()) if fresh.size else self._last_logged
        self._last_logged = max(self._last_logged, newest)
        if newest < expected:
            # The optimizer skipped steps (LossScaleOptimizer on non-finite
            # gradients): resynchronize the host's step count, rarely needed.
            self._iter = int(innermost_optimizer(self.model.optimizer).iterations.numpy())

    def _log_row(self, step: int, row: np.ndarray, cols: Columns) -> None:
        half = row[Columns.NONFINITE + 1 :]
        norms = np.sqrt(2.0 * np.maximum(half, 0.0)) if np.all(np.isfinite(half)) else None
        if norms is None:
            with np.errstate(invalid="ignore", over="ignore"):
                norms = np.sqrt(2.0 * half)
        values = np.concatenate([[row[Columns.NONFINITE]], norms])
        if cols.update_ratio:
            n = cols.n_layers
            w = values[cols.weights - 1 : cols.weights - 1 + n]
            with np.errstate(divide="ignore", invalid="ignore"):
                # A zero-initialized layer has no relative scale: report inf/NaN honestly.
                values[cols.updates - 1 :] = values[cols.updates - 1 :] / w
        self._writer.write_summary(step, scalar_summary(self._tags, values))
        nonfinite = int(row[Columns.NONFINITE])
        if nonfinite:
            self._report_nonfinite(step, nonfinite, row, cols)

    def _report_nonfinite(self, step: int, count: int, row: np.ndarray, cols: Columns) -> None:
        layer_sq = row[cols.layers : cols.layers + cols.n_layers]
        bad = [
            g.name
            for g, s in zip(self._capture.groups, layer_sq, strict=True)
            if not math.isfinite(s)
        ]
        msg = (
            f"GradientNormLogger: {count} non-finite gradient values at step {step} "
            f"(layers: {', '.join(bad) or 'unattributed variables'})."
        )
        if self.stop_on_nonfinite:
            self.model.stop_training = True
            warnings.warn(msg + " Stopping training (stop_on_nonfinite=True).", stacklevel=2)
        elif not self._warned_nonfinite:
            self._warned_nonfinite = True
            warnings.warn(msg + " Logged as grad_nonfinite/count.", stacklevel=2)

    def _flush_histograms(self) -> None:
        data = self._capture.read_histograms()
        steps = data[:, 0, 0]
        fresh = np.flatnonzero(steps > self._last_hist)
        for r in fresh[np.argsort(steps[fresh])]:
            keep = [i for i in range(data.shape[1]) if data[r, i, 0] >= 0]
            summary = histogram_summary(
                [self._hist_tags[i] for i in keep],
                data[r, keep],
                "Gradient values applied by the optimizer (before clipping).",
            )
            self._writer.write_summary(int(steps[r]), summary)
        if fresh.size:
            self._last_hist = int(steps[fresh].max())

    # -- flushing and teardown ----------------------------------------------------------
    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self._writer is not None:
            self._writer.flush()

    def on_train_end(self, logs=None) -> None:
        if self._capture is not None:
            self._capture.uninstall()
            self._capture = None
            # Drop the traced function that holds the capture ops; the next fit
            # (with or without this callback) traces a clean one.
            self.model.train_function = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _crosses(lo: int, hi: int, freq: int) -> bool:
    """Whether a logged step (1, 1 + freq, ...) lies in ``(lo, hi]``."""
    return -(-hi // freq) > -(-lo // freq)


def _last_multiple(hi: int, freq: int) -> int:
    """The last logged step ``<= hi``."""
    return ((hi - 1) // freq) * freq + 1
