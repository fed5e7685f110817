"""How far GradientNormLogger's JAX step is from the physical limit (one read per gradient).

The whole-fit series (``bench_gradient_norm.py --paired``) times what a user
waits for; this takes the compiled steps apart, on the same reference model
(20 x Dense(256), batch 128, Adam):

- XLA's ``cost_analysis()`` of Keras' plain step (jitted as Keras jits it, the
  state donated) and of the logger's recording step: bytes accessed and flops;
- the two compiled steps timed alone, interleaved in shuffled blocks of
  ``--block`` steps, each threading its own donated state, with the median
  ratio over ``--rounds`` blocks and a bootstrap 90 % interval;
- the floor: one jitted read of every gradient (sum of squares of arrays of
  the gradients' shapes), timed alone the same way.

``--monitors``: the same for each early-warning monitor on its own and for all
of them (issue 25's "every step with everything on"), each in a logger of its
own. A monitor's floor is the bytes it cannot avoid reading, timed at the
measured speed of the gradient read:

- ``activation_stats``: each layer's output once (batch x units);
- ``output_logits``: the logits once;
- ``optimizer_stats``: Adam's two moments once (two reads of the parameters);
- ``spectral_updates``: the kernels' updates, formed once (two reads and a
  write) and read twice per Lanczos step (``LANCZOS_STEPS``);
- ``detect_spikes``: the loss (a scalar): nothing.

Usage: ``KERAS_BACKEND=jax python benchmarks/logger_step_floor.py [--rounds 60] [--monitors]``
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from bench_gradient_norm import bootstrap_interval, build  # noqa: E402

import keras_initzoo as kiz  # noqa: E402
from keras_initzoo.callbacks.capture.base import LANCZOS_STEPS, Record  # noqa: E402

MONITORS = (
    "activation_stats",
    "output_logits",
    "optimizer_stats",
    "spectral_updates",
    "detect_spikes",
)


def state_of(model: keras.Model) -> tuple:
    """A training state shaped as Keras' JAX trainer passes it to ``train_step``.

    Fresh arrays (mid-fit the variables' own buffers may have been donated):
    weights N(0, 1/fan), the optimizer's and metrics' slots zero.
    """
    rng = np.random.default_rng(1)

    def weight(v):
        scale = 1.0 / np.sqrt(v.shape[0]) if len(v.shape) > 1 else 0.0
        return jnp.asarray((scale * rng.normal(size=v.shape)).astype(v.dtype))

    return (
        [weight(v) for v in model.trainable_variables],
        *(
            [jnp.zeros(v.shape, v.dtype) for v in variables]
            for variables in (
                model.non_trainable_variables,
                model.optimizer.variables,
                model.metrics_variables,
            )
        ),
    )


def cost(step, state, data) -> dict[str, float]:
    analysis = step.lower(state, data).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return {"bytes": analysis["bytes accessed"], "flops": analysis["flops"]}


def measure(model, capture, data, args, seconds, costs) -> None:
    """Times and costs Keras' plain step, the logger's recording step and one gradient read."""
    record = Record(True, False)
    # Jitted as Keras jits its own step (the state donated); outside the
    # logger's step function the wrapped apply records nothing.
    plain_step = jax.jit(model.train_step, donate_argnums=0)
    logged_step = capture.steps[record]
    grads = [jnp.ones(v.shape, v.dtype) for v in model.trainable_variables]
    read = jax.jit(lambda gs: sum(jnp.sum(g * g) for g in gs))
    costs["plain"] = cost(plain_step, state_of(model), data)
    previous, capture.record = capture.record, record
    try:
        costs["logged"] = cost(logged_step, state_of(model), data)
        states = {"plain": state_of(model), "logged": state_of(model)}

        def run(name: str) -> float:
            t0 = time.perf_counter()
            if name == "read":
                for _ in range(args.block):
                    out = read(grads)
                out.block_until_ready()
            else:
                step = plain_step if name == "plain" else logged_step
                state = states[name]
                for _ in range(args.block):
                    state = step(state, data)[1]
                jax.block_until_ready(state)
                states[name] = state
            return (time.perf_counter() - t0) / args.block

        names = ["plain", "logged", "read"]
        for name in names:  # compile and warm
            run(name)
        order = random.Random(0)
        seconds.update({name: [] for name in names})
        for _ in range(args.rounds):
            for name in order.sample(names, len(names)):
                seconds[name].append(run(name))
    finally:
        capture.record = previous


def floor_bytes(model: keras.Model, batch: int, monitor: str) -> int:
    """The bytes ``monitor`` must read per step beyond the logger's gradient read (float32)."""
    kernels = [v for v in model.trainable_variables if len(v.shape) == 2]
    parameters = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    if monitor == "activation_stats":
        return 4 * batch * sum(layer.units for layer in model.layers[1:])
    if monitor == "output_logits":
        return 4 * batch * model.layers[-1].units
    if monitor == "optimizer_stats":
        return 4 * 2 * parameters
    if monitor == "spectral_updates":
        return 4 * (3 + 2 * LANCZOS_STEPS) * sum(int(np.prod(v.shape)) for v in kernels)
    if monitor == "every":
        return sum(floor_bytes(model, batch, m) for m in MONITORS)
    return 0


def run_config(name: str, options: dict, args, x, y, batch: int, width: int) -> dict:
    """One fresh model and logger with ``options``: costs and timings of its steps."""
    keras.backend.clear_session()
    model = build(20, width)
    logger = kiz.GradientNormLogger(tempfile.mkdtemp(), update_freq=1, **options)
    seconds: dict[str, list[float]] = {}
    costs: dict[str, dict[str, float]] = {}
    one_batch = (jnp.asarray(x[:batch]), jnp.asarray(y[:batch]))

    class Measure(keras.callbacks.Callback):
        # Mid-fit, after the logger traced both variants, with its wrapper installed.
        def on_train_batch_end(self, batch_index, logs=None):
            if batch_index == 2:
                measure(self._model, logger._capture, one_batch, args, seconds, costs)

    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, callbacks=[logger, Measure()])
    return {"model": model, "seconds": seconds, "costs": costs}


def ratio(seconds: dict, name: str) -> tuple[float, float, float]:
    values = [a / b for a, b in zip(seconds[name], seconds["plain"], strict=True)]
    return (statistics.median(values), *bootstrap_interval(values))


def main(argv=None) -> int:
    if keras.backend.backend() != "jax":
        raise SystemExit("logger_step_floor.py measures JAX's compiled steps: KERAS_BACKEND=jax")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--block", type=int, default=20, help="steps per timed block")
    parser.add_argument(
        "--monitors", action="store_true", help="also each early-warning monitor, and all"
    )
    args = parser.parse_args(argv)

    width, batch = 256, 128
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4 * batch, width)).astype("float32")
    y = rng.normal(size=(4 * batch, 1)).astype("float32")
    configs = {"gradients": {}}
    if args.monitors:
        configs.update({m: {m: True} for m in MONITORS})
        configs["every"] = {m: True for m in MONITORS}
    print(f"jax {jax.__version__}, 20 x Dense({width}), batch {batch}, Adam")
    for name, options in configs.items():
        run = run_config(name, options, args, x, y, batch, width)
        model, seconds, costs = run["model"], run["seconds"], run["costs"]
        gradient_bytes = sum(int(np.prod(v.shape)) * 4 for v in model.trainable_variables)
        plain_s = statistics.median(seconds["plain"])
        read_s = statistics.median(seconds["read"])
        extra = costs["logged"]["bytes"] - costs["plain"]["bytes"]
        print(f"\n[{name}]")
        print(
            f"bytes accessed: plain {costs['plain']['bytes'] / 1e6:.2f} MB, logged "
            f"{costs['logged']['bytes'] / 1e6:.2f} MB "
            f"(+{100 * extra / costs['plain']['bytes']:.1f} %; "
            f"gradients {gradient_bytes / 1e6:.2f} MB: {extra / gradient_bytes:.2f} reads)"
        )
        print(f"compiled plain step: {1e3 * plain_s:.2f} ms (median of {args.rounds} blocks)")
        median, low, high = ratio(seconds, "logged")
        print(
            f"compiled logged step / plain step: {median:.3f} (90 % interval {low:.3f}-{high:.3f})"
        )
        # The floor: the gradient read, plus what the monitor must read, at the read's
        # speed (a read of arrays that fit in cache: a measured ratio may come out below).
        must = gradient_bytes + floor_bytes(model, batch, name)
        floor = 1 + read_s * must / gradient_bytes / plain_s
        print(
            f"floor: {must / 1e6:.2f} MB to read at {gradient_bytes / read_s / 1e9:.1f} GB/s "
            f"= {1e3 * read_s * must / gradient_bytes:.2f} ms: {floor:.3f} of the plain step"
        )
    print(f"(1-minute load average at the end {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
