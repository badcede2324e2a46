"""Objective kinds: what a model's output for an objective means, how it is trained,
and how it is scored. The one place that knows the difference between a click and a
play time.

A kind says, for every objective declared with it:

    outputs       raw outputs per label value (a logit: 1; μ and log σ: 2)
    loss          the per-sample loss of raw outputs against labels
    mean          the label's expectation from raw outputs: σ(logit), the value,
                  e^{μ + σ²/2}
    joint         the raw output of "this and everything it is given", from its own
                  output and the logits of its chain (ESMM's product)
    metrics       what `evaluate` reports, scored on expectations; the first is the
                  one the anchors show first, and `higher_is_better` says their sense
    constant      the raw output of the best constant over some labels (output
                  biases start there)
    label_problem which label values it refuses

and what it supports: `probability` (a 0/1 label: it may be `given`, and sample
weights may treat its positives apart), `multi_valued` (dim > 1), `entire_space`
(trained on the product with what it is given). Losses, debiasing, metrics, early
stopping, evaluation and the anchors read the kind; nothing else compares kind names.

A new kind is one class and one `register` call::

    class Huber(sbmm.kinds.Regression):
        name = "huber"
        def loss(self, output, target, reduction="none"):
            return F.huber_loss(output, target, reduction=reduction)

    sbmm.kinds.register(Huber())
    sbmm.Objective("play_time", "huber")
"""

from __future__ import annotations

import math
from typing import ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Binary",
    "Kind",
    "LogNormal",
    "Regression",
    "get",
    "higher_is_better",
    "register",
]


class Kind:
    """The base of every kind; subclasses set the class attributes and override what
    differs. Instances are stateless: one per kind, in the registry."""

    name: ClassVar[str]
    outputs: ClassVar[int] = 1  # raw outputs per label value
    metrics: ClassVar[tuple[str, ...]] = ("rmse",)  # what evaluate reports
    higher_is_better: ClassVar[frozenset[str]] = frozenset()
    probability: ClassVar[bool] = False  # a 0/1 label whose mean is a probability
    multi_valued: ClassVar[bool] = False  # may declare dim > 1
    entire_space: ClassVar[bool] = True  # may train on the product with its chain

    def loss(self, output: Tensor, target: Tensor, reduction: str = "none") -> Tensor:
        """The loss of raw `output` against `target`: per value (`reduction="none"`,
        the target's shape) or its mean ("mean")."""
        raise NotImplementedError

    def mean(self, output: Tensor) -> Tensor:
        """The label's expectation given the raw `output`: (B, ...) → the label's
        shape. The identity by default."""
        return output

    def joint(self, output: Tensor, parents: Sequence[Tensor]) -> Tensor:
        """The raw output whose mean is p(parents) · E[label | parents], from this
        objective's raw `output` and the logits `parents` (each (B,)) of what it is
        given, nearest first. By default (a value): p(parents) · output."""
        if not parents:
            return output
        log_p = sum(F.logsigmoid(logit) for logit in parents)  # (B,)
        return torch.exp(log_p).view(-1, *[1] * (output.dim() - 1)) * output

    def metric(self, name: str, y: np.ndarray, mean: np.ndarray) -> float:
        """Metric `name` of expectations `mean` (n,) against labels `y` (n,); NaN with
        no rows. "rmse" by default."""
        from sklearn.metrics import mean_squared_error

        if len(y) == 0:
            return math.nan
        if name == "rmse":
            return math.sqrt(mean_squared_error(y, mean))
        raise ValueError(f"kind {self.name!r} has no metric {name!r}")

    def constant(self, target: Tensor) -> Tensor:
        """The raw output (outputs · dim,) of the best constant prediction of the
        labels `target`, (n,) or (n, dim): their mean by default."""
        return target.double().mean(0).reshape(-1)

    def label_problem(self, values: Tensor) -> str | None:
        """What is wrong with the label `values` it would read (finite already), or
        None. Any finite value by default."""
        return None

    def __repr__(self) -> str:
        return f"<kind {self.name!r}>"


class Binary(Kind):
    """A 0/1 label (a click, a like). The output is a logit; the loss binary
    cross-entropy; the mean σ(logit); scored by AUC and log loss."""

    name = "binary"
    metrics = ("auc", "logloss")
    higher_is_better = frozenset({"auc"})
    probability = True

    def loss(self, output: Tensor, target: Tensor, reduction: str = "none") -> Tensor:
        return F.binary_cross_entropy_with_logits(output, target, reduction=reduction)

    def mean(self, output: Tensor) -> Tensor:
        return torch.sigmoid(output)

    def joint(self, output: Tensor, parents: Sequence[Tensor]) -> Tensor:
        """The logit of p(this ∧ its parents): log p = Σ log σ along the chain, and
        logit = log p − log(1 − p), with 1 − p floored at 1e-7 (finite for any finite
        logits)."""
        log_p = F.logsigmoid(output)
        for logit in parents:
            log_p = log_p + F.logsigmoid(logit)  # (B,)
        return log_p - torch.log(torch.clamp(-torch.expm1(log_p), min=1e-7))

    def metric(self, name: str, y: np.ndarray, mean: np.ndarray) -> float:
        from sklearn.metrics import log_loss, roc_auc_score

        if len(y) == 0 or (name == "auc" and len(np.unique(y)) < 2):
            return math.nan  # an AUC over one class is undefined
        if name == "auc":
            return float(roc_auc_score(y, mean))
        if name == "logloss":
            return float(log_loss(y, mean, labels=[0, 1]))
        raise ValueError(f"kind {self.name!r} has no metric {name!r}")

    def constant(self, target: Tensor) -> Tensor:
        """The logit of the base rate (clipped to [1e-6, 1 − 1e-6])."""
        rate = target.double().mean().clamp(1e-6, 1 - 1e-6)
        return torch.logit(rate).reshape(1)

    def label_problem(self, values: Tensor) -> str | None:
        return None if bool(((values == 0) | (values == 1)).all()) else "must be 0 or 1"


class Regression(Kind):
    """A real-valued label (a watch time in seconds, the seed's 3-wide target). The
    output is the value; the loss squared error; scored by RMSE."""

    name = "regression"
    multi_valued = True

    def loss(self, output: Tensor, target: Tensor, reduction: str = "none") -> Tensor:
        return F.mse_loss(output, target, reduction=reduction)


class LogNormal(Kind):
    """A positive duration T with log T ~ N(μ, σ²) given the features: the model
    outputs (μ, log σ) per sample, the loss is the negative log-likelihood of log T
    (up to a constant), log σ + (log T − μ)² / (2σ²), and the mean is
    E[T] = e^{μ + σ²/2}: predicting e^μ alone (the median) would under-predict every
    mean by the factor e^{σ²/2}. Its prediction is (B, 2); scored by the RMSE of E[T]
    against T. It trains on its own space, by IPS or DR; not on the entire space,
    where the label of a broken chain (0) is no duration."""

    name = "lognormal"
    outputs = 2
    entire_space = False

    def loss(self, output: Tensor, target: Tensor, reduction: str = "none") -> Tensor:
        mu, log_sigma = output.unbind(-1)  # (B,) each
        # Rows the loss does not read carry 0: floor them so that log stays finite.
        z = (torch.log(target.clamp_min(1e-12)) - mu) * torch.exp(-log_sigma)
        loss = log_sigma + 0.5 * z**2  # (B,)
        return loss.mean() if reduction == "mean" else loss

    def mean(self, output: Tensor) -> Tensor:
        mu, log_sigma = output.unbind(-1)
        return torch.exp(mu + 0.5 * torch.exp(2 * log_sigma))

    def joint(self, output: Tensor, parents: Sequence[Tensor]) -> Tensor:
        """(μ + log p(parents), log σ): its mean is p(parents) · E[T | parents]."""
        if not parents:
            return output
        mu, log_sigma = output.unbind(-1)
        log_p = sum(F.logsigmoid(logit) for logit in parents)  # (B,)
        return torch.stack([mu + log_p, log_sigma], -1)

    def constant(self, target: Tensor) -> Tensor:
        """(mean of log T, log of its standard deviation)."""
        log_t = torch.log(target.double())
        return torch.stack([log_t.mean(), torch.log(log_t.std().clamp_min(1e-6))])

    def label_problem(self, values: Tensor) -> str | None:
        return None if bool((values > 0).all()) else "must be > 0 (a duration)"


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add `kind` to the kinds objectives may declare, under `kind.name`; returns it.
    A ValueError when the name is taken by another kind."""
    if not isinstance(kind, Kind):
        raise TypeError(f"register takes a Kind instance, got {kind!r}")
    name = getattr(kind, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"a kind needs a non-empty name, got {name!r}")
    if name in KINDS and type(KINDS[name]) is not type(kind):
        raise ValueError(f"kind {name!r} is already registered as {KINDS[name]!r}")
    KINDS[name] = kind
    return kind


def get(name: str) -> Kind:
    """The registered kind called `name`; a ValueError naming it otherwise."""
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ValueError(
            f"unknown kind {name!r}; register it with sbmm.kinds.register "
            f"(registered: {', '.join(KINDS)})"
        )
    return kind


def higher_is_better(metric: str) -> bool:
    """Whether a larger `metric` is better, for any registered kind that reports it."""
    return any(metric in kind.higher_is_better for kind in KINDS.values())


for _kind in (Binary(), Regression(), LogNormal()):
    register(_kind)
