"""The book's figure style: figures drawn for the page's column, legible on a phone,
sharp on a high-density screen, and carrying their own alt text.

A figure's width on the page is its width in inches at `DPI` CSS px per inch, or the
column's width where that is narrower: about 390 px on a 420 px phone
(`PHONE_COLUMN_PX`). Text set in points there shows at
``points / 72 * min(DPI, PHONE_COLUMN_PX / width)`` CSS px (`phone_text_px`), so the
style's smallest type (`SMALLEST_POINTS`, the legend) keeps `MIN_TEXT_PX` (9 px) on a
phone for a figure up to `COLUMN_INCHES` wide: a chapter's figures pass no wider
`figsize` and no smaller `fontsize`.

In a notebook, `use_book_style` also shows every figure as a PNG at twice its pixel
density (IPython's "retina" PNG, displayed at `DPI`), with text chunks that record its
title, an alt text made from its titles, axis labels and legend (`alt_text`), and the
size of its smallest text in the PNG's pixels. The book's build puts the alt text on the
page (``_ext/figure_alt.py``) and ``tests/browser_check.py`` reads the text size back to
check what a phone shows. `use_profile` applies the style.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.text import Text

__all__ = [
    "COLUMN_INCHES",
    "DPI",
    "MIN_TEXT_PX",
    "PHONE_COLUMN_PX",
    "SMALLEST_POINTS",
    "SMALLEST_TEXT_KEY",
    "SMALLEST_WHAT_KEY",
    "STYLE",
    "alt_text",
    "book_png",
    "phone_text_px",
    "png_record",
    "smallest_text",
    "use_book_style",
]

DPI = 100  # CSS px per inch of a figure on the page (its PNG has twice as many pixels)
PHONE_COLUMN_PX = 388  # the text column of a 420 px phone viewport
MIN_TEXT_PX = 9.0  # the smallest text a phone reader gets, in CSS px
SMALLEST_POINTS = 11.0  # the style's smallest type: the legend
COLUMN_INCHES = 6.5  # the widest figure that keeps SMALLEST_POINTS at MIN_TEXT_PX

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 12,
    "axes.titlesize": 12.5,
    "axes.labelsize": 12,
    "xtick.labelsize": 11.5,
    "ytick.labelsize": 11.5,
    "legend.fontsize": SMALLEST_POINTS,
    "legend.title_fontsize": SMALLEST_POINTS,
    "figure.titlesize": 13,
}

# The PNG text chunks a book figure carries ("Title" and "Description" are PNG's own
# keywords); the smallest text's size is in the PNG's pixels.
SMALLEST_TEXT_KEY = "sbmm:smallest-text-px"
SMALLEST_WHAT_KEY = "sbmm:smallest-text"


def use_book_style() -> None:
    """Set matplotlib's defaults to the book's STYLE for this session and, in a
    notebook, show figures as the book's PNGs (`book_png`)."""
    mpl.rcParams.update(STYLE)
    _show_figures_as_book_pngs()


def phone_text_px(points: float, width_inches: float) -> float:
    """The CSS px that text of `points` shows at on a 420 px phone, in a figure
    `width_inches` wide (as saved)."""
    return points / 72 * min(DPI, PHONE_COLUMN_PX / width_inches)


def _texts(artist) -> list[Text]:
    """The visible, non-empty texts under an artist, skipping what an invisible
    artist holds (a hidden legend, axis or panel); tick labels after a draw."""
    if not artist.get_visible():
        return []
    own = [artist] if isinstance(artist, Text) and artist.get_text().strip() else []
    return own + [t for child in artist.get_children() for t in _texts(child)]


def _kind(text: Text) -> str:
    """What a text is, in words: a tick label, an axis label, a title, a legend."""
    for ax in text.figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if text is axis.label:
                return "axis label"
            ticks = axis.get_major_ticks() + axis.get_minor_ticks()
            if any(text is t.label1 or text is t.label2 for t in ticks):
                return "tick label"
        if text is ax.title:
            return "title"
        legend = ax.get_legend()
        if legend is not None and any(text is t for t in legend.get_texts()):
            return "legend"
    return "text"


def smallest_text(fig: Figure) -> tuple[float, str]:
    """The smallest visible text of a figure: its size in points, and which it is
    ("tick label '0.5'"). Draws the figure (without rendering) to make its ticks."""
    fig.draw_without_rendering()
    texts = _texts(fig)
    if not texts:
        return float("inf"), "no text"
    small = min(texts, key=lambda t: t.get_fontsize())
    return small.get_fontsize(), f"{_kind(small)} {small.get_text()!r}"


# TeX symbols a label may use, as characters (Greek letters go by their Unicode names)
_TEX_SYMBOLS = {
    "times": "×", "cdot": "·", "pm": "±", "leq": "≤", "le": "≤", "geq": "≥",
    "ge": "≥", "approx": "≈", "neq": "≠", "to": "→", "infty": "∞", "lambda": "λ",
}  # fmt: skip


def _symbol(match: re.Match) -> str:
    """A TeX command in a label as its character (\\lambda, \\Delta, \\times);
    else its name."""
    name = match.group(1)
    if name in _TEX_SYMBOLS:
        return _TEX_SYMBOLS[name]
    case = "CAPITAL" if name[0].isupper() else "SMALL"
    try:
        return unicodedata.lookup(f"GREEK {case} LETTER {name.upper()}")
    except KeyError:
        return name


def _plain(label: str) -> str:
    """A matplotlib label as plain words: in its $...$ math, Greek letters as letters
    and TeX's backslashes, braces and _ gone; the text around as it is."""
    parts = label.split("$")
    for i in range(1, len(parts), 2):  # the odd parts lie between two $
        math = re.sub(r"\\(mathrm|mathbf|mathit|text)\b", "", parts[i])
        math = re.sub(r"\\([A-Za-z]+)", _symbol, math)
        parts[i] = re.sub(r"[\\{}_]", "", math)
    return " ".join("".join(parts).split())


def alt_text(fig: Figure) -> str:
    """An alt text for a figure, from what it says: its title, and for each panel its
    title, what it plots against what, and its legend's entries."""
    parts = []
    suptitle = fig.get_suptitle()
    if suptitle.strip():
        parts.append(_plain(suptitle).rstrip(".") + ".")
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.has_data()]
    for number, ax in enumerate(panels, 1):
        words = []
        title = _plain(ax.get_title())
        if len(panels) > 1:
            words.append(f"Panel {number}" + (f", {title}" if title else ""))
        elif title:
            words.append(title)
        y, x = _plain(ax.get_ylabel()), _plain(ax.get_xlabel())
        if x or y:
            words.append(f"{y or 'values'} against {x or 'position'}")
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            entries = [_plain(t.get_text()) for t in legend.get_texts()]
            if entries:
                words.append("legend: " + ", ".join(entries))
        if words:
            parts.append(": ".join(words[:2]) + "".join(f"; {w}" for w in words[2:]))
            parts[-1] = parts[-1].rstrip(".") + "."
    return " ".join(parts) or "A figure."


def _title(fig: Figure) -> str:
    """The figure's title: its suptitle, else its first panel's title."""
    if fig.get_suptitle().strip():
        return _plain(fig.get_suptitle())
    titles = [_plain(ax.get_title()) for ax in fig.axes if ax.get_title().strip()]
    return titles[0] if titles else ""


def record(fig: Figure, png_dpi: float) -> dict[str, str]:
    """The text chunks of a book figure saved at `png_dpi`: title, alt text
    ("Description"), and its smallest text (size in the PNG's pixels, and which)."""
    points, what = smallest_text(fig)
    chunks = {"Description": alt_text(fig)}
    if _title(fig):
        chunks["Title"] = _title(fig)
    if points != float("inf"):
        chunks[SMALLEST_TEXT_KEY] = f"{points * png_dpi / 72:.1f}"
        chunks[SMALLEST_WHAT_KEY] = f"{what}, {points:g} pt"
    return chunks


def book_png(fig: Figure):
    """IPython's PNG formatter for a book figure: a retina PNG (twice the figure's
    dpi, shown at its own size) with `record`'s text chunks; None for an empty one."""
    from IPython.core.pylabtools import retina_figure

    if not fig.axes and not fig.lines:
        return None
    chunks = record(fig, 2 * fig.dpi)
    return retina_figure(fig, base64=True, bbox_inches="tight", metadata=chunks)


def _show_figures_as_book_pngs() -> None:
    """In an IPython kernel, display figures through `book_png`. The inline backend
    picks its own PNG formatter once, when it is first loaded: load it first, so that
    the book's formatter is the one that stays."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    if "inline" in os.environ.get("MPLBACKEND", ""):  # as ipykernel sets it
        import matplotlib_inline.backend_inline  # noqa: F401
    shell.display_formatter.formatters["image/png"].for_type(Figure, book_png)


def png_record(path) -> dict[str, str]:
    """The text chunks of a PNG file (what `book_png` wrote, for a book figure)."""
    from PIL import Image

    with Image.open(path) as image:
        return dict(getattr(image, "text", {}))
