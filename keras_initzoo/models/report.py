"""The one result type of the whole-model tools: rows that print as a table."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def format_value(value: Any) -> str:
    """A cell's text: ``—`` for None, floats to 4 significant digits.

    Floats below ``1e-2`` or from ``1e5`` in magnitude take e-notation with 3
    significant digits, the precision a variance is compared at.

    Examples:
        >>> [format_value(v) for v in (None, 0.0, 0.0034722, 0.03125, 2.0, 12345678.0, (3, 3), 7)]
        ['—', '0', '3.47e-03', '0.03125', '2', '1.23e+07', '(3, 3)', '7']
    """
    if value is None:
        return "—"
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        value = float(value)
        if value == 0.0 or not math.isfinite(value):
            return f"{value:g}"
        if abs(value) < 1e-2 or abs(value) >= 1e5:
            return f"{value:.2e}"
        return f"{value:.4g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _checked_rows(rows: object) -> list[dict]:
    """``rows`` as a list of dicts, or a TypeError naming the argument."""
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
        raise TypeError(f"`rows` must be an iterable of mappings (dicts); received rows={rows!r}.")
    rows = list(rows)
    for row in rows:
        if not isinstance(row, Mapping):
            raise TypeError(f"`rows` must hold mappings (dicts); received a row {row!r}.")
    return [dict(row) for row in rows]


def _checked_strings(name: str, values: object) -> tuple[str, ...]:
    """``values`` as a tuple of strings, or a TypeError naming the argument."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"`{name}` must be a sequence of strings; received {name}={values!r}.")
    values = tuple(values)
    if not all(isinstance(value, str) for value in values):
        raise TypeError(f"`{name}` must hold strings only; received {name}={values!r}.")
    return values


class Report(Sequence):
    """Per-layer rows of what a whole-model tool did or measured.

    A sequence of dicts, one per row; ``str`` (and ``repr``) aligns their
    ``columns`` in a text table under ``title``, numbers right and text left,
    with ``notes`` below. ``columns`` defaults to every key the rows hold, in
    first-seen order; keys outside given ``columns`` stay in the rows, unprinted.
    Tools fill a report row by row with :meth:`add`; subclasses add their own
    summary (``signal_report``'s verdict) by extending ``notes`` or ``__str__``.

    Args:
        rows: the rows, each a mapping from column name to cell (a number,
            string, tuple or None, printed as ``—``); default ``()``: none yet.
        columns: the column names to print, in order; default None: every
            key of the rows, in first-seen order.
        title: the line printed above the table, a string (default ``""``:
            none). Keyword only.
        notes: strings printed below the table, one ``note:`` line each
            (default ``()``: none). Keyword only.

    Raises:
        TypeError: if a row is not a mapping, or ``columns``, ``title`` or
            ``notes`` are not strings.

    Examples:
        >>> report = Report(
        ...     [{"path": "dense/kernel", "target": 0.02, "actual": 0.0199},
        ...      {"path": "out/kernel", "target": 0.00012, "actual": None}],
        ...     title="demo", notes=["out: one note"])
        >>> print(report)
        demo
        path          target    actual
        ------------  --------  ------
        dense/kernel      0.02  0.0199
        out/kernel    1.20e-04       —
        note: out: one note
        >>> report[0]["actual"], len(report), report.column("path")
        (0.0199, 2, ['dense/kernel', 'out/kernel'])
        >>> report.add(path="head/kernel", target=0.5, actual=0.49)
        >>> len(report)
        3
    """

    def __init__(
        self,
        rows: Iterable[Mapping[str, Any]] = (),
        columns: Sequence[str] | None = None,
        *,
        title: str = "",
        notes: Iterable[str] = (),
    ):
        self.rows = _checked_rows(rows)
        self._columns = None if columns is None else _checked_strings("columns", columns)
        if not isinstance(title, str):
            raise TypeError(f"`title` must be a string; received title={title!r}.")
        self.title = title
        self.notes = list(_checked_strings("notes", notes))

    @property
    def columns(self) -> tuple[str, ...]:
        """The printed columns: as given, or every key of the rows in first-seen order."""
        if self._columns is not None:
            return self._columns
        return tuple(dict.fromkeys(key for row in self.rows for key in row))

    def add(self, **row: Any) -> None:
        """Appends one row, its cells given by column name."""
        self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]

    def column(self, name: str) -> list:
        """The values of column ``name``, one per row (None where a row lacks it)."""
        if name not in self.columns:
            raise ValueError(f"`name` must be one of {list(self.columns)}; received name={name!r}.")
        return [row.get(name) for row in self.rows]

    def _cells(self) -> list[list[str]]:
        return [[format_value(row.get(name)) for name in self.columns] for row in self.rows]

    def __str__(self) -> str:
        columns, cells = self.columns, self._cells()
        widths = [
            max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)
        ]
        numeric = [  # right-aligned: columns of numbers (None counts as a missing number)
            all(row.get(name) is None or _is_number(row.get(name)) for row in self.rows)
            for name in columns
        ]

        def line(texts: Iterable[str]) -> str:
            padded = (
                text.rjust(width) if right else text.ljust(width)
                for text, width, right in zip(texts, widths, numeric, strict=True)
            )
            return "  ".join(padded).rstrip()

        lines = [self.title] if self.title else []
        lines += [line(columns), line("-" * width for width in widths)]
        lines += [line(row) for row in cells]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    __repr__ = __str__

    def to_markdown(self) -> str:
        """The table in Markdown, ``title`` as a heading and ``notes`` as a list below."""
        lines = [f"### {self.title}", ""] if self.title else []
        columns = self.columns
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for row in self._cells():
            lines.append("| " + " | ".join(text.replace("|", "\\|") for text in row) + " |")
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines)
