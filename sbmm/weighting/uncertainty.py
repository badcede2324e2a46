"""`Uncertainty`: homoscedastic-uncertainty weighting (Kendall et al., 2018)."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from ..models.base import MultiTaskModel
from .base import Weighting

__all__ = ["Uncertainty"]


class Uncertainty(Weighting):
    """Homoscedastic-uncertainty weighting (Kendall et al., 2018).

    One learned log-variance s_o = log σ_o² per objective:
    L = Σ_o ½·exp(−s_o)·c_o·L_o + ½·s_o.
    For a fixed loss value ℓ the term is minimised at s = log ℓ, so the weight
    ½·exp(−s) settles at 1/(2ℓ): objectives with larger losses (noisier ones) are
    weighted down.
    """

    STATE = ("log_var",)

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        device = next(model.parameters()).device
        self.log_var = nn.Parameter(
            torch.zeros(len(self.names), device=device)
        )  # (n_objectives,)

    def parameters(self) -> list[nn.Parameter]:
        return [self.log_var]

    def weights(self) -> dict[str, float]:
        w = (0.5 * torch.exp(-self.log_var.detach())).tolist()
        return {name: self.declared[name] * wi for name, wi in zip(self.names, w)}

    def backward(self, losses: Mapping[str, Tensor]) -> Tensor:
        terms = torch.stack(
            [self.declared[n] * losses[n] for n in self.names]
        )  # (n_objectives,)
        precision = 0.5 * torch.exp(-self.log_var)  # (n_objectives,)
        (precision * terms + 0.5 * self.log_var).sum().backward()
        return (precision * terms).sum().detach()
