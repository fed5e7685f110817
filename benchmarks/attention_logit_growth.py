"""Attention-logit growth at CPU scale (Wortsman et al., ICLR 2024, small-scale proxies).

A tiny pre-LayerNorm, decoder-only transformer, built here from plain Keras layers, is
trained with Adam (linear warmup, then cosine decay) on a generated sequence task. Every
step records the training loss and, on a fixed probe batch, each layer's largest
pre-softmax attention logit ``max |q.k| / sqrt(d_head)`` and its mean attention entropy
(nats). The attention layer computes q, k, v with ``EinsumDense``; ``--qk-norm`` puts a
``LayerNormalization`` on q and on k (per head, over the head dimension) before the dot
product, the paper's remedy.

Tasks (numpy, fixed seed): ``copy`` (a random half-sequence, a separator, then the same
half again; the loss is on the copied half, so an induction-like sharp attention pays off)
and ``markov`` (next token of a random sparse first-order Markov chain; every position).

Flags, per run: *logit growth* is the first step where the probe's max |logit| (over
layers) exceeds ``--growth-factor`` times its step-0 value and at least
``--growth-floor`` (justified in the results file); *divergence* is the first step where
the loss is not finite, or where the mean loss over the last ``--div-window`` steps
climbs back from its running minimum by at least ``--div-frac`` of the way to the step-0
loss (a jump that stays, not one noisy batch).

Defaults are the setting that reproduces the effect (see
``benchmarks/RESULTS_attention_logit_growth.md``): width 64, depth 2, 4 heads, seq 32,
vocab 32, batch 32, copy task, Adam (beta2 0.95, eps 1e-8), 250 warmup steps to
lr 5e-2, then cosine decay over the remaining 250 of 500 steps.

Usage::

    KERAS_BACKEND=jax python benchmarks/attention_logit_growth.py --verbose
    KERAS_BACKEND=jax python benchmarks/attention_logit_growth.py --qk-norm
    KERAS_BACKEND=jax python benchmarks/attention_logit_growth.py --sweep --seed 0
    KERAS_BACKEND=jax python benchmarks/attention_logit_growth.py --attention keras --sweep

With ``--attention keras`` the model uses ``keras.layers.MultiHeadAttention`` and the growth
step is ``GradientNormLogger``'s own flag (``attention_logits`` + ``detect_spikes``), its
max logit the logger's ``attn_logit_max`` on the training batch; there is no entropy column.

Run on one thread: ``OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1"``.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import keras
import numpy as np
from keras import ops

BATCH = 32


class Attention(keras.layers.Layer):
    """Multi-head self-attention that also returns its logit and entropy statistics."""

    def __init__(
        self, width: int, heads: int, qk_norm: bool = False, causal: bool = True, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.width, self.heads, self.qk_norm, self.causal = width, heads, qk_norm, causal
        self.head_dim = width // heads
        shape = (None, heads, self.head_dim)
        self.q = keras.layers.EinsumDense("btd,dhk->bthk", shape, name="q")
        self.k = keras.layers.EinsumDense("btd,dhk->bthk", shape, name="k")
        self.v = keras.layers.EinsumDense("btd,dhk->bthk", shape, name="v")
        self.o = keras.layers.EinsumDense("bthk,hkd->btd", (None, width), name="o")
        if qk_norm:
            self.q_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="q_norm")
            self.k_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="k_norm")

    def build(self, input_shape: tuple) -> None:
        """Build the projections (and the q/k norms)."""
        head_shape = (*input_shape[:-1], self.heads, self.head_dim)
        for layer in (self.q, self.k, self.v):
            layer.build(input_shape)
        self.o.build(head_shape)
        if self.qk_norm:
            self.q_norm.build(head_shape)
            self.k_norm.build(head_shape)

    def call(self, x: Any) -> tuple[Any, Any, Any]:
        """Return (output, per-example max |logit|, per-example mean entropy)."""
        q, k, v = self.q(x), self.k(x), self.v(x)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        logits = ops.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.head_dim)
        seq = ops.shape(x)[1]
        if self.causal:
            allowed = ops.tril(ops.ones((seq, seq), dtype="bool"))
        else:
            allowed = ops.ones((seq, seq), dtype="bool")
        masked = ops.where(allowed, logits, ops.full_like(logits, -1e9))
        probs = ops.softmax(masked, axis=-1)
        out = self.o(ops.einsum("bhqk,bkhd->bqhd", probs, v))
        max_abs = ops.max(ops.where(allowed, ops.abs(logits), ops.zeros_like(logits)), (1, 2, 3))
        logp = ops.log(ops.maximum(probs, 1e-30))
        plogp = ops.where(allowed, probs * logp, ops.zeros_like(probs))
        entropy = ops.mean(-ops.sum(plogp, axis=-1), axis=(1, 2))
        return out, max_abs, entropy


class AddPositions(keras.layers.Layer):
    """Add a position embedding (one vector per position), learned or frozen at its init."""

    def __init__(self, learned: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.learned = learned

    def build(self, input_shape: tuple) -> None:
        """Create the (seq, width) table."""
        self.table = self.add_weight(
            shape=tuple(input_shape[1:]),
            initializer="random_uniform",  # U(-0.05, 0.05), as keras.layers.Embedding
            trainable=self.learned,
            name="table",
        )

    def call(self, x: Any) -> Any:
        """Return ``x`` plus the table, broadcast over the batch."""
        return x + self.table[None]


@dataclass
class Config:
    """One training run's settings."""

    lr: float = 5e-2
    qk_norm: bool = False
    steps: int = 500
    width: int = 64
    depth: int = 2
    heads: int = 4
    seq: int = 32
    vocab: int = 32
    seed: int = 0
    task: str = "copy"
    positions: str = "frozen"
    warmup: int = 250
    decay: str = "cosine"
    beta2: float = 0.95
    eps: float = 1e-8
    growth_factor: float = 10.0
    growth_floor: float = 20.0
    div_window: int = 10
    div_frac: float = 0.5


@dataclass
class Run:
    """Per-step records of one run and the flags derived from them."""

    config: Config
    loss: list[float] = field(default_factory=list)
    max_logit: list[list[float]] = field(default_factory=list)  # step x layer
    entropy: list[list[float]] = field(default_factory=list)  # step x layer
    seconds: float = 0.0
    growth_step: int | None = None
    diverge_step: int | None = None


def build_models(config: Config) -> tuple[keras.Model, keras.Model]:
    """Return the language model and a model sharing its layers that outputs attention stats."""
    tokens = keras.Input((config.seq,), dtype="int32")
    x = keras.layers.Embedding(config.vocab, config.width, name="embed")(tokens)
    x = AddPositions(config.positions == "learned", name="pos")(x)
    stats = []
    for i in range(config.depth):
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"ln_attn_{i}")(x)
        a, max_abs, entropy = Attention(
            config.width, config.heads, config.qk_norm, name=f"attn_{i}"
        )(h)
        stats += [max_abs, entropy]
        x = x + a
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"ln_mlp_{i}")(x)
        h = keras.layers.Dense(4 * config.width, activation="gelu", name=f"mlp_in_{i}")(h)
        x = x + keras.layers.Dense(config.width, name=f"mlp_out_{i}")(h)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_final")(x)
    logits = keras.layers.Dense(config.vocab, name="head")(x)
    return keras.Model(tokens, logits), keras.Model(tokens, stats)


class NormedProjection(keras.layers.Layer):
    """A projection followed by ``LayerNormalization`` over its last axis (one head's
    query or key): QK-layernorm, the remedy of Wortsman et al. (2024) and Dehghani et
    al. (2023), placed where ``MultiHeadAttention`` makes q and k."""

    def __init__(self, projection: keras.layers.Layer, **kwargs) -> None:
        super().__init__(**kwargs)
        self.projection = projection
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")

    def build(self, input_shape: tuple) -> None:
        """Build the norm on the projection's output shape."""
        self.norm.build(self.projection.compute_output_shape(input_shape))

    def call(self, x: Any) -> Any:
        """Return the normalized projection of ``x``."""
        return self.norm(self.projection(x))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The projection's output shape."""
        return self.projection.compute_output_shape(input_shape)


class QKNormAttention(keras.layers.MultiHeadAttention):
    """``keras.layers.MultiHeadAttention`` with LayerNorm on each head's query and key."""

    def build(self, query_shape: tuple, value_shape: tuple, key_shape: tuple | None = None):
        """Build as MultiHeadAttention, then normalize the query and key projections."""
        super().build(query_shape, value_shape, key_shape)
        self._query_dense = NormedProjection(self._query_dense, name="query_norm")
        self._query_dense.build(query_shape)
        self._key_dense = NormedProjection(self._key_dense, name="key_norm")
        self._key_dense.build(value_shape if key_shape is None else key_shape)


def build_keras_attention_model(config: Config) -> keras.Model:
    """The same language model with Keras' own ``MultiHeadAttention`` (causal), so the
    logger's ``attention_logits`` monitor measures it (``--attention keras``)."""
    tokens = keras.Input((config.seq,), dtype="int32")
    x = keras.layers.Embedding(config.vocab, config.width, name="embed")(tokens)
    x = AddPositions(config.positions == "learned", name="pos")(x)
    attention = QKNormAttention if config.qk_norm else keras.layers.MultiHeadAttention
    for i in range(config.depth):
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"ln_attn_{i}")(x)
        layer = attention(config.heads, config.width // config.heads, name=f"attn_{i}")
        x = x + layer(h, h, use_causal_mask=True)
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"ln_mlp_{i}")(x)
        h = keras.layers.Dense(4 * config.width, activation="gelu", name=f"mlp_in_{i}")(h)
        x = x + keras.layers.Dense(config.width, name=f"mlp_out_{i}")(h)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_final")(x)
    return keras.Model(tokens, keras.layers.Dense(config.vocab, name="head")(x))


def masked_xent(y_true: Any, y_pred: Any) -> Any:
    """Mean cross-entropy over the positions whose target is not -1."""
    y_true = ops.cast(y_true, "int32")
    mask = ops.cast(y_true >= 0, "float32")
    per_token = keras.losses.sparse_categorical_crossentropy(
        ops.maximum(y_true, 0), y_pred, from_logits=True
    )
    return ops.sum(per_token * mask) / ops.maximum(ops.sum(mask), 1.0)


class Task:
    """Generated sequence batches (inputs, targets with -1 where no loss is taken)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        if config.task == "markov":
            # each token has 3 successors, with random (Dirichlet) probabilities
            v = config.vocab
            self.transition = np.zeros((v, v))
            for t in range(v):
                succ = self.rng.choice(v, 3, replace=False)
                self.transition[t, succ] = self.rng.dirichlet(np.ones(3))

    def batch(self, size: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Draw one batch."""
        config, rng = self.config, self.rng
        if config.task == "copy":
            half = config.seq // 2
            body = rng.integers(1, config.vocab, (size, half))
            seq = np.concatenate([body, np.zeros((size, 1), int), body], axis=1)
            x, y = seq[:, :-1][:, : config.seq], seq[:, 1:][:, : config.seq]
            y = y.copy()
            y[:, :half] = -1  # the first half is random: no loss there
            return x.astype("int32"), y.astype("int32")
        if config.task == "markov":
            cum = np.cumsum(self.transition, axis=1)
            seq = np.empty((size, config.seq + 1), int)
            seq[:, 0] = rng.integers(0, config.vocab, size)
            for t in range(config.seq):
                u = rng.random(size)[:, None]
                seq[:, t + 1] = np.minimum((u > cum[seq[:, t]]).sum(axis=1), config.vocab - 1)
            return seq[:, :-1].astype("int32"), seq[:, 1:].astype("int32")
        raise ValueError(f"unknown task {config.task!r}")


def schedule(config: Config) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warmup to ``lr``, then cosine decay to lr/100 (or constant)."""
    decay_steps = max(config.steps - config.warmup, 1)
    alpha = 0.01 if config.decay == "cosine" else 1.0
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps,
        alpha=alpha,
        warmup_target=config.lr,
        warmup_steps=config.warmup,
    )


def flag_steps(run: Run) -> None:
    """Fill in the logit-growth and divergence steps of a finished run."""
    config = run.config
    peak = [max(v) if all(np.isfinite(v)) else math.inf for v in run.max_logit]
    threshold = max(config.growth_factor * peak[0], config.growth_floor)
    run.growth_step = next((s for s, v in enumerate(peak) if v > threshold), None)
    run.diverge_step = divergence_step(run.loss, config)


def train(config: Config, verbose: bool = False) -> Run:
    """Train one model and record loss, max |logit| and entropy every step."""
    keras.utils.set_random_seed(config.seed)
    model, stats_model = build_models(config)
    optimizer = keras.optimizers.Adam(
        learning_rate=schedule(config), beta_1=0.9, beta_2=config.beta2, epsilon=config.eps
    )
    model.compile(optimizer=optimizer, loss=masked_xent)
    task = Task(config)
    probe_x, _ = Task(replace(config, seed=config.seed + 1)).batch(64)  # fixed, held out
    run = Run(config)
    start = time.monotonic()

    def record() -> None:
        out = [np.asarray(t) for t in stats_model.predict_on_batch(probe_x)]
        run.max_logit.append([float(np.max(m)) for m in out[0::2]])
        run.entropy.append([float(np.mean(e)) for e in out[1::2]])

    record()  # before the first update
    for step in range(config.steps):
        x, y = task.batch()
        loss = float(np.asarray(model.train_on_batch(x, y)))
        run.loss.append(loss)
        record()
        if verbose and (step % 25 == 0 or not math.isfinite(loss)):
            print(
                f"step {step:4d} loss {loss:8.4f} max_logit "
                + " ".join(f"{v:9.2f}" for v in run.max_logit[-1])
                + " entropy "
                + " ".join(f"{v:5.2f}" for v in run.entropy[-1]),
                flush=True,
            )
        if not math.isfinite(loss):
            break
    run.seconds = time.monotonic() - start
    flag_steps(run)
    return run


def divergence_step(losses: list[float], config: Config) -> int | None:
    """The first step where the loss is not finite, or where its mean over the last
    ``div_window`` steps climbs back from its running minimum by ``div_frac`` of the
    way to the first step's loss; None if it never does."""
    best = math.inf
    for step, loss in enumerate(losses):
        if not math.isfinite(loss):
            return step
        if step + 1 >= config.div_window:
            mean = float(np.mean(losses[step + 1 - config.div_window : step + 1]))
            if mean > best + config.div_frac * (losses[0] - best):
                return step
            best = min(best, mean)
    return None


def train_logged(config: Config, log_dir: str, update_freq: int = 1) -> Run:
    """Train the ``MultiHeadAttention`` model with ``keras.Model.fit`` and the package's
    ``GradientNormLogger(attention_logits=True, detect_spikes=True)``; the run's growth
    step is the logger's own flag (its ``spikes`` text event), read back with
    TensorBoard's reader, and ``max_logit`` holds its ``attn_logit_max`` scalars."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    import keras_initzoo as kiz

    keras.utils.set_random_seed(config.seed)
    model = build_keras_attention_model(config)
    optimizer = keras.optimizers.Adam(
        learning_rate=schedule(config), beta_1=0.9, beta_2=config.beta2, epsilon=config.eps
    )
    model.compile(optimizer=optimizer, loss=masked_xent)
    task = Task(config)
    batches = [task.batch() for _ in range(config.steps)]
    x, y = (np.concatenate(parts) for parts in zip(*batches, strict=True))
    run, losses = Run(config), PerStepLoss()
    logger = kiz.GradientNormLogger(
        log_dir, update_freq=update_freq, attention_logits=True, detect_spikes=True
    )
    start = time.monotonic()
    model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[logger, losses])
    run.seconds = time.monotonic() - start
    run.loss = losses.values
    events = ea.EventAccumulator(log_dir, size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    events.Reload()
    texts = events.Tensors("spikes") if "spikes" in events.Tags()["tensors"] else []
    grown = [e.step for e in texts if b"attention logits grew" in e.tensor_proto.string_val[0]]
    run.growth_step = min(grown) - 1 if grown else None  # logged steps count from 1
    tags = [f"attn_logit_max/attn_{i}" for i in range(config.depth)]
    per_layer = [[e.value for e in events.Scalars(tag)] for tag in tags]
    run.max_logit = [list(values) for values in zip(*per_layer, strict=True)]
    run.entropy = [[math.nan] * config.depth for _ in run.max_logit]
    run.diverge_step = divergence_step(run.loss, config)
    return run


class PerStepLoss(keras.callbacks.Callback):
    """Each step's own loss, from the running mean Keras reports in ``logs["loss"]``."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []
        self._mean = 0.0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Record ``(batch + 1) * mean_now - batch * mean_before``."""
        mean = float(np.asarray(logs["loss"]))
        self.values.append((batch + 1) * mean - batch * self._mean)
        self._mean = mean


def summary_row(run: Run) -> dict:
    """The table's fields for one run."""
    peak = [max(v) for v in run.max_logit]
    finite = [p for p in peak if math.isfinite(p)]
    lead = (
        run.diverge_step - run.growth_step
        if run.growth_step is not None and run.diverge_step is not None
        else None
    )
    return {
        "lr": run.config.lr,
        "qk_norm": run.config.qk_norm,
        "final_loss": run.loss[-1],
        "min_loss": float(np.nanmin(run.loss)),
        "logit_0": peak[0],
        "logit_max": max(finite) if finite else math.nan,
        "logit_end": peak[-1],
        "entropy_end": min(run.entropy[-1]),
        "growth_step": run.growth_step,
        "diverge_step": run.diverge_step,
        "lead": lead,
        "diverged": run.diverge_step is not None,
        "seconds": run.seconds,
    }


def table(rows: list[dict]) -> str:
    """Markdown table of sweep rows."""
    head = (
        "| lr | qk_norm | final loss | min loss | max logit step 0 | peak max logit | "
        "max logit end | min entropy end | growth step | diverge step | lead (steps) | "
        "diverged | s |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:

        def fmt(v: object) -> str:
            if v is None:
                return "-"
            if isinstance(v, bool):
                return "yes" if v else "no"
            if isinstance(v, float):
                return f"{v:.3g}"
            return str(v)

        cells = [
            f"{r['lr']:g}",
            "on" if r["qk_norm"] else "off",
            *(
                fmt(r[k])
                for k in (
                    "final_loss",
                    "min_loss",
                    "logit_0",
                    "logit_max",
                    "logit_end",
                    "entropy_end",
                    "growth_step",
                    "diverge_step",
                    "lead",
                    "diverged",
                )
            ),
            f"{r['seconds']:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse() -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = Config()
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--qk-norm", action="store_true")
    for name in ("steps", "width", "depth", "heads", "seq", "vocab", "seed", "warmup"):
        p.add_argument(f"--{name}", type=int, default=getattr(defaults, name))
    p.add_argument("--task", choices=("copy", "markov"), default=defaults.task)
    p.add_argument("--positions", choices=("frozen", "learned"), default=defaults.positions)
    p.add_argument("--decay", choices=("cosine", "constant"), default=defaults.decay)
    p.add_argument("--beta2", type=float, default=defaults.beta2)
    p.add_argument("--eps", type=float, default=defaults.eps)
    p.add_argument("--growth-factor", type=float, default=defaults.growth_factor)
    p.add_argument("--growth-floor", type=float, default=defaults.growth_floor)
    p.add_argument("--div-window", type=int, default=defaults.div_window)
    p.add_argument("--div-frac", type=float, default=defaults.div_frac)
    p.add_argument("--sweep", action="store_true", help="lrs x {qk-norm off, on}")
    p.add_argument(
        "--lrs", default="1.25e-2,2.5e-2,5e-2,1e-1,2e-1", help="comma-separated, for --sweep"
    )
    p.add_argument(
        "--attention",
        choices=("custom", "keras"),
        default="custom",
        help="custom: this file's layer, measured on a probe batch; keras: "
        "keras.layers.MultiHeadAttention, flagged by GradientNormLogger itself",
    )
    p.add_argument("--json", help="write every run's per-step records here")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args()


def main() -> None:
    """Run one configuration, or the sweep, and print the markdown table."""
    args = parse()
    fields = {k: getattr(args, k) for k in asdict(Config()) if hasattr(args, k)}
    base = Config(**fields)
    if args.sweep:
        lrs = [float(v) for v in args.lrs.split(",")]
        configs = [replace(base, lr=lr, qk_norm=q) for lr in lrs for q in (False, True)]
    else:
        configs = [base]
    print(f"backend {keras.backend.backend()} keras {keras.__version__}", flush=True)
    runs = []
    for config in configs:
        if args.attention == "keras":
            with tempfile.TemporaryDirectory() as log_dir:
                run = train_logged(config, log_dir)
        else:
            run = train(config, verbose=args.verbose)
        runs.append(run)
        print(table([summary_row(run)]).splitlines()[-1], flush=True)
    print()
    print(table([summary_row(r) for r in runs]))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([asdict(r) for r in runs], handle)


if __name__ == "__main__":
    main()
