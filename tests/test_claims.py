import numpy as np
import pytest

from sbmm import book
from sbmm.book.claims import STRICT_ENV, ClaimWarning
from sbmm.train import History, LrSweep, Replicas


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


def _history(valid: list[float]) -> History:
    """A History whose total and "click" validation losses are `valid`."""
    return History(
        valid_loss={"total": valid, "click": valid},
        valid_metrics=[{}] * len(valid),
        seconds=[0.0] * len(valid),
    )


def test_check_converged_names_the_run_seed_and_objective_that_had_not(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    done = Replicas([None, None], [_history([3, 2, 1, 1, 1])] * 2, (0, 1))
    late = Replicas([None], [_history([3, 2, 1])], (7,))
    book.check_converged({"shared": done})
    with pytest.raises(AssertionError, match=r"1 had not, single \(seed 7: total, "):
        book.check_converged({"shared": done, "single": late})
    book.check_converged({"single": late}, objectives=["nothing watched"])


def _sweep(means: list[float]) -> LrSweep:
    scores = np.array([[m, m] for m in means])
    return LrSweep((1e-3, 3e-3, 1e-2), (0, 1), scores, (None,) * 3)


def test_pick_lr_takes_the_best_inside_the_grid_and_claims_it(monkeypatch, capsys):
    monkeypatch.setenv(STRICT_ENV, "1")
    assert book.pick_lr("shared", _sweep([0.5, 0.4, 0.6])) == 3e-3
    assert "✓ shared: the learning rate chosen, 0.003, lies inside" in (
        capsys.readouterr().out
    )
    with pytest.raises(AssertionError, match="0.01, lies inside"):
        book.pick_lr("shared", _sweep([0.5, 0.4, 0.3]))


def test_pick_lr_on_an_edge_warns_a_reader_and_goes_on(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    with pytest.warns(ClaimWarning, match="0.001"):
        assert book.pick_lr("shared", _sweep([0.1, 0.4, 0.3])) == 1e-3
