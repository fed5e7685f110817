"""Launching JAX runs the test process cannot host: forced host devices, several processes.

The device count is fixed when JAX starts (``XLA_FLAGS``) and
``jax.distributed`` can be initialized once per interpreter, so each run is
a fresh interpreter with ``KERAS_BACKEND=jax`` and this checkout first on
``PYTHONPATH``, whatever backend the test session uses. A script reports by
printing one line ``RESULT <json>``; every run is bounded by ``timeout`` and
killed in a ``finally``, so a hung collective fails the test instead of CI.

The scripts' side: :func:`small_model` and :func:`fit_logged`, the model and
the logged fit the distributed tests compare with a one-device run (they import
Keras when called, in the script's JAX interpreter).
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
TESTS = Path(__file__).resolve().parent
MARK = "RESULT "


def jax_env(devices: int = 1) -> dict[str, str]:
    pytest.importorskip("jax", reason="keras.distribution runs on the JAX backend")
    return os.environ | {
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        # tests/ too: the scripts import the helpers below (and conftest's readers).
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS), os.environ.get("PYTHONPATH", "")]),
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


# -- used inside the scripts ------------------------------------------------------------
def small_model(outputs: int = 1):
    """``Dense(8, tanh) -> Dense(outputs)`` on 6 inputs, seeded zoo kernels, SGD(0.05) on MSE.

    Built under whatever distribution is set; layers ``hidden`` and ``out``.
    """
    import keras

    import keras_initzoo as kiz

    net = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(
                8, activation="tanh", name="hidden", kernel_initializer=kiz.HeNormal(seed=1)
            ),
            keras.layers.Dense(outputs, name="out", kernel_initializer=kiz.GlorotUniform(seed=2)),
        ]
    )
    net.compile(keras.optimizers.SGD(0.05), "mse")
    return net


def fit_logged(log_dir, distribution, x, y, weights=None, *, batch_size: int, epochs: int):
    """Fits :func:`small_model` under ``distribution`` with a GradientNormLogger every step.

    Starts from ``weights`` (else the model's own): a second zoo initializer
    with the same integer seed in one process draws that seed's next stream,
    so a comparison run must be handed the first run's start. Returns the
    logged scalars ``{tag: [(step, value), ...]}``, the starting weights and
    the sharding spec of the ``hidden`` kernel (``"None"`` off a distribution).
    """
    import keras
    from conftest import load_scalars

    import keras_initzoo as kiz

    keras.distribution.set_distribution(distribution)
    try:
        net = small_model(y.shape[1])
        if weights is None:
            weights = [v.numpy() for v in net.weights]
        net.set_weights(weights)
        spec = str(getattr(net.get_layer("hidden").kernel.value.sharding, "spec", None))
        net.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            shuffle=False,
            verbose=0,
            callbacks=[kiz.GradientNormLogger(log_dir, update_freq=1)],
        )
    finally:
        keras.distribution.set_distribution(None)
    return load_scalars(log_dir), weights, spec
