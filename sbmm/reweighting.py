"""Sample-loss reweighting: what per-sample weights do to a binary objective's optimum, and how to read a
weighted model's output back.

Weighted binary cross-entropy, with weight w_i on sample i, is minimised, among the samples a model
cannot tell apart (a group, or one point x), where the odds equal weighted positives over weighted
negatives:

    exp(logit*) = Σ_i w_i y_i / Σ_i w_i (1 − y_i)                (`weighted_optimal_logit`)

Weighted logistic regression (Covington et al., 2016) weights each positive (a click) by a value T ≥ 0 it
carries (its play time) and each negative by 1. At a point x the optimum is then

    exp(logit*) = E[T · y | x] / P(y = 0 | x) = E[T] / (1 − P),     with E[T] = P · E[T | y = 1],

so exp(logit) estimates the expected value per impression E[T], inflated by 1/(1 − P); it is close to
E[T] when P is small (a click rate of 10% inflates by about 11%) (`weighted_logit_to_expectation`).

`sbmm.diagnostics.GradientNorm` records what heavy-tailed weights do to the size of the optimiser's steps.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["weighted_optimal_logit", "weighted_logit_to_expectation"]


def weighted_optimal_logit(labels: Tensor, weights: Tensor, groups: Tensor, n_groups: int | None = None) -> Tensor:
    """The logit that minimises weighted binary cross-entropy in each group: log(Σ w·y / Σ w·(1 − y)).

    labels:   (N,) 0/1 labels.
    weights:  (N,) per-sample loss weights >= 0.
    groups:   (N,) integer group of each sample, in [0, n_groups).
    n_groups: number of groups; max(groups) + 1 by default.
    Returns (n_groups,) float64 logits: +inf for a group with no weighted negative, -inf with no weighted
    positive, NaN for an empty group.
    """
    if not (labels.shape == weights.shape == groups.shape and labels.dim() == 1):
        raise ValueError(
            f"labels, weights and groups must be (N,) tensors of one shape, got "
            f"{tuple(labels.shape)}, {tuple(weights.shape)}, {tuple(groups.shape)}"
        )
    if groups.is_floating_point() or bool((groups < 0).any()):
        raise ValueError("groups must be integer ids >= 0")
    n_groups = int(groups.max()) + 1 if n_groups is None else n_groups
    y, w = labels.double(), weights.double()
    positive = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, groups.long(), w * y)  # (G,)
    negative = torch.zeros(n_groups, dtype=torch.float64).index_add_(0, groups.long(), w * (1 - y))  # (G,)
    return torch.log(positive) - torch.log(negative)


def weighted_logit_to_expectation(logit: Tensor, p_positive: Tensor | None = None, weight_scale: float = 1.0) -> Tensor:
    """E[T] per sample from the logit of a value-weighted logistic regression (see the module docstring).

    logit:        (B,) logits of a binary objective whose positives were weighted by T and negatives by 1.
    p_positive:   (B,) the probability of a positive, P, from an unweighted model (or the truth); the
                  result is then exp(logit)·(1 − P), exact at the optimum. Without it the result is
                  exp(logit), which over-estimates E[T] by the factor 1/(1 − P): fine when P is small.
    weight_scale: the number the positives' weights were divided by (a fixed normalisation, or, for
                  a per-batch mean, about the positives' mean T over the data); the result is
                  multiplied by it.
    Assumes the model reached the weighted optimum.
    """
    if not (isinstance(weight_scale, (int, float)) and math.isfinite(weight_scale) and weight_scale > 0):
        raise ValueError(f"weight_scale must be a finite number > 0, got {weight_scale!r}")
    odds = torch.exp(logit) * weight_scale
    if p_positive is None:
        return odds
    if p_positive.shape != logit.shape:
        raise ValueError(f"p_positive must have the logit's shape {tuple(logit.shape)}, got {tuple(p_positive.shape)}")
    if bool(((p_positive < 0) | (p_positive > 1)).any()):
        raise ValueError("p_positive must be a probability in [0, 1]")
    return odds * (1 - p_positive)
