"""Conditional objectives trained on the entire space (ESMM, Ma et al., 2018).

A conditional objective (like given click) predicts p(like | click). Trained "masked",
it sees only clicked impressions. Trained on the entire space, its prediction is
multiplied along the chain of what it is given,
p(click ∧ like) = p(click) · p(like | click), and fitted against click · like on every
impression, so the conditional head never trains on the clicked sample alone. For a
regression objective the product is E[play_time] = p(click) · E[play_time | click].
How the product is formed in each kind's outputs is the kind's (`Kind.joint`).
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

from torch import Tensor

from . import kinds
from .data.batch import Batch
from .objectives import Objective, Tower, ancestors, declared

__all__ = [
    "chain_of",
    "chain_rows",
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


def chain_rows(
    objective: Objective, labels: Mapping[str, Tensor], towers: Sequence[Tower]
) -> Tensor | None:
    """(B,) bool: the rows where every label along `objective`'s chain is 1, where its
    own label exists; None when it is given nothing."""
    rows = None
    for parent in _chain(objective, tuple(towers)):
        reached = labels[parent.target] > 0  # (B,)
        rows = reached if rows is None else rows & reached
    return rows


def entire_space_logit(
    objective: Objective, predictions: Mapping[str, Tensor], towers: Sequence[Tower]
) -> Tensor:
    """The logit of the joint probability p(objective ∧ everything it is given) of a
    binary objective, from the model's conditional logits (`kinds.Binary.joint`).
    (B,) → (B,)."""
    chain = [predictions[p.name] for p in _chain(objective, tuple(towers))]
    return kinds.get("binary").joint(predictions[objective.name], chain)


def entire_space_inputs(
    objective: Objective,
    predictions: Mapping[str, Tensor],
    towers: Sequence[Tower],
    batch: Batch,
) -> tuple[Tensor, Tensor]:
    """(prediction, target) of an entire-space objective, both unconditional, over every
    sample: the joint raw output (`joint_prediction`) and the joint label.

    The target is the objective's label where every label along the chain is 1, and 0
    wherever the chain broke: there the label is not read at all (a table may hold NaN
    for the like of an unclicked impression)."""
    target = batch.labels[objective.target].to(
        predictions[objective.name].dtype
    )  # (B,)
    reached = chain_rows(objective, batch.labels, towers)  # (B,) the chain holds
    if reached is not None:
        target = target.where(reached, 0.0)
    return joint_prediction(objective, predictions, towers), target


def joint_prediction(
    objective: Objective, predictions: Mapping[str, Tensor], towers: Sequence[Tower]
) -> Tensor:
    """An objective's raw output over every sample, from the model's conditional ones,
    whose mean is p(everything it is given) · E[objective | all of it] (`Kind.joint`):
    for a binary objective the logit of p(objective ∧ its chain), for a regression one
    p(chain) · E[objective | chain]. An objective given nothing: its own prediction.
    The shape of the objective's prediction."""
    chain = _chain(objective, tuple(towers))
    parents = [predictions[parent.name] for parent in chain]  # logits, nearest first
    return kinds.get(objective.kind).joint(predictions[objective.name], parents)
