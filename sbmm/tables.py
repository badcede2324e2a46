"""`table`: a results table a notebook shows in the width of its column.

    sbmm.table(
        {"shared": {"stay": 0.32, "click": 0.26}, "like only": {"stay": -0.06}},
        title="share of the attainable AUC gap closed, mean over 10 seeds",
        decimals=2,
    )

A notebook displays the returned `Table` as HTML, in JupyterLab and in the book, where
a table narrower than its text wraps its cells instead of scrolling; `print(table)`
gives the same table as text. The layout is tabulate's.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

__all__ = ["Table", "table"]


@dataclass(frozen=True)
class Table:
    """A header and rows of cells, already formatted as text; `title` above them.
    The first `left` columns (labels) are aligned left, the others (numbers) right."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""
    left: int = 1

    def __str__(self) -> str:
        text = self._tabulate("simple")
        return f"{self.title}\n{text}" if self.title else text

    __repr__ = __str__  # a notebook's plain-text view

    def _repr_html_(self) -> str:
        table = self._tabulate("html")
        if not self.title:
            return table
        caption = f"<caption>{html.escape(self.title, quote=False)}</caption>"
        return table.replace("<table>", f"<table>\n{caption}", 1)

    def _tabulate(self, style: str) -> str:
        """The rows under the header in tabulate's `style`: labels left, cells right.
        tabulate is imported here, when a table is first shown, not with `sbmm`."""
        from tabulate import tabulate

        align = ("left",) * self.left + ("right",) * (len(self.header) - self.left)
        return tabulate(
            self.rows,
            self.header,
            tablefmt=style,
            colalign=align,
            disable_numparse=True,  # cells are formatted already
        )


def table(
    rows: Mapping[str, Mapping[str, Any]],
    *,
    title: str = "",
    decimals: int = 3,
    corner: str = "",
) -> Table:
    """The table of `rows`, {row label: {column: value}}.

    Columns come in the order they first appear; a row without a column leaves its cell
    blank. Real numbers are shown with `decimals` decimal places, integers with
    thousands separators, anything else as `str()` gives it. `corner` heads the row
    labels' column. ValueError for no rows, a row that is not a mapping, or a negative
    `decimals`."""
    if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
        raise ValueError(f"decimals must be an int >= 0, got {decimals!r}")
    if not rows:
        raise ValueError("a table needs at least one row")
    columns: dict[str, None] = {}  # ordered set
    for label, row in rows.items():
        if not isinstance(row, Mapping):
            raise ValueError(
                f"row {label!r} must map columns to values, got {type(row).__name__}"
            )
        columns.update(dict.fromkeys(map(str, row)))
    header = (corner, *columns)
    named = {label: {str(k): v for k, v in row.items()} for label, row in rows.items()}
    body = tuple(
        (str(label), *(_cell(row.get(c, ""), decimals) for c in columns))
        for label, row in named.items()
    )
    return Table(header, body, title)


def _cell(value: Any, decimals: int) -> str:
    if isinstance(value, bool) or not isinstance(value, Real):
        return str(value)
    if isinstance(value, Integral):
        return f"{value:,}"
    return f"{value:.{decimals}f}"
