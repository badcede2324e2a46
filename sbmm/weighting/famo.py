"""`FAMO`: fast adaptive multitask optimisation (Liu et al., 2023)."""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import Tensor, nn

from ..models.base import MultiTaskModel
from ..validation import check_number
from .base import Weighting

__all__ = ["FAMO"]


class FAMO(Weighting):
    """Fast adaptive multitask optimisation (Liu et al., NeurIPS 2023): balance the
    objectives' rates of loss decrease with one backward pass a step.

    Task weights z = softmax(ξ) over K learned logits ξ. Each step trains on

        Σ_o c_o·z_o·log(L_o − L*_o) / C,   C = Σ_o z_o/(L_o − L*_o)  (held constant),

    so objective o's gradient is weighted c_o·z_o/(C·(L_o − L*_o)): a smaller loss
    gets a larger weight, as in gradient descent on log losses. Then ξ takes one Adam
    step (rate `lr`, weight decay `gamma`) along ∇_ξ softmax(ξ)ᵀδ, δ_o the decrease
    of log(L_o − L*_o) since the step before: an objective whose loss fell the least
    gains weight.

    lr, gamma:  the logits' Adam rate and weight decay (the paper's regularisation
                coefficient); 0.025 and 0.01 by default, the paper's code's (LibMTL
                uses 0.025 and 0.001).
    min_losses: {objective: L*_o}, a lower bound of its loss (0 by default; give one
                for an objective whose loss can be negative, such as a log-normal
                likelihood). A loss below its bound raises a ValueError naming it
                (checked each step: one host synchronisation); a loss at its bound
                (a masked objective with no eligible sample in the batch: 0) sits the
                step out, neither trained nor moving its weight.

    Differs from the paper's code: δ compares this step's losses with the last step's,
    on another batch, where the paper's code measures the decrease on the same batch
    with one more forward pass after the optimiser's step; the shared gradient is not
    clipped (the paper's code clips its norm to 1); and the declared c_o multiply the
    paper's weights (its log form is blind to a loss's scale, so they would otherwise
    be ignored). `weights()` are the learned task weights K·z_o·c_o (what the History
    records and validation's "total" compares). Neither `batchable` nor allowed under
    DDP (`takes_gradients`): the logits learn every step from the process's losses.
    """

    # its logits learn from this process's losses, which DDP would not keep in step
    takes_gradients = True
    STATE = ("logits", "previous", "seen", "optimizer_state")

    def __init__(
        self,
        lr: float = 0.025,
        gamma: float = 0.01,
        min_losses: Mapping[str, float] | None = None,
    ):
        check_number("FAMO: lr", lr, strict=True)
        check_number("FAMO: gamma", gamma)
        self.lr, self.gamma = lr, gamma
        self.min_losses = dict(min_losses or {})
        for name, bound in self.min_losses.items():
            check_number(
                f"FAMO: the loss bound of objective {name!r}", bound, minimum=-math.inf
            )

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        self._check_names(self.min_losses, "min_losses")
        device = next(model.parameters()).device
        k = len(self.names)
        # ξ: (K,), trained by FAMO's own optimiser, not the model's
        self.logits = nn.Parameter(torch.zeros(k, device=device))
        self.optimizer = torch.optim.Adam(
            [self.logits], lr=self.lr, weight_decay=self.gamma
        )
        self.bound = torch.tensor(
            [self.min_losses.get(n, 0.0) for n in self.names], device=device
        )  # L*: (K,)
        self.previous: Tensor | None = None  # log(L − L*) when last present: (K,)
        self.seen = torch.zeros(k, dtype=torch.bool, device=device)  # present once

    @property
    def optimizer_state(self) -> dict:
        return self.optimizer.state_dict()

    @optimizer_state.setter
    def optimizer_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)

    def weights(self) -> dict[str, float]:
        z = torch.softmax(self.logits.detach(), 0) * len(self.names)  # (K,)
        return {n: self.declared[n] * w for n, w in zip(self.names, z.tolist())}

    def backward(self, losses: Mapping[str, Tensor]) -> Tensor:
        values = torch.stack([losses[n] for n in self.names])  # (K,)
        gap = values - self.bound  # L − L*: (K,)
        if bool((gap.detach() < 0).any()):
            low = [n for n, g in zip(self.names, gap.tolist()) if g < 0]
            raise ValueError(
                f"FAMO needs every loss above its lower bound; {low} are below: give "
                "FAMO(min_losses={objective: bound}) below them"
            )
        present = gap.detach() > 0  # (K,) False: no eligible sample in this batch
        log_gap = torch.where(present, gap, 1.0).log()  # (K,), 0 where absent
        if self.previous is not None:
            both = present & self.seen
            self._update_logits(torch.where(both, self.previous - log_gap.detach(), 0))
            self.previous = torch.where(present, log_gap.detach(), self.previous)
        else:
            self.previous = log_gap.detach()
        self.seen = self.seen | present
        c = torch.tensor([self.declared[n] for n in self.names]).to(values)
        z = torch.softmax(self.logits.detach(), 0) * present  # (K,)
        norm = (z / torch.where(present, gap.detach(), 1.0)).sum()  # C
        (c * z * log_gap / norm.clamp_min(1e-20)).sum().backward()
        return (c * values).sum().detach()

    def _update_logits(self, decrease: Tensor) -> None:
        """One Adam step on ξ along ∇_ξ softmax(ξ)ᵀδ, δ (K,) the decrease of the log
        losses."""
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(
                torch.softmax(self.logits, 0), self.logits, grad_outputs=decrease
            )
        self.logits.grad = grad
        self.optimizer.step()
