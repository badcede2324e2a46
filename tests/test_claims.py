import pytest

from sbmm import book
from sbmm.book.claims import STRICT_ENV, ClaimWarning


def test_check_prints_a_claim_that_holds(capsys):
    book.check(1 < 2, "one is less than two")
    assert capsys.readouterr().out == "✓ one is less than two\n"


def test_in_the_books_own_runs_a_false_claim_raises_quoting_it(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(AssertionError, match="claim does not hold: pigs fly"):
        book.check(False, "pigs fly")
    with pytest.raises(TypeError):
        book.check(True, "")


def test_in_a_readers_session_a_false_claim_warns_and_the_chapter_goes_on(
    monkeypatch, capsys
):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    with pytest.warns(ClaimWarning, match="pigs fly"):
        book.check(False, "pigs fly")
    assert capsys.readouterr().out == "✗ pigs fly\n"


def test_a_long_claim_is_wrapped_to_the_books_column(capsys):
    claim = "the shared model closes more of the gap than " * 4
    book.check(True, claim.strip())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and all(len(line) <= 88 for line in lines)
    assert lines[0].startswith("✓ the shared") and lines[1].startswith("  ")
    assert " ".join(line.strip() for line in lines) == f"✓ {claim.strip()}"
