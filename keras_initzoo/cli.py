"""The ``initzoo`` command line: ``list``, ``demo``, ``compare`` and ``report``.

It lives in the light :mod:`keras_initzoo_cli` package, which the console script
calls directly so that ``--help`` and ``list`` load no framework; this module
re-exports it, so ``from keras_initzoo import cli; cli.main([...])`` and
``python -m keras_initzoo`` run the same command line.
"""

from __future__ import annotations

import sys

from keras_initzoo_cli import build_parser, main
from keras_initzoo_cli.settings import DEMO_SCHEMES, DEMO_SETTINGS

__all__ = ["DEMO_SCHEMES", "DEMO_SETTINGS", "build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
