"""How steady is this machine? Step time of one traced train function, in blocks.

The same compiled train function is called on the same batch
(``train_on_batch``, the one way to call it alone on every Keras backend) in
blocks of ``--block`` steps; nothing changes between blocks but time. The spread of the
block means is the floor under any fit-level ratio measured on this machine
(see bench_gradient_norm.py, whose step-level figure is immune to it).

Usage::

    python benchmarks/machine_noise.py                 # 500 x Dense(32), 16 blocks of 100
    python benchmarks/machine_noise.py --depth 20 --width 256
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gradient_norm import build, make_data  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=500)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--block", type=int, default=100, help="steps per block")
    args = parser.parse_args(argv)

    x, y, _ = make_data(args.batch, (args.width,))
    x, y = x[: args.batch], y[: args.batch]
    model = build(args.depth, args.width)
    for _ in range(5):  # traces the train function, then warms it
        model.train_on_batch(x, y)
    means = []
    for _ in range(args.blocks):
        t0 = time.perf_counter()
        for _ in range(args.block):
            model.train_on_batch(x, y)
        means.append((time.perf_counter() - t0) / args.block)
    mean = statistics.fmean(means)
    print(f"{args.depth} x Dense({args.width}), blocks of {args.block} steps, ms/step:")
    print(" ".join(f"{1e3 * m:.1f}" for m in means))
    print(
        f"min {1e3 * min(means):.1f}, max {1e3 * max(means):.1f}, "
        f"coefficient of variation {statistics.stdev(means) / mean:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
