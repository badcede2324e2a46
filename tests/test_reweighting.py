import pytest
import torch

import sbmm
from sbmm.reweighting import weighted_logit_to_expectation


def test_weighted_logistic_regression_recovers_the_expected_value():
    """Fit one logit per group by weighted BCE; exp(logit)·(1 − P) must equal E[T] = P·E[T | y=1]."""
    g = torch.Generator().manual_seed(0)
    n_groups, n = 4, 200_000
    group = torch.randint(0, n_groups, (n,), generator=g)
    p = torch.tensor([0.05, 0.1, 0.3, 0.5])[group]
    mean_t = torch.tensor([10.0, 30.0, 5.0, 20.0])[group]
    y = (torch.rand(n, generator=g) < p).float()
    t = y * mean_t * torch.distributions.Exponential(1.0).sample((n,))  # E[T | y=1] = mean_t
    data = sbmm.Batch({}, {"y": y, "t": t})
    objective = sbmm.Objective("y", sample_weight=lambda b: torch.where(b.labels["y"] > 0, b.labels["t"], 1.0))
    logits = torch.zeros(n_groups, requires_grad=True)
    opt = torch.optim.LBFGS([logits], max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = sbmm.objective_loss(objective, logits[group], data)
        loss.backward()
        return loss

    opt.step(closure)
    pos = torch.tensor([0.05, 0.1, 0.3, 0.5])
    e_t = pos * torch.tensor([10.0, 30.0, 5.0, 20.0])
    estimate = weighted_logit_to_expectation(logits.detach(), pos)
    assert torch.allclose(estimate, e_t, rtol=0.05)
    inflated = weighted_logit_to_expectation(logits.detach())
    assert torch.allclose(inflated, e_t / (1 - pos), rtol=0.05)


def test_bad_probabilities_raise():

    with pytest.raises(ValueError, match="shape"):
        weighted_logit_to_expectation(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        weighted_logit_to_expectation(torch.zeros(2), torch.tensor([0.5, 1.5]))
