"""The book's Chinese text in a font the book serves, so that it reads on a machine
without a CJK font.

``_static/fonts/NotoSansCJKsc-book.woff`` is Noto Sans CJK SC (SIL Open Font Licence
1.1, ``_static/fonts/LICENSE``) cut down to the characters the book's sources use;
``_static/sbmm.css`` declares it. As a Sphinx extension, this file fails the build
(a warning, under ``-W``) when a built page holds a CJK character that the font lacks.
As a script, it makes the font again from the full one, which Debian's and Ubuntu's
``fonts-noto-cjk`` package carries::

    apt-get download fonts-noto-cjk && dpkg -x fonts-noto-cjk_*.deb noto
    python _ext/cjk_font.py noto/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

It reads the font with fontTools (a dependency of matplotlib) and writes WOFF
(zlib), which fontTools reads back without further packages.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FONT = Path("_static", "fonts", "NotoSansCJKsc-book.woff")
# the face of the Simplified Chinese font in Noto's collection
FACE = "Noto Sans CJK SC"
# The ranges that _static/sbmm.css gives the font (its `unicode-range`): CJK
# radicals, punctuation, kana and ideographs; compatibility ideographs and forms;
# full-width forms.
CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")
# where the book's text comes from: its pages and its table of contents
SOURCES = ("book/*.md", "book/*.ipynb", "_toc.yml", "_config.yml")


def characters(texts) -> set[str]:
    """The CJK characters in some texts."""
    return {c for text in texts for c in CJK.findall(text)}


def source_characters(root: Path = ROOT) -> set[str]:
    """The CJK characters in the book's sources (pages, outputs, titles)."""
    paths = sorted({p for pattern in SOURCES for p in root.glob(pattern)})
    return characters(p.read_text(encoding="utf-8") for p in paths)


def covered(font: Path) -> set[str]:
    """The characters a font has glyphs for."""
    from fontTools.ttLib import TTFont

    with TTFont(font) as face:
        return {chr(code) for code in face.getBestCmap()}


def make_font(collection: Path, out: Path, text: set[str]) -> None:
    """Cut the SC face of Noto's collection down to `text`, as WOFF."""
    from fontTools import subset
    from fontTools.ttLib import TTCollection

    faces = TTCollection(collection).fonts
    number = next(
        i for i, face in enumerate(faces) if face["name"].getDebugName(1) == FACE
    )
    options = subset.Options()
    options.font_number = number
    options.flavor = "woff"
    options.name_IDs = ["*"]  # keep the copyright, licence and trademark notices
    options.hinting = False  # browsers hint CJK outlines themselves
    options.layout_features = ["*"]
    font = subset.load_font(str(collection), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(text)))
    subsetter.subset(font)
    out.parent.mkdir(parents=True, exist_ok=True)
    subset.save_font(font, str(out), options)


def check_built_pages(app, exception) -> None:
    """Warn, naming them, about CJK characters on built pages that the font lacks."""
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.util import logging

    pages = Path(app.outdir).rglob("*.html")
    used = characters(p.read_text(encoding="utf-8") for p in pages)
    missing = used - covered(Path(app.srcdir, FONT))
    if missing:
        logging.getLogger(__name__).warning(
            f"{FONT} has no glyph for {''.join(sorted(missing))}: make it again "
            "(python _ext/cjk_font.py, see its docstring)"
        )


def setup(app) -> dict:
    """Check the served font against the built pages after each build."""
    app.connect("build-finished", check_built_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    text = source_characters()
    make_font(Path(sys.argv[1]), ROOT / FONT, text)
    size = (ROOT / FONT).stat().st_size
    print(f"{FONT}: {len(text)} characters, {size:,} bytes")
