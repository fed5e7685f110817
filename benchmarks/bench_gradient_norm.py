"""Benchmark: per-step overhead of GradientNormLogger against other ways to watch gradients.

Reference model: Dense layers (ReLU), batch 128, CPU, TensorFlow backend. One
process and one model; every repeat runs each configuration once on it, in a
shuffled order, after a ``gc.collect()``, so drifts in machine load hit them all
alike. Step time is the
mean wall time between consecutive ``on_train_batch_begin`` calls (train
function plus every callback's hooks, so the logger's periodic reads of its
device buffer are included), skipping the first steps of each fit (tracing).
A configuration's ratio is the median over repeats of its step time divided by
the no-callback step time of the same repeat (paired, so slow phases of the
machine cancel out); its ms/step is the median over repeats.

Configurations: no callback; GradientNormLogger(update_freq=1); update_freq=100;
keras.callbacks.TensorBoard(update_freq="batch", histogram_freq=1); and the
common workaround, a callback running an extra GradientTape pass on a batch
every step. A second, deep model (500 layers) checks that the overhead stays
within the same ratios and that event-file bytes grow like layers x logged steps.

Usage::

    python benchmarks/bench_gradient_norm.py            # full run (minutes)
    python benchmarks/bench_gradient_norm.py --quick    # smoke run (seconds)
    python benchmarks/bench_gradient_norm.py --write benchmarks/RESULTS_gradient_norm.md
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the reference is a CPU benchmark
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import keras_initzoo as kiz  # noqa: E402

TARGETS = {"every step (update_freq=1)": 1.05, "update_freq=100": 1.02}


class StepTimer(keras.callbacks.Callback):
    """Wall time between consecutive batch begins: the whole step as fit sees it."""

    def __init__(self, skip: int) -> None:
        super().__init__()
        self.skip = skip
        self.times: list[float] = []
        self._last = None

    def on_train_begin(self, logs=None):
        self._last = None
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now

    def per_step(self) -> tuple[float, float]:
        """Mean and median step time, after the skipped first steps."""
        kept = self.times[self.skip :]
        return statistics.fmean(kept), statistics.median(kept)


class ExtraTapeNorms(keras.callbacks.Callback):
    """The workaround GradientNormLogger replaces: a second backward pass per step."""

    def __init__(self, log_dir: str, x, y) -> None:
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.x, self.y = tf.constant(x), tf.constant(y)
        self.step = 0
        self._fn = None

    def on_train_begin(self, logs=None):
        model, loss_fn = self.model, keras.losses.MeanSquaredError()

        @tf.function
        def norms(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            return [tf.norm(g) for g in grads]

        self._fn = norms

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        values = self._fn(self.x, self.y)
        with self.writer.as_default(step=self.step):
            for v, n in zip(self.model.trainable_variables, values, strict=True):
                tf.summary.scalar(f"grad_norm/{v.path}", n)


def build(depth: int, width: int, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((width,))]
    layers += [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    layers += [keras.layers.Dense(1)]
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.Adam(1e-4), "mse")
    return model


def event_bytes(log_dir: str) -> int:
    return sum(p.stat().st_size for p in Path(log_dir).rglob("*tfevents*"))


def run_suite(depth, width, batch, steps, repeats, configs, tmp):
    """Per configuration: median over repeats of the mean step time (s), and the
    median paired ratios of the mean and of the median step time; event bytes."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * 8, width)).astype("float32")
    y = rng.normal(size=(batch * 8, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).repeat().prefetch(2)
    # One model for every configuration: separate but identical models differ by
    # several per cent in step time (where their variables land in memory), which
    # would swamp the differences measured here.
    model = build(depth, width)
    times: dict[str, list[float]] = {name: [] for name in configs}
    ratios: dict[str, list[float]] = {name: [] for name in configs}
    median_ratios: dict[str, list[float]] = {name: [] for name in configs}
    sizes: dict[str, int] = {}
    skip = 3
    order = random.Random(depth)
    for r in range(repeats):
        this_repeat = {}
        for name in order.sample(list(configs), len(configs)):
            log_dir = os.path.join(tmp, f"d{depth}", name.replace(" ", "_"), f"r{r}")
            timer = StepTimer(skip)
            cbs = [timer] + configs[name](log_dir, x[:batch], y[:batch])
            # Every fit traces its train functions afresh (the tracing steps are
            # skipped): separately traced but identical functions also differ by a
            # few per cent, and one traced once and reused by a single
            # configuration would fix that draw for all of its repeats.
            model.train_function = None
            gc.collect()  # garbage of earlier fits (retraced functions) is not this fit's cost
            model.fit(data, epochs=1, steps_per_epoch=steps + skip + 1, callbacks=cbs, verbose=0)
            this_repeat[name] = timer.per_step()
            if os.path.isdir(log_dir):
                sizes[name] = event_bytes(log_dir)
        base_mean, base_median = this_repeat["no callback"]
        for name, (mean, med) in this_repeat.items():
            times[name].append(mean)
            ratios[name].append(mean / base_mean)
            median_ratios[name].append(med / base_median)
    median = statistics.median
    result = {n: (median(times[n]), median(ratios[n]), median(median_ratios[n])) for n in configs}
    return result, sizes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (seconds)")
    parser.add_argument("--write", metavar="PATH", help="write the Markdown results here")
    parser.add_argument("--repeats", type=int, default=None, help="reference model repeats")
    parser.add_argument(
        "--deep-repeats", type=int, default=None, help="500-layer model repeats (~100 s each)"
    )
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)

    quick = args.quick
    width, batch = (32, 16) if quick else (256, 128)
    steps = args.steps or (6 if quick else 150)
    repeats = args.repeats or (1 if quick else 15)
    deep_steps = 4 if quick else 100
    deep_repeats = args.deep_repeats or (1 if quick else 5)
    deep_depth, deep_width = (30, 16) if quick else (500, 32)

    gnl = "every step (update_freq=1)"
    configs = {
        "no callback": lambda d, x, y: [],
        gnl: lambda d, x, y: [kiz.GradientNormLogger(d, update_freq=1)],
        "update_freq=100": lambda d, x, y: [kiz.GradientNormLogger(d, update_freq=100)],
        "every step + count_nonfinite": lambda d, x, y: [
            kiz.GradientNormLogger(d, update_freq=1, count_nonfinite=True)
        ],
        "keras TensorBoard (batch, histogram_freq=1)": lambda d, x, y: [
            keras.callbacks.TensorBoard(d, update_freq="batch", histogram_freq=1)
        ],
        "extra GradientTape pass per step": lambda d, x, y: [ExtraTapeNorms(d, x, y)],
    }
    deep_configs = {k: configs[k] for k in ("no callback", gnl, "update_freq=100")}

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        ref, ref_sizes = run_suite(20, width, batch, steps, repeats, configs, tmp)
        deep, deep_sizes = run_suite(
            deep_depth, deep_width, batch, deep_steps, deep_repeats, deep_configs, tmp
        )
        elapsed = time.time() - t0

    def bytes_per_scalar_step(size: int, layers: int, logged: int) -> float:
        return size / ((layers + 1) * logged)  # +1: the global norm

    lines = []
    for label, res in (
        (f"20 x Dense({width}), batch {batch}", ref),
        (f"{deep_depth} x Dense({deep_width})", deep),
    ):
        lines += [
            f"| configuration | {label}: ms/step | ratio (mean step) | ratio (median step) |",
            "|---|---:|---:|---:|",
        ]
        for name, (t, ratio, median_ratio) in res.items():
            lines.append(f"| {name} | {1e3 * t:.2f} | {ratio:.3f} | {median_ratio:.3f} |")
        lines.append("")
    lines.pop()
    lines += [
        "",
        "| event file, update_freq=1 | layers | logged steps | bytes | bytes/(scalar x step) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, size, layers, logged in (
        ("20-layer model", ref_sizes[gnl], 21, steps + 4),
        (f"{deep_depth}-layer model", deep_sizes[gnl], deep_depth + 1, deep_steps + 4),
    ):
        per = bytes_per_scalar_step(size, layers, logged)
        lines.append(f"| {label} | {layers} | {logged} | {size} | {per:.1f} |")
    verdict = []
    for name, limit in TARGETS.items():
        for label, res in (("20 layers", ref), (f"{deep_depth} layers", deep)):
            _, ratio, median_ratio = res[name]
            met = max(ratio, median_ratio) <= limit
            verdict.append(
                f"{name}, {label}: {ratio:.3f} mean, {median_ratio:.3f} median "
                f"(target <= {limit}) {'OK' if met else 'MISSED'}"
            )
    table = "\n".join(lines)
    print(table)
    print("\n".join(verdict))
    print(f"({elapsed:.0f} s)")
    if args.write:
        cmd = "python benchmarks/bench_gradient_norm.py " + " ".join(argv or sys.argv[1:])
        Path(args.write).write_text(
            "# GradientNormLogger benchmark\n\n"
            f"Command: `{cmd.strip()}`\n\n"
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}, CPU only.\n\n"
            f"Step time = wall time between batch begins, first 3 steps of each fit "
            f"skipped; {repeats} (deep model: {deep_repeats}) repeats of {steps} "
            f"({deep_steps}) steps, configurations in shuffled order on one model. "
            f"ms/step: median over repeats of each fit's mean step time. Ratios: "
            f"median over repeats of the fit's mean (or median) step time divided by "
            f"that of the no-callback fit of the same repeat. A target counts as met "
            f"only if both ratios meet it.\n\n"
            + table
            + "\n\n"
            + "\n".join(f"- {v}" for v in verdict)
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
