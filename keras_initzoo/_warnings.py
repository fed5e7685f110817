"""Warnings that point at the user's line, not at the package or the framework.

A warning raised inside a callback hook sits a backend-dependent number of
frames below the user's ``model.fit(...)`` (Keras' trainer, its callback list,
TensorFlow's or JAX's tracing), so no fixed ``stacklevel`` names the user's
line. :func:`warn` counts the frames that belong to this package or to the
frameworks and skips them (Python 3.12's ``skip_file_prefixes`` does this
natively; the package supports 3.11).
"""

from __future__ import annotations

import inspect
import warnings

# Modules whose frames are never the user's line.
_INTERNAL = ("keras_initzoo", "keras", "tensorflow", "jax", "torch", "optree", "tree", "absl")


def _is_internal(module: str) -> bool:
    return module.split(".", 1)[0] in _INTERNAL or module in ("contextlib", "threading")


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` at the innermost line of user code on the stack.

    Args:
        message: the warning's text.
        category: the warning's class.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("checked")
    >>> str(caught[0].message)
    'checked'
    """
    frame, level = inspect.currentframe().f_back, 1  # level 1: our caller's line
    while frame is not None and _is_internal(frame.f_globals.get("__name__", "")):
        frame, level = frame.f_back, level + 1
    # stacklevel counts from this function: one more than the caller's level.
    warnings.warn(message, category, stacklevel=level + 1 if frame is not None else 2)
