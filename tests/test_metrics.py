import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from sbmm.metrics import excess_log_loss, truth_auc


def world(n=400, seed=0):
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(size=n)))
    return p, rng


def test_truth_auc_is_the_mean_auc_over_drawn_labels():
    p, rng = world()
    score = p + rng.normal(scale=0.1, size=len(p))  # a noisy model
    drawn = np.mean([roc_auc_score(rng.random(len(p)) < p, score) for _ in range(2000)])
    assert truth_auc(score, p) == pytest.approx(drawn, abs=0.003)
    assert truth_auc(p, p) > truth_auc(score, p)  # the truth ranks best
    assert truth_auc(np.zeros_like(p), p) == pytest.approx(0.5)
    assert truth_auc(-p, p) == pytest.approx(1 - truth_auc(p, p))
    # monotone
    assert truth_auc(
        torch.tensor(np.log(p / (1 - p))), torch.tensor(p)
    ) == pytest.approx(truth_auc(p, p))


def test_excess_log_loss_is_the_mean_kl_divergence():
    p, rng = world()
    q = np.clip(p + rng.normal(scale=0.05, size=len(p)), 0.01, 0.99)
    kl = np.mean(p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)))
    assert excess_log_loss(q, p) == pytest.approx(kl, rel=1e-6)
    assert math.isclose(excess_log_loss(p, p), 0.0, abs_tol=1e-12)


@pytest.mark.parametrize(
    "score, p, message",
    [
        (np.zeros(3), np.full(4, 0.5), "one length"),
        (np.array([0.0, np.nan]), np.array([0.5, 0.5]), "NaN"),
        (np.zeros(2), np.array([0.5, 1.5]), "p_true.*probabilities"),
    ],
)
def test_bad_inputs_raise(score, p, message):
    with pytest.raises(ValueError, match=message):
        truth_auc(score, p)
    with pytest.raises(ValueError, match="q must hold probabilities"):
        excess_log_loss(np.array([2.0, 0.5]), np.array([0.5, 0.5]))
