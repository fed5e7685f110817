"""What each ``initzoo`` subcommand does once its arguments are parsed.

``list`` reads the scheme table shipped with the package (:mod:`.schemes`), so it
loads no framework. ``demo``, ``compare`` and ``report`` run on whichever backend
Keras is set to; they import it through :func:`keras_initzoo_cli.quiet.import_backend`
first, so their output holds no TensorFlow start-up lines.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from .quiet import import_backend, keras_backend
from .schemes import read_table
from .settings import DEMO_QUICK_SETTINGS, DEMO_SCHEMES, DEMO_SETTINGS


def print_list() -> int:
    print(read_table().rstrip("\n"))
    return 0


# The package each Keras backend runs on, and the extra that installs it.
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def _backend_missing(command: str) -> str | None:
    """Why ``command`` cannot run here (Keras' backend is not installed), or None."""
    import importlib.util

    backend = keras_backend()
    package = BACKEND_PACKAGES.get(backend)
    if package is None or importlib.util.find_spec(package) is not None:
        return None  # an unknown backend: Keras' own error names the choices
    others = ", ".join(f"KERAS_BACKEND={b}" for b in BACKEND_PACKAGES if b != backend)
    return (
        f"initzoo {command}: error: Keras is set to the {backend!r} backend (KERAS_BACKEND "
        f"or ~/.keras/keras.json), and {package} is not installed; run: python -m pip "
        f"install 'keras_initzoo[{backend}]', or choose another backend ({others})"
    )


def _load(command: str) -> bool:
    """Imports the backend (TensorFlow quietly); False, with the reason printed, if missing."""
    problem = _backend_missing(command)
    if problem:
        print(problem, file=sys.stderr)
        return False
    import_backend()
    return True


def run_schemes(schemes: Sequence[Any], args: argparse.Namespace, settings: dict) -> int:
    """``demo`` and ``compare``: train under each scheme, print the table and what to look at."""
    if not _load(args.command):
        return 2
    from keras_initzoo.experiments import ExperimentConfig, format_table, run_comparison

    config = ExperimentConfig(seed=args.seed, **settings)
    start = time.perf_counter()
    results = run_comparison(schemes, config, logdir=args.logdir, progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    if not args.no_progress:
        print()
    print(
        f"{config.depth} hidden layers x {config.width} units, {config.activation}, "
        f"{config.optimizer} lr={config.learning_rate}, {config.epochs} epochs on "
        f"'{config.dataset}', seed {config.seed}"
    )
    print(format_table(results))
    print(
        f"ratio L1/L{config.depth}: gradient norm of the first hidden layer over the last "
        "at init (~1 = level across depth, << 1 = vanishing, inf/nan = exploded or dead)"
    )
    print(f"elapsed: {elapsed:.1f} s")
    if args.command == "demo":
        print(demo_guide(results, args.logdir))
    else:
        print(f"view the runs:  tensorboard --logdir {args.logdir}")
        print(
            "  Images tab, 'grad_norm_by_depth': per scheme, log10 gradient norm by layer "
            "(rows, first on top) and logged step (columns)"
        )
        print(
            "  Time Series tab, filter 'grad_norm/' for gradient norms per layer during "
            "training, 'log10_grad_norm' for the norm by layer at init (x axis = layer)"
        )
    return 0


def _norm(value: float) -> str:
    return f"{value:.0e}" if math.isfinite(value) else str(value)


def demo_guide(results: Sequence[Any], logdir: str, width: int = 92) -> str:
    """The demo's closing paragraph: where the depth heatmap is and what it shows."""
    import textwrap

    by_name = {r.scheme: r for r in results}
    he, small = by_name["zoo_he"].init_stats, by_name["zoo_small"].init_stats
    he_norms = [s.grad_norm for s in he]
    points = [
        "IMAGES tab, grad_norm_by_depth: one heatmap per scheme of the log10 gradient norm, "
        f"layers top ({he[0].name}) to bottom ({he[-1].name}), logged steps left to right; "
        "each run has its own colour scale, drawn on the right.",
        "zoo_he: the colours hardly change from top to bottom, only from step to step - its "
        f"gradient stays level across depth ({_norm(min(he_norms))} to "
        f"{_norm(max(he_norms))} at init).",
        f"zoo_small: bright at the bottom ({small[-1].name}, {_norm(small[-1].grad_norm)} at "
        f"init), fading to dark at the top ({small[0].name}, {_norm(small[0].grad_norm)}) - "
        "its gradient vanishes on its way back to the first layers.",
        "CUSTOM SCALARS tab: every layer's gradient norm during training, in depth order.",
    ]
    lines = [f"What to look at:  tensorboard --logdir {logdir}   (open http://localhost:6006)"]
    lines += [
        textwrap.fill(p, width, initial_indent="  ", subsequent_indent="    ") for p in points
    ]
    return "\n".join(lines)


def report(args: argparse.Namespace) -> int:
    """``report``: the signal report of a saved model, printed and optionally plotted."""
    if not os.path.isfile(args.model):
        print(f"initzoo report: error: no such model file: {args.model}", file=sys.stderr)
        return 2
    if not _load("report"):
        return 2
    import keras
    import numpy as np

    from keras_initzoo.models import signal_report, synthetic_batch

    model = keras.models.load_model(args.model)  # safe mode: a file never runs code
    x = y = None
    if args.data is not None:
        with np.load(args.data, allow_pickle=False) as arrays:
            if "x" not in arrays:
                print(
                    f"initzoo report: error: --data {args.data} has no array 'x' "
                    f"(it has {sorted(arrays.files)})",
                    file=sys.stderr,
                )
                return 2
            x, y = arrays["x"], arrays["y"] if "y" in arrays else None
    try:
        result = signal_report(model, synthetic_batch(model) if x is None else x, y, args.loss)
    except ValueError as error:
        print(f"initzoo report: error: {error}", file=sys.stderr)
        return 2
    print(result)
    if args.png:
        result.plot(args.png)
        print(f"plot written to {args.png}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Runs the parsed command; returns the exit status."""
    if args.command == "list":
        return print_list()
    if args.command == "demo":
        return run_schemes(DEMO_SCHEMES, args, DEMO_QUICK_SETTINGS if args.quick else DEMO_SETTINGS)
    if args.command == "report":
        return report(args)
    settings = {
        "depth": args.depth,
        "width": args.width,
        "activation": args.activation,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "optimizer": args.optimizer,
        "dataset": args.dataset,
    }
    return run_schemes(args.schemes, args, settings)
