"""Objectives and towers (declarations), and the multi-task loss they define.

An `Objective` is one thing the model predicts: a click (binary) or a play time (regression). A `Tower`
is a small MLP on top of the shared bottom that outputs a group of objectives, usually the objectives
of one scene. The loss has the two levels of adjustment of a shared-bottom model:

    L = Σ_towers w_tower · Σ_objectives-in-tower w_objective · L_objective

where L_objective is the mean, over the samples its mask admits, of the per-sample loss times the
per-sample weight:  L_objective = Σ_i m_i s_i ℓ_i / Σ_i m_i  (zero when no sample is admitted).

The per-sample weights s_i are declared on the objective: a column, a function of the batch, or a
`SampleWeight`, which says which samples are weighted (all, positives only, negatives only), how the
value is transformed (clip, log1p, power, a coefficient) and normalised (by the batch or data-set mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Literal, Mapping, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .data.batch import Batch

__all__ = [
    "SampleWeight",
    "Objective",
    "Tower",
    "check_towers",
    "sample_weights",
    "objective_loss",
    "objective_losses",
    "multitask_loss",
    "weighted_sum",
    "entire_space_logit",
    "check_labels",
]

WeightSource = Union[str, Callable[[Batch], Tensor]]  # a label or feature column, or a function Batch → (B,)
NORMALISATIONS = ("none", "batch_mean", "dataset_mean")


@dataclass(frozen=True)
class SampleWeight:
    """Per-sample loss weights, declared: where the value comes from, which samples it weighs, and how
    it is transformed and normalised.

    On the samples `on` selects (every other sample weighs 1), the weight is built in this order:

        v = the column's value, or column(batch) for a function       (B,), >= 0
        v = min(v, clip)                     when clip (or clip_quantile) is set
        v = log1p(v)                         when transform == "log1p"
        w = offset + scale · v ** power
        w = w / c                            c = 1 ("none"); the mean of w over the batch's weighted
                                             samples ("batch_mean"); over the training data's
                                             ("dataset_mean"); or the given number

    Only samples the objective's mask admits count in a mean. clip_quantile and "dataset_mean" are
    statistics of a data set: `Objective.with_statistics(train)` computes them and returns the
    objective with numbers in their place; an objective whose statistics were not computed cannot be
    trained (its loss raises a ValueError saying so).

    Examples: watch-time-weighted logistic regression (Covington et al., 2016) is
    ``SampleWeight("play_time", on="positives")``; a like boost is
    ``SampleWeight("like", on="positives", offset=1.0, scale=α)``, i.e. w = 1 + α·like.
    """

    column: WeightSource  # label or feature name, or a function Batch → (B,) tensor of values >= 0
    on: Literal["all", "positives", "negatives"] = "all"  # the samples weighted (positives and negatives
    #                                                        of a binary objective's label); others weigh 1
    transform: Literal["none", "log1p"] = "none"  # applied after clipping; log1p tames a heavy tail
    clip: float | None = None  # upper bound on the value, in the column's units; None: no clipping
    clip_quantile: float | None = None  # or clip at this quantile, in (0, 1], of the weighted samples'
    #                                     values in the training data (see `Objective.with_statistics`)
    power: float = 1.0  # exponent >= 0 on the value: 0 weighs every weighted sample offset + scale
    scale: float = 1.0  # coefficient >= 0 on the value
    offset: float = 0.0  # >= 0, added to the scaled value: offset 1 and scale α give w = 1 + α·v
    normalise: Literal["none", "batch_mean", "dataset_mean"] | float = "none"  # or a fixed divisor > 0

    def __post_init__(self) -> None:
        if not ((isinstance(self.column, str) and self.column) or callable(self.column)):
            raise TypeError(
                f"a SampleWeight column must be a column name or a function of the batch, got {self.column!r}"
            )
        problem = self._problem()
        if problem:
            raise ValueError(f"sample weight from {self.source_name!r}: {problem}")

    def _problem(self) -> str | None:
        """What is wrong with the options, or None."""

        def number(x) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

        if self.on not in ("all", "positives", "negatives"):
            return f"on must be 'all', 'positives' or 'negatives', got {self.on!r}"
        if self.transform not in ("none", "log1p"):
            return f"transform must be 'none' or 'log1p', got {self.transform!r}"
        if self.clip is not None and self.clip_quantile is not None:
            return "give clip or clip_quantile, not both"
        if self.clip is not None and not (number(self.clip) and self.clip > 0):
            return f"clip must be a number > 0, got {self.clip!r}"
        if self.clip_quantile is not None and not (number(self.clip_quantile) and 0 < self.clip_quantile <= 1):
            return f"clip_quantile must be in (0, 1], got {self.clip_quantile!r}"
        for name in ("power", "scale", "offset"):
            if not (number(getattr(self, name)) and getattr(self, name) >= 0):
                return f"{name} must be a finite number >= 0, got {getattr(self, name)!r}"
        named = isinstance(self.normalise, str) and self.normalise in NORMALISATIONS
        if not (named or (number(self.normalise) and self.normalise > 0)):
            return f"normalise must be one of {NORMALISATIONS} or a number > 0, got {self.normalise!r}"
        return None

    @property
    def source_name(self) -> str:
        """The column's name, or the function's."""
        return self.column if isinstance(self.column, str) else getattr(self.column, "__name__", repr(self.column))

    @property
    def needs_statistics(self) -> bool:
        """Whether a data-set statistic (clip_quantile, "dataset_mean") is still to be computed."""
        return self.clip_quantile is not None or self.normalise == "dataset_mean"

    def shape(self, values: Tensor) -> Tensor:
        """offset + scale · (clipped, transformed values) ** power: the weight before normalisation. (B,) → (B,)."""
        v = values if values.is_floating_point() else values.float()
        if self.clip is not None:
            v = v.clamp(max=self.clip)
        if self.transform == "log1p":
            v = torch.log1p(v)
        if self.power != 1:
            v = v**self.power
        if self.scale != 1:
            v = self.scale * v
        return v + self.offset if self.offset else v


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
    sample_weight: per-sample loss weights: the name of a label or feature column, a function
                   Batch → (B,) tensor, or a `SampleWeight` declaration; None: every sample weighs 1.
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
    sample_weight: WeightSource | SampleWeight | None = None
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
        sw = self.sample_weight
        if not (sw is None or isinstance(sw, (str, SampleWeight)) or callable(sw)):
            raise TypeError(
                f"objective {self.name!r}: sample_weight must be a column name, a function of the batch, "
                f"a SampleWeight, or None"
            )
        if isinstance(sw, SampleWeight) and sw.on != "all" and self.kind != "binary":
            raise ValueError(
                f"objective {self.name!r}: SampleWeight(on={sw.on!r}) needs a binary objective (positives and "
                f"negatives of its label), but its kind is {self.kind!r}"
            )

    @property
    def target(self) -> str:
        """The label column this objective trains on."""
        return self.label or self.name

    def with_statistics(self, data: Batch) -> Objective:
        """This objective with its `SampleWeight`'s data-set statistics computed on `data` (the training
        data) and stored as numbers: clip_quantile becomes clip, "dataset_mean" becomes the mean weight
        of the weighted samples the mask admits. Returns the objective itself when there is none."""
        sw = self.sample_weight
        if not (isinstance(sw, SampleWeight) and sw.needs_statistics):
            return self
        if self.target not in data.labels:
            raise ValueError(
                f"objective {self.name!r}: label {self.target!r} is missing (labels: {sorted(data.labels)})"
            )
        keep = data.labels[self.mask] > 0 if self.mask is not None else None  # (N,) bool
        rows = _weighted_rows(sw, data.labels[self.target], keep)  # (N,) bool or None
        if rows is None:
            rows = torch.ones(len(data), dtype=torch.bool, device=data.device)
        values = _column_values(self, sw.column, data)[rows]  # (n_weighted,)
        if len(values) == 0:
            raise ValueError(f"objective {self.name!r}: no sample in the data takes the sample weight ({sw.on})")
        if sw.clip_quantile is not None:
            clip = float(np.quantile(values.double().cpu().numpy(), sw.clip_quantile))
            if not clip > 0:
                raise ValueError(
                    f"objective {self.name!r}: the {sw.clip_quantile} quantile of {sw.source_name!r} is {clip}, not > 0"
                )
            sw = replace(sw, clip=clip, clip_quantile=None)
        if sw.normalise == "dataset_mean":
            mean = float(sw.shape(values).double().mean())
            if not (math.isfinite(mean) and mean > 0):
                raise ValueError(f"objective {self.name!r}: the mean sample weight over the data is {mean}, not > 0")
            sw = replace(sw, normalise=mean)
        return replace(self, sample_weight=sw)


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


def _column_values(objective: Objective, source: WeightSource, batch: Batch) -> Tensor:
    """(B,) raw values of a weight source: a label or feature column, or a function of the batch."""
    if isinstance(source, str):
        table = batch.labels if source in batch.labels else batch.features
        if source not in table:
            raise ValueError(f"objective {objective.name!r}: sample_weight column {source!r} is not in the batch")
        values = table[source]
        if values.shape != (len(batch),):
            raise ValueError(
                f"objective {objective.name!r}: sample weights must have shape ({len(batch)},), but column "
                f"{source!r} has {tuple(values.shape)}"
            )
        return values
    values = source(batch)
    if not isinstance(values, Tensor) or values.shape != (len(batch),):
        raise ValueError(
            f"objective {objective.name!r}: sample_weight function must return a ({len(batch)},) tensor"
        )
    return values


def _weighted_rows(sw: SampleWeight, target: Tensor, keep: Tensor | None) -> Tensor | None:
    """(B,) bool: the samples `sw` weighs (by the 0/1 `target`) among those `keep` admits; None: all."""
    if sw.on == "all":
        return keep
    rows = target > 0 if sw.on == "positives" else target <= 0  # (B,)
    return rows if keep is None else rows & keep


def sample_weights(
    objective: Objective, batch: Batch, keep: Tensor | None = None, target: Tensor | None = None
) -> Tensor | None:
    """The (B,) per-sample loss weights `objective` declares on `batch`; None when every sample weighs 1.

    keep:   (B,) bool, the samples the loss admits; None: those the objective's mask admits (all when
            it has none). A `SampleWeight`'s "batch_mean" averages over the admitted weighted samples.
    target: (B,) the label the loss fits, whose positives `SampleWeight(on=...)` refers to; None: the
            objective's label column.
    """
    sw = objective.sample_weight
    if sw is None:
        return None
    if not isinstance(sw, SampleWeight):
        return _column_values(objective, sw, batch)
    if sw.needs_statistics:
        raise ValueError(
            f"objective {objective.name!r}: its sample weight needs data-set statistics (clip_quantile or "
            f"normalise='dataset_mean'); train objective.with_statistics(train_data) instead"
        )
    if keep is None and objective.mask is not None:
        keep = batch.labels[objective.mask] > 0  # (B,)
    if target is None:
        target = batch.labels[objective.target]
    w = sw.shape(_column_values(objective, sw.column, batch))  # (B,)
    if sw.normalise == "batch_mean":
        rows = _weighted_rows(sw, target, keep)  # (B,) bool or None
        mean = w.mean() if rows is None else torch.where(rows, w, 0.0).sum() / rows.sum().clamp_min(1)
        w = w / mean.clamp_min(torch.finfo(w.dtype).tiny)  # all-zero weights stay zero
    elif not isinstance(sw.normalise, str):
        w = w / sw.normalise
    return w if sw.on == "all" else torch.where(_weighted_rows(sw, target, None), w, 1.0)


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
    keep = None
    for name in (objective.mask, given_label):
        if name is not None:
            admitted = batch.labels[name] > 0  # (B,)
            keep = admitted if keep is None else keep & admitted
    weight = sample_weights(objective, batch, keep=keep, target=target)
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
    binary labels and masks are 0/1; sample weights (columns, functions, `SampleWeight` declarations
    with their statistics computed) exist, are finite and non-negative.
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
                w = sample_weights(o, batch)  # (n,): the sources' shapes are checked as they are read
                if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
                    raise ValueError(f"objective {o.name!r}: sample weights must be finite and >= 0")
