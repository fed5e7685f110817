"""The ``initzoo`` argument parser; it imports nothing beyond the standard library.

``--schemes`` is the one option checked against the registry, so parsing a
``compare`` command loads keras_initzoo (quietly); ``--help`` and ``list`` do not.
"""

from __future__ import annotations

import argparse
import os
import re

from .settings import ACTIVATIONS, DATASETS, OPTIMIZERS, VERSION


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


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
BUILDER_SPEC = re.compile(rf"{_NAME}(\.{_NAME})*:{_NAME}(\.{_NAME})*")


def _builder(text: str) -> str:
    """``module:function`` (dotted names both sides), checked for form only: nothing imported."""
    if not BUILDER_SPEC.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected MODULE:FUNCTION, a module Python can import and a function in it "
            f"(e.g. mymodels:build or pkg.models:Factory.build), got {text!r}"
        )
    return text


def _widths(text: str) -> list[int]:
    parse = _int_at_least(1)
    widths = [parse(part.strip()) for part in text.split(",") if part.strip()]
    if len(set(widths)) < 2:
        raise argparse.ArgumentTypeError(
            f"expected at least two different comma-separated widths (e.g. 128,512), got {text!r}"
        )
    return widths


def _schemes(text: str) -> list[str]:
    from .quiet import import_backend

    import_backend()
    from keras_initzoo.experiments import parse_schemes

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
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``initzoo`` subcommand."""
    parser = argparse.ArgumentParser(
        prog="initzoo",
        description="Compare Keras weight-initialization schemes and watch gradients "
        "in TensorBoard.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
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
        "table, write one TensorBoard run per scheme and say what to look at there.",
    )
    demo.add_argument(
        "--quick",
        action="store_true",
        help="2 epochs on 1024 samples in batches of 16: the same lesson in less time",
    )
    _add_run_options(demo, os.path.join("runs", "demo"))

    compare = sub.add_parser(
        "compare",
        help="train the same model under chosen schemes and compare them",
        description="Train the same MLP once per scheme, print final loss, accuracy and "
        "the backward signal |dL/dh| at init (at the last and first hidden layer, and its "
        "change per layer), each row read in words, and write one "
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
    report.add_argument(
        "--loss",
        help="the Keras loss the gradient norms are of (e.g. mse, "
        "sparse_categorical_crossentropy; default: the compiled loss, else one inferred "
        "from y and the output)",
    )
    report.add_argument(
        "--inference",
        action="store_true",
        help="measure in inference mode (BatchNormalization on its moving statistics, no "
        "dropout); default: as the first training step sees the model",
    )
    coord = sub.add_parser(
        "coord-check",
        help="muP's coordinate check of a model builder: activation size against width",
        description="Import build(width) -> keras.Model from MODULE:FUNCTION (this runs the "
        "module's code; the current folder is searched first), parametrize a model at each "
        "width against the base width with kiz.mup, train a few steps on one fixed batch, "
        "and print every layer's mean |output| against width, with a verdict: stable, "
        "blows up or vanishes (kiz.mup.coord_check).",
    )
    coord.add_argument("builder", type=_builder, help="MODULE:FUNCTION, e.g. mymodels:build")
    coord.add_argument(
        "--widths",
        type=_widths,
        default="128,512",
        help="comma-separated widths, at least two; 4x apart or more (default: %(default)s)",
    )
    coord.add_argument(
        "--depths",
        type=_widths,
        default=None,
        help="comma-separated numbers of blocks, at least two: the check across depth, "
        "BUILDER(width, depth) parametrized against the shallowest by --depth-rule",
    )
    coord.add_argument(
        "--depth-rule",
        choices=("completep", "depth_mup", "none"),
        default=None,
        help="with --depths: the branch rule, CompleteP (1/m_L), depth-muP (1/sqrt(m_L)) or "
        "none (muP for width only) (default: completep)",
    )
    coord.add_argument(
        "--base-width",
        type=_int_at_least(1),
        help="the width the hyperparameters are tuned at (default: the narrowest)",
    )
    coord.add_argument(
        "--parametrization",
        choices=("mup", "standard"),
        default="mup",
        help="standard: the same fan-in init without muP, to see what muP removes "
        "(default: %(default)s)",
    )
    coord.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="adam",
        help="kiz.mup's under muP, Keras' under standard (default: %(default)s)",
    )
    coord.add_argument(
        "--lr", type=_positive_float, help="learning rate (default: 1e-3 for adam, 0.1 for sgd)"
    )
    coord.add_argument(
        "--steps", type=_int_at_least(0), default=3, help="optimizer steps (default: %(default)s)"
    )
    coord.add_argument(
        "--seeds", type=_int_at_least(1), default=2, help="seeds averaged (default: %(default)s)"
    )
    coord.add_argument(
        "--zero-readout", action="store_true", help="start the readout at exactly 0 (muP only)"
    )
    coord.add_argument(
        "--data",
        metavar="FILE.npz",
        help="an .npz file with the batch as 'x' and its targets as 'y' (default: a "
        "synthetic batch shaped like the model's input, seed 0, and N(0, 1) targets "
        "shaped like its output, with mean squared error)",
    )
    coord.add_argument(
        "--loss",
        help="the Keras loss to train with (default: sparse categorical cross-entropy on "
        "logits for integer y, else mean squared error)",
    )
    coord.add_argument(
        "--plot", metavar="PATH", help="also write the picture here (PNG; needs matplotlib)"
    )
    coord.add_argument(
        "--logdir",
        "--log-dir",
        dest="log_dir",
        metavar="DIR",
        help="also write a TensorBoard view here: one run per width (--logdir as in compare)",
    )
    return parser
