"""Benchmark: per-step overhead of GradientNormLogger against other ways to watch gradients.

Reference model: Dense layers (ReLU), batch 128, CPU, on the Keras backend
``KERAS_BACKEND`` names (TensorFlow, JAX or PyTorch; each is its own run,
against its own no-callback step time). On JAX every step is waited for at
its end (``block_until_ready``), in every configuration alike: asynchronous
dispatch would otherwise time only the queueing. The peers (Keras'
TensorBoard callback, an extra GradientTape pass) run on TensorFlow only. One
process and one model; every repeat runs each configuration once on it, in a
shuffled order, after a ``gc.collect()``, so drifts in machine load hit them all
alike. Step time is the
mean wall time between consecutive ``on_train_batch_begin`` calls (train
function plus every callback's hooks, so the logger's periodic reads of its
device buffer are included), skipping the first steps of each fit (tracing).
A configuration's ratio is the median over repeats of its step time divided by
the no-callback step time of the same repeat (paired, so slow phases of the
machine cancel out); its ms/step is the median over repeats, and a bootstrap
over repeats gives the ratio's 90 % interval.

On a shared 2-core machine whole fits shift by several per cent with the
machine's slow phases, which limits what fit-level ratios can resolve. So for
configurations that log some steps and not others, the logged steps are also
measured against their unlogged neighbours in the same fit (milliseconds apart):
the "step level" figure, what logging adds to the time of the steps around it.

Configurations: no callback; GradientNormLogger(update_freq=1); update_freq=100;
keras.callbacks.TensorBoard(update_freq="batch", histogram_freq=1); and the
common workaround, a callback running an extra GradientTape pass on a batch
every step. A second, deep model (500 layers) checks that the overhead stays
within the same ratios and that event-file bytes grow like layers x logged steps.

Usage::

    python benchmarks/bench_gradient_norm.py            # full run (minutes)
    python benchmarks/bench_gradient_norm.py --quick    # smoke run (seconds)
    python benchmarks/bench_gradient_norm.py --write benchmarks/RESULTS_gradient_norm.md
    KERAS_BACKEND=jax python benchmarks/bench_gradient_norm.py --models mlp,conv \
        --write benchmarks/RESULTS_gradient_norm_jax.md
    python benchmarks/bench_gradient_norm.py --paired 100 --models mlp \
        --write benchmarks/RESULTS_gradient_norm_paired_tensorflow.md

``--paired N``: what a user waits for. Plain and logged ``fit``s of the same model,
interleaved: N rounds, each running every configuration once in a shuffled
order, timed whole (``fit`` from call to return, callbacks' train-begin,
epoch-end and train-end work included: the heatmap, the layout, the flushes;
on JAX also the wait for the last step's result). Each configuration keeps one
callback instance for all its fits, so after one discarded warm-up round
(which traces: Keras' own train function, the logger's recording variant)
every timed fit runs traced functions, as a user's second and later fits do;
the warm-up round (plain fit first, so that Keras' own tracing is its cost)
is reported apart: each configuration's first-fit extra time over its median
timed fit. Per round, the ratio of each configuration's fit to
the no-callback fit of the same round; the median over rounds, with a
bootstrap 90 % interval, beside the same fits' mean-step ratio (the step-level
figure of the default mode). ``--write`` writes the results there and
rebuilds the README's benchmark block from every
``RESULTS_gradient_norm_paired_*.md`` present.
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
from typing import NamedTuple

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the reference is a CPU benchmark
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import keras_initzoo as kiz  # noqa: E402
from keras_initzoo.callbacks.groups import resolve_layer_groups  # noqa: E402

# Every early-warning switch (issue 25); attention_logits is added where a model has attention.
MONITORS = {
    "activation_stats": True,
    "output_logits": True,
    "optimizer_stats": True,
    "spectral_updates": True,
    "detect_spikes": True,
}
EVERY_MONITOR = "update_freq=100, every monitor"
TARGETS = {"every step (update_freq=1)": 1.05, "update_freq=100": 1.02, EVERY_MONITOR: 1.03}
BACKEND = keras.backend.backend()
if BACKEND == "tensorflow":
    import tensorflow as tf


class StepTimer(keras.callbacks.Callback):
    """Wall time between consecutive batch begins: the whole step as fit sees it."""

    def __init__(self, skip: int, wait: bool = True) -> None:
        super().__init__()
        self.skip = skip
        self.wait = wait  # JAX: wait for each step (False: as fit runs, asynchronously)
        self.times: list[float] = []
        self._last = None

    def on_train_begin(self, logs=None):
        self._last = None
        self.times = []
        # times[k] spans batch k's train call, which makes optimizer step start + k + 1.
        self.start = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_begin(self, batch, logs=None):
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now

    if BACKEND == "jax":

        def on_train_batch_end(self, batch, logs=None):
            import jax

            if self.wait:
                jax.block_until_ready(logs)  # the step's work, not only its dispatch

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


def logged_steps(log_dir: str) -> list[int]:
    """The steps the logger wrote, read back with TensorBoard's own reader."""
    acc = EventAccumulator(log_dir, size_guidance={"scalars": 0})
    acc.Reload()
    if "grad_norm/global" not in acc.Tags()["scalars"]:
        return []  # a short fit at a low update_freq may log no step
    return [e.step for e in acc.Scalars("grad_norm/global")]


def logged_step_excess(timer: StepTimer, steps: list[int], window: int = 5) -> list[float]:
    """Per logged step in the timed window: its time minus the median time of its
    unlogged neighbours (``window`` steps either side).

    Neighbours run milliseconds apart, so the machine's slow phases, which shift
    whole fits by several per cent, cancel out; this is the precise measure of
    what a logged step (its device work and its read, if one falls there) adds.
    """
    times, skip = timer.times, timer.skip
    logged = {s - timer.start - 1 for s in steps}
    excess = []
    for k in sorted(logged):
        if skip <= k < len(times):
            near = range(max(skip, k - window), min(len(times), k + window + 1))
            plain = [times[j] for j in near if j not in logged]
            if plain:  # none when every step is logged
                excess.append(times[k] - statistics.median(plain))
    return excess


def bootstrap_interval(values: list[float], level: float = 0.9) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of ``values`` (fixed seed)."""
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(values, size=(4000, len(values))), axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(medians, tail)), float(np.percentile(medians, 100 - tail))


class Suite(NamedTuple):
    """One model's results, per configuration."""

    fit_means: dict[str, list[float]]  # per repeat: the fit's mean step time (s)
    mean_ratios: dict[str, list[float]]  # paired per repeat: fit mean / no-callback mean
    median_ratios: dict[str, list[float]]  # the same with each fit's median step
    excess: dict[str, list[float]]  # logged_step_excess over all repeats (s)
    timed: dict[str, float]  # seconds of timed steps over all repeats
    sizes: dict[str, int]  # event-file bytes of the last repeat

    def ms(self, name: str) -> float:
        """Median over repeats of the fit's mean step time (s)."""
        return statistics.median(self.fit_means[name])

    def ratio(self, name: str) -> tuple[float, float]:
        median = statistics.median
        return median(self.mean_ratios[name]), median(self.median_ratios[name])

    def interval(self, name: str) -> tuple[float, float]:
        return bootstrap_interval(self.mean_ratios[name])

    def logged_step_share(self, name: str) -> float | None:
        """Time the logged steps add, as a fraction of the rest of the step time."""
        if not self.excess[name]:
            return None
        added = sum(self.excess[name])
        return added / (self.timed[name] - added)


def build_conv(size: int, seed: int = 0) -> keras.Model:
    """MobileNetV2 (alpha 1.0) from random weights, ``size`` x ``size`` inputs, one output."""
    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNetV2(
        weights=None, input_shape=(size, size, 3), classes=1, classifier_activation=None
    )
    model.compile(keras.optimizers.Adam(1e-4), "mse")
    return model


def build_transformer(seq: int, width: int, depth: int = 4, seed: int = 0) -> keras.Model:
    """A small pre-LN transformer: ``depth`` blocks of ``keras.layers.MultiHeadAttention``
    (4 heads) and a 4x GELU MLP on ``seq`` x ``width`` inputs, mean-pooled to one output."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((seq, width))
    x = inputs
    for i in range(depth):
        h = keras.layers.LayerNormalization(name=f"ln_attn_{i}")(x)
        x = x + keras.layers.MultiHeadAttention(4, width // 4, name=f"attn_{i}")(h, h)
        h = keras.layers.LayerNormalization(name=f"ln_mlp_{i}")(x)
        h = keras.layers.Dense(4 * width, activation="gelu", name=f"mlp_in_{i}")(h)
        x = x + keras.layers.Dense(width, name=f"mlp_out_{i}")(h)
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.LayerNormalization(name="ln_f")(x))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(x))
    model.compile(keras.optimizers.Adam(1e-4), "mse")
    return model


def make_data(batch: int, shape: tuple[int, ...]):
    """Eight generated batches, repeated: arrays ``x``, ``y`` and the data to fit.

    A ``tf.data`` pipeline on TensorFlow, else an endless generator of the same batches.
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * 8, *shape)).astype("float32")
    y = rng.normal(size=(batch * 8, 1)).astype("float32")
    if BACKEND == "tensorflow":
        # Without autotuning: with it, about two fits in five of MobileNetV2 (any
        # configuration, plain ones too) waited 4 s more in the iterator's teardown
        # after the last step, each ending exactly 10.23 s after it began.
        options = tf.data.Options()
        options.autotune.enabled = False
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).repeat().prefetch(2)
        return x, y, dataset.with_options(options)

    def batches():
        while True:
            for i in range(0, len(x), batch):
                yield x[i : i + batch], y[i : i + batch]

    return x, y, batches()


def run_suite(model, shape, batch, steps, repeats, configs, tmp) -> Suite:
    """Every configuration ``repeats`` times on ``model``, in shuffled order.

    One model for every configuration: separate but identical models differ by
    several per cent in step time (where their variables land in memory), which
    would swamp the differences measured here.
    """
    x, y, data = make_data(batch, shape)
    depth = len(model.layers)
    suite = Suite(*({name: [] for name in configs} for _ in range(4)), timed={}, sizes={})
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
            suite.timed[name] = suite.timed.get(name, 0.0) + sum(timer.times[skip:])
            if isinstance(cbs[-1], kiz.GradientNormLogger):
                suite.excess[name] += logged_step_excess(timer, logged_steps(log_dir))
            if os.path.isdir(log_dir):
                suite.sizes[name] = event_bytes(log_dir)
        base_mean, base_median = this_repeat["no callback"]
        for name, (mean, med) in this_repeat.items():
            suite.fit_means[name].append(mean)
            suite.mean_ratios[name].append(mean / base_mean)
            suite.median_ratios[name].append(med / base_median)
    return suite


class Paired(NamedTuple):
    """Whole-fit results of ``run_paired``, per configuration."""

    fit_seconds: dict[str, list[float]]  # per timed round: the whole fit (s)
    fit_ratios: dict[str, list[float]]  # per round: fit / no-callback fit of the round
    step_ratios: dict[str, list[float]]  # per round: mean step / no-callback mean step
    first_extra: dict[str, float]  # warm-up fit minus the median timed fit (s)

    def summary(self, name: str) -> tuple[float, float, float, float, float, float]:
        """Median fit ratio and its 90 % interval, the same for the mean-step ratio."""
        fits, steps = self.fit_ratios[name], self.step_ratios[name]
        return (
            statistics.median(fits),
            *bootstrap_interval(fits),
            statistics.median(steps),
            *bootstrap_interval(steps),
        )


def settle() -> None:
    """Wait for the device work a fit queued (JAX dispatches asynchronously)."""
    if BACKEND == "jax":
        import jax

        jax.effects_barrier()


def run_paired(model, shape, batch, steps, rounds, configs, tmp, epochs=1) -> Paired:
    """Whole ``fit``s of ``model``: one warm-up round, then ``rounds`` timed ones.

    Each round runs every configuration once, in a shuffled order, so drifts of
    the machine hit all alike; each configuration keeps one set of callbacks for
    all its fits (the logger then reuses its traced variants, as in a user's
    later fits). The timer callback rides along in every fit, plain ones too,
    and does not wait on JAX's steps, so the fits run as they would without it.
    Each fit is ``epochs`` epochs of ``steps`` steps (short epochs: the per-epoch
    reads and hooks count as often as a user's short epochs make them).
    """
    x, y, data = make_data(batch, shape)
    order = random.Random(len(model.layers) + rounds)
    callbacks = {
        name: make(os.path.join(tmp, "paired", name.replace(" ", "_")), x[:batch], y[:batch])
        for name, make in configs.items()
    }
    paired = Paired(*({name: [] for name in configs} for _ in range(3)), first_extra={})
    warm_up = {}
    skip = 3
    for r in range(rounds + 1):
        fit_s, step_s = {}, {}
        # Warm-up: the plain fit first, so that Keras' own tracing is its cost
        # and the logger's first-fit extra is the logger's alone.
        names = list(configs) if r == 0 else order.sample(list(configs), len(configs))
        for name in names:
            timer = StepTimer(skip, wait=False)
            gc.collect()  # earlier fits' garbage is not this fit's cost
            t0 = time.perf_counter()
            model.fit(
                data,
                epochs=epochs,
                steps_per_epoch=steps,
                callbacks=[timer] + callbacks[name],
                verbose=0,
            )
            settle()
            fit_s[name] = time.perf_counter() - t0
            step_s[name] = timer.per_step()[0]
        if r == 0:
            warm_up = fit_s
            continue
        for name in configs:
            paired.fit_seconds[name].append(fit_s[name])
            paired.fit_ratios[name].append(fit_s[name] / fit_s["no callback"])
            paired.step_ratios[name].append(step_s[name] / step_s["no callback"])
    for name in configs:
        paired.first_extra[name] = warm_up[name] - statistics.median(paired.fit_seconds[name])
    return paired


PAIRED_BEGIN, PAIRED_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"


def paired_report(results: dict[str, tuple[str, Paired, int, int]]) -> tuple[str, list[str]]:
    """The Markdown table of ``run_paired`` results and the pass-rule verdicts."""
    lines = [
        "| backend | model | configuration | fit s (median) | whole fit: ratio "
        "| 90 % interval | mean step: ratio | 90 % interval | first fit extra s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    verdict = []
    for label, paired, rounds, steps in results.values():
        for name in paired.fit_seconds:
            fit, lo, hi, step, slo, shi = paired.summary(name)
            lines.append(
                f"| {backend_version()} | {label} | {name} "
                f"| {statistics.median(paired.fit_seconds[name]):.3f} | {fit:.3f} "
                f"| {lo:.3f}–{hi:.3f} | {step:.3f} | {slo:.3f}–{shi:.3f} "
                f"| {paired.first_extra[name]:+.2f} |"
            )
            if name in TARGETS:
                limit = TARGETS[name]  # passed only by the interval's upper end
                ok = "OK" if hi <= limit else "MISSED"
                verdict.append(
                    f"{backend_version()}, {label}, {name}: whole fit {fit:.3f} "
                    f"(90 % interval {lo:.3f}–{hi:.3f}; {rounds} rounds of {steps}-step "
                    f"fits): upper end <= {limit}: {ok}"
                )
    return "\n".join(lines), verdict


def update_readme(results_dir: Path, readme: Path) -> None:
    """Rebuild the README's benchmark block from every paired results file."""
    blocks = []
    for path in sorted(results_dir.glob("RESULTS_gradient_norm_paired_*.md")):
        text = path.read_text()
        blocks.append(text[text.index("Command:") :].strip())
    body = readme.read_text()
    head, rest = body.split(PAIRED_BEGIN)
    _, tail = rest.split(PAIRED_END)
    readme.write_text(head + PAIRED_BEGIN + "\n" + "\n\n".join(blocks) + "\n" + PAIRED_END + tail)


def backend_version() -> str:
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[BACKEND]
    return f"{BACKEND} {__import__(module).__version__}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (seconds)")
    parser.add_argument("--write", metavar="PATH", help="write the Markdown results here")
    parser.add_argument("--repeats", type=int, default=None, help="reference model repeats")
    parser.add_argument(
        "--deep-repeats", type=int, default=None, help="500-layer model repeats (~100 s each)"
    )
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument(
        "--models",
        default="mlp,deep,conv",
        help="which models to run: mlp (20 x Dense), deep (500 x Dense), conv (MobileNetV2), "
        "transformer (4 pre-LN MultiHeadAttention blocks; --paired only)",
    )
    parser.add_argument("--conv-repeats", type=int, default=None, help="MobileNetV2 repeats")
    parser.add_argument(
        "--transformer",
        default="64x128",
        metavar="SEQxWIDTH",
        help="the transformer's sequence length and width (default 64x128; --quick: 8x16)",
    )
    parser.add_argument(
        "--monitors",
        action="store_true",
        help="with --paired: also every early-warning monitor on, at update_freq=100 and 1",
    )
    parser.add_argument(
        "--skip-every-step",
        action="store_true",
        help="with --paired: leave out the update_freq=1 configurations",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=1,
        help="with --paired: each MLP fit is this many epochs of --steps steps (short fits)",
    )
    parser.add_argument(
        "--paired",
        type=int,
        metavar="N",
        default=0,
        help="whole-fit mode: N timed rounds of interleaved plain and logged fits "
        "(--conv-repeats rounds for MobileNetV2)",
    )
    args = parser.parse_args(argv)
    chosen = set(args.models.split(","))

    quick = args.quick
    width, batch = (32, 16) if quick else (256, 128)
    steps = args.steps or (6 if quick else 150)
    repeats = args.repeats or (1 if quick else 15)
    deep_steps = 4 if quick else 100
    deep_repeats = args.deep_repeats or (1 if quick else 5)
    deep_depth, deep_width = (30, 16) if quick else (500, 32)
    conv_size, conv_batch = (32, 8) if quick else (64, 32)
    conv_steps = 4 if quick else 60
    conv_repeats = args.conv_repeats or (1 if quick else 8)

    gnl = "every step (update_freq=1)"
    configs = {
        "no callback": lambda d, x, y: [],
        gnl: lambda d, x, y: [kiz.GradientNormLogger(d, update_freq=1)],
        "update_freq=100": lambda d, x, y: [kiz.GradientNormLogger(d, update_freq=100)],
        "every step + count_nonfinite": lambda d, x, y: [
            kiz.GradientNormLogger(d, update_freq=1, count_nonfinite=True)
        ],
    }
    if BACKEND == "tensorflow":
        configs["keras TensorBoard (batch, histogram_freq=1)"] = lambda d, x, y: [
            keras.callbacks.TensorBoard(d, update_freq="batch", histogram_freq=1)
        ]
        configs["extra GradientTape pass per step"] = lambda d, x, y: [ExtraTapeNorms(d, x, y)]
    deep_configs = {k: configs[k] for k in ("no callback", gnl, "update_freq=100")}
    if args.monitors:  # the paired runs only: whole fits with every monitor on
        # attention_logits too: it finds no attention layer in the other models.
        every = {**MONITORS, "attention_logits": True}
        deep_configs[EVERY_MONITOR] = lambda d, x, y: [
            kiz.GradientNormLogger(d, update_freq=100, **every)
        ]
        deep_configs["every step, every monitor"] = lambda d, x, y: [
            kiz.GradientNormLogger(d, update_freq=1, **every)
        ]
    if args.paired:
        if args.skip_every_step:  # the update_freq=100 verdicts alone: more rounds, sooner
            deep_configs = {k: v for k, v in deep_configs.items() if "every step" not in k}
        return main_paired(args, argv, deep_configs, quick, width, batch, conv_size, conv_batch)

    suites: dict[str, tuple[str, Suite, int, int]] = {}  # key: (label, suite, layers, steps)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        if "mlp" in chosen:
            ref = run_suite(build(20, width), (width,), batch, steps, repeats, configs, tmp)
            suites["20 layers"] = (f"20 x Dense({width}), batch {batch}", ref, 21, steps)
        if "deep" in chosen:
            deep = run_suite(
                build(deep_depth, deep_width),
                (deep_width,),
                batch,
                deep_steps,
                deep_repeats,
                deep_configs,
                tmp,
            )
            suites[f"{deep_depth} layers"] = (
                f"{deep_depth} x Dense({deep_width})",
                deep,
                deep_depth + 1,
                deep_steps,
            )
        if "conv" in chosen:
            model = build_conv(conv_size)
            conv = run_suite(
                model,
                (conv_size, conv_size, 3),
                conv_batch,
                conv_steps,
                conv_repeats,
                deep_configs,
                tmp,
            )
            layers = len(resolve_layer_groups(model))
            suites["MobileNetV2"] = (
                f"MobileNetV2 {conv_size}x{conv_size}, batch {conv_batch}",
                conv,
                layers + 1,
                conv_steps,
            )
        elapsed = time.time() - t0

    def bytes_per_scalar_step(size: int, layers: int, logged: int) -> float:
        return size / ((layers + 1) * logged)  # +1: the global norm

    def added(suite: Suite, name: str) -> str:
        share = suite.logged_step_share(name)
        if share is None:
            return "–"
        return f"{100 * share:+.2f} % ({len(suite.excess[name])} steps)"

    lines = []
    for label, suite, _, _ in suites.values():
        lines += [
            f"| configuration | {label}: ms/step | ratio (mean step) | 90 % interval "
            "| ratio (median step) | logged steps add (step level) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name in suite.fit_means:
            ratio, median_ratio = suite.ratio(name)
            lo, hi = suite.interval(name)
            lines.append(
                f"| {name} | {1e3 * suite.ms(name):.2f} | {ratio:.3f} | {lo:.3f}–{hi:.3f} "
                f"| {median_ratio:.3f} | {added(suite, name)} |"
            )
        lines.append("")
    lines.pop()
    lines += [
        "",
        "| event file, update_freq=1 | layers | logged steps | bytes | bytes/(scalar x step) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, (_, suite, layers, n_steps) in suites.items():
        size, logged = suite.sizes[gnl], n_steps + 4
        per = bytes_per_scalar_step(size, layers, logged)
        lines.append(f"| {key} | {layers} | {logged} | {size} | {per:.1f} |")
    verdict = []
    for name, limit in TARGETS.items():
        for label, (_, suite, _, _) in suites.items():
            if name not in suite.mean_ratios:  # the monitors run in --paired mode only
                continue
            ratio, median_ratio = suite.ratio(name)
            lo, hi = suite.interval(name)
            fit_level = "OK" if max(ratio, median_ratio) <= limit else "MISSED"
            step_level = suite.logged_step_share(name)
            extra = ""
            if step_level is not None:
                ok = "OK" if 1 + step_level <= limit else "MISSED"
                extra = f"; step level {1 + step_level:.4f}: {ok}"
            verdict.append(
                f"{name}, {label} (target <= {limit}): fit level {ratio:.3f} mean "
                f"(90 % interval {lo:.3f}–{hi:.3f}), {median_ratio:.3f} median: "
                f"{fit_level}{extra}"
            )
    for label, (_, suite, _, _) in suites.items():
        excess = suite.excess["update_freq=100"]
        if excess:
            one = statistics.median(excess)
            verdict.append(
                f"one logged step at update_freq=100, {label}: {1e3 * one:+.2f} ms over "
                f"its unlogged neighbours, {100 * one / suite.ms('no callback'):+.1f} % "
                f"of a step (median of {len(excess)}; its device work, its read and "
                f"the change of traced train function included)"
            )
    table = "\n".join(lines)
    print(table)
    print("\n".join(verdict))
    print(f"({elapsed:.0f} s, {backend_version()})")
    if args.write:
        cmd = "python benchmarks/bench_gradient_norm.py " + " ".join(argv or sys.argv[1:])
        Path(args.write).write_text(
            "# GradientNormLogger benchmark\n\n"
            f"Command: `{cmd.strip()}`\n\n"
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Keras {keras.__version__} on {backend_version()}, CPU only.\n\n"
            f"Step time = wall time between batch begins, first 3 steps of each fit "
            f"skipped; {repeats} (deep model: {deep_repeats}; MobileNetV2: {conv_repeats}) "
            f"repeats of {steps} ({deep_steps}; {conv_steps}) steps, configurations in "
            "shuffled order on one model. "
            f"ms/step: median over repeats of each fit's mean step time. Ratios: "
            f"median over repeats of the fit's mean (or median) step time divided by "
            f"that of the no-callback fit of the same repeat; the interval is a "
            f"bootstrap over repeats. A target counts as met only if both ratios meet "
            f"it. Step level: each logged step's time minus the median of its unlogged "
            f"neighbours (5 either side), summed over all repeats, as a share of the "
            f"rest of the timed steps; neighbours are milliseconds apart, so the "
            f"machine's slow phases cancel.\n\n"
            + table
            + "\n\n"
            + "\n".join(f"- {v}" for v in verdict)
            + "\n"
        )
    return 0


def main_paired(args, argv, configs, quick, width, batch, conv_size, conv_batch) -> int:
    """``--paired``: whole fits, interleaved; see the module docstring."""
    chosen = set(args.models.split(","))
    steps = args.steps or (6 if quick else 100)
    conv_steps = 4 if quick else 30
    conv_rounds = args.conv_repeats or (1 if quick else 12)
    results: dict[str, tuple[str, Paired, int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        if "mlp" in chosen:
            model = build(20, width)
            paired = run_paired(
                model, (width,), batch, steps, args.paired, configs, tmp, epochs=args.epochs
            )
            label = f"20 x Dense({width}), batch {batch}"
            if args.epochs > 1:
                label += f", {args.epochs} epochs of {steps} steps"
            results["mlp"] = (label, paired, args.paired, steps * args.epochs)
        if "transformer" in chosen:
            seq, model_width = (8, 16) if quick else map(int, args.transformer.split("x"))
            model = build_transformer(seq, model_width)
            shape, rounds = (seq, model_width), args.paired
            paired = run_paired(model, shape, batch // 4, steps, rounds, configs, tmp)
            label = f"4 pre-LN transformer blocks, {seq} x {model_width}, batch {batch // 4}"
            results["transformer"] = (label, paired, rounds, steps)
        if "conv" in chosen:
            model = build_conv(conv_size)
            shape = (conv_size, conv_size, 3)
            paired = run_paired(model, shape, conv_batch, conv_steps, conv_rounds, configs, tmp)
            label = f"MobileNetV2 {conv_size}x{conv_size}, batch {conv_batch}"
            results["conv"] = (label, paired, conv_rounds, conv_steps)
        elapsed = time.time() - t0
    table, verdict = paired_report(results)
    load = os.getloadavg()[0]
    print(table)
    print("\n".join(verdict))
    print(f"({elapsed:.0f} s, {backend_version()}, load average at the end {load:.1f})")
    if args.write:
        cmd = " ".join(["python benchmarks/bench_gradient_norm.py", *(argv or sys.argv[1:])])
        if BACKEND != "tensorflow":
            cmd = f"KERAS_BACKEND={BACKEND} {cmd}"
        Path(args.write).write_text(
            f"# GradientNormLogger, whole fits ({BACKEND})\n\n"
            f"Command: `{cmd}` ({elapsed / 60:.0f} min; {platform.machine()}, "
            f"{os.cpu_count()} cores, Keras {keras.__version__}, CPU; 1-minute load "
            f"average at the end {load:.1f}).\n\n"
            + table
            + "\n\n"
            + "\n".join(f"- {v}" for v in verdict)
            + "\n"
        )
        root = Path(__file__).resolve().parents[1]
        if Path(args.write).resolve().parent == root / "benchmarks":
            update_readme(
                root / "benchmarks", root / "docs" / "benchmarks" / "gradient-norm-logger.md"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
