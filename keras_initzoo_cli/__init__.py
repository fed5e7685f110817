"""The ``initzoo`` command line, kept apart from :mod:`keras_initzoo` so it starts fast.

Importing ``keras_initzoo`` imports Keras and its backend (it registers the
initializers with Keras), which takes seconds. This package imports only the
standard library until a command needs a framework: ``initzoo --help`` and
``initzoo list`` load none, and ``demo``, ``compare``, ``report`` and ``coord-check`` run on
Keras' backend (TensorFlow imported quietly, see :mod:`keras_initzoo_cli.quiet`).

``from keras_initzoo import cli`` and ``python -m keras_initzoo`` give the same
``main``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .parser import build_parser
from .settings import VERSION as __version__

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``initzoo`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    from .commands import run

    try:
        return run(args)
    except BrokenPipeError:  # `initzoo list | head`: the reader left, so stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
