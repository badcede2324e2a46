"""Post-click objectives trained on every impression by inverse propensities: IPS and
the doubly robust (DR) estimator (ESCM², Wang et al., 2022).

A like is observed only where a click happened (o_i = 1). The masked loss averages
the like loss ℓ_i = ℓ(r_i, r̂_i) over the clicked impressions, so it estimates the loss
over the clicked ones, not over every impression a ranker scores. Weighting each
clicked impression by the inverse of its click probability p_i makes the average an
estimate over every impression:

    L_IPS = (1/N) Σ_i o_i ℓ_i / p̂_i                          (unbiased when p̂ = p)
    L_DR  = (1/N) Σ_i [ ê_i + o_i (ℓ_i − ê_i) / p̂_i ]        (unbiased when p̂ = p
                                                              or ê_i = E[ℓ_i])
    L_IMP = Σ_i o_i (ê_i − ℓ_i)² / Σ_i o_i                    (fits the imputation)
    L_IMP = (1/N) Σ_i o_i (ê_i − ℓ_i)² / p̂_i                  (propensity_weighted:
                                                              DR-JL, ESCM²)

ESCM² (spaces "escm2_ips", "escm2_dr") adds ESMM's entire-space loss to L_IPS or L_DR:
L = L_CTCVR + λ L_IPS|DR, λ the objective's counterfactual_weight.

p̂_i is the model's own probability of what the objective is given (the product along
its chain), detached, so that weighting never trains the click head, and clipped below
at the objective's `propensity_floor`. ê_i, the imputed error, is the prediction of
the objective that imputes it; it is detached in L_DR (the term 1 − o_i / p̂_i would
otherwise push it, with no information about the error, towards its bounds) and
fitted by L_IMP to the detached ℓ_i. So the conditional head's gradient is L_IPS's;
what DR changes is the estimate of the loss (its variance shrinks as ê_i nears ℓ_i),
which validation and early stopping read, and what the imputation teaches the shared
layers. N and Σ o_i are means over data-parallel ranks through `across`.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from . import kinds
from .conditional import chain_of, chain_rows
from .data.batch import Batch
from .objectives import Objective, Tower

__all__ = ["dr_losses", "ips_loss", "observed_loss", "propensity"]

# The mean over data-parallel ranks of a batch count (`sbmm.losses.Across`); None: one
# process.
Across = Callable[[Tensor], Tensor] | None


def propensity(
    objective: Objective, predictions: Mapping[str, Tensor], towers: Sequence[Tower]
) -> Tensor:
    """(B,) p̂: the model's probability of everything `objective` is given (p(click),
    or p(stay) · p(click | stay) up a longer chain), detached and clipped below at its
    `propensity_floor`."""
    log_p = sum(
        F.logsigmoid(predictions[parent.name].detach())
        for parent in chain_of(objective, towers)
    )  # (B,)
    return torch.exp(log_p).clamp_min(objective.propensity_floor)


def observed_loss(
    objective: Objective,
    predictions: Mapping[str, Tensor],
    towers: Sequence[Tower],
    batch: Batch,
) -> tuple[Tensor, Tensor]:
    """(o, ℓ), both (B,): o is 1. where every label along `objective`'s chain is 1 (the
    label was observed), ℓ its per-sample loss there (its kind's: binary cross-entropy
    on its conditional logit, squared error, ...) and 0 elsewhere, where the label is
    not read (a table may hold NaN for the like of an unclicked impression)."""
    prediction = predictions[objective.name]  # (B,) or (B, outputs)
    reached = chain_rows(objective, batch.labels, towers)  # (B,) the chain holds
    target = batch.labels[objective.target].to(prediction.dtype)
    target = torch.where(reached, target, 0.0)
    row = reached.view(-1, *[1] * (prediction.dim() - 1))  # broadcast over outputs
    prediction = torch.where(row, prediction, 0.0)
    loss = kinds.get(objective.kind).loss(prediction, target)  # (B,)
    return reached.to(loss.dtype), torch.where(reached, loss, 0.0)


def _mean(total: Tensor, count: Tensor, across: Across) -> Tensor:
    count = count.to(total.dtype)
    if across is not None:
        count = across(count)
    return total / count.clamp_min(1)


def ips_loss(
    objective: Objective,
    predictions: Mapping[str, Tensor],
    towers: Sequence[Tower],
    batch: Batch,
    across: Across = None,
) -> Tensor:
    """L_IPS of a space="ips" objective: (1/N) Σ o_i ℓ_i / p̂_i, a scalar."""
    o, loss = observed_loss(objective, predictions, towers, batch)
    p = propensity(objective, predictions, towers)
    n = torch.tensor(len(o), device=o.device)
    return _mean((o * loss / p).sum(), n, across)


def dr_losses(
    objective: Objective,
    imputation: Objective,
    predictions: Mapping[str, Tensor],
    towers: Sequence[Tower],
    batch: Batch,
    across: Across = None,
) -> tuple[Tensor, Tensor]:
    """(L_DR, L_IMP), two scalars: the loss of a space="dr" objective and that of the
    objective that imputes its error."""
    o, loss = observed_loss(objective, predictions, towers, batch)
    p = propensity(objective, predictions, towers)
    imputed = predictions[imputation.name]  # (B,) ê
    e_hat = imputed.detach()
    n = torch.tensor(len(o), device=o.device)
    dr = _mean((e_hat + o * (loss - e_hat) / p).sum(), n, across)
    residual = torch.where(o > 0, imputed - loss.detach(), 0.0)  # (B,)
    if imputation.propensity_weighted:  # DR-JL, ESCM²: over every impression
        return dr, _mean((residual**2 / p).sum(), n, across)
    return dr, _mean((residual**2).sum(), o.sum(), across)
