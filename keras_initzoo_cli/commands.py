"""What each ``initzoo`` subcommand does once its arguments are parsed.

``list`` reads the scheme table shipped with the package (:mod:`.schemes`), so it
loads no framework. ``demo``, ``compare``, ``report`` and ``coord-check`` run on whichever backend
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
        batch = synthetic_batch(model) if x is None else x
        result = signal_report(model, batch, y, args.loss, training=not args.inference)
    except ValueError as error:
        print(f"initzoo report: error: {error}", file=sys.stderr)
        return 2
    print(result)
    if args.png:
        result.plot(args.png)
        print(f"plot written to {args.png}")
    return 0


def _error(command: str, message: str) -> int:
    print(f"initzoo {command}: error: {message}", file=sys.stderr)
    return 2


def import_builder(spec: str) -> Any:
    """The callable ``module:function`` names (the parser checked the form), or a ValueError.

    Importing the module runs its code, as ``python -c "import module"``
    would: that is what the command is for. The current folder is searched
    first, as for ``python -m``, so that a builder next to the user is found
    (a console script's path holds only its own folder).
    """
    import importlib

    module_name, _, attributes = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import module {module_name!r} of {spec!r}: {error}") from None
    for attribute in attributes.split("."):
        if not hasattr(found, attribute):
            raise ValueError(f"{spec!r}: {module_name} has no {attributes!r}")
        found = getattr(found, attribute)
    if not callable(found):
        kind = type(found).__name__
        raise ValueError(f"{spec!r} is not a function build(width) (it is of type {kind})")
    return found


def _coord_batch(build: Any, width: int, data: str | None) -> tuple[Any, Any]:
    """``(x, y)``: from ``data``'s arrays, else generated from the model's input and output."""
    import keras
    import numpy as np

    from keras_initzoo.models import synthetic_batch

    if data is not None:
        with np.load(data, allow_pickle=False) as arrays:
            if "x" not in arrays:
                raise ValueError(f"--data {data} has no array 'x' (it has {sorted(arrays.files)})")
            x, y = arrays["x"], arrays["y"] if "y" in arrays else None
    model = build(width)
    if not isinstance(model, keras.Model):
        raise ValueError(f"build({width}) returned a {type(model).__name__}, not a keras.Model")
    if data is None:
        x = synthetic_batch(model)
    if data is None or y is None:
        rng = np.random.default_rng(0)
        outputs = model(x, training=False)
        y = keras.tree.map_structure(
            lambda out: rng.standard_normal(tuple(out.shape)).astype("float32"), outputs
        )
    return x, y


def coord_check(args: argparse.Namespace) -> int:
    """``coord-check``: kiz.mup.coord_check of a builder, printed; a plot and runs on request."""
    if args.data is not None and not os.path.isfile(args.data):
        return _error("coord-check", f"no such data file: {args.data}")
    if not _load("coord-check"):
        return 2
    import keras_initzoo as kiz
    from keras_initzoo._validation import check_loss

    try:
        build = import_builder(args.builder)
        loss = None if args.loss is None else check_loss(args.loss)
        x, y = _coord_batch(build, min(args.widths), args.data)
        result = kiz.mup.coord_check(
            build,
            args.widths,
            x,
            y,
            base_width=args.base_width,
            parametrization=args.parametrization,
            optimizer=args.optimizer,
            learning_rate=args.lr,
            loss=loss,
            steps=args.steps,
            seeds=args.seeds,
            zero_readout=args.zero_readout,
        )
    except ValueError as error:
        return _error("coord-check", str(error))
    print(result)
    if args.plot:
        result.plot(args.plot)
        print(f"plot written to {args.plot}")
    if args.log_dir:
        result.write_tensorboard(args.log_dir)
        print(f"view the runs:  tensorboard --logdir {args.log_dir}  (one run per width)")
    return 0


def run(args: argparse.Namespace) -> int:
    """Runs the parsed command; returns the exit status."""
    if args.command == "list":
        return print_list()
    if args.command == "demo":
        return run_schemes(DEMO_SCHEMES, args, DEMO_QUICK_SETTINGS if args.quick else DEMO_SETTINGS)
    if args.command == "report":
        return report(args)
    if args.command == "coord-check":
        return coord_check(args)
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
