"""Serve MathJax from inside the built book, so that math renders without a network.

The MathJax 3 files come from the ``sphinx-mathjax-offline`` package (see
requirements.txt). Only the SVG bundle, which needs no font files, and the TeX
extensions that it loads on demand (``\\cancel``, ``\\bbox``, ...) are copied
into ``_static/mathjax``; the package's own Sphinx extension would copy all of
its 24 MB.
"""

import importlib.util
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset

PACKAGE = "sphinx-mathjax-offline"
BUNDLE = "tex-svg.js"
EXTENSIONS = Path("input", "tex", "extensions")


def mathjax_source() -> Path:
    """The folder of MathJax files that the installed package carries."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{PACKAGE} is missing: pip install -r requirements.txt")
    return Path(next(iter(spec.submodule_search_locations)), "static", "mathjax")


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    """Copy the bundle and its TeX extensions into the HTML output's _static."""
    if exception is not None or app.builder.format != "html":
        return
    source = mathjax_source()
    target = Path(app.outdir, "_static", "mathjax")
    copy_asset(str(source / BUNDLE), str(target))
    copy_asset(str(source / EXTENSIONS), str(target / EXTENSIONS))


def setup(app: Sphinx) -> dict:
    """Point Sphinx's mathjax_path at the local bundle and copy it after the build."""
    mathjax_source()
    app.config.mathjax_path = f"mathjax/{BUNDLE}"
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
