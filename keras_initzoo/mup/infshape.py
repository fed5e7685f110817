"""The per-variable records of muP (kept here for imports of ``keras_initzoo.mup.infshape``).

They live in :mod:`keras_initzoo._records`, which imports nothing else from
the package: the whole-model tools read them without importing ``mup``.
"""

from keras_initzoo._records import (
    ATTRIBUTE,
    DEPTH_ROLES,
    KINDS,
    DepthRecord,
    InfShape,
    infshape_of,
    refuse_if_parametrized,
)

__all__ = [
    "ATTRIBUTE",
    "DEPTH_ROLES",
    "KINDS",
    "DepthRecord",
    "InfShape",
    "infshape_of",
    "refuse_if_parametrized",
]
