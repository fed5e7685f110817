"""The options of :class:`~keras_initzoo.callbacks.GradientNormLogger`, checked once.

One frozen record: the callback builds it from its arguments, the capture
reads it, and its :attr:`LoggerOptions.traced` part is the key under which a
fit's traced train functions are kept for the next fit.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from keras_initzoo._validation import check_choice, check_int
from keras_initzoo.callbacks.groups import GroupBy, check_group_by
from keras_initzoo.callbacks.writer import processes

WRITE_ERRORS = ("warn", "raise")  # what a failed event write does: see on_write_error
MAX_BINS = 10_000  # histogram buckets: TensorBoard draws a few dozen
# Switches that add a section to the recorded row (see rows.RowLayout).
ROW_SWITCHES = (
    "per_variable",
    "weight_norms",
    "update_ratio",
    "count_nonfinite",
    "log_clipped",
    "activation_stats",
    "output_logits",
    "optimizer_stats",
    "detect_spikes",
)
# Options measured in the forward pass (the loss, for detect_spikes, too).
FORWARD_PASS = ("activation_stats", "attention_logits", "output_logits", "detect_spikes")
# Options that change nothing inside the traced step.
HOST_ONLY = ("log_dir", "stop_on_nonfinite", "on_write_error", "stop_on_spike")


@dataclass(frozen=True)
class LoggerOptions:
    """What a :class:`GradientNormLogger` logs, where and how; see its docstring.

    Construction checks every field (a ``ValueError`` naming the argument)
    and puts it in canonical form: ``update_freq="batch"`` is 1,
    ``update_ratio`` turns ``weight_norms`` on, a regex ``group_by`` is
    compiled, and ``log_dir`` is created and tried for writing.
    """

    log_dir: str = "logs/grad_norm"
    update_freq: int = 1
    per_variable: bool = False
    weight_norms: bool = False
    update_ratio: bool = False
    histogram_freq: int = 0
    histogram_bins: int = 30
    count_nonfinite: bool = False
    stop_on_nonfinite: bool = False
    group_by: GroupBy = "layer"
    log_clipped: bool = False
    on_write_error: str = "warn"
    activation_stats: bool = False
    attention_logits: bool = False
    output_logits: bool = False
    optimizer_stats: bool = False
    spectral_updates: bool = False
    detect_spikes: bool = False
    stop_on_spike: bool = False

    def __post_init__(self) -> None:
        update_freq = self.update_freq
        if isinstance(update_freq, str) and update_freq == "batch":
            update_freq = 1
        checked = {
            "group_by": check_group_by(self.group_by),
            "on_write_error": check_choice("on_write_error", self.on_write_error, WRITE_ERRORS),
            "update_freq": check_int(
                "update_freq", update_freq, 1, "a positive integer (log every N steps) or 'batch'"
            ),
            "histogram_freq": check_int(
                "histogram_freq",
                self.histogram_freq,
                0,
                "a non-negative integer (0 turns histograms off)",
            ),
            # each bin is a device column of every logged row
            "histogram_bins": check_int("histogram_bins", self.histogram_bins, 1, maximum=MAX_BINS),
        }
        flags = (
            "stop_on_nonfinite",
            "attention_logits",
            "spectral_updates",
            "detect_spikes",
            "stop_on_spike",
        )
        for name in (*ROW_SWITCHES, *flags):
            checked[name] = _check_flag(name, getattr(self, name))
        checked["detect_spikes"] = checked["detect_spikes"] or checked["stop_on_spike"]
        checked["weight_norms"] = checked["weight_norms"] or checked["update_ratio"]
        checked["log_dir"] = _check_log_dir(self.log_dir)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def traced(self) -> tuple:
        """The options the traced train step depends on (all but :data:`HOST_ONLY`)."""
        return tuple(
            getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in HOST_ONLY
        )

    @property
    def forward_pass(self) -> tuple[str, ...]:
        """The switched-on options measured in the forward pass (the capture's probe)."""
        return tuple(name for name in FORWARD_PASS if getattr(self, name))

    @property
    def row_switches(self) -> dict[str, bool]:
        """The switches that add sections to the recorded row, by name."""
        return {name: getattr(self, name) for name in ROW_SWITCHES}


def option_names() -> tuple[str, ...]:
    """Every field of :class:`LoggerOptions`, in order."""
    return tuple(f.name for f in dataclasses.fields(LoggerOptions))


def _check_flag(name: str, flag: object) -> bool:
    if not isinstance(flag, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False; got {flag!r}.")
    return bool(flag)


def _check_log_dir(log_dir) -> str:
    if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
        raise ValueError(
            f"`log_dir` must be a non-empty path (str or os.PathLike) to a writable "
            f"directory; got {log_dir!r}."
        )
    path = os.fspath(log_dir)
    if "\x00" in path:
        raise ValueError(f"`log_dir` must be a path without NUL characters; got {log_dir!r}.")
    if "://" in path or processes()[0] != 0:
        # gs://, s3:// ...: left to TensorBoard's file layer. A process other
        # than process 0 of a multi-process run writes nothing, nor makes the directory.
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
