"""Sample-loss reweighting: reading a weighted logistic regression's output back as an expectation.

Weighted logistic regression (Covington et al., 2016): train a binary objective (label y, e.g. click) with
each positive's loss weighted by a value T ≥ 0 it carries (e.g. its play time) and each negative's by 1.
At a point x, the weighted cross-entropy is minimised where the odds equal weighted positives over
weighted negatives:

    exp(logit) = E[T · y | x] / P(y = 0 | x) = E[T] / (1 − P),     with E[T] = P · E[T | y = 1].

So exp(logit) estimates the expected value per impression E[T], inflated by 1/(1 − P); it is close to
E[T] when P is small (a click rate of 10% inflates by about 11%).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["weighted_logit_to_expectation"]


def weighted_logit_to_expectation(logit: Tensor, p_positive: Tensor | None = None) -> Tensor:
    """E[T] per sample from the logit of a value-weighted logistic regression (see the module docstring).

    logit:      (B,) logits of a binary objective whose positives were weighted by T and negatives by 1.
    p_positive: (B,) the probability of a positive, P, from an unweighted model (or the truth); the
                result is then exp(logit)·(1 − P), exact at the optimum. Without it the result is
                exp(logit), which over-estimates E[T] by the factor 1/(1 − P): fine when P is small.
    Assumes the model reached the weighted optimum and that the weights were not normalised per batch
    (a constant rescaling of the positives' weights rescales the estimate by the same constant).
    """
    odds = torch.exp(logit)
    if p_positive is None:
        return odds
    if p_positive.shape != logit.shape:
        raise ValueError(f"p_positive must have the logit's shape {tuple(logit.shape)}, got {tuple(p_positive.shape)}")
    if bool(((p_positive < 0) | (p_positive > 1)).any()):
        raise ValueError("p_positive must be a probability in [0, 1]")
    return odds * (1 - p_positive)
