import pytest

import sbmm


def test_check_prints_a_claim_that_holds(capsys):
    sbmm.check(1 < 2, "one is less than two")
    assert capsys.readouterr().out == "✓ one is less than two\n"


def test_check_raises_quoting_a_claim_that_fails():
    with pytest.raises(AssertionError, match="claim does not hold: pigs fly"):
        sbmm.check(False, "pigs fly")
    with pytest.raises(TypeError):
        sbmm.check(True, "")
