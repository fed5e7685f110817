"""Command-line plumbing the scripts in ``examples/`` share."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence


def example_parser(lesson: str, description: str) -> argparse.ArgumentParser:
    """The flags every example takes: --logdir, --outdir, --seed, --quick."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--logdir",
        default=os.path.join("runs", "examples", lesson),
        help="TensorBoard log folder, one run per scheme (default: %(default)s)",
    )
    parser.add_argument(
        "--outdir",
        default=os.path.join("runs", "figures"),
        help="where the PNG figures go (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--quick", action="store_true", help="smaller, faster run (used by the tests)"
    )
    return parser


def finish(start: float, logdir: str, figures: Sequence[str]) -> None:
    """Print where the figures and runs went, and how long it took.

    Args:
        start: the script's ``time.perf_counter()`` at its start.
        logdir: the TensorBoard runs' parent directory.
        figures: the paths of the figures written.
    """
    for path in figures:
        print(f"figure: {path}")
    print(f"elapsed: {time.perf_counter() - start:.1f} s")
    print(f"view the runs:  tensorboard --logdir {logdir}")
