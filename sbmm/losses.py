"""Per-objective losses: masks, sample weights, and the labels' checks.

L_objective is the mean, over the samples the objective admits
(`sbmm.objectives.admitted`), of the per-sample loss times the per-sample weight:

    L_objective = Σ_i m_i s_i ℓ_i / Σ_i m_i        (zero when no sample is admitted)

with ℓ the per-sample loss of the objective's kind (`sbmm.kinds`: the binary
cross-entropy on a logit, the squared error on a value, ...). Which rows count, and
how a conditional objective is trained, is its space's (`sbmm.spaces`). How the
objectives' losses combine into one is the weighting strategy's business
(`sbmm.weighting`); the declared combination Σ_t w_t Σ_o w_o L_o is `multitask_loss`.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor

from . import kinds
from .data.batch import Batch
from .objectives import Objective, Tower, admitted
from .sample_weights import SampleWeight, column_values
from .spaces import labelled_rows, plan

__all__ = [
    "Across",
    "sample_weights",
    "objective_loss",
    "objective_losses",
    "multitask_loss",
    "weighted_sum",
    "declared_weights",
    "check_labels",
]

# The mean of a batch statistic (a sum or a count, a 0-d tensor) over the data-parallel
# ranks. Every mean a loss takes divides by statistics averaged this way, so that N
# ranks' averaged gradients equal one process's; None (one process) leaves them as they
# are.
Across = Callable[[Tensor], Tensor]


def sample_weights(
    objective: Objective,
    batch: Batch,
    keep: Tensor | None = None,
    target: Tensor | None = None,
    across: Across | None = None,
) -> Tensor | None:
    """The (B,) per-sample loss weights `objective` declares on `batch`; None when every
    sample weighs 1.

    keep:   (B,) bool, the samples the loss admits; None: those `admitted` names. A
            `SampleWeight`'s "batch_mean" averages over the admitted weighted samples.
    target: (B,) the label the loss fits, whose positives `SampleWeight(on=...)` refers
            to; None: the objective's label column.
    across: see `Across`: makes a "batch_mean" the global batch's under data
            parallelism.
    """
    sw = objective.sample_weight
    if sw is None:
        return None
    source = sw.column if isinstance(sw, SampleWeight) else sw
    values = column_values(objective.name, source, batch)  # (B,)
    if not isinstance(sw, SampleWeight):
        return values
    keep = admitted(objective, batch.labels) if keep is None else keep
    target = batch.labels[objective.target] if target is None else target
    try:
        return sw.weights(values, target, keep, across)
    except ValueError as error:
        raise ValueError(f"objective {objective.name!r}: {error}") from None


def objective_loss(
    objective: Objective,
    prediction: Tensor,
    batch: Batch,
    target: Tensor | None = None,
    *,
    across: Across | None = None,
) -> Tensor:
    """The scalar loss of one objective on a batch: Σ m·s·ℓ / Σ m (0 when none is
    admitted), or Σ m·s·ℓ / B for an objective declared with mean_over="batch".

    prediction:  (B,) raw outputs (logits, values), or (B, width) for an objective of
                 several outputs (`Objective.width`).
    target:      the label to fit, if not the objective's own column
                 (entire-space training, which admits every sample).
    across:      see `Across`; None: one process.
    """
    keep = admitted(objective, batch.labels) if target is None else None
    target = (batch.labels[objective.target] if target is None else target).to(
        prediction.dtype
    )
    weight = sample_weights(objective, batch, keep=keep, target=target, across=across)
    if keep is not None:
        # Zero excluded samples' inputs, not only their losses: a NaN or inf there must
        # not reach the loss or its gradient (NaN · 0 is NaN).
        prediction = torch.where(_rows(keep, prediction), prediction, 0.0)
        target = torch.where(_rows(keep, target), target, 0.0)
    plain = keep is None and weight is None and across is None
    reduce = "mean" if plain else "none"
    loss = kinds.get(objective.kind).loss(prediction, target, reduction=reduce)
    if plain:  # the fast path: nothing to mask, weigh or share out
        return loss
    if loss.dim() > 1:
        # (B,): a multi-valued regression averages over its values
        loss = loss.mean(dim=1)
    if weight is not None:
        loss = loss * weight.to(loss.dtype)
    if keep is None and across is None:
        return loss.mean()
    if keep is not None:
        loss = torch.where(keep, loss, 0.0)
        if objective.mean_over == "admitted":
            count = keep.sum()
        else:  # "batch": the sum over the admitted rows, over the batch's size
            count = torch.tensor(len(loss), device=loss.device)
    else:
        count = torch.tensor(len(loss), device=loss.device)
    if across is not None:
        count = across(count.to(loss.dtype))
    return loss.sum() / count.clamp_min(1)


def _rows(keep: Tensor, like: Tensor) -> Tensor:
    """(B,) bool `keep`, viewed to broadcast over `like`'s trailing dimensions."""
    return keep.view(-1, *[1] * (like.dim() - 1))


def objective_losses(
    towers: Sequence[Tower],
    predictions: Mapping[str, Tensor],
    batch: Batch,
    *,
    across: Across | None = None,
) -> dict[str, Tensor]:
    """Every objective's loss L_o (unweighted), by objective name, in declaration order.

    Each objective's space (`sbmm.spaces`, resolved once per towers) sets its loss: on
    the samples it admits ("masked"), on every sample through the product with what it
    is given ("entire"), or on every sample by inverse propensities ("ips", "dr", which
    also sets the loss of the objective that imputes its error).
    """
    spaces, order = plan(towers)
    losses = {}
    for space in order:
        losses.update(space.losses(predictions, batch, across))
    return {name: losses[name] for name in spaces}


def declared_weights(towers: Sequence[Tower]) -> dict[str, float]:
    """Each objective's declared weight c_o = w_tower · w_objective, by name."""
    return {o.name: t.weight * o.weight for t in towers for o in t.objectives}


def multitask_loss(
    towers: Sequence[Tower], predictions: Mapping[str, Tensor], batch: Batch
) -> tuple[Tensor, dict[str, Tensor]]:
    """The declared total Σ_t w_t Σ_o w_o L_o, and every L_o (unweighted) by objective
    name."""
    losses = objective_losses(towers, predictions, batch)
    total = weighted_sum(
        (t.weight, weighted_sum((o.weight, losses[o.name]) for o in t.objectives))
        for t in towers
    )
    return total, losses


def weighted_sum(terms: Iterable[tuple[float, Tensor]]) -> Tensor:
    """Σ w·x, skipping the multiplications by 1 (each one is a kernel and a backward
    step)."""
    total = None
    for w, x in terms:
        x = x if w == 1 else w * x
        total = x if total is None else total + x
    return total


def check_labels(towers: Sequence[Tower], batch: Batch) -> None:
    """Check, once per data set, that `batch` can train these towers; raise a ValueError
    naming the objective and the label.

    Every objective's label and mask exist with one row (or `dim` values) per sample;
    masks are 0/1; on the rows where a label is read (those the objective admits, or,
    trained on every sample, where its chain holds) it is finite, and what its kind
    reads (0/1 for a binary objective, > 0 for a duration); sample weights exist, are
    finite and non-negative. An imputation objective reads no label.
    """
    n = len(batch)
    for o in (o for t in towers for o in t.objectives):
        if o.imputes is not None:
            continue  # it fits another objective's loss, not a label
        if o.target not in batch.labels:
            raise ValueError(
                f"objective {o.name!r}: label {o.target!r} is missing "
                f"(labels: {sorted(batch.labels)})"
            )
        y = batch.labels[o.target]
        expected = (n,) if o.dim == 1 else (n, o.dim)
        if tuple(y.shape) != expected:
            raise ValueError(
                f"objective {o.name!r}: label {o.target!r} must have shape {expected}, "
                f"got {tuple(y.shape)}"
            )
        if o.mask is not None:
            m = batch.labels.get(o.mask)
            if m is None:
                raise ValueError(
                    f"objective {o.name!r}: mask {o.mask!r} names no label "
                    f"(labels: {sorted(batch.labels)})"
                )
            if m.shape != (n,) or not bool(((m == 0) | (m == 1)).all()):
                raise ValueError(
                    f"objective {o.name!r}: mask {o.mask!r} must be a (B,) label of 0s "
                    "and 1s"
                )
        rows = labelled_rows(o, batch.labels, towers)
        read = y if rows is None else y[rows]
        if read.is_floating_point() and not bool(torch.isfinite(read).all()):
            raise ValueError(
                f"objective {o.name!r}: label {o.target!r} contains NaN or inf"
            )
        problem = kinds.get(o.kind).label_problem(read)
        if problem is not None:
            raise ValueError(
                f"objective {o.name!r}: {o.kind} label {o.target!r} {problem}"
            )
        if o.sample_weight is not None:
            # (n,): the sources' shapes are checked as read
            w = sample_weights(o, batch)
            if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
                raise ValueError(
                    f"objective {o.name!r}: sample weights must be finite and >= 0"
                )
