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
    from jax_multiprocess import fit_logged

    assert keras.backend.backend() == "jax", keras.backend.backend()
    devices = jax.devices("cpu")
    assert len(devices) == 2, devices
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    tmp = sys.argv[1]
    one, start, _ = fit_logged(tmp + "/one", None, x, y, batch_size=16, epochs=2)
    two, _, _ = fit_logged(tmp + "/two", keras.distribution.DataParallel(devices=devices), x, y,
                           start, batch_size=16, epochs=2)
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
