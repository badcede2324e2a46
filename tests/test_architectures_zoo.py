"""The field's architectures (AITM, cross-stitch, DSelect-k, AdaTT): the property that
defines each. The model contract every architecture keeps runs on them in
tests/test_models.py, which takes every architecture `sbmm.models` exports."""

import pytest
import test_models as contract
import torch

import sbmm
from sbmm.models.adatt import AdaTT
from sbmm.models.aitm import AITM
from sbmm.models.cross_stitch import CrossStitch
from sbmm.models.dselect_k import DSelectK, smooth_step


def features():
    return contract.features()


def batch(n=8):
    return contract.feed_features(n)


def three_steps():
    """Impression → click → like → share, one tower a step."""
    return [
        sbmm.Tower(name, [sbmm.Objective(name)], hidden=(4,))
        for name in ("click", "like", "share")
    ]


def perturbed(model, modules, scale=0.5):
    """`model` with every parameter of `modules` moved by noise."""
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.add_(scale * torch.randn_like(p))
    return model


# AITM (Xi et al., 2021)


def test_aitm_transfers_from_an_earlier_step_to_a_later_one_only():
    torch.manual_seed(0)
    model, x = AITM(features(), three_steps(), task=(8, 6)), batch()
    before = model(x)
    later = [
        model.tasks["like"], model.transfers["like"], model.units["like"],
        model.towers["like"], model.tasks["share"], model.units["share"],
    ]  # fmt: skip
    after = perturbed(model, later)(x)
    assert torch.equal(after["click"], before["click"])  # blind to what follows
    assert not torch.allclose(after["like"], before["like"])
    changed = perturbed(model, [model.tasks["click"]])(x)
    assert not torch.allclose(changed["share"], after["share"])  # reads what came
    model.zero_grad()
    model(x)["click"].sum().backward()
    assert all(p.grad is None for m in later for p in m.parameters())


def test_aitm_attention_weighs_the_transferred_and_the_own_representation():
    model = AITM(features(), three_steps(), task=(8, 6))
    weights = model.transfer_weights(batch(5))
    assert list(weights) == ["like", "share"]  # the first step receives nothing
    for w in weights.values():
        assert w.shape == (5, 2) and torch.allclose(w.sum(1), torch.ones(5))
    shared = {id(p) for p in model.shared_parameters()}
    read_by_later = [model.tasks["click"], model.tasks["like"], model.units["like"]]
    assert all(id(p) in shared for m in read_by_later for p in m.parameters())
    assert not any(id(p) in shared for p in model.tasks["share"].parameters())


# Cross-stitch (Misra et al., 2016)


def test_cross_stitch_units_start_at_the_paper_s_weights_and_mix_columns(
    two_scene_towers,
):
    model = CrossStitch(features(), two_scene_towers, column=(8, 6))
    alpha = model.stitches[0].alpha.detach()
    assert torch.allclose(alpha, torch.tensor([[0.9, 0.1], [0.1, 0.9]]))
    h = torch.randn(3, 2, 5)
    mixed = model.stitches[0](h)
    assert torch.allclose(mixed[:, 0], 0.9 * h[:, 0] + 0.1 * h[:, 1])


def test_cross_stitch_with_identity_units_is_one_network_per_tower(two_scene_towers):
    model = CrossStitch(features(), two_scene_towers, column=(8, 6))
    with torch.no_grad():
        for stitch in model.stitches:
            stitch.alpha.copy_(torch.eye(2))
    model(batch())["click"].sum().backward()
    own = [p for layer in model.layers for p in layer[0].parameters()]
    other = [p for layer in model.layers for p in layer[1].parameters()]
    assert all(p.grad.abs().sum() > 0 for p in own)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in other)


# DSelect-k (Hazimeh et al., 2021)


def test_the_smooth_step_is_zero_and_one_outside_its_width():
    t = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    assert torch.equal(smooth_step(t, gamma=1.0), torch.tensor([0, 0, 0.5, 1, 1.0]))
    t = torch.tensor([-0.5, 0.5], requires_grad=True)
    (grad,) = torch.autograd.grad(smooth_step(t, 1.0).sum(), t)
    assert torch.allclose(grad, torch.zeros(2), atol=1e-6)  # C¹ at the ends


def saturate(gate, experts):
    """Set `gate`'s selectors to pick `experts` (one each) for every input: the codes
    read no input, and their logits sit far outside the smooth step's width."""
    with torch.no_grad():
        gate.codes.weight.zero_()
        bits = (torch.tensor(experts)[:, None] >> torch.arange(gate.m)) & 1  # (k, m)
        gate.codes.bias.copy_((4.0 * (2 * bits - 1)).flatten().float())


def test_dselect_k_selects_exactly_k_experts_once_its_steps_saturate(two_scene_towers):
    model = DSelectK(features(), two_scene_towers, n_experts=8, k=3, expert=(6,))
    x = batch(6)
    soft = model.gate_weights(x)["scene1"]
    assert torch.allclose(soft.sum(1), torch.ones(6)) and (soft > 0).all()
    gate = model.gates["scene1"]
    saturate(gate, [1, 4, 6])
    hard = model.gate_weights(x)["scene1"]  # (B, 8)
    assert ((hard > 0).sum(1) == 3).all()
    assert (hard[:, [1, 4, 6]] > 0).all() and torch.allclose(hard.sum(1), torch.ones(6))
    mix = torch.softmax(gate.mix(model.inputs(x)), -1)  # the selectors' weights
    assert torch.allclose(hard[:, [1, 4, 6]], mix)


def test_dselect_k_folds_codes_beyond_the_experts_onto_them(two_scene_towers):
    model = DSelectK(features(), two_scene_towers, n_experts=5, k=2, expert=(6,))
    gate = model.gates["scene2"]
    assert gate.m == 3  # 8 codes for 5 experts
    saturate(gate, [6, 2])  # code 6 names no expert: it counts for expert 1
    hard = model.gate_weights(batch(4))["scene2"]
    assert ((hard > 0).sum(1) == 2).all() and (hard[:, [1, 2]] > 0).all()
    with pytest.raises(ValueError, match="k must be"):
        DSelectK(features(), two_scene_towers, n_experts=3, k=4)
    with pytest.raises(TypeError, match="gate_batch_norm"):
        DSelectK(features(), two_scene_towers, gate_batch_norm=True)


# AdaTT (Li et al., 2023)


def test_adatt_fuses_every_task_s_experts_and_adds_its_own(two_scene_towers):
    model = AdaTT(features(), two_scene_towers, n_experts=2, expert=(6,), levels=1)
    level, x = model.levels[0], model.inputs(batch(5))
    inputs = {"scene1": x, "scene2": x}
    own, every = level.fuse(inputs)
    assert every.shape == (5, 4, 6)  # T·m experts
    w = level.gates["scene2"].weights(x)  # (B, 4): a softmax over all of them
    assert torch.allclose(w.sum(1), torch.ones(5))
    v = level.residual["scene2"].weight[0]  # (m,)
    expected = torch.einsum("be,bed->bd", w, every) + v[0] * own["scene2"][:, 0]
    expected = expected + v[1] * own["scene2"][:, 1]
    assert torch.allclose(level(inputs)["scene2"], expected, atol=1e-6)


def test_adatt_a_task_reaches_every_task_s_experts_but_not_another_s_gate(
    two_scene_towers,
):
    model = AdaTT(features(), two_scene_towers, n_experts=1, expert=(6,), levels=2)
    model(batch())["click"].sum().backward()
    for level in model.levels:
        assert all(p.grad.abs().sum() > 0 for p in level.experts.parameters())
    top = model.levels[-1]
    assert all(p.grad is None for p in top.gates["scene2"].parameters())
    assert top.residual is None  # one expert per task: the residual is that expert
    one_level = AdaTT(features(), two_scene_towers, levels=1)
    shared = {id(p) for p in one_level.shared_parameters()}
    assert not any(id(p) in shared for p in one_level.levels[0].gates.parameters())
    with pytest.raises(ValueError, match="levels"):
        AdaTT(features(), two_scene_towers, levels=0)
