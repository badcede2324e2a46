import pytest
import torch

import sbmm
from sbmm import book


def test_profile_follows_the_environment(monkeypatch):
    monkeypatch.delenv("SBMM_PROFILE", raising=False)
    assert book.profile().name == "default"
    monkeypatch.setenv("SBMM_PROFILE", "full")
    full = book.profile()
    assert full.name == "full" and full.n_samples > book.PROFILES["default"].n_samples
    monkeypatch.setenv("SBMM_PROFILE", "huge")
    with pytest.raises(ValueError, match="SBMM_PROFILE.*'huge'"):
        book.profile()


def test_seed_everything_makes_torch_repeatable():
    sbmm.seed_everything(3)
    a = torch.randn(4)
    sbmm.seed_everything(3)
    assert torch.equal(a, torch.randn(4))
    with pytest.raises(TypeError):
        sbmm.seed_everything(1.5)


def test_default_device_is_cuda_only_when_available():
    assert sbmm.default_device().type == (
        "cuda" if torch.cuda.is_available() else "cpu"
    )


def test_use_profile_applies_the_thread_count(monkeypatch):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setenv("SBMM_PROFILE", "default")
        assert (
            book.use_profile() == book.PROFILES["default"]
            and torch.get_num_threads() == 1
        )
        monkeypatch.setenv("SBMM_PROFILE", "full")
        torch.set_num_threads(2)
        # left to PyTorch
        assert book.use_profile().threads is None and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_chapter_prints_not_converged_as_one_plain_line():
    import warnings

    from sbmm.train import NotConverged

    book.use_profile()
    message = NotConverged("still improving at the last epoch: 'click'")
    shown = warnings.formatwarning(message, NotConverged, "/tmp/ipykernel_7/1.py", 3)
    assert shown == "NotConverged: still improving at the last epoch: 'click'\n"
    other = warnings.formatwarning(UserWarning("other"), UserWarning, "/x.py", 3)
    assert other.startswith("/x.py:3: UserWarning: other")


def test_a_cell_s_not_converged_warnings_are_tallied_in_one_line():
    from sbmm.book.profiles import _tally
    from sbmm.train import NotConverged

    def warning(names, runs):
        w = NotConverged(f"still improving at the last epoch: {names}")
        w.objectives, w.runs = names, runs
        return w

    one = warning(("total", "click"), (1, 1))
    assert _tally([one]) == f"NotConverged: {one}"
    line = _tally([one, warning(("click", "like"), (3, 10))])
    assert line.startswith(
        "NotConverged: 2 training calls in this cell ended with 'total', 'click', "
        "'like' still improving at the last epoch (4 of their 11 runs)."
    )
