import pytest
import torch

import sbmm
from sbmm.train.config import architectures


def towers():
    return [
        sbmm.Tower(
            "scene1",
            [sbmm.Objective("click"), sbmm.Objective("stay_time", "regression")],
            hidden=(8,),
        ),
        sbmm.Tower("scene2", [sbmm.Objective("like", given="click")], hidden=(8,)),
    ]


FEATURES = [sbmm.Dense("x", 5), sbmm.Categorical("item", 7, dim=3)]


def batch(n=6):
    g = torch.Generator().manual_seed(0)
    return {
        "x": torch.randn(n, 5, generator=g),
        "item": torch.randint(0, 7, (n,), generator=g),
    }


# every exported architecture that mixes experts through gates
GATED = {n: c for n, c in architectures().items() if hasattr(c, "gate_weights")}


def test_the_gated_architectures_are_found():
    assert {"MMoE", "OMoE", "PLE"} <= set(GATED)


# {case: (class, options)}: each with its defaults (PLE's: one level, CGC), and a
# deeper PLE
CASES = {n: (c, {}) for n, c in GATED.items()} | {
    "PLE-3": (sbmm.PLE, {"n_specific": 2, "levels": 3})
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_tower_s_gate_weights_are_a_mix_of_experts(case):
    architecture, options = CASES[case]
    weights = architecture(FEATURES, towers(), **options).gate_weights(batch())
    assert list(weights) == ["scene1", "scene2"]
    for mix in weights.values():
        assert torch.allclose(mix.sum(1), torch.ones(6)) and (mix >= 0).all()


def test_mmoe_parameter_count_and_shared_parameters():
    model = sbmm.MMoE(FEATURES, towers(), n_experts=3, expert=(16, 8))
    d_in = 5 + 3
    expert = (d_in * 16 + 16) + (16 * 8 + 8)
    summary = model.parameter_summary()
    assert summary["experts"] == 3 * expert
    assert summary["gates"] == 2 * (d_in * 3 + 3)
    assert sum(p.numel() for p in model.shared_parameters()) == 7 * 3 + 3 * expert


def test_cgc_towers_only_reach_their_own_and_the_shared_experts():
    model = sbmm.PLE(FEATURES, towers(), n_specific=1, n_shared=1, expert=(8,))
    model(batch())["like"].sum().backward()
    level = model.levels[0]
    assert all(p.grad is None for p in level.specific["scene1"].parameters())
    assert all(p.grad is not None for p in level.specific["scene2"].parameters())
    assert all(p.grad is not None for p in level.shared.parameters())
    assert level.shared_gate is None  # a single level has no shared gate


def test_bad_gated_arguments_raise():
    with pytest.raises(ValueError, match="experts"):
        sbmm.MMoE(FEATURES, towers(), n_experts=0)
    with pytest.raises(ValueError, match="expert widths"):
        sbmm.MMoE(FEATURES, towers(), expert=())
    with pytest.raises(ValueError, match="levels"):
        sbmm.PLE(FEATURES, towers(), levels=0)
