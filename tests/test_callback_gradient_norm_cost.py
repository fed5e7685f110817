"""What GradientNormLogger adds to JAX's compiled train step, from XLA's own cost model.

Whole-fit timings on a shared 2-core machine move by several per cent
(``benchmarks/bench_gradient_norm.py --paired``); XLA's ``cost_analysis()`` of
the compiled step does not. The physical limit of logging the norms is one
read of every gradient: the squared sums reduce each gradient once and write
a few floats. So the recording step may access at most the plain step's bytes
plus the gradients' bytes (and a little for the row), and must do about two
flops per gradient entry more (the square and the sum), which shows the row
is there at all.

Before ``squared_sums`` put an optimization barrier on the gradients, XLA
shared their square with Adam's second moment, wrote it out in full and read
it twice more: 3.0 reads of every gradient (measured on 20 x Dense(256)).
"""

from __future__ import annotations

import textwrap

import pytest
from jax_multiprocess import run_devices

SCRIPT = textwrap.dedent(
    """
    import json, tempfile
    import jax, keras, numpy as np
    import keras_initzoo as kiz
    from keras_initzoo.callbacks.capture.base import Record

    keras.utils.set_random_seed(0)
    depth, width, batch = 8, 256, 64
    model = keras.Sequential(
        [keras.Input((width,))]
        + [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
        + [keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-4), "mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4 * batch, width)).astype("float32")
    y = rng.normal(size=(4 * batch, 1)).astype("float32")
    logger = kiz.GradientNormLogger(tempfile.mkdtemp(), update_freq=1)
    out = {}

    def spec(variables):
        return [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in variables]

    def cost(step, state, data):
        analysis = step.lower(state, data).compile().cost_analysis()
        analysis = analysis[0] if isinstance(analysis, list) else analysis
        return {"bytes": analysis["bytes accessed"], "flops": analysis["flops"]}

    class Inspect(keras.callbacks.Callback):
        # Mid-fit, while the logger's wrapper is installed on the optimizer.
        def on_train_batch_end(self, batch_index, logs=None):
            if out:
                return
            model = self._model
            state = tuple(spec(vs) for vs in (
                model.trainable_variables, model.non_trainable_variables,
                model.optimizer.variables, model.metrics_variables))
            data = (jax.ShapeDtypeStruct(x[:batch].shape, "float32"),
                    jax.ShapeDtypeStruct(y[:batch].shape, "float32"))
            # Jitted as Keras jits its own step: the state donated (that changes
            # XLA's copies, so the bytes it counts).
            out["plain"] = cost(jax.jit(model.train_step, donate_argnums=0), state, data)
            capture, record = logger._capture, Record(True, False)
            capture.record = record  # what the wrapped apply reads while tracing
            try:
                out["logged"] = cost(capture.steps[record], state, data)
            finally:
                capture.record = None
            out["gradient_entries"] = sum(int(np.prod(v.shape)) for v in model.trainable_variables)

    model.fit(x, y, batch_size=batch, epochs=1, callbacks=[logger, Inspect()], verbose=0)
    print("RESULT " + json.dumps(out))
    """
)


@pytest.mark.slow
def test_the_recording_step_reads_each_gradient_once():
    report = run_devices(SCRIPT, 1, timeout=300)
    print(report)  # pytest -s shows the figures
    entries = report["gradient_entries"]
    extra_bytes = report["logged"]["bytes"] - report["plain"]["bytes"]
    extra_flops = report["logged"]["flops"] - report["plain"]["flops"]
    # The row is computed: a square and an add per gradient entry (measured 2.0).
    assert extra_flops >= 1.5 * entries, report
    # One read of each float32 gradient, plus the row's few floats (measured
    # 1.01 reads); the shared square took 3.0.
    reads = extra_bytes / (4 * entries)
    assert 0.9 <= reads <= 1.25, (reads, report)
