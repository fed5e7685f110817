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
import warnings
from collections.abc import Sequence
from typing import Any

from .quiet import import_backend, keras_backend
from .schemes import read_table
from .settings import DEMO_QUICK_SETTINGS, DEMO_SCHEMES, DEMO_SETTINGS


def print_list() -> int:
    """``initzoo list``: prints the table of schemes; returns the exit status 0."""
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


# Optional packages the commands use, by import name: (what pip calls it, the extra).
OPTIONAL_PACKAGES = {
    "sklearn": ("scikit-learn", "examples"),
    "matplotlib": ("matplotlib", "examples"),
}


def missing_package(command: str, option: str, module: str) -> str | None:
    """The one line saying how to install ``module``, which ``option`` needs, or None.

    Checked before any work starts (``importlib.util.find_spec``: nothing is
    imported), so a missing package costs no training and prints no traceback.

    Args:
        command: the subcommand, for the message.
        option: the option that needs the package, as typed (``--dataset digits``).
        module: its import name, a key of :data:`OPTIONAL_PACKAGES`.

    Returns:
        ``initzoo COMMAND: error: OPTION needs PACKAGE ...; run: python -m pip
        install 'keras_initzoo[EXTRA]'``, or None when the package is there.
    """
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or a module set to None
        found = False
    if found:
        return None
    package, extra = OPTIONAL_PACKAGES[module]
    return (
        f"initzoo {command}: error: {option} needs {package}, which is not installed; "
        f"run: python -m pip install 'keras_initzoo[{extra}]'"
    )


def _missing_extra(command: str, settings: dict) -> str | None:
    if settings.get("dataset") == "digits":
        return missing_package(command, "--dataset digits", "sklearn")
    return None


def _load(command: str) -> bool:
    """Imports the backend (TensorFlow quietly); False, with the reason printed, if missing."""
    problem = _backend_missing(command)
    if problem:
        print(problem, file=sys.stderr)
        return False
    import_backend()
    return True


def run_schemes(schemes: Sequence[Any], args: argparse.Namespace, settings: dict) -> int:
    """``demo`` and ``compare``: train under each scheme, print the table and how to read it.

    Args:
        schemes: the initializers to compare.
        args: the parsed command line (``command``, ``seed``, ``logdir``, ``no_progress``).
        settings: the :class:`~keras_initzoo.experiments.ExperimentConfig` fields.

    Returns:
        The exit status: 0, or 2 when a backend or an optional package is missing.
    """
    problem = _missing_extra(args.command, settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if not _load(args.command):
        return 2
    from keras_initzoo.experiments import (
        ExperimentConfig,
        column_notes,
        format_table,
        run_comparison,
    )

    config = ExperimentConfig(seed=args.seed, **settings)
    one_thread_on_torch(config.width)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # shown after the table, one line each
        results = run_comparison(schemes, config, logdir=args.logdir, progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    if not args.no_progress:
        print()
    classes = results[0].n_classes
    print(
        f"{config.depth} hidden layers x {config.width} units, {config.activation}, "
        f"{config.optimizer} lr={config.learning_rate}, batch {config.batch_size}, "
        f"{config.epochs} epochs on '{config.dataset}' ({classes} classes: chance is loss "
        f"{math.log(classes):.3f}, accuracy {1 / classes:.2f}), seed {config.seed}"
    )
    print(format_table(results))
    print(_wrap(column_notes(config.depth)))
    print(f"elapsed: {elapsed:.1f} s")
    if args.command == "demo":
        print(_wrap([demo_lesson(config.width)], indent=""))
    print(tensorboard_advice(args.logdir))
    for message in dict.fromkeys(str(w.message) for w in caught):
        # the source line of a warning raised inside the package means nothing here
        print(f"initzoo {args.command}: warning: {message}", file=sys.stderr)
    return 0


def one_thread_on_torch(width: int) -> None:
    """On PyTorch, one intra-op thread for layers of up to 128 units: too small to share.

    Splitting a 32-unit layer's products across threads costs more than it
    saves, and on a busy machine the threads wait on each other (measured:
    ``demo --quick``'s training took 4.6 s on one thread, 63 s on two, on a
    shared 2-core machine). The command owns its process, so it sets this;
    the library never does.

    Args:
        width: the hidden layers' width; wider ones keep PyTorch's threads.
    """
    if keras_backend() == "torch" and width <= 128:
        import torch

        torch.set_num_threads(1)


def _wrap(paragraphs: Sequence[str], width: int = 92, indent: str = "  ") -> str:
    import textwrap

    return "\n".join(
        textwrap.fill(p, width, initial_indent=indent, subsequent_indent=indent + "  ")
        for p in paragraphs
    )


def demo_lesson(width: int) -> str:
    """Why the demo's per-layer column reads as it does: the factor each scheme predicts.

    Back through a ReLU layer of width ``n`` the signal ``|dL/dh|`` is
    multiplied by ``sqrt(n * Var(W) / 2)`` in expectation (He et al. 2015,
    "Delving Deep into Rectifiers", Sec. 2.2).

    Args:
        width: the hidden layers' width ``n``.

    Returns:
        One paragraph naming each demo scheme's variance and predicted factor.
    """
    variances = {
        "zoo_he": ("2/n", 2 / width),
        "zoo_glorot": ("2/(n+n) = 1/n", 1 / width),
        "zoo_small": ("0.01^2", 0.01**2),
        "zoo_large": ("10^2", 10.0**2),
    }
    predicted = ", ".join(
        f"{name}'s Var(W) = {formula} gives x{math.sqrt(width * variance / 2):.2g}"
        for name, (formula, variance) in variances.items()
    )
    return (
        f"Why: back through a ReLU layer of width n = {width}, |dL/dh| is multiplied by "
        f"sqrt(n * Var(W) / 2) (He et al. 2015): {predicted}, and zoo_zeros' 0 sends "
        "nothing back. So He keeps the gradient level and trains; Glorot, made for tanh, "
        "gives ReLU half the variance it needs and lags; small weights and zeros stall; "
        "large weights explode."
    )


def tensorboard_advice(logdir: str) -> str:
    """Where this command's runs are, then the one TensorBoard paragraph of the docs.

    Args:
        logdir: the folder the runs were written under.

    Returns:
        The lines to print.
    """
    from .advice import TENSORBOARD_ADVICE, plain

    return "\n".join(
        [
            f"View the runs:  tensorboard --logdir {logdir}",
            _wrap([plain(TENSORBOARD_ADVICE)]),
        ]
    )


def report(args: argparse.Namespace) -> int:
    """``report``: the signal report of a saved model, printed and optionally plotted."""
    if not os.path.isfile(args.model):
        print(f"initzoo report: error: no such model file: {args.model}", file=sys.stderr)
        return 2
    if args.png and (problem := missing_package("report", "--png", "matplotlib")):
        print(problem, file=sys.stderr)
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


def with_fresh_layer_names(build: Any) -> Any:
    """``build``, each call starting Keras' automatic layer names afresh.

    The check builds the model several times (per width and seed), and Keras
    numbers automatic names on from the last model (``dense_6``, ``dense_7``,
    ...); restarting them gives every build the names the user sees when
    building once (``dense``, ``dense_1``, ...), so the report's rows are
    stable. Names given explicitly are kept.

    Args:
        build: the user's ``build(width)`` (or ``build(width, depth)``).

    Returns:
        A function that calls it with the same arguments.
    """
    from keras_initzoo._keras_internals import restart_layer_names

    def build_with_fresh_names(*args: Any) -> Any:
        restart_layer_names()
        return build(*args)

    return build_with_fresh_names


def coord_check(args: argparse.Namespace) -> int:
    """``coord-check``: kiz.mup.coord_check of a builder, printed; a plot and runs on request."""
    if args.data is not None and not os.path.isfile(args.data):
        return _error("coord-check", f"no such data file: {args.data}")
    if args.plot and (problem := missing_package("coord-check", "--plot", "matplotlib")):
        print(problem, file=sys.stderr)
        return 2
    if not _load("coord-check"):
        return 2
    import keras_initzoo as kiz
    from keras_initzoo._validation import check_loss

    try:
        build = with_fresh_layer_names(import_builder(args.builder))
        loss = None if args.loss is None else check_loss(args.loss)
        depths = getattr(args, "depths", None)  # --depths: the check across depth
        rule = getattr(args, "depth_rule", None)
        if rule is not None and depths is None:
            return _error("coord-check", "argument --depth-rule: needs --depths")
        sample = (lambda width: build(width, min(depths))) if depths else build
        x, y = _coord_batch(sample, min(args.widths), args.data)
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
            depths=depths,
            depth=None if rule == "none" else rule or "completep",
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
