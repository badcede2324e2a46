"""Checks of the book itself: the chapters listed in _toc.yml are committed with
outputs, and the book builds with warnings as errors."""

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sbmm.book.prose import stale

ROOT = Path(__file__).resolve().parents[1]


def toc_documents() -> list[Path]:
    toc = (ROOT / "_toc.yml").read_text()
    names = re.findall(r"(?:file|root):\s*([^\s#]+)", toc)
    return [ROOT / name for name in names]


def notebooks() -> list[Path]:
    return [
        p.with_suffix(".ipynb")
        for p in toc_documents()
        if p.with_suffix(".ipynb").exists()
    ]


def test_every_toc_entry_exists_and_every_notebook_is_listed():
    for doc in toc_documents():
        assert doc.with_suffix(".ipynb").exists() or doc.with_suffix(".md").exists(), (
            f"{doc} is in _toc.yml but missing"
        )
    on_disk = set((ROOT / "book").glob("*.ipynb"))
    assert on_disk == set(notebooks()), (
        "every notebook in book/ must be listed in _toc.yml, and only those"
    )


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_is_committed_with_outputs(path):
    nb = json.loads(path.read_text())
    code = [
        c
        for c in nb["cells"]
        if c["cell_type"] == "code" and "".join(c["source"]).strip()
    ]
    assert code, f"{path.name} has no code"
    missing = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not missing, (
        f"{path.name}: code cells {missing} were committed without being run "
        "(`make notebooks`)"
    )
    silent = [i for i, c in enumerate(code) if not c.get("outputs")]
    assert not silent, (
        f"{path.name}: code cells {silent} have no output; the build would re-execute "
        "the notebook"
    )
    errors = [
        o.get("ename")
        for c in code
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, f"{path.name} stores errors: {errors}"
    assert any(
        re.search(r"^\s*(import sbmm|from sbmm)", "".join(c["source"]), re.M)
        for c in code
    ), f"{path.name} never imports sbmm"
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name} was not run top to bottom in one kernel: {counts}"
    )


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> Path:
    """Build the book once, with warnings as errors, and return its HTML folder."""
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    program = jupyter_book if jupyter_book.exists() else shutil.which("jupyter-book")
    command = [str(program), "build", "-W", "-n", "--keep-going"]
    command += ["--path-output", str(out), str(ROOT)]
    result = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out / "_build" / "html"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_the_prose_quotes_every_number_as_the_stored_run_recorded_it(path):
    """Numbers sit in the Markdown itself (sbmm.book.prose), so that JupyterLab shows
    them too; each quote equals its glue record, which nbval checks against a run."""
    nb = json.loads(path.read_text())
    roles = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "markdown" and "{glue" in "".join(c["source"])
    ]
    assert not roles, (
        f"{path.name}: cells {roles} use a {{glue}} role, which JupyterLab shows raw; "
        "quote the number as <!--glue:name-->value<!--/-->"
    )
    problems = stale(nb)
    assert not problems, (
        f"{path.name}: prose out of date (python -m sbmm.book.prose {path}): "
        + "; ".join(problems)
    )


@pytest.mark.book
def test_book_builds_without_a_warning(built_book):
    html = built_book
    assert (html / "index.html").exists()
    for doc in toc_documents():
        page = html / doc.relative_to(ROOT).with_suffix(".html")
        assert page.exists(), f"{page} was not built"


class _ExternalResources(HTMLParser):
    """Collects the scripts and stylesheets that a page loads from outside the book."""

    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script":
            url = values.get("src", "")
        elif tag == "link" and "stylesheet" in values.get("rel", "").lower().split():
            url = values.get("href", "")
        else:
            return
        if url.lower().startswith(("http://", "https://", "//")):
            self.external.append(f"<{tag}> {url}")


@pytest.mark.book
def test_pages_load_no_script_or_stylesheet_from_outside_the_book(built_book):
    """Opened from disk without a network, every page must still have its scripts
    (MathJax included) and styles."""
    pages = sorted(built_book.rglob("*.html"))
    assert pages
    found = {}
    for page in pages:
        parser = _ExternalResources()
        parser.feed(page.read_text(encoding="utf-8"))
        if parser.external:
            found[str(page.relative_to(built_book))] = parser.external
    assert not found, f"pages load from outside the book: {found}"
    mathjax = built_book / "_static" / "mathjax" / "tex-svg.js"
    assert mathjax.exists(), "the book's own MathJax bundle was not copied"


@pytest.mark.book
def test_one_citation_style_in_the_text_and_the_references(built_book):
    """The text cites "(Caruana, 1997)" and the references page labels the entry the
    same way, not with pybtex's alpha labels such as "Car97"."""
    intro = re.sub(r"<[^>]+>", "", (built_book / "book" / "intro.html").read_text())
    refs = re.sub(r"<[^>]+>", "", (built_book / "book" / "references.html").read_text())
    assert "Caruana, 1997" in intro
    assert "Caruana, 1997" in refs and "Ma et al., 2018a" in refs
    assert not re.search(r"\[?\b[A-Z][a-z]{1,2}\+?\d{2}[a-z]?\]", refs), "alpha labels"


@pytest.mark.book
def test_the_intro_and_the_chapters_link_their_terms_to_the_glossary(built_book):
    """The intro and the chapters link their terms to the glossary ({term} roles)."""
    linked = [
        page.name
        for page in sorted((built_book / "book").glob("*.html"))
        if 'href="glossary.html#term-' in page.read_text(encoding="utf-8")
    ]
    pages = {"intro.html", *(p.with_suffix(".html").name for p in notebooks())}
    assert pages <= set(linked), sorted(pages - set(linked))
