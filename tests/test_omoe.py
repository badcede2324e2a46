"""OMoE, the one-gate control of MMoE: one gate that every tower reads."""

import pytest
import torch

import sbmm

FEATURES = [sbmm.Dense("x", 5), sbmm.Categorical("item", 7, dim=3)]
D_IN = 5 + 3


def towers():
    return [
        sbmm.Tower("scene1", [sbmm.Objective("click")], hidden=(8,)),
        sbmm.Tower("scene2", [sbmm.Objective("like", given="click")], hidden=(8,)),
    ]


def batch(n=6):
    g = torch.Generator().manual_seed(0)
    return {
        "x": torch.randn(n, 5, generator=g),
        "item": torch.randint(0, 7, (n,), generator=g),
    }


def test_one_gate_is_shared_by_every_tower():
    model = sbmm.OMoE(FEATURES, towers(), n_experts=3, expert=(16, 8))
    assert list(model.gates) == ["shared"]
    summary = model.parameter_summary()
    assert summary["gates"] == D_IN * 3 + 3  # one gate: (d_in → n_experts)
    weights = model.gate_weights(batch())
    assert list(weights) == ["scene1", "scene2"]
    assert torch.equal(weights["scene1"], weights["scene2"])  # (B, 3), the same mix
    assert weights["scene1"].shape == (6, 3)
    assert torch.allclose(weights["scene1"].sum(1), torch.ones(6))
    # Every tower reads the same representation.
    h = model.represent(model.inputs(batch()))
    assert torch.equal(h["scene1"], h["scene2"])


def test_mmoe_keeps_a_gate_per_tower():
    model = sbmm.MMoE(FEATURES, towers(), n_experts=3, expert=(8,))
    assert list(model.gates) == ["scene1", "scene2"]
    weights = model.gate_weights(batch())
    assert not torch.equal(weights["scene1"], weights["scene2"])


def test_every_objective_reaches_the_shared_gate_and_experts():
    model = sbmm.OMoE(FEATURES, towers(), n_experts=3, expert=(8,))
    gate = list(model.gates["shared"].parameters())
    shared_ids = {id(p) for p in model.shared_parameters()}
    assert all(id(p) in shared_ids for p in gate)
    for objective in ("click", "like"):
        model.zero_grad()
        model(batch())[objective].sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gate)
        assert all(p.grad is not None for p in model.experts.parameters())
    # and a tower's loss does not reach the other tower
    model.zero_grad()
    model(batch())["click"].sum().backward()
    assert all(p.grad is None for p in model.towers["scene2"].parameters())


def test_bad_omoe_arguments_raise():
    with pytest.raises(ValueError, match="experts"):
        sbmm.OMoE(FEATURES, towers(), n_experts=0)
    with pytest.raises(ValueError, match="experts"):
        sbmm.OMoE(FEATURES, towers(), n_experts=2.5)
    with pytest.raises(ValueError, match="expert widths"):
        sbmm.OMoE(FEATURES, towers(), expert=())
    with pytest.raises(ValueError, match="expert widths"):
        sbmm.OMoE(FEATURES, towers(), expert=(8, 0))
