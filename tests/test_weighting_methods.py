"""The field's weighting methods, each against its paper on a case with a known answer
(MGDA's min-norm point, CAGrad at c = 0, Nash-MTL's bargaining equation, FAMO's
balance of loss decreases, RLW's draws, MetaBalance's magnitudes), then end to end
under `fit`."""

import math

import pytest
import torch
from test_weighting import data, losses_of, shared_bottom, towers

import sbmm
from sbmm.train.config import strategies
from sbmm.weighting import (
    FAMO,
    MGDA,
    RLW,
    CAGrad,
    MetaBalance,
    NashMTL,
    Static,
    flat_gradient,
    min_norm_weights,
)
from sbmm.weighting.cagrad import cagrad_direction
from sbmm.weighting.nash_mtl import nash_weights

NEW = [RLW, MGDA, CAGrad, NashMTL, FAMO, MetaBalance]


def gradients(model, losses):
    """G (2, n_shared): the gradients of c_o·L_o (c = 2, 0.5) on the shared
    parameters, and the first tower's ordinary gradient."""
    terms = [2.0 * losses["y1"], 0.5 * losses["y2"]]
    shared = model.shared_parameters()
    grads = torch.stack([flat_gradient(t, shared) for t in terms])
    (tower,) = torch.autograd.grad(
        terms[0], model.towers["a"][0].weight, retain_graph=True
    )
    return grads, tower


def shared_gradient(model):
    return torch.cat([p.grad.flatten() for p in model.shared_parameters()])


def run_backward(strategy, model=None):
    """Bind `strategy` to a shared bottom, take one backward on a batch; return the
    model, the plain gradients G and tower gradient, and the shared gradient set."""
    model = model or shared_bottom()
    strategy.bind(model)
    losses = losses_of(model, data())
    grads, tower = gradients(model, losses)
    strategy.backward(losses)
    return model, grads, tower, shared_gradient(model)


# MGDA (Sener & Koltun, 2018)


def test_mgda_two_gradients_give_the_closed_form_min_norm_point():
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    alpha = min_norm_weights(g @ g.T)
    # α_1 = (g2 − g1)·g2 / ‖g1 − g2‖² = 4 / 5
    assert torch.allclose(alpha, torch.tensor([0.8, 0.2], dtype=torch.float64))
    d = alpha @ g
    assert abs(float(d @ (g[0] - g[1]))) < 1e-12  # the foot of the perpendicular
    # a vertex when the segment's nearest point is an end: α = (1, 0)
    g = torch.tensor([[1.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(min_norm_weights(g @ g.T), torch.tensor([1.0, 0.0]).double())


def test_mgda_frank_wolfe_finds_the_min_norm_point_of_three_gradients():
    from scipy.optimize import minimize

    g = torch.randn(3, 5, generator=torch.Generator().manual_seed(0)).double()
    m = (g @ g.T).numpy()
    best = minimize(
        lambda a: a @ m @ a,
        [1 / 3] * 3,
        bounds=[(0, 1)] * 3,
        constraints={"type": "eq", "fun": lambda a: a.sum() - 1},
        tol=1e-14,
    )
    alpha = min_norm_weights(g @ g.T)
    assert torch.allclose(alpha, torch.from_numpy(best.x), atol=1e-5)
    assert math.isclose(alpha.sum().item(), 1.0) and (alpha >= 0).all()
    assert float(alpha @ g @ g.T @ alpha) == pytest.approx(best.fun, abs=1e-6)


def test_mgda_steps_the_shared_parameters_along_a_common_descent_direction():
    model, grads, tower, shared = run_backward(strategy := MGDA())
    alpha = min_norm_weights(grads @ grads.T).float()
    assert torch.allclose(shared, alpha @ grads, atol=1e-6)
    assert torch.allclose(strategy.alpha, alpha)
    assert (grads @ shared >= shared @ shared - 1e-6).all()  # d·g_o ≥ ‖d‖²
    assert torch.allclose(model.towers["a"][0].weight.grad, tower)  # its own gradient


# CAGrad (Liu et al., 2021)


def test_cagrad_at_c_zero_is_the_mean_gradient():
    _, grads, tower, shared = run_backward(CAGrad(c=0.0))
    assert torch.allclose(shared, grads.mean(0), atol=1e-7)


def test_cagrad_on_two_orthogonal_unit_gradients():
    # by symmetry w = (½, ½), g_w = g_0 and d = (1 + c)·g_0 / (1 + c²)
    g = torch.eye(2, dtype=torch.float64)
    d, w = cagrad_direction(g, c=0.5)
    assert torch.allclose(w, torch.tensor([0.5, 0.5]).double(), atol=1e-5)
    assert torch.allclose(d, torch.tensor([0.6, 0.6]).double(), atol=1e-5)


def test_cagrad_improves_the_worst_objective_within_its_ball():
    g = torch.tensor([[1.0, 0.0], [-0.5, 2.0]], dtype=torch.float64)
    c = 0.5
    d, _ = cagrad_direction(g, c)
    g0, raw = g.mean(0), d * (1 + c**2)
    assert float((raw - g0).norm()) == pytest.approx(c * float(g0.norm()), rel=1e-4)
    # no point of the ball's boundary does better for the worst objective
    angles = torch.linspace(0, 2 * math.pi, 2000, dtype=torch.float64)
    ring = g0 + c * g0.norm() * torch.stack([angles.cos(), angles.sin()], 1)
    assert float((g @ raw).min()) >= float((ring @ g.T).min(1).values.max()) - 1e-3


# Nash-MTL (Navon et al., 2022)


def test_nash_weights_on_orthogonal_gradients_solve_the_bargaining_equation():
    g = torch.tensor([[2.0, 0.0], [0.0, 0.5]], dtype=torch.float64)
    m = g @ g.T
    alpha = nash_weights(m)
    assert torch.allclose(alpha * (m @ alpha), torch.ones(2).double())
    assert torch.allclose(alpha, torch.tensor([0.5, 2.0]).double())  # α_o = 1/‖g_o‖


def test_nash_weights_solve_the_equation_for_conflicting_gradients():
    g = torch.tensor([[1.0, 0.2, 0.0], [-0.4, 1.0, 0.3], [0.1, -0.3, 2.0]]).double()
    m = g @ g.T
    alpha = nash_weights(m)
    assert (alpha > 0).all()
    assert torch.allclose(alpha * (m @ alpha), torch.ones(3).double(), atol=1e-10)
    # normalised as the paper's code does, α grows by ‖GᵀG‖_F^½
    scaled = nash_weights(m / m.norm())
    assert torch.allclose(scaled, alpha * m.norm().sqrt(), rtol=1e-8)


def test_nash_mtl_weights_the_shared_gradient_and_the_towers():
    strategy = NashMTL(normalize=False, max_norm=None)
    model, grads, tower, shared = run_backward(strategy)
    alpha = nash_weights(grads @ grads.T).float()
    assert torch.allclose(alpha * (grads @ shared), torch.ones(2), atol=1e-4)
    assert torch.allclose(shared, alpha @ grads, atol=1e-6)
    assert torch.allclose(model.towers["a"][0].weight.grad, alpha[0] * tower, atol=1e-6)
    _, _, _, clipped = run_backward(NashMTL(max_norm=0.1))
    assert float(clipped.norm()) == pytest.approx(0.1, rel=1e-4)


# FAMO (Liu et al., 2023)


def leaf_losses(y1, y2):
    return {
        "y1": torch.tensor(y1, requires_grad=True),
        "y2": torch.tensor(y2, requires_grad=True),
    }


def test_famo_weighs_each_loss_by_its_task_weight_over_its_value():
    strategy = FAMO()
    strategy.bind(shared_bottom())
    losses = leaf_losses(0.5, 2.0)
    total = strategy.backward(losses)
    assert float(total) == pytest.approx(2.0 * 0.5 + 0.5 * 2.0)
    # z = (½, ½) at first: ∂/∂L_o = c_o·z_o / (C·L_o), C = Σ z_o/L_o = 1.25
    assert float(losses["y1"].grad) == pytest.approx(2.0 * 0.5 / (1.25 * 0.5))
    assert float(losses["y2"].grad) == pytest.approx(0.5 * 0.5 / (1.25 * 2.0))


def test_famo_moves_weight_to_the_objective_whose_loss_falls_slowest():
    strategy = FAMO()
    strategy.bind(shared_bottom())
    for step in range(20):  # y1 halves every step, y2 falls by 1% a step
        strategy.backward(leaf_losses(0.5**step, 0.99**step))
    w = strategy.weights()
    assert w["y2"] / 0.5 > w["y1"] / 2.0  # task weights, the declared c_o divided out
    assert sum(w[n] / c for n, c in [("y1", 2.0), ("y2", 0.5)]) == pytest.approx(2)
    with pytest.raises(ValueError, match=r"\['y2'\].*min_losses"):
        strategy.backward(leaf_losses(1.0, -0.1))
    bounded = FAMO(min_losses={"y2": -1.0})
    bounded.bind(shared_bottom())
    bounded.backward(leaf_losses(1.0, -0.1))  # above its bound: trains
    with pytest.raises(ValueError, match="unknown objective"):
        FAMO(min_losses={"y3": 0.0}).bind(shared_bottom())


def test_famo_lets_an_objective_without_eligible_samples_sit_the_step_out():
    strategy = FAMO()
    strategy.bind(shared_bottom())
    strategy.backward(leaf_losses(1.0, 1.0))
    strategy.backward(leaf_losses(0.5, 1.0))  # y1 fell: y2 gains weight
    logits = strategy.logits.detach().clone()
    losses = leaf_losses(0.4, 0.0)  # no eligible y2 sample in this batch
    strategy.backward(losses)
    assert float(losses["y2"].grad) == 0 and float(losses["y1"].grad) > 0
    # δ counts y1 alone: ∇_ξ softmax(ξ)ᵀδ with δ = (log 0.5 − log 0.4, 0)
    assert strategy.logits[0] < logits[0] and strategy.logits[1] > logits[1]
    assert float(strategy.previous[1]) == 0.0  # y2's last log loss, log 1.0, kept


# RLW (Lin et al., 2021)


def test_rlw_weights_are_k_times_a_softmax_of_normal_draws():
    strategy = RLW()
    strategy.bind(shared_bottom())
    torch.manual_seed(7)
    expected = 2 * torch.softmax(torch.randn(2), 0)
    torch.manual_seed(7)
    losses = leaf_losses(1.0, 1.0)
    strategy.backward(losses)
    assert torch.allclose(strategy.last, expected)
    assert float(losses["y1"].grad) == pytest.approx(2.0 * float(expected[0]))
    assert float(losses["y2"].grad) == pytest.approx(0.5 * float(expected[1]))
    assert strategy.weights() == {"y1": 2.0, "y2": 0.5}  # the expectation


# MetaBalance (He et al., 2022)


def per_tensor_norms(model, flat):
    sizes = [p.numel() for p in model.shared_parameters()]
    return torch.stack([g.norm() for g in flat.split(sizes)])


def test_metabalance_at_full_relax_gives_each_auxiliary_gradient_the_target_s_norm():
    model, grads, tower, shared = run_backward(MetaBalance(relax=1.0, beta=0.0))
    target = per_tensor_norms(model, grads[0])
    auxiliary = per_tensor_norms(model, shared - grads[0])  # the rescaled g_y2
    assert torch.allclose(auxiliary, target, rtol=5e-3)  # 1e-5 added in the ratio
    assert torch.allclose(model.towers["a"][0].weight.grad, tower)


def test_metabalance_without_relax_is_the_plain_sum_and_targets_by_name():
    _, grads, _, shared = run_backward(MetaBalance(relax=0.0))
    assert torch.allclose(shared, grads.sum(0), atol=1e-6)
    model, grads, _, shared = run_backward(
        MetaBalance(target="y2", relax=1.0, beta=0.0)
    )
    target = per_tensor_norms(model, grads[1])
    auxiliary = per_tensor_norms(model, shared - grads[1])
    assert torch.allclose(auxiliary, target, rtol=5e-3)
    with pytest.raises(ValueError, match="unknown objective.*'y3'"):
        MetaBalance(target="y3").bind(shared_bottom())
    with pytest.raises(ValueError, match="relax"):
        MetaBalance(relax=1.5)


# every method


def test_the_methods_are_found_by_name_and_none_is_batchable():
    assert {c.__name__ for c in NEW} <= set(strategies())
    for strategy in NEW:
        assert not strategy.batchable
        with pytest.raises(ValueError, match="cannot batch"):
            sbmm.fit_replicas(shared_bottom, data(64), seeds=[0], weighting=strategy())


def test_the_gradient_methods_refuse_a_model_that_shares_nothing():
    model = sbmm.SingleTask([sbmm.Dense("x", 6)], towers(), bottom=(8,))
    for strategy in [MGDA, CAGrad, NashMTL, MetaBalance]:
        with pytest.raises(ValueError, match="shares none"):
            strategy().bind(model)


@pytest.mark.parametrize("strategy", [RLW, FAMO, MetaBalance])
def test_a_resumed_run_ends_where_the_uninterrupted_one_does(strategy, tmp_path):
    """The strategy's learned state (FAMO's logits and their optimiser, MetaBalance's
    moving norms) and RLW's draws (torch's generator) survive a checkpoint."""
    path, data_ = tmp_path / "run.pt", data()
    run = dict(batch_size=64, progress=False, seed=1)
    whole = sbmm.fit(shared_bottom(), data_, epochs=4, weighting=strategy(), **run)
    sbmm.fit(shared_bottom(), data_, epochs=2, weighting=strategy(), checkpoint=path,
             **run)  # fmt: skip
    resumed = sbmm.fit(
        shared_bottom(), data_, epochs=4, weighting=strategy(), checkpoint=path,
        resume=True, **run,
    )  # fmt: skip
    assert resumed.train_loss == whole.train_loss


@pytest.mark.parametrize("strategy", NEW)
@pytest.mark.parametrize("architecture", ["SharedBottom", "MMoE"])
def test_every_method_trains_end_to_end(strategy, architecture):
    sbmm.seed_everything(0)
    features = [sbmm.Dense("x", 6)]
    model = {
        "SharedBottom": lambda: sbmm.SharedBottom(features, towers(), bottom=(16, 8)),
        "MMoE": lambda: sbmm.MMoE(features, towers(), n_experts=3, expert=(8,)),
    }[architecture]()
    batch = data(512)
    before = sbmm.evaluate(model, batch)
    history = sbmm.fit(
        model, batch, epochs=4, batch_size=64, lr=1e-2, progress=False,
        weighting=strategy(),
    )  # fmt: skip
    after = sbmm.evaluate(model, batch)
    assert all(math.isfinite(v) for v in history.train_loss["total"])
    assert all(p.isfinite().all() for p in model.parameters())
    assert after["y1"]["rmse"] < before["y1"]["rmse"]
    assert after["y2"]["rmse"] < before["y2"]["rmse"]
    assert all(len(v) == 4 for v in history.weights.values())


def test_static_is_still_the_default_combination():
    model, grads, _, shared = run_backward(Static())
    assert torch.allclose(shared, grads.sum(0), atol=1e-6)


def test_mgda_frank_wolfe_approaches_the_exact_min_norm_point():
    from sbmm.weighting.mgda import frank_wolfe

    g = torch.randn(3, 5, generator=torch.Generator().manual_seed(0)).double()
    m = (g @ g.T).numpy()
    exact = min_norm_weights(g @ g.T).numpy()
    alpha = frank_wolfe(m, iterations=20000, tolerance=0.0)
    assert alpha @ m @ alpha == pytest.approx(exact @ m @ exact, rel=1e-3)


def test_mgda_leaves_a_zero_gradient_out_of_the_hull():
    strategy = MGDA()
    strategy.bind(shared_bottom())
    g = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    d = strategy.combine(g)  # y2 had no eligible sample: its gradient is 0
    assert torch.allclose(strategy.alpha, torch.tensor([0.8, 0.0, 0.2]))
    assert torch.allclose(d, torch.tensor([0.8, 0.4]))
