"""The comparison table the command line prints, one row per scheme, and how to read it.

Two outcomes of training (final loss, test accuracy) beside the backward
signal at init that explains them: ``|dL/dh|``, the gradient of the loss with
respect to a hidden layer's output, at the last and at the first hidden layer,
and the factor it changes by per layer on its way back. The last column reads
each row in words, by the thresholds of :func:`reading`, so the words and the
numbers cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .training import SchemeResult

# The per-layer factor of |dL/dh| counted as level: 0.8 per layer is already
# 1/12 after 11 layers, and He's measured 0.95-1.05 (12 x 32 ReLU, 6 seeds).
LEVEL = (0.8, 1.25)
# A final loss this close to chance (ln(classes)) has not moved: a stalled run.
STALLED = 0.99
# A final loss more than this many times the best in the table: lags behind it.
LAGS = 1.5

COLUMN_NOTES = (
    "final loss, test acc: training loss of the last epoch and accuracy on held-out data; "
    "a uniform guess scores a loss of ln(classes) and accuracy 1/classes; nan: the numbers "
    "overflowed.",
    "|dL/dh| L{last}, L1: at init, the size of the gradient of the loss with respect to the "
    "outputs of the last and the first hidden layer (one batch): the backward signal every "
    "weight gradient below it is made from.",
    "per layer: (L1 / L{last}) ** (1/{steps}), the factor that signal changes by per layer on "
    f"its way back: x1.00 = level across depth (read as level within x{LEVEL[0]}-x{LEVEL[1]}), "
    "< 1 = vanishing, > 1 = exploding, '-' = no signal at all.",
    f"reading: 'stalled' = final loss within {100 - 100 * STALLED:.0f}% of chance, 'lags' = "
    f"more than {LAGS}x the best final loss in the table, 'exploded' = loss nan or inf.",
)


def _fmt(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else str(value)


def _factor(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    if value >= 10:
        return f"x{value:.0f}"
    return f"x{value:.2f}" if value >= 0.1 else f"x{value:.2g}"  # x0.97, x0.039


def reading(result: SchemeResult, best_loss: float) -> str:
    """One row of the table in words: how training went, and the backward signal at init.

    Args:
        result: one scheme's run.
        best_loss: the lowest finite final loss among the schemes compared.

    Returns:
        ``"<training>, <signal>"``: training is ``exploded`` (final loss nan or
        inf), ``stalled`` (within 1% of the chance loss ``ln(classes)``),
        ``lags`` (more than :data:`LAGS` times ``best_loss``) or ``trains``;
        the signal at init is ``level`` (per-layer factor within
        :data:`LEVEL`), ``vanishing``, ``exploding``, ``none`` (no signal
        reaches the hidden layers) or ``one layer`` (nothing to compare).

    >>> from types import SimpleNamespace as Run
    >>> reading(Run(final_loss=0.1, chance_loss=1.39, signal_per_layer=0.97,
    ...             init_stats=[Run(backprop_norm=0.5)] * 3), best_loss=0.1)
    'trains, signal level'
    """
    loss, chance = result.final_loss, result.chance_loss
    if not math.isfinite(loss):
        training = "exploded"
    elif math.isfinite(chance) and loss >= STALLED * chance:
        training = "stalled"
    elif loss > LAGS * best_loss:
        training = "lags"
    else:
        training = "trains"
    factor = result.signal_per_layer
    hidden = result.init_stats[:-1]
    if len(hidden) < 2:
        signal = "one layer"
    elif not hidden[-1].backprop_norm > 0:
        signal = "none"
    elif not math.isfinite(factor):
        signal = "exploding"  # the signal itself overflowed
    elif factor < LEVEL[0]:
        signal = "vanishing"
    elif factor > LEVEL[1]:
        signal = "exploding"
    else:
        signal = "level"
    return f"{training}, signal {signal}"


def format_table(results: Sequence[SchemeResult]) -> str:
    """A plain-text table, one row per scheme, for the terminal; :data:`COLUMN_NOTES` explain it.

    Args:
        results: the runs compared, in the order to print.

    Returns:
        The table: a header, a rule and one line per scheme.
    """
    if not results:
        return "(no results)"
    depth = results[0].config.depth
    headers = [
        "scheme",
        "final loss",
        "test acc",
        f"|dL/dh| L{depth}",
        "|dL/dh| L1",
        "per layer",
        "reading",
    ]
    finite = [r.final_loss for r in results if math.isfinite(r.final_loss)]
    best = min(finite) if finite else math.nan
    rows = []
    for r in results:
        hidden = r.init_stats[:-1] or r.init_stats
        rows.append(
            [
                r.scheme,
                _fmt(r.final_loss, ".4f"),
                _fmt(r.test_accuracy, ".3f"),
                _fmt(hidden[-1].backprop_norm, ".2e"),
                _fmt(hidden[0].backprop_norm, ".2e"),
                _factor(r.signal_per_layer),
                reading(r, best),
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, len(cells) - 1) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])


def column_notes(depth: int) -> list[str]:
    """:data:`COLUMN_NOTES` for a net of ``depth`` hidden layers.

    Args:
        depth: the number of hidden layers.

    Returns:
        One line per note, the layer numbers filled in.
    """
    return [
        note.replace("{last}", str(depth)).replace("{steps}", str(max(1, depth - 1)))
        for note in COLUMN_NOTES
    ]
