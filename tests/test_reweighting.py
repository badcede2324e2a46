import pytest
import torch

import sbmm
from sbmm.diagnostics import GradientNorm
from sbmm.sample_weights import (
    weighted_logit_to_approximate_expectation,
    weighted_logit_to_expectation,
    weighted_optimal_logit,
)


def fit_group_logits(
    objective: sbmm.Objective, data: sbmm.Batch, group: torch.Tensor, n_groups: int
) -> torch.Tensor:
    """The free logit per group that minimises `objective`'s loss on `data` (L-BFGS),
    detached: (n_groups,).

    Fitted in float64 with tight tolerances, so that the optimum is reached on any CPU,
    not only near it.
    """
    data = sbmm.Batch(
        data.features, {name: label.double() for name, label in data.labels.items()}
    )
    logits = torch.zeros(n_groups, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [logits],
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = sbmm.objective_loss(objective, logits[group], data)
        loss.backward()
        return loss

    opt.step(closure)
    return logits.detach()


def test_weighted_logistic_regression_recovers_the_expected_value():
    """Fit one logit per group by weighted BCE; exp(logit)·(1 − P) must equal
    E[T] = P·E[T | y=1]."""
    g = torch.Generator().manual_seed(0)
    n_groups, n = 4, 200_000
    group = torch.randint(0, n_groups, (n,), generator=g)
    pos = torch.tensor([0.05, 0.1, 0.3, 0.5])
    mean_t = torch.tensor([10.0, 30.0, 5.0, 20.0])
    y = (torch.rand(n, generator=g) < pos[group]).float()
    t = (
        y * mean_t[group] * torch.empty(n).exponential_(generator=g)
    )  # E[T | y=1] = mean_t
    data = sbmm.Batch({}, {"y": y, "t": t})
    objective = sbmm.Objective(
        "y", sample_weight=lambda b: torch.where(b.labels["y"] > 0, b.labels["t"], 1.0)
    )
    logits = fit_group_logits(objective, data, group, n_groups)
    # At the optimum, exactly: exp(logit) = Σ T / #negatives, so with the group's own
    # positive rate it reads back the group's mean T, and with no rate it is that mean
    # inflated by 1 / (1 − rate).
    in_group = torch.stack(
        [group == k for k in range(n_groups)]
    ).double()  # (groups, n)
    rate, mean_t_seen = (
        in_group @ y.double() / in_group.sum(1),
        in_group @ t.double() / in_group.sum(1),
    )
    assert torch.allclose(
        weighted_logit_to_expectation(logits, rate), mean_t_seen, rtol=1e-6
    )
    assert torch.allclose(
        weighted_logit_to_expectation(logits), mean_t_seen / (1 - rate), rtol=1e-6
    )
    # and with the true P it estimates the true E[T]
    e_t = (pos * mean_t).double()
    assert torch.allclose(
        weighted_logit_to_expectation(logits, pos.double()), e_t, rtol=0.05
    )
    # YouTube's first-order reading, exp(logit) / (1 + P), is that mean over 1 − P².
    approximate = weighted_logit_to_approximate_expectation(logits, rate)
    assert torch.allclose(approximate, mean_t_seen / (1 - rate**2), rtol=1e-6)


def test_the_approximate_read_back_errs_by_its_closed_form_factor():
    """At the optimum logit log(E[T] / (1 − P)), the zeroth-order reading exp(logit) is
    E[T] / (1 − P) and the first-order one E[T] / (1 − P²); both are exact at P = 0 and
    the first-order one is the closer for every P in (0, 1)."""
    p = torch.tensor([0.0, 0.1, 0.5, 0.9], dtype=torch.float64)
    e_t = torch.tensor([3.0, 3.0, 10.0, 0.5], dtype=torch.float64)
    logit = torch.log(e_t / (1 - p))
    exact = weighted_logit_to_expectation(logit, p)
    zeroth = weighted_logit_to_expectation(logit)
    first = weighted_logit_to_approximate_expectation(logit, p)
    assert torch.allclose(exact, e_t)
    assert torch.allclose(zeroth, e_t / (1 - p))
    assert torch.allclose(first, e_t / (1 - p**2))
    assert first[0] == pytest.approx(3.0) and zeroth[0] == pytest.approx(3.0)
    assert torch.all((first[1:] - e_t[1:]) < (zeroth[1:] - e_t[1:]))
    # 11% and 1% over at P = 0.1; 100% and 33% over at P = 0.5
    assert float(zeroth[1] / e_t[1]) == pytest.approx(1 / 0.9)
    assert float(first[2] / e_t[2]) == pytest.approx(4 / 3)
    scaled = weighted_logit_to_approximate_expectation(logit, p, weight_scale=20.0)
    assert torch.allclose(scaled, 20 * first)


def test_bad_probabilities_raise():
    with pytest.raises(ValueError, match="shape"):
        weighted_logit_to_approximate_expectation(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        weighted_logit_to_approximate_expectation(torch.zeros(1), torch.tensor([-0.1]))
    with pytest.raises(ValueError, match="weight_scale"):
        weighted_logit_to_approximate_expectation(
            torch.zeros(1), torch.zeros(1), weight_scale=-1.0
        )
    with pytest.raises(ValueError, match="shape"):
        weighted_logit_to_expectation(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        weighted_logit_to_expectation(torch.zeros(2), torch.tensor([0.5, 1.5]))


def test_the_closed_form_optimum_matches_a_fitted_logit_per_group():
    """weighted_optimal_logit is the minimiser of weighted BCE with one free logit per
    group, any weights."""
    g = torch.Generator().manual_seed(1)
    n, n_groups = 5_000, 5
    group = torch.randint(0, n_groups, (n,), generator=g)
    y = (torch.rand(n, generator=g) < torch.linspace(0.1, 0.6, n_groups)[group]).float()
    w = torch.rand(n, generator=g) * 3
    closed = weighted_optimal_logit(y, w, group)
    logits = fit_group_logits(
        sbmm.Objective("y", sample_weight="w"),
        sbmm.Batch({}, {"y": y, "w": w}),
        group,
        n_groups,
    )
    assert torch.allclose(logits, closed, atol=1e-6)
    # Weights of 1 give the group's plain log-odds.
    ones = weighted_optimal_logit(y, torch.ones(n), group)
    rate = torch.stack([y[group == k].mean() for k in range(n_groups)]).double()
    assert torch.allclose(ones, torch.log(rate / (1 - rate)))


def test_closed_form_edge_cases_and_bad_input():
    y, w = torch.tensor([1.0, 1.0, 0.0]), torch.ones(3)
    out = weighted_optimal_logit(y, w, torch.tensor([0, 1, 1]), n_groups=3)
    assert out[0] == float("inf") and out[1] == 0 and torch.isnan(out[2])
    with pytest.raises(ValueError, match="shape"):
        weighted_optimal_logit(y, torch.ones(2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="groups"):
        weighted_optimal_logit(y, w, torch.tensor([0.0, 1.0, 1.0]))


def test_weight_scale_undoes_a_fixed_normalisation():
    logit = torch.tensor([0.0, 1.0])
    assert torch.allclose(
        weighted_logit_to_expectation(logit, weight_scale=20.0), 20 * torch.exp(logit)
    )
    with pytest.raises(ValueError, match="weight_scale"):
        weighted_logit_to_expectation(logit, weight_scale=0.0)


def test_gradient_norm_is_recorded_every_few_steps_and_scales_with_a_constant_weight():
    """With lr 0 the model never moves, so weighing every sample 5 multiplies every
    recorded norm by 5."""
    g = torch.Generator().manual_seed(0)
    labels = {
        "click": (torch.rand(64, generator=g) < 0.5).float(),
        "c": torch.full((64,), 5.0),
    }
    data = sbmm.Batch({"x": torch.randn(64, 3, generator=g)}, labels)
    norms = {}
    for name, weight in (("plain", None), ("times 5", "c")):
        sbmm.seed_everything(0)
        towers = [
            sbmm.Tower(
                "t", [sbmm.Objective("click", sample_weight=weight)], hidden=(4,)
            )
        ]
        model = sbmm.SharedBottom([sbmm.Dense("x", 3)], towers, bottom=(8,))
        recorder = GradientNorm("click", every=2)
        frozen = lambda params: torch.optim.SGD(params, lr=0.0)  # noqa: E731
        sbmm.fit(
            model,
            data,
            epochs=2,
            batch_size=16,
            seed=0,
            progress=False,
            device="cpu",
            optimizer=frozen,
            callbacks=[recorder],
        )
        assert recorder.steps == [0, 2, 4, 6]
        norms[name] = torch.tensor(recorder.norms)
        assert torch.all(norms[name] > 0)
    assert torch.allclose(norms["times 5"], 5 * norms["plain"], rtol=1e-4)


def model_gradient_norm(model, data):
    model.zero_grad()
    sbmm.objective_loss(
        model.objectives[0], model(data.features)["click"], data
    ).backward()
    return float(torch.sqrt(sum(p.grad.square().sum() for p in model.parameters())))


def test_gradient_norm_matches_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    data = sbmm.Batch(
        {"x": torch.randn(32, 3, generator=g)},
        {"click": (torch.rand(32, generator=g) < 0.5).float()},
    )
    sbmm.seed_everything(0)
    model = sbmm.SharedBottom(
        [sbmm.Dense("x", 3)],
        [sbmm.Tower("t", [sbmm.Objective("click")], hidden=(4,))],
        bottom=(8,),
    )
    expected = model_gradient_norm(model, data)
    recorder = GradientNorm("click")
    _, losses = sbmm.multitask_loss(model.tower_specs, model(data.features), data)
    recorder(0, model, losses)
    assert recorder.norms[0] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="'like'"):
        GradientNorm("like")(0, model, losses)
    with pytest.raises(ValueError, match="every"):
        GradientNorm("click", every=0)
