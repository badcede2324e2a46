"""Conditional objectives trained on the entire space (ESMM, Ma et al., 2018).

A conditional objective (like given click) predicts p(like | click). Trained "masked",
it sees only clicked impressions. Trained on the entire space, its prediction is
multiplied along the chain of what it is given,
p(click ∧ like) = p(click) · p(like | click), and fitted against click · like on every
impression, so the conditional head never trains on the clicked sample alone. For a
regression objective the product is E[play_time] = p(click) · E[play_time | click].
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .data.batch import Batch
from .objectives import Objective, Tower, ancestors, declared, labelled_rows

__all__ = [
    "chain_of",
    "entire_space_inputs",
    "entire_space_logit",
    "joint_prediction",
]


@functools.lru_cache(maxsize=256)
def _chain(objective: Objective, towers: tuple[Tower, ...]) -> tuple[Objective, ...]:
    """What `objective` is given, and what that is given, up the chain; resolved once
    per model's towers (declarations are frozen), not at every step."""
    return tuple(ancestors(objective, declared(towers)))


def chain_of(objective: Objective, towers: Sequence[Tower]) -> tuple[Objective, ...]:
    """The objectives `objective` is given, nearest first (like → (click,)), as
    `towers` declare them; resolved once per towers."""
    return _chain(objective, tuple(towers))


def entire_space_logit(
    objective: Objective, predictions: Mapping[str, Tensor], towers: Sequence[Tower]
) -> Tensor:
    """The logit of the joint probability p(objective ∧ everything it is given) of a
    binary objective, from the model's conditional logits:
    log p = Σ log σ(logit) along the chain; logit = log p − log(1 − p).

    Finite for any finite logits: 1 − p is floored at 1e-7. (B,) → (B,).
    """
    log_p = F.logsigmoid(predictions[objective.name])
    for parent in _chain(objective, tuple(towers)):
        log_p = log_p + F.logsigmoid(predictions[parent.name])  # (B,)
    return log_p - torch.log(torch.clamp(-torch.expm1(log_p), min=1e-7))


def entire_space_inputs(
    objective: Objective,
    predictions: Mapping[str, Tensor],
    towers: Sequence[Tower],
    batch: Batch,
) -> tuple[Tensor, Tensor]:
    """(prediction, target) of an entire-space objective, both unconditional, over every
    sample.

    The target is the objective's label where every label along the chain is 1, and 0
    wherever the chain broke: there the label is not read at all (a table may hold NaN
    for the like of an unclicked impression)."""
    target = batch.labels[objective.target].to(
        predictions[objective.name].dtype
    )  # (B,)
    reached = labelled_rows(objective, batch.labels, towers)  # (B,) the chain holds
    target = torch.where(reached, target, 0.0)
    return joint_prediction(objective, predictions, towers), target


def joint_prediction(
    objective: Objective, predictions: Mapping[str, Tensor], towers: Sequence[Tower]
) -> Tensor:
    """An objective's prediction over every sample, from the model's conditional ones:
    for a binary objective the logit of p(objective ∧ everything it is given)
    (`entire_space_logit`), for a regression one p(everything it is given) ·
    E[objective | all of it]. An objective given nothing: its own prediction.
    (B,) or (B, dim) like the objective's prediction."""
    if objective.kind == "binary":
        return entire_space_logit(objective, predictions, towers)
    value = predictions[objective.name]
    chain = _chain(objective, tuple(towers))
    if not chain:
        return value
    log_p = sum(F.logsigmoid(predictions[parent.name]) for parent in chain)  # (B,)
    return torch.exp(log_p).view(-1, *[1] * (value.dim() - 1)) * value
