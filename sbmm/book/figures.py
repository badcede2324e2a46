"""The book's figure style: figures drawn at the width of the page's column, with
type that stays readable when a phone shrinks them.

The column is about 780 px wide on a desktop and 390 px on a phone; at 100 dpi a
7.5-inch figure fills the first, and the phone shows it at half size. The type is
set large for a figure (12 pt, ticks 11.5 pt) so that tick labels stay about 8 to 10
px high there.
`use_profile` applies the style; a chapter's figures pass no wider `figsize`.
"""

from __future__ import annotations

import matplotlib as mpl

__all__ = ["COLUMN_INCHES", "STYLE", "use_book_style"]

COLUMN_INCHES = 7.5  # the widest figure: the desktop column at 100 dpi

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 12,
    "axes.titlesize": 12.5,
    "axes.labelsize": 12,
    "xtick.labelsize": 11.5,
    "ytick.labelsize": 11.5,
    "legend.fontsize": 10.5,
}


def use_book_style() -> None:
    """Set matplotlib's defaults to the book's STYLE for this session."""
    mpl.rcParams.update(STYLE)
