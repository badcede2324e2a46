"""Objectives and towers (declarations), and the multi-task loss they define.

An `Objective` is one thing the model predicts: a click (binary) or a play time (regression). A `Tower`
is a small MLP on top of the shared bottom that outputs a group of objectives, usually the objectives
of one scene. The loss has the two levels of adjustment of a shared-bottom model:

    L = Σ_towers w_tower · Σ_objectives-in-tower w_objective · L_objective

where L_objective is the mean, over the samples its mask admits, of the per-sample loss times the
per-sample weight:  L_objective = Σ_i m_i s_i ℓ_i / Σ_i m_i  (zero when no sample is admitted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Literal, Mapping, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .data.batch import Batch

__all__ = ["Objective", "Tower", "check_towers", "objective_loss", "objective_losses", "multitask_loss", "weighted_sum", "entire_space_logit", "check_labels"]

SampleWeight = Union[str, Callable[[Batch], Tensor], None]


@dataclass(frozen=True)
class Objective:
    """One predicted target.

    name:          key of the prediction in a model's output dict.
    kind:          "binary" (the model outputs a logit; loss: binary cross-entropy) or
                   "regression" (the model outputs a value; loss: mean squared error).
    weight:        the objective's weight inside its tower.
    label:         the label column it trains on; defaults to `name`.
    mask:          name of a 0/1 label that must be 1 for a sample to count (like counts only where
                   click is 1); None: every sample counts.
    sample_weight: per-sample loss weights: the name of a label or feature column, or a function
                   Batch → (B,) tensor; None: every sample weighs 1.
    dim:           values per sample for a regression objective (the seed's 3- and 2-wide targets);
                   its prediction and label are then (B, dim), else (B,).
    given:         for a conditional objective, the binary objective it follows (like is given click):
                   its prediction is then conditional, p(like | click) or E[play_time | click].
    space:         how a conditional objective is trained. "masked": on its own sample space, the
                   samples whose `given` label is 1. "entire" (ESMM, Ma et al., 2018): on every sample,
                   through the product with the probability of what it is given:
                   p(click ∧ like) = p(click) · p(like | click) against click·like (binary), or
                   E[play_time] = p(click) · E[play_time | click] against play_time (regression).
    """

    name: str
    kind: Literal["binary", "regression"] = "binary"
    weight: float = 1.0
    label: str | None = None
    mask: str | None = None
    sample_weight: SampleWeight = None
    dim: int = 1
    given: str | None = None
    space: Literal["masked", "entire"] = "masked"

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"an objective needs a non-empty name, got {self.name!r}")
        if self.kind not in ("binary", "regression"):
            raise ValueError(f"objective {self.name!r}: kind must be 'binary' or 'regression', got {self.kind!r}")
        if not (isinstance(self.weight, (int, float)) and self.weight >= 0 and self.weight < float("inf")):
            raise ValueError(f"objective {self.name!r}: weight must be a finite number >= 0, got {self.weight!r}")
        if not (isinstance(self.dim, int) and self.dim >= 1):
            raise ValueError(f"objective {self.name!r}: dim must be an integer >= 1, got {self.dim!r}")
        if self.kind == "binary" and self.dim != 1:
            raise ValueError(f"objective {self.name!r}: a binary objective has dim 1, got {self.dim}")
        if self.space not in ("masked", "entire"):
            raise ValueError(f"objective {self.name!r}: space must be 'masked' or 'entire', got {self.space!r}")
        if self.space == "entire" and self.given is None:
            raise ValueError(f"objective {self.name!r}: an entire-space objective needs `given`, the objective it follows")
        if self.space == "entire" and self.mask is not None:
            raise ValueError(f"objective {self.name!r}: an entire-space objective is trained on every sample; drop `mask`")
        if self.given == self.name:
            raise ValueError(f"objective {self.name!r} cannot be given itself")
        if not (self.sample_weight is None or isinstance(self.sample_weight, str) or callable(self.sample_weight)):
            raise TypeError(
                f"objective {self.name!r}: sample_weight must be a column name, a function of the batch, or None"
            )

    @property
    def target(self) -> str:
        """The label column this objective trains on."""
        return self.label or self.name


@dataclass(frozen=True)
class Tower:
    """A task tower: an MLP of `hidden` widths (ReLU) on the bottom's output, ending in one output per
    objective value. `weight` multiplies the tower's whole loss."""

    name: str
    objectives: Sequence[Objective]
    hidden: Sequence[int] = (32,)
    weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a tower needs a non-empty name, got {self.name!r}")
        if not self.objectives:
            raise ValueError(f"tower {self.name!r} has no objectives")
        for o in self.objectives:
            if not isinstance(o, Objective):
                raise TypeError(f"tower {self.name!r}: objectives must be Objective, got {o!r}")
        if any(not (isinstance(h, int) and h >= 1) for h in self.hidden):
            raise ValueError(f"tower {self.name!r}: hidden widths must be integers >= 1, got {self.hidden}")
        if not (isinstance(self.weight, (int, float)) and 0 <= self.weight < float("inf")):
            raise ValueError(f"tower {self.name!r}: weight must be a finite number >= 0, got {self.weight!r}")

    @property
    def out_dim(self) -> int:
        return sum(o.dim for o in self.objectives)


def check_towers(towers: Sequence[Tower]) -> tuple[Tower, ...]:
    """Validate a model's towers: at least one, unique tower and objective names."""
    towers = tuple(towers)
    if not towers:
        raise ValueError("a model needs at least one tower")
    for t in towers:
        if not isinstance(t, Tower):
            raise TypeError(f"towers must be Tower declarations, got {t!r}")
    tower_names = [t.name for t in towers]
    if len(set(tower_names)) != len(tower_names):
        raise ValueError(f"tower names must be unique, got {tower_names}")
    names = [o.name for t in towers for o in t.objectives]
    if len(set(names)) != len(names):
        raise ValueError(f"objective names must be unique across towers, got {names}")
    by_name = {o.name: o for t in towers for o in t.objectives}
    for o in by_name.values():
        if o.given is None:
            continue
        if o.given not in by_name:
            raise ValueError(f"objective {o.name!r} is given {o.given!r}, which is not an objective of the model {names}")
        if by_name[o.given].kind != "binary":
            raise ValueError(f"objective {o.name!r} is given {o.given!r}, which must be a binary objective")
        if o.dim != 1:
            raise ValueError(f"objective {o.name!r}: a conditional objective has dim 1, got {o.dim}")
        _ancestors(o, by_name)  # raises on a cycle
    return towers


def _ancestors(objective: Objective, by_name: Mapping[str, Objective]) -> list[Objective]:
    """The chain of objectives `objective` is given, nearest first (like → [click] or [click, stay])."""
    chain: list[Objective] = []
    while objective.given is not None:
        objective = by_name[objective.given]
        if objective in chain or len(chain) > len(by_name):
            raise ValueError(f"objectives given one another form a cycle: {[o.name for o in chain]}")
        chain.append(objective)
    return chain


def entire_space_logit(objective: Objective, predictions: Mapping[str, Tensor], towers: Sequence[Tower]) -> Tensor:
    """The logit of the joint probability p(objective ∧ everything it is given) of a binary objective,
    from the model's conditional logits: log p = Σ log σ(logit) along the chain; logit = log p − log(1 − p).

    Finite for any finite logits: 1 − p is floored at 1e-7. (B,) → (B,).
    """
    by_name = {o.name: o for t in towers for o in t.objectives}
    log_p = F.logsigmoid(predictions[objective.name])
    for parent in _ancestors(objective, by_name):
        log_p = log_p + F.logsigmoid(predictions[parent.name])  # (B,)
    return log_p - torch.log(torch.clamp(-torch.expm1(log_p), min=1e-7))


def _entire_space_inputs(
    objective: Objective, predictions: Mapping[str, Tensor], towers: Sequence[Tower], batch: Batch
) -> tuple[Tensor, Tensor]:
    """(prediction, target) of an entire-space objective, both unconditional, over every sample."""
    by_name = {o.name: o for t in towers for o in t.objectives}
    chain = _ancestors(objective, by_name)
    target = batch.labels[objective.target].to(predictions[objective.name].dtype)
    for parent in chain:
        target = target * batch.labels[parent.target].to(target.dtype)  # zero wherever the chain broke
    if objective.kind == "binary":
        return entire_space_logit(objective, predictions, towers), target
    p_chain = torch.exp(sum(F.logsigmoid(predictions[parent.name]) for parent in chain))  # (B,)
    return p_chain * predictions[objective.name], target


def _sample_weight(objective: Objective, batch: Batch) -> Tensor | None:
    source = objective.sample_weight
    if source is None:
        return None
    if isinstance(source, str):
        table = batch.labels if source in batch.labels else batch.features
        if source not in table:
            raise ValueError(f"objective {objective.name!r}: sample_weight column {source!r} is not in the batch")
        return table[source]
    weight = source(batch)
    if not isinstance(weight, Tensor) or weight.shape != (len(batch),):
        raise ValueError(
            f"objective {objective.name!r}: sample_weight function must return a ({len(batch)},) tensor"
        )
    return weight


def objective_loss(
    objective: Objective,
    prediction: Tensor,
    batch: Batch,
    target: Tensor | None = None,
    given_label: str | None = None,
) -> Tensor:
    """The scalar loss of one objective on a batch: Σ m·s·ℓ / Σ m (0 when the mask admits no sample).

    prediction:  (B,) logits (binary) or values (regression), or (B, dim) for a dim > 1 objective.
    target:      the label to fit, if not the objective's own label column (entire-space training).
    given_label: a further 0/1 label a sample needs to count (a masked conditional objective's parent).
    """
    target = (batch.labels[objective.target] if target is None else target).to(prediction.dtype)
    weight = _sample_weight(objective, batch)
    keep = None
    for name in (objective.mask, given_label):
        if name is not None:
            admitted = batch.labels[name] > 0  # (B,)
            keep = admitted if keep is None else keep & admitted
    if keep is not None:
        # Zero excluded samples' inputs, not only their losses: a NaN or inf there must not reach the
        # loss or its gradient (NaN · 0 is NaN).
        row = keep if prediction.dim() == 1 else keep.unsqueeze(1)
        prediction = torch.where(row, prediction, 0.0)
        target = torch.where(row, target, 0.0)
    reduce = "mean" if keep is None and weight is None else "none"
    if objective.kind == "binary":
        loss = F.binary_cross_entropy_with_logits(prediction, target, reduction=reduce)
    else:
        loss = F.mse_loss(prediction, target, reduction=reduce)
    if reduce == "mean":  # the fast path: nothing to mask or weigh
        return loss
    if loss.dim() > 1:
        loss = loss.mean(dim=1)  # (B,): a multi-valued regression averages over its values
    if weight is not None:
        loss = loss * weight.to(loss.dtype)
    if keep is None:
        return loss.mean()
    return torch.where(keep, loss, 0.0).sum() / keep.sum().clamp_min(1)


def objective_losses(towers: Sequence[Tower], predictions: Mapping[str, Tensor], batch: Batch) -> dict[str, Tensor]:
    """Every objective's loss L_o (unweighted), by objective name, in declaration order.

    A conditional objective is trained on the samples whose `given` label is 1 ("masked"), or on every
    sample through the product with what it is given ("entire"); see `Objective`.
    """
    by_name = {o.name: o for t in towers for o in t.objectives}
    losses = {}
    for name, o in by_name.items():
        if o.given is None:
            losses[name] = objective_loss(o, predictions[name], batch)
        elif o.space == "masked":
            losses[name] = objective_loss(o, predictions[name], batch, given_label=by_name[o.given].target)
        else:
            prediction, target = _entire_space_inputs(o, predictions, towers, batch)
            losses[name] = objective_loss(o, prediction, batch, target=target)
    return losses


def multitask_loss(
    towers: Sequence[Tower], predictions: Mapping[str, Tensor], batch: Batch
) -> tuple[Tensor, dict[str, Tensor]]:
    """The weighted total Σ_t w_t Σ_o w_o L_o, and every L_o (unweighted) by objective name."""
    losses = objective_losses(towers, predictions, batch)
    total = weighted_sum(
        (t.weight, weighted_sum((o.weight, losses[o.name]) for o in t.objectives)) for t in towers
    )
    return total, losses


def weighted_sum(terms: Iterable[tuple[float, Tensor]]) -> Tensor:
    """Σ w·x, skipping the multiplications by 1 (each one is a kernel and a backward step)."""
    total = None
    for w, x in terms:
        x = x if w == 1 else w * x
        total = x if total is None else total + x
    return total


def check_labels(towers: Sequence[Tower], batch: Batch) -> None:
    """Check, once per data set, that `batch` can train these towers; raise a ValueError naming the problem.

    Every objective's label and mask exist with one row (or `dim` values) per sample and are finite;
    binary labels and masks are 0/1; sample weights are finite and non-negative.
    """
    n = len(batch)
    for tower in towers:
        for o in tower.objectives:
            if o.target not in batch.labels:
                raise ValueError(
                    f"objective {o.name!r}: label {o.target!r} is missing (labels: {sorted(batch.labels)})"
                )
            y = batch.labels[o.target]
            expected = (n,) if o.dim == 1 else (n, o.dim)
            if tuple(y.shape) != expected:
                raise ValueError(f"objective {o.name!r}: label {o.target!r} must have shape {expected}, got {tuple(y.shape)}")
            if y.is_floating_point() and not bool(torch.isfinite(y).all()):
                raise ValueError(f"objective {o.name!r}: label {o.target!r} contains NaN or inf")
            if o.kind == "binary" and not bool(((y == 0) | (y == 1)).all()):
                raise ValueError(f"objective {o.name!r}: binary label {o.target!r} must be 0 or 1")
            if o.mask is not None:
                if o.mask not in batch.labels:
                    raise ValueError(
                        f"objective {o.name!r}: mask {o.mask!r} names no label (labels: {sorted(batch.labels)})"
                    )
                m = batch.labels[o.mask]
                if m.shape != (n,) or not bool(((m == 0) | (m == 1)).all()):
                    raise ValueError(f"objective {o.name!r}: mask {o.mask!r} must be a (B,) label of 0s and 1s")
            if o.sample_weight is not None:
                w = _sample_weight(o, batch)
                if w.shape != (n,):
                    raise ValueError(f"objective {o.name!r}: sample weights must have shape ({n},), got {tuple(w.shape)}")
                if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
                    raise ValueError(f"objective {o.name!r}: sample weights must be finite and >= 0")
