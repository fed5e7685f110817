"""Launching JAX runs the test process cannot host: forced host devices, several processes.

The device count is fixed when JAX starts (``XLA_FLAGS``) and
``jax.distributed`` can be initialized once per interpreter, so each run is
a fresh interpreter with ``KERAS_BACKEND=jax`` and this checkout first on
``PYTHONPATH``, whatever backend the test session uses. A script reports by
printing one line ``RESULT <json>``; every run is bounded by ``timeout`` and
killed in a ``finally``, so a hung collective fails the test instead of CI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARK = "RESULT "


def jax_env(devices: int = 1) -> dict[str, str]:
    pytest.importorskip("jax", reason="keras.distribution runs on the JAX backend")
    return os.environ | {
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


def _result(stdout: str, stderr: str, returncode: int):
    lines = [line for line in stdout.splitlines() if line.startswith(MARK)]
    assert returncode == 0 and lines, f"exit {returncode}\n{stdout[-2000:]}\n{stderr[-4000:]}"
    return json.loads(lines[-1][len(MARK) :])


def run_devices(script: str, devices: int, *args: str, timeout: float = 300):
    """Runs ``script`` on ``devices`` forced host CPUs; returns its RESULT."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=jax_env(devices),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return _result(done.stdout, done.stderr, done.returncode)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_processes(script: str, count: int, *args: str, timeout: float = 300) -> list:
    """Runs ``script`` as ``count`` processes of one ``jax.distributed`` job on loopback.

    Each gets ``argv = [address, count, index, *args]``; the script calls
    ``jax.config.update("jax_cpu_collectives_implementation", "gloo")`` and
    ``keras.distribution.initialize(address, count, index)``. Returns each
    process' RESULT, in process order.
    """
    address = f"127.0.0.1:{free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, address, str(count), str(index), *args],
            env=jax_env(1),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for index in range(count)
    ]
    try:
        outputs = [proc.communicate(timeout=timeout) for proc in procs]
        return [
            _result(out, err, proc.returncode)
            for proc, (out, err) in zip(procs, outputs, strict=True)
        ]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
