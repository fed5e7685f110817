"""Import TensorFlow without its start-up log lines, keeping real warnings.

TensorFlow's C++ side logs through absl. ``TF_CPP_MIN_LOG_LEVEL`` filters what
it logs once running, but some lines come while its libraries load, before the
level is read, and absl has no environment variable for them: "WARNING: All log
messages before absl::InitializeLog() is called are written to STDERR",
cudart_stub's "Could not find cuda drivers", cpu_feature_guard's note on CPU
instructions. The first device scan adds "failed call to cuInit" on a machine
without a GPU.

So :func:`import_tensorflow` sets ``TF_CPP_MIN_LOG_LEVEL`` to 2 (INFO and
WARNING hidden, errors shown) unless the user set it, then imports TensorFlow
and lists its devices with file descriptor 2 pointed at a temporary file, and
writes back every captured line but the framework log lines below that level
and, at the default level, the reports of hardware this machine lacks. Python
warnings and anything else printed meanwhile come back unchanged.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LEVEL = "2"

# "I0000 00:00:1795776295.501215   17305 cudart_stub.cc:31] Could not find cuda drivers ..."
_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ ([\w.\-/]+):\d+\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
# Sources whose start-up lines report hardware or drivers the machine lacks (or
# plugins registered twice): true on every start of such a machine, so noise.
_PROBES = (
    "cudart_stub.cc",
    "cuda_platform.cc",
    "cuda_diagnostics.cc",
    "cuda_executor.cc",
    "cuda_dnn.cc",
    "cuda_fft.cc",
    "cuda_blas.cc",
    "computation_placer.cc",
    "cpu_feature_guard.cc",
)
# Lines that continue a dropped log line (cpu_feature_guard writes two).
_CONTINUATIONS = ("To enable the following instructions:",)


def set_log_level() -> bool:
    """Sets ``TF_CPP_MIN_LOG_LEVEL`` to 2 unless set; returns whether this call set it."""
    if os.environ.get(LEVEL_VARIABLE):
        return False
    os.environ[LEVEL_VARIABLE] = DEFAULT_LEVEL
    return True


def _level() -> int:
    try:
        return int(os.environ.get(LEVEL_VARIABLE, "0"))
    except ValueError:
        return 0


def keep_lines(text: str, level: int, drop_probes: bool) -> list[str]:
    """The lines of ``text`` to show: all but log lines below ``level`` and, with
    ``drop_probes``, the hardware-probe reports (and the lines continuing a dropped one)."""
    kept, dropping = [], False
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            severity, source = _SEVERITY[match.group(1)], os.path.basename(match.group(2))
            dropping = severity < level or (drop_probes and source in _PROBES)
        elif line.startswith(_PREAMBLE):
            dropping = level >= 1 or drop_probes
        elif not (dropping and line.startswith(_CONTINUATIONS)):
            dropping = False
        if not dropping:
            kept.append(line)
    return kept


def keras_backend() -> str:
    """Keras' backend as Keras will choose it, without importing Keras."""
    backend = os.environ.get("KERAS_BACKEND")
    if backend:
        return backend
    import json

    config = os.path.join(
        os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "keras.json"
    )
    try:
        with open(config) as file:
            return json.load(file).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def import_backend() -> None:
    """Imports TensorFlow quietly where Keras will run on it; JAX and PyTorch need no filter."""
    import importlib.util

    if keras_backend() == "tensorflow" and importlib.util.find_spec("tensorflow") is not None:
        import_tensorflow()
        drop_retracing_warnings()


RETRACING = "triggered tf.function retracing"


class _DropRetracing:
    """A logging filter that drops TensorFlow's "N out of the last M calls ... retracing"."""

    def filter(self, record) -> bool:
        return RETRACING not in record.getMessage()


def drop_retracing_warnings() -> None:
    """Hides TensorFlow's retracing warning from the ``tensorflow`` logger; once is enough.

    The commands build a new model per scheme, width or seed on purpose, and
    each model traces its own train step: TensorFlow counts those tracings of
    Keras' one ``one_step_on_data`` and warns of a loop that retraces, with
    advice for code the user did not write. Every other TensorFlow log line
    still shows.
    """
    import logging

    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _DropRetracing) for f in logger.filters):
        logger.addFilter(_DropRetracing())


def import_tensorflow() -> None:
    """Imports TensorFlow and scans its devices with the start-up noise filtered out.

    Does nothing when TensorFlow is already imported.
    """
    if "tensorflow" in sys.modules:
        return
    drop_probes = set_log_level()
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to filter
        _import_and_scan()
        return
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            _import_and_scan()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            for line in keep_lines(text, _level(), drop_probes):
                print(line, file=sys.stderr)
            sys.stderr.flush()


def _import_and_scan() -> None:
    import tensorflow as tf

    tf.config.list_physical_devices()  # CUDA's "failed call to cuInit" comes here
