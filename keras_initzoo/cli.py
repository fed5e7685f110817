"""The ``initzoo`` command line: ``list``, ``demo``, ``compare`` and ``report``.

``demo`` and ``compare`` both call :func:`keras_initzoo.experiments.run_comparison`;
``demo`` is just ``compare`` with settings chosen to show the lesson in well under a
minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from . import __version__
from .experiments import ACTIVATIONS, DATASETS, OPTIMIZERS

DEMO_SCHEMES = ("zoo_he", "zoo_glorot", "zoo_small", "zoo_large", "zoo_zeros")
DEMO_SETTINGS = {"depth": 12, "width": 32, "activation": "relu", "epochs": 5, "dataset": "blobs"}


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _schemes(text: str) -> list[str]:
    from .experiments import parse_schemes

    try:
        return parse_schemes(text)
    except (ValueError, KeyError, TypeError) as exc:
        # Keep kiz.get's own message: it names the closest aliases.
        message = exc.args[0] if exc.args else str(exc)
        raise argparse.ArgumentTypeError(str(message)) from None


def _add_run_options(parser: argparse.ArgumentParser, default_logdir: str) -> None:
    parser.add_argument(
        "--logdir",
        default=default_logdir,
        help="TensorBoard log folder; one run per scheme (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=_int_at_least(0),
        default=0,
        help="seed for data, initial weights and batch order (default: 0)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="initzoo",
        description="Compare Keras weight-initialization schemes and watch gradients "
        "in TensorBoard.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser(
        "list",
        help="print the table of registered initialization schemes",
        description="Print the table of registered zoo_* initializers.",
    )

    demo = sub.add_parser(
        "demo",
        help="train one small deep ReLU net under 5 schemes (<1 min) and compare",
        description="Train the same 12-layer ReLU MLP on generated data under zoo_he, "
        "zoo_glorot, zoo_small, zoo_large and zoo_zeros; print a comparison "
        "table and write one TensorBoard run per scheme.",
    )
    _add_run_options(demo, os.path.join("runs", "demo"))

    compare = sub.add_parser(
        "compare",
        help="train the same model under chosen schemes and compare them",
        description="Train the same MLP once per scheme, print final loss, accuracy and "
        "the first/last-layer gradient-norm ratio at init, and write one "
        "TensorBoard run per scheme.",
    )
    compare.add_argument(
        "--schemes",
        type=_schemes,
        default="zoo_he,zoo_glorot,zoo_small",
        help="comma-separated initializer aliases (default: %(default)s)",
    )
    compare.add_argument(
        "--depth",
        type=_int_at_least(1),
        default=30,
        help="number of hidden layers (default: %(default)s)",
    )
    compare.add_argument(
        "--width",
        type=_int_at_least(1),
        default=32,
        help="units per hidden layer (default: %(default)s)",
    )
    compare.add_argument(
        "--activation",
        choices=ACTIVATIONS,
        default="relu",
        help="hidden activation (default: %(default)s)",
    )
    compare.add_argument(
        "--epochs", type=_int_at_least(1), default=5, help="training epochs (default: %(default)s)"
    )
    compare.add_argument(
        "--batch-size", type=_int_at_least(1), default=64, help="batch size (default: %(default)s)"
    )
    compare.add_argument(
        "--lr", type=_positive_float, default=0.01, help="learning rate (default: %(default)s)"
    )
    compare.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="sgd",
        help="sgd (momentum 0.9) shows init effects best (default: sgd)",
    )
    compare.add_argument(
        "--dataset",
        choices=DATASETS,
        default="blobs",
        help="blobs/spirals are generated; digits ships with scikit-learn (default: %(default)s)",
    )
    _add_run_options(compare, os.path.join("runs", "compare"))

    report = sub.add_parser(
        "report",
        help="check how signal flows through a saved model at initialization",
        description="Load a .keras model and print, per layer, weight variance against its "
        "target, activation mean and std, dead and saturated units and (with targets in "
        "--data) gradient norms, with a verdict: healthy, vanishing or exploding.",
    )
    report.add_argument("model", help="a model saved with model.save('MODEL.keras')")
    report.add_argument(
        "--data",
        help="an .npz file with the inputs as 'x' and, for gradient norms, targets as 'y' "
        "(default: a synthetic batch shaped like the model's input)",
    )
    report.add_argument("--png", help="also write the depth plot of signal and gradients here")
    return parser


def _print_list() -> None:
    from . import registry

    print(registry.markdown_table())


def _run(schemes: Sequence[str], args: argparse.Namespace, settings: dict) -> None:
    from .experiments import ExperimentConfig, format_table, run_comparison

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
    print(f"view the runs:  tensorboard --logdir {args.logdir}")
    print(
        "  Time Series tab, filter 'grad_norm/' for gradient norms per layer during training,"
        " 'log10_grad_norm' for the norm by layer at init (x axis = layer)"
    )


def _report(args: argparse.Namespace) -> int:
    import keras
    import numpy as np

    from .models import signal_report, synthetic_batch

    if not os.path.isfile(args.model):
        print(f"initzoo report: error: no such model file: {args.model}", file=sys.stderr)
        return 2
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
    report = signal_report(model, synthetic_batch(model) if x is None else x, y)
    print(report)
    if args.png:
        report.plot(args.png)
        print(f"plot written to {args.png}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``initzoo`` console script and ``python -m keras_initzoo``."""
    args = build_parser().parse_args(argv)
    if args.command == "list":
        _print_list()
    elif args.command == "demo":
        _run(DEMO_SCHEMES, args, DEMO_SETTINGS)
    elif args.command == "report":
        return _report(args)
    else:
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
        _run(args.schemes, args, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
