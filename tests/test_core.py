"""`import sbmm` is the library alone: no plotting, tables, notebook packages or the
book's own helpers until they are used; `sbmm.__all__` holds the library's public
names, the weighting strategies included, and the book's none."""

import subprocess
import sys
from pathlib import Path

import pytest

import sbmm
from sbmm import book, weighting

ROOT = Path(__file__).resolve().parents[1]
# what `import sbmm` must not load: they wait until a figure is drawn, a table shown,
# a real table read, or the book imported
NOT_ON_IMPORT = ("matplotlib", "pandas", "tabulate", "IPython", "sbmm.book")


def run(code: str) -> str:
    """The standard output of `code` run in a fresh interpreter in the repository."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_sbmm_loads_the_library_alone():
    loaded = run(
        "import sys, sbmm\n"
        f"print(*sorted(m for m in {NOT_ON_IMPORT} if m in sys.modules))"
    ).split()
    assert loaded == []


def test_what_waits_is_there_when_used():
    """The pandas-backed names and the plotting and fusion modules import on first
    use; `sbmm.compare` stays the function after its module is imported elsewhere (as
    the book does)."""
    out = run(
        "import sys, sbmm\n"
        "from sbmm import book\n"
        "import sbmm.compare, sbmm.plot\n"
        "print(sbmm.load_census.__module__, sbmm.TableEncoder.__module__)\n"
        "print(sbmm.fusion.__name__, sbmm.data.encoding.__name__)\n"
        "print(callable(sbmm.compare), 'pandas' in sys.modules)"
    )
    assert out.split() == [
        "sbmm.data.census",
        "sbmm.data.encoding",
        "sbmm.fusion",
        "sbmm.data.encoding",
        "True",
        "True",
    ]


def test_every_public_name_resolves():
    assert len(set(sbmm.__all__)) == len(sbmm.__all__)
    assert all(hasattr(sbmm, name) for name in sbmm.__all__)
    assert all(hasattr(sbmm.data, name) for name in sbmm.data.__all__)
    assert set(sbmm.__all__) <= set(dir(sbmm))
    with pytest.raises(AttributeError, match="'sbmm' has no attribute 'fitt'"):
        getattr(sbmm, "fitt")
    with pytest.raises(AttributeError, match="'sbmm.data' has no attribute 'Bach'"):
        getattr(sbmm.data, "Bach")


def test_the_weighting_strategies_are_top_level():
    strategies = [
        name
        for name, value in vars(weighting).items()
        if isinstance(value, type) and issubclass(value, weighting.Weighting)
    ]
    assert {"Weighting", "Static", "Uncertainty", "GradNorm"} <= set(strategies)
    for name in strategies:
        assert name in sbmm.__all__ and getattr(sbmm, name) is getattr(weighting, name)


def test_the_books_names_and_the_internals_are_not_the_librarys():
    private = {*book.__all__, "admitted", "check_labels"}
    assert not private & set(sbmm.__all__)
    assert not any(hasattr(sbmm, name) for name in private)
