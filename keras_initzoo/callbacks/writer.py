"""Event-file writing for GradientNormLogger: scalar and histogram summaries.

No TensorFlow: records are framed as TensorBoard's own ``RecordWriter`` frames
them (length, masked CRC-32C of the length, data, masked CRC-32C of the data),
with the CRC from ``google-crc32c``'s C code — TensorBoard's pure-Python CRC
takes about 4 ms for a 500-layer row, longer than many train steps. The protos
are TensorBoard's own (scalars are encoded by :class:`ScalarEncoder` to the
same bytes), so readers need nothing else. The callback flushes after each
batch of rows it reads.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from collections.abc import Sequence

import google_crc32c
import keras
import numpy as np
from tensorboard.compat.proto import (
    event_pb2,
    summary_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.text import metadata as text_metadata

_file_counter = itertools.count()


def processes() -> tuple[int, int]:
    """``(this process' index, the number of processes)``: process 0 writes the events.

    Several processes exist only under JAX's ``keras.distribution.initialize``
    (``jax.distributed``); TensorFlow's ``fit`` runs in one process (Keras 3 has
    no ``fit`` under ``MultiWorkerMirroredStrategy``), PyTorch has no
    ``keras.distribution``. Before ``jax.distributed`` is initialized nothing
    asks JAX, so its backends stay unstarted for a later ``initialize``.
    """
    if keras.backend.backend() != "jax":
        return 0, 1
    import jax

    if not jax.distributed.is_initialized():
        return 0, 1
    return jax.process_index(), jax.process_count()


class EventWriter:
    """Writes one event file ``events.out.tfevents.*.gradnorm.v2`` in ``log_dir``."""

    def __init__(self, log_dir: str) -> None:
        # zero-padded: TensorBoard reads a folder's files in name order ("10" < "9")
        count = next(_file_counter)
        stamp = f"{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{count:06d}"
        self.path = os.path.join(log_dir, f"events.out.tfevents.{stamp}.gradnorm.v2")
        self._file = _open_new(self.path)
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: event_pb2.Event) -> None:
        self.write_bytes(event.SerializeToString())

    def write_bytes(self, record: bytes) -> None:
        """Appends one serialized ``Event``, framed as a TFRecord."""
        header = struct.pack("<Q", len(record))
        self._file.write(
            header
            + struct.pack("<I", masked_crc32c(header))
            + record
            + struct.pack("<I", masked_crc32c(record))
        )

    def write_summary(self, step: int, summary: summary_pb2.Summary) -> None:
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def write_session_start(self, step: int) -> None:
        """A ``SessionLog.START`` at ``step``: TensorBoard's readers drop the events at
        ``step`` and later that earlier files hold (for ``brain.Event:2`` files the one
        purge they honour), so a resumed run shows each step once, with its new values."""
        start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
        self._write(event_pb2.Event(wall_time=time.time(), step=int(step), session_log=start))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _open_new(path: str):
    if "://" in path:
        # gs://, s3://, hdfs://: TensorBoard's file layer (TensorFlow's where installed).
        from tensorboard.compat import tf

        tf.io.gfile.makedirs(os.path.dirname(path))
        return tf.io.gfile.GFile(path, "wb")
    return open(path, "wb")  # noqa: SIM115 -- closed by EventWriter.close


def masked_crc32c(data: bytes) -> int:
    """The TFRecord checksum: CRC-32C, rotated right by 15 bits plus a constant."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class ScalarEncoder:
    """Serializes ``Event(step, Summary(value=[(tag, simple_value), ...]))`` for fixed tags.

    Gives the bytes ``Event.SerializeToString()`` gives (a test checks it), but
    lays the tags out once: each event then only writes its floats into the
    template, so a 500-layer model's row costs microseconds, not 500 protos.
    Field numbers: Event ``wall_time=1`` (double), ``step=2`` (varint),
    ``summary=5``; Summary ``value=1``; Value ``tag=1``, ``simple_value=2`` (float).
    """

    def __init__(self, tags: Sequence[str]) -> None:
        entries, offsets, position = [], [], 0
        for tag in tags:
            name = tag.encode("utf-8")
            value = b"\x0a" + _varint(len(name)) + name + b"\x15"
            head = b"\x0a" + _varint(len(value) + 4)
            position += len(head) + len(value)
            offsets.append(position)
            position += 4
            entries.append(head + value + b"\0\0\0\0")
        self._template = np.frombuffer(b"".join(entries), dtype=np.uint8)
        self._floats = (np.asarray(offsets, dtype=np.int64)[:, None] + np.arange(4)).ravel()
        self._summary_head = b"\x2a" + _varint(self._template.size)
        self.size = len(offsets)

    def encode(self, step: int, values: np.ndarray, wall_time: float | None = None) -> bytes:
        """The serialized event of ``values`` at ``step``.

        Args:
            step: the event's step.
            values: one float per tag, in the tags' order (stored as float32).
            wall_time: the event's time in seconds since the epoch (default
                None: now).

        Returns:
            The ``Event`` message's bytes, to write as one record.
        """
        body = self._template.copy()
        body[self._floats] = np.asarray(values, dtype="<f4").view(np.uint8)
        wall = time.time() if wall_time is None else wall_time
        return (
            b"\x09"
            + struct.pack("<d", wall)
            + b"\x10"
            + _varint(int(step))
            + self._summary_head
            + body.tobytes()
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

    Args:
        tags: one tag per row.
        rows: the histograms, one row each, as above.
        description: the text TensorBoard shows with each histogram.

    Returns:
        A ``Summary`` with one value per tag.
    """
    summary = summary_pb2.Summary()
    for tag, row in zip(tags, rows, strict=True):
        counts = row[3:]
        edges = np.linspace(row[1], row[2], len(counts) + 1)
        buckets = np.stack([edges[:-1], edges[1:], counts], axis=1)
        meta = histogram_metadata.create_summary_metadata(display_name=tag, description=description)
        summary.value.add(tag=tag, metadata=meta, tensor=_tensor_proto(buckets))
    return summary


def _string_tensor(strings: Sequence[bytes]) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(strings))]
        ),
        string_val=list(strings),
    )


def image_summary(tag: str, png: bytes, description: str = "") -> summary_pb2.Summary:
    """A PNG in the images plugin's format: a string tensor ``[width, height, png]``.

    The size is read from the PNG's ``IHDR`` chunk (bytes 16-24, big-endian).

    Args:
        tag: the image's tag.
        png: the PNG file's bytes.
        description: the text TensorBoard shows with it (default ``""``).

    Returns:
        A ``Summary`` with the one image.
    """
    width, height = struct.unpack(">II", png[16:24])
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=tag,
        metadata=image_metadata.create_summary_metadata(display_name=tag, description=description),
        tensor=_string_tensor([str(width).encode(), str(height).encode(), png]),
    )
    return summary


def text_summary(tag: str, markdown: str) -> summary_pb2.Summary:
    """Markdown for TensorBoard's Text tab: a one-string tensor."""
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=tag,
        metadata=text_metadata.create_summary_metadata(display_name=tag, description=""),
        tensor=_string_tensor([markdown.encode("utf-8")]),
    )
    return summary
