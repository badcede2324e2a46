"""`GradNorm`: gradient normalisation (Chen et al., 2018)."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from ..models.base import MultiTaskModel
from ..validation import check_number
from .base import Weighting

__all__ = ["GradNorm"]


class GradNorm(Weighting):
    """GradNorm (Chen et al., 2018): learn weights that balance the objectives' gradient
    norms.

    W is the model's last shared layer (the last weight matrix among
    `shared_parameters()`). Each step, with weights w_o (initially 1) and relative
    inverse training rates r_o = (L_o(t)/L_o(0)) / mean_j(·):

        G_o = ‖∇_W w_o·c_o·L_o‖,   target_o = mean_j(G_j) · r_o^α   (held constant),
        L_grad = Σ_o |G_o − target_o|   trains the w_o;
        Σ_o w_o·c_o·L_o trains the model.

    After each optimiser step the weights are renormalised to sum to the number of
    objectives.
    α: how strongly to pull lagging objectives up (the paper's asymmetry; 1.5 by
    default).
    """

    STATE = ("w", "initial")
    takes_gradients = True

    def __init__(self, alpha: float = 1.5):
        check_number("GradNorm: alpha", alpha)
        self.alpha = alpha

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        matrices = [p for p in model.shared_parameters() if p.dim() >= 2]
        if not matrices:
            raise ValueError(
                f"GradNorm needs a shared layer, and {type(model).__name__} shares none"
            )
        self.layer = matrices[-1]
        device = self.layer.device
        self.w = nn.Parameter(
            torch.ones(len(self.names), device=device)
        )  # (n_objectives,)
        self.initial: Tensor | None = None

    def parameters(self) -> list[nn.Parameter]:
        return [self.w]

    def weights(self) -> dict[str, float]:
        return {
            n: self.declared[n] * w
            for n, w in zip(self.names, self.w.detach().tolist())
        }

    def backward(self, losses: Mapping[str, Tensor]) -> Tensor:
        terms = torch.stack(
            [self.declared[n] * losses[n] for n in self.names]
        )  # (n_objectives,)
        if self.initial is None:
            self.initial = terms.detach().clamp_min(1e-12)
        norms = torch.stack(
            [
                torch.autograd.grad(
                    self.w[i] * terms[i],
                    self.layer,
                    retain_graph=True,
                    create_graph=True,
                )[0].norm()
                for i in range(len(self.names))
            ]
        )  # (n_objectives,): G_o, differentiable in w
        ratio = terms.detach() / self.initial
        target = (norms.mean() * (ratio / ratio.mean()) ** self.alpha).detach()
        (self.w.grad,) = torch.autograd.grad(
            (norms - target).abs().sum(), self.w, retain_graph=True
        )
        total = (self.w.detach() * terms).sum()
        total.backward()
        return total.detach()

    def after_step(self) -> None:
        with torch.no_grad():
            self.w.clamp_(min=1e-6)
            self.w.mul_(len(self.names) / self.w.sum())
