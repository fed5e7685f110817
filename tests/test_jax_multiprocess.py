"""Two JAX processes on loopback (``keras.distribution.initialize``), one job, many checks.

Each process has one CPU; ``DataParallel`` spans both. One launch
(``tests/jax_multiprocess.py``) covers:

* every alias, for every kind of seed, starts from the same weights in both
  processes: ``None`` and ``SeedGenerator(None)`` because ``initialize``
  seeds Python's ``random`` alike everywhere (``initialize_rng``) and the
  generator is made after it; integer seeds and ``SeedGenerator(5)`` by
  construction. Zoo instances may be made before ``initialize`` (their
  generator is made at the first draw); a ``keras.random.SeedGenerator``
  cannot be on JAX (its variable starts the backend, and JAX then refuses
  ``jax.distributed.initialize``), so every user's ``SeedGenerator(None)``
  is made after it and agrees;
* GradientNormLogger writes one event file (process 0's); process 1 makes
  no directory, no file, no encoder and no heatmap history, and both run
  the same steps; the logged norms equal a one-process run on the same
  global batches.
"""

from __future__ import annotations

import os
import textwrap

import pytest
from conftest import load_events, load_scalars
from jax_multiprocess import run_processes

SCRIPT = textwrap.dedent(
    """
    import hashlib, json, os, sys, time
    address, count, index, tmp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras
    import numpy as np

    import keras_initzoo as kiz

    # Made before initialize: no backend variable yet (JAX would refuse to initialize).
    early = {"none": kiz.HeNormal(), "int": kiz.HeNormal(seed=3)}
    keras.distribution.initialize(address, count, index)

    started = time.perf_counter()
    devices = jax.devices()
    assert len(devices) == 2 and jax.process_index() == index, devices
    parallel = keras.distribution.DataParallel(devices=devices)
    parallel.auto_shard_dataset = False  # each process passes its own half (below)
    keras.distribution.set_distribution(parallel)
    out = {"pid": os.getpid()}

    def local(variable):  # this process' copy of a replicated variable
        return np.asarray(variable.value.addressable_data(0))

    # 1. Every alias, every kind of seed, built under DataParallel.
    seeds = {
        "none": lambda: None,
        "int": lambda: 5,
        "generator": lambda: keras.random.SeedGenerator(5),
        "generator_none": lambda: keras.random.SeedGenerator(),
    }
    digests = {}
    for kind, make_seed in seeds.items():
        for info in kiz.list_initializers():
            initializer = info.make(seed=make_seed())
            if info.cls.__name__ in ("Dirac", "DeltaOrthogonal"):
                layer = keras.layers.Conv2D(8, 3, kernel_initializer=initializer)
                layer.build((None, 6, 6, 8))
            else:
                layer = keras.layers.Dense(8, kernel_initializer=initializer)
                layer.build((None, 16))
            kernel = local(layer.kernel)
            digests[f"{kind}/{info.alias}"] = hashlib.sha256(kernel.tobytes()).hexdigest()
    for kind, initializer in early.items():
        for name in ("a", "b"):  # shared: two layers, two kernels
            layer = keras.layers.Dense(8, kernel_initializer=initializer)
            layer.build((None, 16))
            digests[f"made_before_initialize/{kind}/{name}"] = hashlib.sha256(
                local(layer.kernel).tobytes()).hexdigest()
    out["digests"] = digests
    out["t1"] = time.perf_counter() - started

    # 2. GradientNormLogger: process i feeds its half of each global batch of 16.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    mine = np.concatenate([np.arange(k, k + 8) + 8 * index for k in range(0, 64, 16)])

    def model():
        net = keras.Sequential([
            keras.Input((6,)),
            keras.layers.Dense(8, activation="tanh", name="hidden",
                               kernel_initializer=kiz.HeNormal(seed=1)),
            keras.layers.Dense(1, name="out", kernel_initializer=kiz.GlorotUniform(seed=2)),
        ])
        net.compile(keras.optimizers.SGD(0.05), "mse")
        return net

    net = model()
    start = [local(v) for v in net.weights]
    logger = kiz.GradientNormLogger(tmp + "/run", update_freq=1, histogram_freq=2)
    if index:
        # The same path on process 1 makes nothing either.
        kiz.GradientNormLogger(tmp + "/made_by_process_1")
    net.fit(x[mine], y[mine], batch_size=8, epochs=2, shuffle=False, verbose=0,
            callbacks=[logger])
    out["steps"] = int(np.asarray(net.optimizer.iterations.value.addressable_data(0)))
    out["quiet"] = [logger._writer is None, logger._encoder is None, logger._history is None]
    out["t2"] = time.perf_counter() - started
    keras.distribution.set_distribution(None)
    if index == 0:
        # The one-process run: the same start, the same global batches, one device.
        ref = model()
        ref.set_weights(start)
        ref.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
                callbacks=[kiz.GradientNormLogger(tmp + "/one", update_freq=1, histogram_freq=2)])
    out["seconds"] = time.perf_counter() - started
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("processes")
    reports = run_processes(SCRIPT, 2, str(tmp), timeout=300)
    print([{k: r[k] for k in r if k[0] in "st"} for r in reports])  # wall times (-s)
    return tmp, reports


@pytest.mark.slow
def test_every_process_starts_from_the_same_weights(job):
    _, (first, second) = job
    a, b = first["digests"], second["digests"]
    assert set(a) == set(b) and len(a) >= 4 * 30 + 4
    for key in a:
        assert a[key] == b[key], key
    # The check can fail: the kernels differ between aliases and between the shared
    # instance's two layers.
    assert len({a[f"int/{alias}"] for alias in ("zoo_he", "zoo_glorot", "zoo_orthogonal")}) == 3
    for kind in ("none", "int"):
        assert a[f"made_before_initialize/{kind}/a"] != a[f"made_before_initialize/{kind}/b"]


@pytest.mark.slow
def test_logger_writes_once_from_process_zero(job):
    tmp, (first, second) = job
    assert first["steps"] == second["steps"] == 8  # 4 global batches x 2 epochs, both processes
    files = sorted(os.listdir(tmp / "run"))
    assert len(files) == 1 and f".{first['pid']}." in files[0], files
    assert not (tmp / "made_by_process_1").exists()
    assert second["quiet"] == [True, True, True] and first["quiet"][1:] == [False, False]
    histograms = load_events(tmp / "run").Tensors("grad_hist/hidden")
    assert [e.step for e in histograms] == [1, 3, 5, 7]


@pytest.mark.slow
def test_logger_norms_across_processes_equal_one_process(job):
    tmp, _ = job
    run, one = load_scalars(tmp / "run"), load_scalars(tmp / "one")
    assert set(run) == set(one) >= {"grad_norm/global", "grad_norm/hidden", "grad_norm/out"}
    for tag in ("grad_norm/global", "grad_norm/hidden", "grad_norm/out"):
        assert [s for s, _ in run[tag]] == [s for s, _ in one[tag]] == list(range(1, 9))
        # Only the float32 summation order of the batch reductions differs (~1e-7).
        assert [v for _, v in run[tag]] == pytest.approx([v for _, v in one[tag]], rel=1e-5), tag
