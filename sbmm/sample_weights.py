"""Sample-loss reweighting: per-sample loss weights, declared, and what they do to an
optimum.

A `SampleWeight` declares the weights s_i an objective puts on its samples' losses:
where the value comes from (a label or feature column, or a function of the batch),
which samples it weighs (all, positives only, negatives only), how the value is
transformed (clip, log1p, power, a coefficient) and normalised (by the batch or data-set
mean). The loss is then Σ_i m_i s_i ℓ_i / Σ_i m_i.

Weighted binary cross-entropy, with weight w_i on sample i, is minimised, among the
samples a model cannot tell apart (a group, or one point x), where the odds equal
weighted positives over weighted negatives:

    exp(logit*) = Σ_i w_i y_i / Σ_i w_i (1 − y_i)             (`weighted_optimal_logit`)

Weighted logistic regression (Covington et al., 2016) weights each positive (a click) by
a value T ≥ 0 it carries (its play time) and each negative by 1. At a point x the
optimum is then

    exp(logit*) = E[T · y | x] / P(y = 0 | x) = E[T] / (1 − P),
                  with E[T] = P · E[T | y = 1],

so exp(logit) estimates the expected value per impression E[T], inflated by 1/(1 − P)
(`weighted_logit_to_expectation`). Covington et al. read it to first order in P,
exp(logit) ≈ E[T](1 + P) ≈ E[T], which holds when P is small: reading exp(logit) as E[T]
over-estimates it by the factor 1/(1 − P) (11% at P = 0.1, 100% at P = 0.5), and
exp(logit)/(1 + P) by 1/(1 − P²) (1% at P = 0.1, 33% at P = 0.5)
(`weighted_logit_to_approximate_expectation`).

`sbmm.diagnostics.GradientNorm` records what heavy-tailed weights do to the size of the
steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Literal, Union

import numpy as np
import torch
from torch import Tensor

from .data.batch import Batch
from .validation import is_number

__all__ = [
    "SampleWeight",
    "WeightSource",
    "column_values",
    "weighted_logit_to_approximate_expectation",
    "weighted_logit_to_expectation",
    "weighted_optimal_logit",
]

# A label or feature column, or a function Batch → (B,) tensor.
WeightSource = Union[str, Callable[[Batch], Tensor]]
NORMALISATIONS = ("none", "batch_mean", "dataset_mean")


@dataclass(frozen=True)
class SampleWeight:
    """Per-sample loss weights, declared: where the value comes from, which samples it
    weighs, and how it is transformed and normalised.

    On the samples `on` selects (every other sample weighs 1), the weight is built in
    this order:

        v = the column's value, or column(batch) for a function       (B,), >= 0
        v = min(v, clip)                     when clip (or clip_quantile) is set
        v = log1p(v)                         when transform == "log1p"
        w = offset + scale · v ** power
        w = w / c                            c = 1 ("none"); the mean of w over the
                                             batch's weighted samples ("batch_mean");
                                             over the training data's ("dataset_mean");
                                             or the given number

    Only samples the objective admits count in a mean. clip_quantile and "dataset_mean"
    are statistics of a data set: `Objective.with_statistics(train)` computes them and
    returns the objective with numbers in their place; an objective whose statistics
    were not computed cannot be trained (its loss raises a ValueError saying so).

    Examples: watch-time-weighted logistic regression (Covington et al., 2016) is
    ``SampleWeight("play_time", on="positives")``; a like boost is
    ``SampleWeight("like", on="positives", offset=1.0, scale=α)``, i.e. w = 1 + α·like.
    """

    # label or feature name, or a function Batch → (B,) values >= 0
    column: WeightSource
    # the samples weighted (positives and negatives of a binary objective's label); the
    # others weigh 1
    on: Literal["all", "positives", "negatives"] = "all"
    # after clipping; log1p tames a heavy tail
    transform: Literal["none", "log1p"] = "none"
    # upper bound on the value, in the column's units; None: none
    clip: float | None = None
    # or clip at this quantile, in (0, 1], of the weighted samples' values in the
    # training data (see `Objective.with_statistics`)
    clip_quantile: float | None = None
    # exponent >= 0 on the value: 0 weighs every weighted sample alike
    power: float = 1.0
    scale: float = 1.0  # coefficient >= 0 on the value
    # >= 0, added to the scaled value: offset 1, scale α give w = 1 + α·v
    offset: float = 0.0
    # or a divisor
    normalise: Literal["none", "batch_mean", "dataset_mean"] | float = "none"

    def __post_init__(self) -> None:
        if not (
            (isinstance(self.column, str) and self.column) or callable(self.column)
        ):
            raise TypeError(
                "a SampleWeight column must be a column name or a function of "
                f"the batch, got {self.column!r}"
            )
        problem = self._problem()
        if problem:
            raise ValueError(f"sample weight from {self.source_name!r}: {problem}")

    def _problem(self) -> str | None:
        """What is wrong with the options, or None."""
        if self.on not in ("all", "positives", "negatives"):
            return f"on must be 'all', 'positives' or 'negatives', got {self.on!r}"
        if self.transform not in ("none", "log1p"):
            return f"transform must be 'none' or 'log1p', got {self.transform!r}"
        if self.clip is not None and self.clip_quantile is not None:
            return "give clip or clip_quantile, not both"
        if self.clip is not None and not (is_number(self.clip) and self.clip > 0):
            return f"clip must be a number > 0, got {self.clip!r}"
        q = self.clip_quantile
        if q is not None and not (is_number(q) and 0 < q <= 1):
            return f"clip_quantile must be in (0, 1], got {q!r}"
        for name in ("power", "scale", "offset"):
            if not (is_number(getattr(self, name)) and getattr(self, name) >= 0):
                return (
                    f"{name} must be a finite number >= 0, got {getattr(self, name)!r}"
                )
        named = isinstance(self.normalise, str) and self.normalise in NORMALISATIONS
        if not (named or (is_number(self.normalise) and self.normalise > 0)):
            return (
                f"normalise must be one of {NORMALISATIONS} or a number > 0, "
                f"got {self.normalise!r}"
            )
        return None

    @property
    def source_name(self) -> str:
        """The column's name, or the function's."""
        if isinstance(self.column, str):
            return self.column
        return getattr(self.column, "__name__", repr(self.column))

    @property
    def needs_statistics(self) -> bool:
        """Whether a data-set statistic (clip_quantile, "dataset_mean") is still to be
        computed."""
        return self.clip_quantile is not None or self.normalise == "dataset_mean"

    def shape(self, values: Tensor) -> Tensor:
        """offset + scale · (clipped, transformed values) ** power, before
        normalisation. (B,) → (B,)."""
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

    def weighted_rows(self, target: Tensor, keep: Tensor | None) -> Tensor | None:
        """(B,) bool: the samples this weight applies to (by the 0/1 `target`), among
        those `keep` admits; None: all of them."""
        if self.on == "all":
            return keep
        rows = target > 0 if self.on == "positives" else target <= 0  # (B,)
        return rows if keep is None else rows & keep

    def weights(
        self,
        values: Tensor,
        target: Tensor,
        keep: Tensor | None,
        across: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor:
        """The (B,) weights from the source's raw (B,) `values`, for the 0/1 (or real)
        `target` the loss fits, over the samples `keep` admits ((B,) bool; None: all).
        `across` averages a "batch_mean"'s sum and count over data-parallel ranks
        (`sbmm.losses.Across`)."""
        if self.needs_statistics:
            raise ValueError(
                "this sample weight needs data-set statistics (clip_quantile or "
                "normalise='dataset_mean'); train objective.with_statistics(train_data)"
            )
        w = self.shape(values)  # (B,)
        if self.normalise == "batch_mean":
            rows = self.weighted_rows(target, keep)  # (B,) bool or None
            if rows is None and across is None:
                mean = w.mean()
            else:
                total = w.sum() if rows is None else torch.where(rows, w, 0.0).sum()
                count = w.new_tensor(len(w)) if rows is None else rows.sum().to(w.dtype)
                if across is not None:
                    total, count = across(total), across(count)
                mean = total / count.clamp_min(1)
            # all-zero weights stay zero
            w = w / mean.clamp_min(torch.finfo(w.dtype).tiny)
        elif not isinstance(self.normalise, str):
            w = w / self.normalise
        if self.on == "all":
            return w
        return torch.where(self.weighted_rows(target, None), w, 1.0)

    def with_statistics(self, values: Tensor) -> SampleWeight:
        """This declaration with its data-set statistics computed from `values` (n,),
        the raw values of the training data's weighted, admitted samples: clip_quantile
        becomes clip, "dataset_mean" becomes the mean weight."""
        if len(values) == 0:
            raise ValueError(
                f"no sample in the data takes the sample weight ({self.on})"
            )
        resolved = self
        if self.clip_quantile is not None:
            clip = float(np.quantile(values.double().cpu().numpy(), self.clip_quantile))
            if not clip > 0:
                raise ValueError(
                    f"the {self.clip_quantile} quantile of {self.source_name!r} is "
                    f"{clip}, not > 0"
                )
            resolved = replace(resolved, clip=clip, clip_quantile=None)
        if self.normalise == "dataset_mean":
            mean = float(resolved.shape(values).double().mean())
            if not (math.isfinite(mean) and mean > 0):
                raise ValueError(
                    f"the mean sample weight over the data is {mean}, not > 0"
                )
            resolved = replace(resolved, normalise=mean)
        return resolved


def column_values(owner: str, source: WeightSource, batch: Batch) -> Tensor:
    """(B,) raw values of a weight source: a label or feature column, or a function of
    the batch. `owner` (the objective's name) is named in errors."""
    if isinstance(source, str):
        table = batch.labels if source in batch.labels else batch.features
        if source not in table:
            raise ValueError(
                f"objective {owner!r}: sample_weight column {source!r} "
                "is not in the batch"
            )
        values = table[source]
        if values.shape != (len(batch),):
            raise ValueError(
                f"objective {owner!r}: sample weights must have shape "
                f"({len(batch)},), but column {source!r} has {tuple(values.shape)}"
            )
        return values
    values = source(batch)
    if not isinstance(values, Tensor) or values.shape != (len(batch),):
        raise ValueError(
            f"objective {owner!r}: sample_weight function must return a "
            f"({len(batch)},) tensor"
        )
    return values


def weighted_optimal_logit(
    labels: Tensor, weights: Tensor, groups: Tensor, n_groups: int | None = None
) -> Tensor:
    """The logit minimising weighted binary cross-entropy in each group:
    log(Σ w·y / Σ w·(1 − y)).

    labels:   (N,) 0/1 labels.
    weights:  (N,) per-sample loss weights >= 0.
    groups:   (N,) integer group of each sample, in [0, n_groups).
    n_groups: number of groups; max(groups) + 1 by default.
    Returns (n_groups,) float64 logits: +inf for a group with no weighted negative, -inf
    with no weighted positive, NaN for an empty group.
    """
    if not (labels.shape == weights.shape == groups.shape and labels.dim() == 1):
        raise ValueError(
            f"labels, weights and groups must be (N,) tensors of one shape, got "
            f"{tuple(labels.shape)}, {tuple(weights.shape)}, {tuple(groups.shape)}"
        )
    if groups.is_floating_point() or bool((groups < 0).any()):
        raise ValueError("groups must be integer ids >= 0")
    n_groups = int(groups.max()) + 1 if n_groups is None else n_groups
    y, w, g = labels.double(), weights.double(), groups.long()
    zeros = torch.zeros(n_groups, dtype=torch.float64)
    positive = zeros.index_add(0, g, w * y)  # (G,)
    negative = zeros.index_add(0, g, w * (1 - y))  # (G,)
    return torch.log(positive) - torch.log(negative)


def weighted_logit_to_expectation(
    logit: Tensor, p_positive: Tensor | None = None, weight_scale: float = 1.0
) -> Tensor:
    """E[T] per sample from the logit of a value-weighted logistic regression (module
    docstring).

    logit:        (B,) logits of a binary objective whose positives were weighted by T
                  and negatives by 1.
    p_positive:   (B,) the probability of a positive, P, from an unweighted model (or
                  the truth); the result is then exp(logit)·(1 − P), exact at the
                  optimum. Without it the result is exp(logit), YouTube's reading, which
                  over-estimates E[T] by the factor 1/(1 − P): fine when P is small.
    weight_scale: the number the positives' weights were divided by (a fixed
                  normalisation, or, for a per-batch mean, about the positives' mean T
                  over the data); the result is multiplied by it.
    Assumes the model reached the weighted optimum.
    """
    if not (is_number(weight_scale) and weight_scale > 0):
        raise ValueError(
            f"weight_scale must be a finite number > 0, got {weight_scale!r}"
        )
    odds = torch.exp(logit) * weight_scale
    if p_positive is None:
        return odds
    _check_probability(p_positive, logit)
    return odds * (1 - p_positive)


def weighted_logit_to_approximate_expectation(
    logit: Tensor, p_positive: Tensor, weight_scale: float = 1.0
) -> Tensor:
    """E[T] per sample from a value-weighted logit, read as Covington et al. (2016) do:
    to first order in P, exp(logit) ≈ E[T](1 + P), so E[T] ≈ exp(logit) / (1 + P).

    logit, weight_scale: as in `weighted_logit_to_expectation`.
    p_positive:          (B,) the probability of a positive, P.
    Returns (B,) exp(logit)·weight_scale / (1 + P). At the weighted optimum this is
    E[T] / (1 − P²): it over-estimates E[T] by 1/(1 − P²), against 1/(1 − P) for the
    zeroth-order reading exp(logit) ≈ E[T] (`weighted_logit_to_expectation` without P);
    `weighted_logit_to_expectation` with P is exact.
    """
    odds = weighted_logit_to_expectation(logit, weight_scale=weight_scale)  # (B,)
    _check_probability(p_positive, logit)
    return odds / (1 + p_positive)


def _check_probability(p_positive: Tensor, logit: Tensor) -> None:
    """A ValueError unless `p_positive` has the logit's shape and lies in [0, 1]."""
    if p_positive.shape != logit.shape:
        raise ValueError(
            f"p_positive must have the logit's shape {tuple(logit.shape)}, "
            f"got {tuple(p_positive.shape)}"
        )
    if bool(((p_positive < 0) | (p_positive > 1)).any()):
        raise ValueError("p_positive must be a probability in [0, 1]")
