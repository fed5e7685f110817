"""Learning-rate transfer across depth in a small pre-LN transformer: CompleteP, depth-muP
and width-only muP, on a generated sequence task.

The tasks (``--task``), every position predicted at once (no causal mask):

* ``hops`` (the default): the input is a random map ``f`` of ``{0..length-1}``
  onto itself, written as the sequence ``f(0), ..., f(length-1)``; the target
  at position ``i`` is ``f`` applied ``--hops`` times, ``f(f(...f(i)))``.
  A position holding ``f(i)`` can attend to position ``f(i)`` and read what is
  stored there, so one attention layer gives ``f^2``, two ``f^4``, and 6 hops
  need three: depth matters (see ``benchmarks/RESULTS_mup_depth.md``).
* ``sort``: ``length`` tokens drawn uniformly from ``--vocab``; the target is
  the sorted sequence.

``--examples`` sequences are drawn once (numpy, seed 0) and trained on for
``--epochs`` epochs, batch ``--batch-size``; the loss is the per-token
cross-entropy.

The model (:func:`transformer`): token embedding plus a learned positional
embedding (two ``Embedding`` layers, the positions fed as the input's second
half), ``depth`` pre-LN blocks (LayerNorm -> ``MultiHeadAttention`` -> Add;
LayerNorm -> Dense ReLU (2x width) -> Dense -> Add), a final LayerNorm and a
readout over the vocabulary. Each model is parametrized against the
shallowest (``kiz.mup.parametrize(model, base, depth=...)``) and trained with
``kiz.mup.Adam`` by ``model.fit``, as in ``benchmarks/mup_depth_lr_transfer.py``
and through the same code (``keras_initzoo.mup._depth_transfer.sweep``): per
seed one model is built, parametrized and compiled, and trained at every rate
``2**e`` from the same start (weights and Adam's state put back, the same
order of batches). For each rule (``completep``; ``depth_mup``; ``none``: muP
for width only, the control) and depth the final epoch's training loss is
kept per seed; the best rate is the one with the lowest mean over seeds. At
the base depth every depth factor is 1, so the rules are the same model
there: the other rules' base row is copied from ``completep``'s, not rerun
(``--rerun-base`` runs it). ``--resume`` keeps the rows ``--out`` holds and
runs the rest (a rule added to a finished sweep).

``--plot PATH`` draws the panels of the digits benchmark
(``_depth_transfer.plot_sweep``); ``--from-json FILE`` runs nothing and reads
a sweep this script wrote. The JSON is rewritten after each depth.

Usage::

    KERAS_BACKEND=torch python benchmarks/mup_depth_transformer_lr_transfer.py \
        --depths 2 4 8 --exponents -11 -4 --seeds 0 1 --out results.json --plot lr.png
    python benchmarks/mup_depth_transformer_lr_transfer.py --from-json results.json --plot lr.png
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import numpy as np

from keras_initzoo.mup._depth_transfer import best, plot_sweep, pre_ln_transformer_blocks, sweep

# losses at or above this (and diverged runs) are drawn at it
CLIP = 3.0


def transformer(width: int, depth: int, length: int = 8, vocab: int = 16) -> keras.Model:
    """Integer input ``(batch, 2 * length)``: tokens, then their positions; ``vocab`` logits
    per position out."""
    inputs = keras.Input((2 * length,), dtype="int32")
    tokens = keras.layers.Embedding(vocab, width, name="embed")(inputs[:, :length])
    positions = keras.layers.Embedding(length, width, name="pos_embed")(inputs[:, length:])
    x = keras.layers.Add(name="embed_add")([tokens, positions])
    x = pre_ln_transformer_blocks(x, width, depth)
    x = keras.layers.LayerNormalization(name="final_ln")(x)
    return keras.Model(inputs, keras.layers.Dense(vocab, name="readout")(x), name="transformer")


def sorting(examples: int, length: int = 8, vocab: int = 16, seed: int = 0):
    """``x``: tokens then positions, ``(examples, 2 * length)`` int32; ``y``: the sorted tokens."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, size=(examples, length))
    positions = np.broadcast_to(np.arange(length), tokens.shape)
    x = np.concatenate([tokens, positions], axis=1).astype("int32")
    return x, np.sort(tokens, axis=1).astype("int32")


def pointer_hops(examples: int, length: int = 8, hops: int = 6, seed: int = 0):
    """``x``: a random map ``f`` then the positions, ``(examples, 2 * length)`` int32;
    ``y``: ``f`` applied ``hops`` times at each position."""
    rng = np.random.default_rng(seed)
    f = rng.integers(0, length, size=(examples, length))
    positions = np.broadcast_to(np.arange(length), f.shape)
    y = positions
    for _ in range(hops):
        y = np.take_along_axis(f, y, axis=1)
    x = np.concatenate([f, positions], axis=1).astype("int32")
    return x, y.astype("int32")


def task(args) -> tuple[np.ndarray, np.ndarray, int, str]:
    """The data, the vocabulary and a title for ``args``' task."""
    if args.task == "sort":
        x, y = sorting(args.examples, args.length, args.vocab)
        return x, y, args.vocab, f"sorting {args.length} tokens of {args.vocab}"
    x, y = pointer_hops(args.examples, args.length, args.hops)
    return x, y, args.length, f"{args.hops} hops of a random map of {args.length}"


def plot(results: dict, path: str) -> None:
    """The sweep's two panels (CompleteP | width-only muP), as the digits benchmark draws them."""
    a = results["args"]
    depths = sorted({int(d) for bests in results["losses"].values() for d in bests})
    title = (
        f"{results['task']}, pre-LN transformer width {a['width']}, "
        f"base depth {a.get('base_depth') or min(depths)}, {a['epochs']} epochs of "
        f"{a['examples']}, {results.get('backend', '?')}; losses above {CLIP} clipped"
    )
    plot_sweep(results, path, title, clip=CLIP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--exponents", type=int, nargs=2, default=[-11, -4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--task", choices=["hops", "sort"], default="hops")
    parser.add_argument("--hops", type=int, default=6)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--length", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=16, help="sort's vocabulary")
    parser.add_argument("--examples", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rules", nargs="+", default=["completep", "depth_mup", "none"])
    parser.add_argument("--base-depth", type=int, default=None, help="default: the shallowest")
    parser.add_argument(
        "--rerun-base", action="store_true", help="run the muP rules at the base, not copy it"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows --out already holds (same task, grid and seeds), run the others",
    )
    parser.add_argument("--out", default="mup_depth_transformer_lr_transfer.json")
    parser.add_argument("--plot", default=None, help="draw the sweep's picture to this path")
    parser.add_argument(
        "--from-json", default=None, help="no sweep: read this JSON (with --plot: draw it)"
    )
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json) as handle:
            results = json.load(handle)
        if args.plot:
            plot(results, args.plot)
        for rule, bests in results["best"].items():
            print(f"{rule}: best log2 rate per depth {bests}")
        return
    x, y, vocab, title = task(args)
    exponents = list(range(args.exponents[0], args.exponents[1] + 1))
    results = {
        "args": vars(args),
        "backend": keras.backend.backend(),
        "task": title,
        "exponents": exponents,
        "losses": {},
        "best": {},
        "seconds": {},
    }
    if args.resume:
        with open(args.out) as handle:
            kept = json.load(handle)
        for key in ("task", "exponents"):
            if kept[key] != results[key]:
                raise SystemExit(f"--resume: {args.out} has {key} {kept[key]}, not {results[key]}")
        if kept["args"]["seeds"] != args.seeds:
            raise SystemExit(f"--resume: {args.out} has seeds {kept['args']['seeds']}")
        results.update({k: kept.get(k, {}) for k in ("losses", "best", "best_per_seed", "seconds")})
    base_depth = args.base_depth or min(args.depths)

    def build(width, depth):
        return transformer(width, depth, args.length, vocab)

    start = time.time()
    for rule in args.rules:
        for depth in args.depths:
            began = time.time()
            if str(depth) in results["losses"].get(rule, {}):
                continue  # kept by --resume
            copied = (
                rule in ("none", "depth_mup")
                and depth == base_depth
                and not args.rerun_base
                and str(depth) in results["losses"].get("completep", {})
            )
            if copied:  # every depth factor is 1 at the base: the same model and runs
                runs = np.array(results["losses"]["completep"][str(depth)])
            else:
                runs = sweep(
                    rule, args.width, depth, exponents, args.seeds, x, y,
                    base_width=args.width, base_depth=base_depth, epochs=args.epochs,
                    batch_size=args.batch_size, build=build,
                )  # fmt: skip
            best_rate = exponents[best(runs)]
            per_seed = [exponents[int(np.nanargmin(r))] if np.isfinite(r).any() else None
                        for r in runs]  # fmt: skip
            results["losses"].setdefault(rule, {})[str(depth)] = runs.tolist()
            results["best"].setdefault(rule, {})[str(depth)] = best_rate
            results.setdefault("best_per_seed", {}).setdefault(rule, {})[str(depth)] = per_seed
            results["seconds"].setdefault(rule, {})[str(depth)] = round(time.time() - began, 1)
            means = " ".join(f"{v:.3f}" for v in runs.mean(axis=0))
            print(f"{rule:9s} depth {depth:3d}: best 2^{best_rate} (seeds {per_seed})  "
                  f"means {means}  ({time.time() - start:.0f} s{', copied' if copied else ''})",
                  flush=True)  # fmt: skip
            with open(args.out, "w") as handle:
                json.dump(results, handle, indent=1)
    for rule, bests in results["best"].items():
        values = list(bests.values())
        print(f"{rule}: best log2 rate per depth {bests}; moves {max(values) - min(values)}")
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
