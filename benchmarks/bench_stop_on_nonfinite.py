"""Benchmark: what ``stop_on_nonfinite`` costs between logged steps (the loss read each step).

``GradientNormLogger(update_freq=100)`` with and without ``stop_on_nonfinite``
on bench_gradient_norm.py's reference MLP (Dense ReLU layers, batch 128), whole
``fit``s interleaved with a plain fit in every round (``run_paired``: shuffled
order, one warm-up round, bootstrap 90 % intervals). With the flag, every step
that is not logged reads its loss to the host, so the next step cannot be
queued before it ends; the figure is that cost, as a user waits for it.

Usage::

    python benchmarks/bench_stop_on_nonfinite.py                 # 30 rounds (minutes)
    python benchmarks/bench_stop_on_nonfinite.py --rounds 3      # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
from bench_gradient_norm import BACKEND, bootstrap_interval, build, run_paired  # noqa: E402

import keras_initzoo as kiz  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args(argv)
    width, depth, batch = 256, 8, 128
    configs = {
        "no callback": lambda log_dir, x, y: [],
        "update_freq=100": lambda log_dir, x, y: [kiz.GradientNormLogger(log_dir, update_freq=100)],
        "update_freq=100, stop_on_nonfinite": lambda log_dir, x, y: [
            kiz.GradientNormLogger(log_dir, update_freq=100, stop_on_nonfinite=True)
        ],
    }
    model = build(depth, width)
    with tempfile.TemporaryDirectory() as tmp:
        paired = run_paired(model, (width,), batch, args.steps, args.rounds, configs, tmp)
    logger, flagged = (
        paired.fit_seconds["update_freq=100"],
        paired.fit_seconds["update_freq=100, stop_on_nonfinite"],
    )
    ratios = [f / b for f, b in zip(flagged, logger, strict=True)]
    low, high = bootstrap_interval(ratios)
    print(
        f"{BACKEND}, Keras {keras.__version__}, {depth} x Dense({width}), batch {batch}, "
        f"{args.steps} steps, {args.rounds} rounds"
    )
    for name in configs:
        fit_ratio = statistics.median(paired.fit_ratios[name])
        print(
            f"  {name}: fit {statistics.median(paired.fit_seconds[name]):.2f} s, "
            f"x{fit_ratio:.3f} of the plain fit"
        )
    print(
        f"  stop_on_nonfinite / logger alone: {statistics.median(ratios):.3f} "
        f"(90 % interval {low:.3f}-{high:.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
