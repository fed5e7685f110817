"""What each ``initzoo`` subcommand does once its arguments are parsed.

``list`` reads the scheme table shipped next to this module, so it loads no
framework. ``demo``, ``compare`` and ``report`` import TensorFlow through
:func:`keras_initzoo_cli.quiet.import_tensorflow` first, so their output holds
no framework start-up lines.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from .settings import DEMO_SCHEMES, DEMO_SETTINGS

SCHEMES_FILE = "schemes.md"  # keras_initzoo.registry.markdown_table(), shipped as package data


def schemes_table_path() -> str:
    """Where the scheme table lives: next to this module (package data of the wheel)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), SCHEMES_FILE)


def schemes_table() -> str:
    """The table ``initzoo list`` prints, as ``keras_initzoo.registry.markdown_table()`` made it.

    Read from a file so that ``list`` loads no framework; a test keeps the file equal
    to the registry, and ``python -m keras_initzoo.registry --write`` regenerates it.
    """
    with open(schemes_table_path(), encoding="utf-8") as table:
        return table.read()


def print_list() -> int:
    print(schemes_table().rstrip("\n"))
    return 0


def _load() -> None:
    """Imports TensorFlow quietly where Keras will use it (its start-up lines filtered)."""
    import importlib.util

    if _backend() == "tensorflow" and importlib.util.find_spec("tensorflow") is not None:
        from .quiet import import_tensorflow

        import_tensorflow()


def _backend() -> str:
    """Keras' backend as Keras will choose it, without importing Keras."""
    backend = os.environ.get("KERAS_BACKEND")
    if backend:
        return backend
    import json

    config = os.path.join(
        os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "keras.json"
    )
    try:
        with open(config) as file:
            return json.load(file).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def _tensorflow_missing(command: str) -> str | None:
    """Why ``demo`` and ``compare`` cannot run here, or None: their experiments use TensorFlow."""
    import importlib.util

    backend = _backend()
    if backend != "tensorflow":
        return (
            f"initzoo {command}: error: the experiments run on Keras' TensorFlow backend, "
            f"and Keras is set to {backend!r} (KERAS_BACKEND or ~/.keras/keras.json); "
            f"run: KERAS_BACKEND=tensorflow initzoo {command}"
        )
    if importlib.util.find_spec("tensorflow") is None:
        return (
            f"initzoo {command}: error: the experiments need TensorFlow, which is not "
            "installed; run: python -m pip install 'keras_initzoo[tensorflow]'"
        )
    return None


def run_schemes(schemes: Sequence[Any], args: argparse.Namespace, settings: dict) -> int:
    """``demo`` and ``compare``: train under each scheme, print the table and what to look at."""
    problem = _tensorflow_missing(args.command)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    _load()
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
    _load()
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
        return run_schemes(DEMO_SCHEMES, args, DEMO_SETTINGS)
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
