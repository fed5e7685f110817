"""What the experiments write for TensorBoard besides GradientNormLogger's gradient norms."""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Mapping, Sequence

import keras
import tensorflow as tf

from .stats import LayerStats


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
