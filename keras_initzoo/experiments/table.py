"""The comparison table the command line prints, one row per scheme."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .training import SchemeResult


def _fmt(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else str(value)


def format_table(results: Sequence[SchemeResult]) -> str:
    """A plain-text table, one row per scheme, for the terminal."""
    if not results:
        return "(no results)"
    depth = results[0].config.depth
    headers = [
        "scheme",
        "final loss",
        "test acc",
        "|g| L1 @init",
        f"|g| L{depth} @init",
        f"ratio L1/L{depth}",
    ]
    rows = []
    for r in results:
        hidden = r.init_stats[:-1] or r.init_stats
        rows.append(
            [
                r.scheme,
                _fmt(r.final_loss, ".4f"),
                _fmt(r.test_accuracy, ".3f"),
                _fmt(hidden[0].grad_norm, ".2e"),
                _fmt(hidden[-1].grad_norm, ".2e"),
                _fmt(r.grad_ratio, ".2e"),
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])
