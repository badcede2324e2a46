"""`RLW`: random loss weighting (Lin et al., 2021)."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from ..models.base import MultiTaskModel
from .base import Weighting

__all__ = ["RLW"]


class RLW(Weighting):
    """Random loss weighting (Lin et al., 2021, "Reasonable Effectiveness of Random
    Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022).

    Every step draws ε ~ N(0, I_K) and trains on Σ_o λ_o·c_o·L_o with
    λ = K·softmax(ε): the weights are random, positive, and sum to K.

    Differs from the paper by the factor K: the paper's λ = softmax(ε) sums to 1; here
    the weights sum to K, so that each λ_o has expectation 1 and a learning rate tuned
    for `Static`'s declared weights carries over. The draws come from torch's global
    generator on the model's device, which `fit(seed=...)` seeds and checkpoints
    restore.

    `weights()` are the expectation, the declared c_o (what validation's "total" and
    `keep_best` compare); `last` holds the last step's λ (K,). Not `batchable`:
    `fit_replicas` reads the weights once per epoch, and RLW's change every step.
    """

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        self.device = next(model.parameters()).device
        self.last = torch.ones(len(self.names), device=self.device)  # (K,)

    def draw(self) -> Tensor:
        """One draw of the weights λ = K·softmax(ε), ε ~ N(0, I): (K,)."""
        k = len(self.names)
        return k * torch.softmax(torch.randn(k, device=self.device), dim=0)

    def backward(self, losses: Mapping[str, Tensor]) -> Tensor:
        self.last = self.draw()  # (K,)
        terms = [self.declared[n] * losses[n] for n in self.names]
        (self.last * torch.stack(terms)).sum().backward()
        return sum(terms).detach()
