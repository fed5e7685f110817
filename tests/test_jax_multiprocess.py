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
  global batches;
* ``stop_on_nonfinite``: an inf on one process' shard stops both processes
  at the same step (a second launch).
"""

from __future__ import annotations

import math
import os
import textwrap

import pytest
from conftest import load_events, load_scalars
from jax_multiprocess import run_processes

# Under JAX or PyTorch (test_backends.py) this would repeat its own runs.
pytestmark = pytest.mark.drives_backends(reason="runs JAX processes of its own")

SCRIPT = textwrap.dedent(
    """
    import hashlib, json, os, sys, time
    address, count, index, tmp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras
    import numpy as np

    import keras_initzoo as kiz
    from jax_multiprocess import small_model

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

    net = small_model()
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
        ref = small_model()
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


STOP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, warnings
    address, count, index, tmp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras
    import numpy as np

    import keras_initzoo as kiz
    from jax_multiprocess import small_model

    keras.distribution.initialize(address, count, index)
    parallel = keras.distribution.DataParallel(devices=jax.devices())
    parallel.auto_shard_dataset = False  # each process passes its own half (below)
    keras.distribution.set_distribution(parallel)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    # Global batch k (rows 16k..16k+15) is step k + 1 of an epoch; process i feeds
    # rows 16k + 8i .. 16k + 8i + 7 of it. One inf in x, on one process' shard only.
    bad = {
        # logged every step: the inf at step 3, in process 1's half (the one that writes nothing)
        "every": (1, 32 + 8 + 1),
        # logged at steps 1, 3, 5: the inf at step 4 (process 0's half) is not logged,
        # its update makes the weights NaN, and the next logged step shows it
        "every_2": (2, 48 + 3),
        # the control: the same inf without stop_on_nonfinite trains all 12 steps
        "no_stop": (1, 32 + 8 + 1),
    }
    mine = np.concatenate([np.arange(k, k + 8) + 8 * index for k in range(0, 64, 16)])
    out = {"pid": os.getpid()}
    for name, (freq, row) in bad.items():
        x_bad = x.copy()
        x_bad[row, 2] = np.inf
        net = small_model()
        logger = kiz.GradientNormLogger(
            f"{tmp}/{name}", update_freq=freq, stop_on_nonfinite=name != "no_stop")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            net.fit(x_bad[mine], y[mine], batch_size=8, epochs=3, shuffle=False, verbose=0,
                    callbacks=[logger])
        out[name] = {
            "steps": int(np.asarray(net.optimizer.iterations.value.addressable_data(0))),
            "warned": [str(w.message) for w in caught if "GradientNormLogger" in str(w.message)],
        }
    keras.distribution.set_distribution(None)
    print("RESULT " + json.dumps(out))
    """
)


@pytest.mark.slow
def test_stop_on_nonfinite_stops_every_process_at_the_same_step(tmp_path):
    # Under DataParallel the applied gradient is the global batch's (all-reduced),
    # so an inf on one process' shard makes every process' norm non-finite; each
    # reads its rows after every logged step and stops there. A process that did
    # not stop would wait forever in the next step's collective: the launcher's
    # timeout (and kill) turns that into a failure.
    first, second = run_processes(STOP_SCRIPT, 2, str(tmp_path), timeout=300)
    for report in (first, second):
        assert report["every"]["steps"] == 3
        assert report["every_2"]["steps"] == 5
        assert report["no_stop"]["steps"] == 12  # 4 global batches x 3 epochs
    # Process 0 alone writes and warns, naming the step.
    assert second["every"]["warned"] == second["every_2"]["warned"] == []
    assert "at step 3" in first["every"]["warned"][0] and "Stopping" in first["every"]["warned"][0]
    assert "at step 5" in first["every_2"]["warned"][0]
    for name, steps in (("every", [1, 2, 3]), ("every_2", [1, 3, 5])):
        files = os.listdir(tmp_path / name)
        assert len(files) == 1 and f".{first['pid']}." in files[0], files
        logged = load_scalars(tmp_path / name)["grad_norm/global"]
        assert [s for s, _ in logged] == steps
        assert all(math.isfinite(v) for _, v in logged[:-1]) and not math.isfinite(logged[-1][1])
