"""The coordinate-check pictures of the README: an MLP at widths 128..2048, standard vs muP.

Usage::

    python benchmarks/mup_coord_check.py     # writes docs/images/mup_coord_check_{standard,mup}.png
"""

from __future__ import annotations

import os
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import keras_initzoo as kiz  # noqa: E402

WIDTHS = [128, 256, 512, 1024, 2048]


def build(width: int) -> keras.Model:
    return keras.Sequential(
        [keras.Input((64,))]
        + [keras.layers.Dense(width, activation="relu", name=f"hidden_{i}") for i in (1, 2, 3)]
        + [keras.layers.Dense(10, name="readout")]
    )


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 64)).astype("float32")
    y = rng.integers(0, 10, 64)
    for parametrization in ("standard", "mup"):
        start = time.monotonic()
        report = kiz.mup.coord_check(
            build,
            WIDTHS,
            x,
            y,
            parametrization=parametrization,
            steps=3,
            seeds=2,
            zero_readout=True,
        )
        path = report.plot(f"docs/images/mup_coord_check_{parametrization}.png")
        print(report.verdict, report.where, f"{time.monotonic() - start:.0f} s ->", path)


if __name__ == "__main__":
    main()
