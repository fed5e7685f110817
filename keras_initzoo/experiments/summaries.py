"""What the experiments write for TensorBoard besides GradientNormLogger's gradient norms.

Through the package's own event writer (:mod:`keras_initzoo.callbacks.writer`),
so on every backend and without TensorFlow.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Iterable, Mapping, Sequence

import keras
from tensorboard.compat.proto import summary_pb2

from ..callbacks.writer import EventWriter
from .stats import LayerStats


def _writer(log_dir: str) -> EventWriter:
    os.makedirs(log_dir, exist_ok=True)
    return EventWriter(log_dir)


def _scalars(values: Iterable[tuple[str, float]]) -> summary_pb2.Summary:
    return summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=tag, simple_value=value) for tag, value in values]
    )


class EpochScalars(keras.callbacks.Callback):
    """Write each epoch's logs as TensorBoard scalars ``loss/train``, ``loss/validation``...

    Kept next to the GradientNormLogger's event file in the same run folder, so
    one scheme is one run in TensorBoard.
    """

    def __init__(self, log_dir: str) -> None:
        super().__init__()
        self._writer = _writer(log_dir)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        tags = (
            (f"{key[4:]}/validation" if key.startswith("val_") else f"{key}/train", float(value))
            for key, value in (logs or {}).items()
        )
        self._writer.write_summary(epoch + 1, _scalars(tags))
        self._writer.flush()

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        self._writer.close()


def write_depth_profile(log_dir: str, stats: Sequence[LayerStats]) -> None:
    """Log init statistics against depth (step = layer index): a depth profile in TensorBoard.

    The log10 copies exist because TensorBoard charts start on a linear axis, where
    1e-15 and 1e-2 both look like 0; 0, inf and NaN have no log and are left out.
    """
    writer = _writer(log_dir)
    for depth, s in enumerate(stats, start=1):
        values = []
        for name in ("activation_std", "backprop_norm", "grad_norm"):
            value = getattr(s, name)
            values.append((f"init_by_depth/{name}", value))
            if value > 0 and math.isfinite(value):
                values.append((f"init_by_depth/log10_{name}", math.log10(value)))
        writer.write_summary(depth, _scalars(values))
    writer.close()


def write_scalar_series(
    log_dir: str, series: Mapping[str, Sequence[float]], start_step: int = 0
) -> None:
    """Write ``{tag: values}`` to one TensorBoard run, value i at step ``start_step + i``.

    Args:
        log_dir: the run's directory (created if missing).
        series: each tag's values, in step order.
        start_step: the step of each series' first value (default 0).
    """
    writer = _writer(log_dir)
    for tag, values in series.items():
        for i, value in enumerate(values):
            writer.write_summary(start_step + i, _scalars([(tag, float(value))]))
    writer.close()


def fresh_run_dir(log_dir: str) -> str:
    """Remove old event files of this run so a rerun replaces it instead of appending to it."""
    os.makedirs(log_dir, exist_ok=True)
    for path in glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True):
        os.remove(path)
    return log_dir
