import math

import pytest
import torch

import sbmm
from sbmm.weighting import DWA, GradNorm, PCGrad, Static, Uncertainty, project_conflicts


def towers():
    return [
        sbmm.Tower("a", [sbmm.Objective("y1", "regression", weight=2.0)], hidden=(8,)),
        sbmm.Tower("b", [sbmm.Objective("y2", "regression")], hidden=(8,), weight=0.5),
    ]


def data(n=256):
    return sbmm.data.correlated_tasks(n=n, p=0.5, d=6, seed=0)


def shared_bottom(seed=0):
    sbmm.seed_everything(seed)
    return sbmm.SharedBottom([sbmm.Dense("x", 6)], towers(), bottom=(16, 8))


def losses_of(model, batch):
    return sbmm.objective_losses(model.tower_specs, model(batch.features), batch)


def test_static_uses_the_declared_weights_or_the_given_ones():
    model, batch = shared_bottom(), data()
    strategy = Static()
    strategy.bind(model)
    losses = losses_of(model, batch)
    total = strategy.backward(losses)
    assert math.isclose(
        float(total),
        float(2.0 * losses["y1"].detach() + 0.5 * losses["y2"].detach()),
        rel_tol=1e-6,
    )
    given = Static(
        {"y2": 3.0}
    )  # replaces y2's own weight (1), inside its tower (weight 0.5)
    given.bind(model)
    assert given.weights() == {"y1": 2.0, "y2": 0.5 * 3.0}
    with pytest.raises(ValueError, match="unknown objective.*'y3'"):
        Static({"y3": 1.0}).bind(model)


def test_uncertainty_settles_where_its_formula_says():
    model = shared_bottom()
    strategy = Uncertainty()
    strategy.bind(model)
    fixed = {
        "y1": torch.tensor(0.3),
        "y2": torch.tensor(4.0),
    }  # constant losses: only s_o learns
    opt = torch.optim.Adam(strategy.parameters(), lr=0.05)
    for _ in range(2000):
        opt.zero_grad()
        strategy.backward(fixed)
        opt.step()
    # minimum of ½·exp(−s)·c·L + ½·s is at s = log(c·L)
    expected = torch.log(torch.tensor([2.0 * 0.3, 0.5 * 4.0]))
    assert torch.allclose(strategy.log_var.detach(), expected, atol=1e-3)


def test_pcgrad_projection_matches_the_formula_and_removes_conflicts():
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    out = project_conflicts(g)
    assert torch.allclose(out[0], torch.tensor([0.5, 0.5]))  # g1 − (g1·g2/‖g2‖²) g2
    assert torch.allclose(out[1], torch.tensor([0.0, 1.0]))  # g2 − (g2·g1/‖g1‖²) g1
    assert out[0] @ g[1] >= -1e-7 and out[1] @ g[0] >= -1e-7
    agreeing = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert torch.equal(project_conflicts(agreeing), agreeing)


def test_pcgrad_sets_the_shared_gradients_to_the_projected_sum():
    model, batch = shared_bottom(), data()
    strategy = PCGrad()
    strategy.bind(model)
    losses = losses_of(model, batch)
    terms = [2.0 * losses["y1"], 0.5 * losses["y2"]]
    shared = model.shared_parameters()
    grads = torch.stack(
        [
            torch.cat(
                [g.flatten() for g in torch.autograd.grad(t, shared, retain_graph=True)]
            )
            for t in terms
        ]
    )
    (plain,) = torch.autograd.grad(
        terms[0], model.towers["a"][0].weight, retain_graph=True
    )
    torch.manual_seed(5)
    expected = project_conflicts(grads).sum(0)
    torch.manual_seed(5)
    strategy.backward(losses)
    got = torch.cat([p.grad.flatten() for p in shared])
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(
        model.towers["a"][0].weight.grad, plain
    )  # towers keep their ordinary gradients


def test_gradnorm_differentiates_the_last_shared_layers_gradient_norms():
    model, batch = shared_bottom(), data()
    strategy = GradNorm(alpha=1.5)
    strategy.bind(model)
    assert strategy.layer is model.bottom[2].weight  # the last shared weight matrix
    losses = losses_of(model, batch)
    terms = torch.stack([2.0 * losses["y1"], 0.5 * losses["y2"]])
    norms = torch.stack(
        [
            torch.autograd.grad(t, strategy.layer, retain_graph=True)[0].norm()
            for t in terms
        ]
    )
    strategy.backward(losses)
    # At the first step r_o = 1, so target_o = mean(G) and
    # dL_grad/dw_o = sign(G_o − mean G)·‖∇_W c_o L_o‖ (w = 1).
    expected = torch.sign(norms - norms.mean()) * norms
    assert torch.allclose(strategy.w.grad, expected, rtol=1e-4)


def test_gradnorm_weights_keep_summing_to_the_number_of_objectives():
    model = shared_bottom()
    strategy = GradNorm()
    history = sbmm.fit(
        model, data(), epochs=3, batch_size=64, progress=False, weighting=strategy
    )
    assert math.isclose(float(strategy.w.detach().sum()), 2.0, rel_tol=1e-5)
    assert len(history.weights["y1"]) == 3
    with pytest.raises(ValueError, match="shares none"):
        GradNorm().bind(sbmm.SingleTask([sbmm.Dense("x", 6)], towers(), bottom=(8,)))


def test_dwa_follows_its_formula_with_temperature_two():
    strategy = DWA()
    strategy.bind(shared_bottom())
    strategy.end_epoch({"y1": 1.0, "y2": 1.0})
    assert strategy.lambdas == {"y1": 1.0, "y2": 1.0}  # the first two epochs weigh 1
    strategy.end_epoch({"y1": 0.5, "y2": 0.9})
    r = torch.tensor([0.5, 0.9], dtype=torch.float64)
    expected = 2 * torch.exp(r / 2) / torch.exp(r / 2).sum()
    assert torch.allclose(
        torch.tensor(
            [strategy.lambdas["y1"], strategy.lambdas["y2"]], dtype=torch.float64
        ),
        expected,
    )
    assert strategy.weights()["y1"] == pytest.approx(2.0 * expected[0].item())
    with pytest.raises(ValueError, match="temperature"):
        DWA(temperature=0)


@pytest.mark.parametrize("strategy", [Static, Uncertainty, GradNorm, DWA, PCGrad])
@pytest.mark.parametrize("architecture", ["SharedBottom", "MMoE", "PLE"])
def test_every_strategy_trains_every_model(strategy, architecture):
    sbmm.seed_everything(0)
    features = [sbmm.Dense("x", 6)]
    model = {
        "SharedBottom": lambda: sbmm.SharedBottom(features, towers(), bottom=(16, 8)),
        "MMoE": lambda: sbmm.MMoE(features, towers(), n_experts=3, expert=(8,)),
        "PLE": lambda: sbmm.PLE(features, towers(), expert=(8,), levels=2),
    }[architecture]()
    batch = data(512)
    before = sbmm.evaluate(model, batch)
    history = sbmm.fit(
        model,
        batch,
        epochs=4,
        batch_size=64,
        lr=1e-2,
        progress=False,
        weighting=strategy(),
    )
    after = sbmm.evaluate(model, batch)
    assert all(math.isfinite(v) for v in history.train_loss["total"])
    assert (
        after["y1"]["rmse"] < before["y1"]["rmse"]
        and after["y2"]["rmse"] < before["y2"]["rmse"]
    )
    assert set(history.weights) == {"y1", "y2"} and all(
        len(v) == 4 for v in history.weights.values()
    )


def test_fit_rejects_what_is_not_a_strategy():
    with pytest.raises(TypeError, match="weighting"):
        sbmm.fit(shared_bottom(), data(), weighting={"y1": 1.0}, progress=False)
