import pytest
import torch

import sbmm


def test_profile_follows_the_environment(monkeypatch):
    monkeypatch.delenv("SBMM_PROFILE", raising=False)
    assert sbmm.profile().name == "default"
    monkeypatch.setenv("SBMM_PROFILE", "full")
    full = sbmm.profile()
    assert full.name == "full" and full.n_samples > sbmm.PROFILES["default"].n_samples
    monkeypatch.setenv("SBMM_PROFILE", "huge")
    with pytest.raises(ValueError, match="SBMM_PROFILE.*'huge'"):
        sbmm.profile()


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
            sbmm.use_profile() == sbmm.PROFILES["default"]
            and torch.get_num_threads() == 1
        )
        monkeypatch.setenv("SBMM_PROFILE", "full")
        torch.set_num_threads(2)
        # left to PyTorch
        assert sbmm.use_profile().threads is None and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
