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
    assert sbmm.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
