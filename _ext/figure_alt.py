"""Give each figure on a page the alt text its PNG carries, and let it scale.

A chapter's figures are PNGs that record an alt text (the PNG keyword "Description",
written by ``sbmm.book.figures`` from the figure's title, axis labels and legend).
Without an alt text, docutils writes the image's hashed file name as its alt. This
puts the recorded text on every image that has no alt of its own; an alt set in the
cell's metadata (``mystnb: image: alt:``) wins. ``tests/browser_check.py`` fails a
page with an image whose alt text is missing or a file name.

A retina PNG comes with its width and height at half its pixels; written as the
image's style, the height would stay fixed while a phone's column narrows the
width. Only the width is kept: the height follows the image's own proportions.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from PIL import Image
from sphinx.application import Sphinx


def recorded_alt(path: str) -> str | None:
    """The alt text a PNG records, if it is a PNG that records one."""
    try:
        with Image.open(path) as image:
            text = getattr(image, "text", {}).get("Description", "")
    except (OSError, ValueError):
        return None
    return text.strip() or None


def add_alt_texts(app: Sphinx, doctree: nodes.document) -> None:
    """Set the recorded alt text on the page's images that have none, and drop the
    fixed height of those given a width."""
    for image in doctree.findall(nodes.image):
        if "width" in image and "height" in image:
            del image["height"]
        # where Sphinx found the file, relative to the source folder
        found = image.get("candidates", {}).get("*")
        if image.get("alt") or not found:
            continue
        alt = recorded_alt(str(Path(app.srcdir, found)))
        if alt:
            image["alt"] = alt


def setup(app: Sphinx) -> dict:
    """Run when each page is read, after Sphinx has found its images (so its
    stored doctree keeps the alt texts)."""
    app.connect("doctree-read", add_alt_texts, priority=800)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
