"""Event-file writing for GradientNormLogger: scalar and histogram summaries.

Events go through ``tf.io.TFRecordWriter`` (C++ framing and CRC) and are flushed
after every write, so a run that dies mid-training still leaves every logged
step readable. The protos are TensorBoard's own, so readers need nothing else.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata

_file_counter = itertools.count()


class EventWriter:
    """Writes one event file ``events.out.tfevents.*.gradnorm.v2`` in ``log_dir``."""

    def __init__(self, log_dir: str) -> None:
        stamp = f"{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{next(_file_counter)}"
        self.path = os.path.join(log_dir, f"events.out.tfevents.{stamp}.gradnorm.v2")
        self._writer = tf.io.TFRecordWriter(self.path)
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: event_pb2.Event) -> None:
        self._writer.write(event.SerializeToString())
        self._writer.flush()

    def write_summary(self, step: int, summary: summary_pb2.Summary) -> None:
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def scalar_summary(tags: Sequence[str], values: np.ndarray) -> summary_pb2.Summary:
    """One Summary holding ``simple_value`` scalars (TensorBoard's scalars dashboard)."""
    return summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(tag=t, simple_value=float(v))
            for t, v in zip(tags, values.tolist(), strict=True)
        ]
    )


def _tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE)
    for n in array.shape:
        proto.tensor_shape.dim.add(size=n)
    proto.tensor_content = np.ascontiguousarray(array, dtype="<f8").tobytes()
    return proto


def histogram_summary(
    tags: Sequence[str], rows: np.ndarray, description: str
) -> summary_pb2.Summary:
    """Histograms in the histogram plugin's format: a ``[k, 3]`` tensor of (left, right, count).

    ``rows[i]`` is ``[step, lo, hi, count_0 .. count_{k-1}]`` with equal-width buckets.
    """
    summary = summary_pb2.Summary()
    for tag, row in zip(tags, rows, strict=True):
        counts = row[3:]
        edges = np.linspace(row[1], row[2], len(counts) + 1)
        buckets = np.stack([edges[:-1], edges[1:], counts], axis=1)
        meta = histogram_metadata.create_summary_metadata(display_name=tag, description=description)
        summary.value.add(tag=tag, metadata=meta, tensor=_tensor_proto(buckets))
    return summary
