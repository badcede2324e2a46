"""Fusion (多目标融合): from a multi-task model's predictions to the one score that
orders a request's candidates.

A feed ranks each request's C candidates by one number. Given per-objective
predictions, each {objective: (R, C)} (R requests, C candidates), the forms used in
practice give (R, C) scores, higher first:

    weighted_sum(p, w)     Σ_o w_o · p_o
    product(p, w)          Π_o p_o^w_o, ranked by its logarithm Σ_o w_o · log p_o
                           (a weight is an exponent: scale-free in each p_o)
    rank_fusion(p, w)      Σ_o w_o / (k + rank_o): reciprocal rank fusion, which
                           reads only each objective's order within the request
    Utility.expected(p)    a declared utility's expectation, which needs calibrated
                           predictions (probabilities and times in their own units)

and their orderings are judged per request against the true utility, by `ndcg`; `gauc`
is one objective's per-request AUC against its labels. `FeedSimulator.requests` draws
requests with the truth of every candidate.

    requests = FeedSimulator().requests(2_000, n_candidates=50, seed=0, stream=1)
    gains = UTILITY.expected(truth_inputs(requests))            # (R, C) true utility
    scores = weighted_sum({"click": p_click, "like": p_like}, {"click": 1, "like": 2})
    ndcg(scores, gains, k=10)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import ndcg_score

from .data.feed import Requests
from .validation import is_number

__all__ = [
    "INPUTS",
    "UTILITY",
    "Utility",
    "gauc",
    "ndcg",
    "product",
    "rank_fusion",
    "truth_inputs",
    "weighted_sum",
]

Grid = Mapping[str, np.ndarray]  # {objective: (R, C)}

# The utility's inputs and the truth column of each: what the objectives estimate.
INPUTS = {
    "stay": "p_stay",  # p(stay)
    "stay_time": "stay_time_given_stay",  # E[stay time | stay], s
    "click": "p_click",  # p(click)
    "play_time": "play_time_given_click",  # E[play time | click], s
    "like": "p_like_given_click",  # p(like | click)
}


@dataclass(frozen=True)
class Utility:
    """What an impression is worth, in seconds of attention:

        U = p(stay) · E[stay time | stay]
            + play · p(click) · E[play time | click]
            + like · p(click) · p(like | click)

    `play` weighs a second of play against a second of stay; `like` is a like's
    worth in seconds of stay."""

    play: float = 1.0
    like: float = 30.0

    def __post_init__(self) -> None:
        for name in ("play", "like"):
            if not is_number(getattr(self, name)):
                raise ValueError(
                    f"Utility {name} must be a finite number, got "
                    f"{getattr(self, name)!r}"
                )

    def expected(self, p: Grid) -> np.ndarray:
        """(R, C) E[U] from the five inputs of `INPUTS`, each (R, C); true inputs give
        the true utility, calibrated predictions its estimate."""
        _check(p, INPUTS)
        return (
            p["stay"] * p["stay_time"]
            + self.play * p["click"] * p["play_time"]
            + self.like * p["click"] * p["like"]
        )


UTILITY = Utility()  # the book's utility


def truth_inputs(requests: Requests, attainable: bool = True) -> dict[str, np.ndarray]:
    """The utility's inputs from the requests' truth, each (R, C): the attainable truth
    (given the features, the best a model can know; the default) or the noisy one."""
    prefix = "attainable_" if attainable else ""
    truth = requests.batch.truth
    return {o: requests.grid(truth[prefix + column]) for o, column in INPUTS.items()}


def weighted_sum(p: Grid, weights: Mapping[str, float]) -> np.ndarray:
    """(R, C) Σ_o w_o · p_o over the objectives of `weights`."""
    _check(p, weights, weights)
    return sum(w * np.asarray(p[o], dtype=np.float64) for o, w in weights.items())


def product(p: Grid, weights: Mapping[str, float]) -> np.ndarray:
    """(R, C) Σ_o w_o · log p_o, the logarithm of Π_o p_o^w_o (same order). The p_o of
    an objective of nonzero weight must be positive (probabilities, times): a
    ValueError names the objective otherwise (clip its predictions, with a floor of
    your choosing, if a prediction may fall to 0 or below)."""
    _check(p, weights, weights)
    for o, w in weights.items():
        low = float(np.min(p[o]))
        if w != 0 and low <= 0:
            raise ValueError(
                f"product: the predictions of {o!r} must be positive (they are "
                f"raised to the power {w:g}); the lowest is {low:g}"
            )
    return sum(
        w * np.log(np.asarray(p[o], dtype=np.float64))
        for o, w in weights.items()
        if w != 0
    )


def rank_fusion(p: Grid, weights: Mapping[str, float], k: float = 60.0) -> np.ndarray:
    """(R, C) Σ_o w_o / (k + rank_o), rank_o = 1 for the candidate with the highest
    p_o in its request (ties share their mean rank). k = 60 damps the top ranks, as in
    Cormack et al. (2009)."""
    if not (is_number(k) and k >= 0):
        raise ValueError(f"rank_fusion: k must be a finite number >= 0, got {k!r}")
    _check(p, weights, weights)
    return sum(
        w / (k + rankdata(-np.asarray(p[o], dtype=np.float64), axis=1))
        for o, w in weights.items()
    )


def ndcg(scores: np.ndarray, gains: np.ndarray, k: int = 10) -> float:
    """NDCG@k of ordering each request's candidates by `scores` (R, C), against
    their `gains` (R, C) >= 0 (the true utility), averaged over the requests: 1 for
    the ideal order (scikit-learn's `ndcg_score`; tied scores, which continuous
    predictions do not make, are ordered arbitrarily)."""
    scores, gains = np.asarray(scores), np.asarray(gains)
    if scores.shape != gains.shape or scores.ndim != 2:
        raise ValueError(
            f"scores and gains must both be (requests, candidates), got "
            f"{scores.shape} and {gains.shape}"
        )
    _check_finite("scores", scores)
    _check_finite("gains", gains)
    if (gains < 0).any():
        raise ValueError("gains must be >= 0")
    return float(ndcg_score(gains, scores, k=k, ignore_ties=True))


def gauc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Group AUC: the AUC of `scores` (R, C) against 0/1 `labels` (R, C) within each
    request, averaged over the requests that hold both a 0 and a 1 (NaN if none).
    Each request's AUC is the Mann-Whitney statistic of its ranks (ties count half),
    the value scikit-learn's `roc_auc_score` gives, for all requests at once."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 2:
        raise ValueError(
            f"scores and labels must both be (requests, candidates), got "
            f"{scores.shape} and {labels.shape}"
        )
    _check_finite("scores", scores)
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    positives = labels.sum(1)  # (R,)
    negatives = labels.shape[1] - positives
    mixed = (positives > 0) & (negatives > 0)
    if not mixed.any():
        return math.nan
    ranks = rankdata(scores[mixed], axis=1)  # (R', C), 1 = lowest; ties: mean rank
    p, n = positives[mixed], negatives[mixed]
    above = (ranks * labels[mixed]).sum(1) - p * (p + 1) / 2  # (R',) pairs won
    return float(np.mean(above / (p * n)))


def _check(p: Grid, names, weights: Mapping[str, float] | None = None) -> None:
    """ValueError naming an objective that `p` lacks, or whose predictions are of
    another shape or not finite numbers; with `weights`, one whose weight is not a
    finite number."""
    missing = [o for o in names if o not in p]
    if missing:
        raise ValueError(f"no prediction for {missing}; given {sorted(p)}")
    shapes = {np.shape(p[o]) for o in names}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(
            f"predictions must share one (requests, candidates) shape, got {shapes}"
        )
    for o in names:
        _check_finite(f"the predictions of {o!r}", p[o])
        if weights is not None and not is_number(weights[o]):
            raise ValueError(
                f"the weight of {o!r} must be a finite number, got {weights[o]!r}"
            )


def _check_finite(what: str, values) -> None:
    """ValueError naming `what` when `values` (R, C) are not all finite numbers."""
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be numbers, got {values.dtype} values")
    bad = ~np.isfinite(values)
    if bad.any():
        request = int(np.argmax(bad.any(axis=-1))) if values.ndim == 2 else 0
        raise ValueError(
            f"{what} must be finite, but hold {int(bad.sum())} NaN or inf values "
            f"(the first in request {request})"
        )
