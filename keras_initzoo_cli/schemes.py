"""The scheme table ``initzoo list`` prints: a file shipped beside this module.

``list`` reads it so that it loads no framework. The file is data derived
from the library (:func:`keras_initzoo.registry.markdown_table`); a test keeps
the two equal, and ``python -m keras_initzoo_cli.schemes`` rewrites the file
from the registry. The command line reads the library, never the reverse.
"""

from __future__ import annotations

import os
import sys

SCHEMES_FILE = "schemes.md"  # package data of the wheel


def table_path() -> str:
    """Where the scheme table lives: next to this module."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), SCHEMES_FILE)


def read_table() -> str:
    """The table as ``keras_initzoo.registry.markdown_table()`` made it, from the file."""
    with open(table_path(), encoding="utf-8") as table:
        return table.read()


def write_table() -> str:
    """Rewrites the file from the registry (imports the library); returns its path."""
    from keras_initzoo.registry import markdown_table

    with open(table_path(), "w", encoding="utf-8") as table:
        table.write(markdown_table() + "\n")
    return table_path()


if __name__ == "__main__":
    print(f"wrote {write_table()}", file=sys.stderr)
