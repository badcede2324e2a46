"""Checks of the book itself: the chapters listed in _toc.yml are committed with outputs, and the book
builds with warnings as errors."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def toc_documents() -> list[Path]:
    toc = (ROOT / "_toc.yml").read_text()
    names = re.findall(r"(?:file|root):\s*([^\s#]+)", toc)
    return [ROOT / name for name in names]


def notebooks() -> list[Path]:
    return [p.with_suffix(".ipynb") for p in toc_documents() if p.with_suffix(".ipynb").exists()]


def test_every_toc_entry_exists_and_every_notebook_is_listed():
    for doc in toc_documents():
        assert doc.with_suffix(".ipynb").exists() or doc.with_suffix(".md").exists(), f"{doc} is in _toc.yml but missing"
    on_disk = set((ROOT / "book").glob("*.ipynb"))
    assert on_disk == set(notebooks()), "every notebook in book/ must be listed in _toc.yml, and only those"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_is_committed_with_outputs(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert code, f"{path.name} has no code"
    missing = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not missing, f"{path.name}: code cells {missing} were committed without being run (`make notebooks`)"
    silent = [i for i, c in enumerate(code) if not c.get("outputs")]
    assert not silent, f"{path.name}: code cells {silent} have no output; the build would re-execute the notebook"
    errors = [o.get("ename") for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} stores errors: {errors}"
    assert any(re.search(r"^\s*(import sbmm|from sbmm)", "".join(c["source"]), re.M) for c in code), f"{path.name} never imports sbmm"
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name} was not run top to bottom in one kernel: {counts}"


@pytest.mark.book
def test_book_builds_without_a_warning(tmp_path):
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book if jupyter_book.exists() else shutil.which("jupyter-book")), "build", "-W", "-n", "--keep-going", "--path-output", str(tmp_path), str(ROOT)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    assert (html / "index.html").exists()
    for doc in toc_documents():
        page = html / doc.relative_to(ROOT).with_suffix(".html")
        assert page.exists(), f"{page} was not built"
