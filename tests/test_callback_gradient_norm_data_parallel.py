"""GradientNormLogger under ``keras.distribution.DataParallel`` on two JAX host CPUs.

The device count is fixed when JAX starts (``XLA_FLAGS``), so the run happens
in a fresh interpreter (``tests/jax_multiprocess.py``). The same model,
weights and global batches are trained once on one device and once
data-parallel over two; the logged norms must agree: the
norm of the aggregated (global-batch) gradient, not of one replica's half.
Tolerance 1e-5 relative: the two runs differ only in how XLA splits the
batch reductions (float32 summation order, ~1e-7).
"""

from __future__ import annotations

import textwrap

import pytest
from jax_multiprocess import run_devices

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    import keras
    import numpy as np
    from tensorboard.backend.event_processing import event_accumulator as ea

    import keras_initzoo as kiz

    assert keras.backend.backend() == "jax", keras.backend.backend()
    devices = jax.devices("cpu")
    assert len(devices) == 2, devices
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")

    def run(log_dir, distribution, weights=None):
        keras.distribution.set_distribution(distribution)
        try:
            model = keras.Sequential([
                keras.Input((6,)),
                keras.layers.Dense(8, activation="tanh", name="hidden",
                                   kernel_initializer=kiz.HeNormal(seed=1)),
                keras.layers.Dense(1, name="out", kernel_initializer=kiz.GlorotUniform(seed=2)),
            ])
            model.compile(keras.optimizers.SGD(0.05), "mse")
            # The same starting weights: a second zoo initializer with the same
            # integer seed in one process draws the seed's next stream.
            if weights is None:
                weights = [v.numpy() for v in model.weights]
            model.set_weights(weights)
            cb = kiz.GradientNormLogger(log_dir, update_freq=1)
            model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[cb])
        finally:
            keras.distribution.set_distribution(None)
        acc = ea.EventAccumulator(log_dir, size_guidance={ea.SCALARS: 0})
        acc.Reload()
        logged = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
        return logged, weights

    one, start = run(sys.argv[1] + "/one", None)
    two, _ = run(sys.argv[1] + "/two", keras.distribution.DataParallel(devices=devices), start)
    print("RESULT " + json.dumps({"one": one, "two": two}))
    """
)


@pytest.mark.slow
def test_data_parallel_logs_the_global_batch_gradient(tmp_path):
    runs = run_devices(SCRIPT, 2, str(tmp_path), timeout=600)
    one, two = runs["one"], runs["two"]
    assert set(one) == set(two) >= {"grad_norm/global", "grad_norm/hidden", "grad_norm/out"}
    for tag in ("grad_norm/global", "grad_norm/hidden", "grad_norm/out"):
        assert [s for s, _ in one[tag]] == list(range(1, 9))  # 4 steps x 2 epochs
        assert [s for s, _ in two[tag]] == list(range(1, 9))
        for (_, a), (_, b) in zip(one[tag], two[tag], strict=True):
            assert b == pytest.approx(a, rel=1e-5), tag
