"""`DWA`: dynamic weight average (Liu et al., 2019)."""

from __future__ import annotations

from typing import Mapping

import torch

from ..models.base import MultiTaskModel
from ..validation import check_number
from .base import Weighting

__all__ = ["DWA"]


class DWA(Weighting):
    """Dynamic weight average (Liu et al., 2019).

    With r_o = L_o(t−1) / L_o(t−2), the ratio of an objective's mean loss over the last
    two epochs, epoch t weighs objective o by
    K · exp(r_o / T) / Σ_j exp(r_j / T)  (K objectives, temperature T), times its
    declared c_o. The first two epochs use weight 1. A loss that falls slowly gets more
    weight.
    """

    batchable = True

    STATE = ("history", "lambdas")

    def __init__(self, temperature: float = 2.0):
        check_number("DWA: temperature", temperature, strict=True)
        self.temperature = temperature

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        self.history: list[dict[str, float]] = []
        self.lambdas = {name: 1.0 for name in self.names}

    def weights(self) -> dict[str, float]:
        return {n: self.declared[n] * self.lambdas[n] for n in self.names}

    def end_epoch(self, epoch_losses: Mapping[str, float]) -> None:
        self.history.append({n: epoch_losses[n] for n in self.names})
        if len(self.history) < 2:
            return
        before, last = self.history[-2], self.history[-1]
        ratios = torch.tensor(
            [last[n] / max(before[n], 1e-12) for n in self.names], dtype=torch.float64
        )
        lambdas = len(self.names) * torch.softmax(ratios / self.temperature, dim=0)
        self.lambdas = dict(zip(self.names, lambdas.tolist()))
