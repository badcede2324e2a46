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

Each is a weighted sum of some terms of the predictions: of the predictions
themselves, of their logarithms, of `reciprocal_ranks`, or, for the utility, of the
entire-space terms `joint` (E[U] = weighted_sum(joint(p), UTILITY.weights)).

Orderings are judged per request against the true utility, by `ndcg`; `gauc` is one
objective's per-request AUC against its labels. `FeedSimulator.requests` draws
requests with the truth of every candidate. `search` finds a form's weights with a
black-box optimiser (random, differential evolution, or Optuna's TPE or GP samplers)
and keeps every evaluation, so that searches can be compared by the evaluations
they need.

    requests = FeedSimulator().requests(2_000, n_candidates=50, seed=0, stream=1)
    gains = UTILITY.expected(truth_inputs(requests))            # (R, C) true utility
    scores = weighted_sum({"click": p_click, "like": p_like}, {"click": 1, "like": 2})
    ndcg(scores, gains, k=10)
    weighted_sum(joint(truth_inputs(requests)), UTILITY.weights)  # == gains
    p = {"click": p_click, "like": p_like}
    found = search(lambda w: ndcg(weighted_sum(p, w), gains), {"click": (0, 1),
                   "like": (0, 3)}, "tpe", evaluations=100, seed=0)
    found.best, found.evaluations_to(0.7)     # weights; evaluations to NDCG 0.7
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import differential_evolution
from scipy.stats import rankdata

from .data.feed import Requests
from .validation import is_number

__all__ = [
    "DE_POPSIZE",
    "GIVEN",
    "INPUTS",
    "SEARCHES",
    "UTILITY",
    "Search",
    "Utility",
    "gauc",
    "joint",
    "ndcg",
    "product",
    "rank_fusion",
    "reciprocal_ranks",
    "search",
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
# The input each conditional input is given: its entire-space (joint) term is the
# product of the two, `joint`.
GIVEN = {"stay_time": "stay", "play_time": "click", "like": "click"}


@dataclass(frozen=True)
class Utility:
    """What an impression is worth, in seconds of attention:

        U = p(stay) · E[stay time | stay]
            + play · p(click) · E[play time | click]
            + like · p(click) · p(like | click)

    `play` weighs a second of play against a second of stay; `like` is a like's
    worth in seconds of stay. Each term is an entire-space (joint) quantity, so U is
    a weighted sum of the `joint` terms, with the weights `weights`."""

    play: float = 1.0
    like: float = 30.0

    def __post_init__(self) -> None:
        for name in ("play", "like"):
            if not is_number(getattr(self, name)):
                raise ValueError(
                    f"Utility {name} must be a finite number, got "
                    f"{getattr(self, name)!r}"
                )

    @property
    def weights(self) -> dict[str, float]:
        """The utility's weight of each `joint` term: {"stay_time": 1, "play_time":
        play, "like": like} (the stay and click probabilities weigh 0)."""
        return {"stay_time": 1.0, "play_time": self.play, "like": self.like}

    def expected(self, p: Grid) -> np.ndarray:
        """(R, C) E[U] from the five inputs of `INPUTS`, each (R, C); true inputs give
        the true utility, calibrated predictions its estimate."""
        _check(p, INPUTS)
        return weighted_sum(joint({o: p[o] for o in INPUTS}), self.weights)


UTILITY = Utility()  # the book's utility


def truth_inputs(requests: Requests, attainable: bool = True) -> dict[str, np.ndarray]:
    """The utility's inputs from the requests' truth, each (R, C): the attainable truth
    (given the features, the best a model can know; the default) or the noisy one."""
    prefix = "attainable_" if attainable else ""
    truth = requests.batch.truth
    return {o: requests.grid(truth[prefix + column]) for o, column in INPUTS.items()}


def joint(p: Grid) -> dict[str, np.ndarray]:
    """The entire-space term of each input of `p`, each (R, C): an input given
    another (`GIVEN`: the times and the like) times the probability of what it is
    given, the others as they are:

        stay       p(stay)            stay_time  p(stay) · E[stay time | stay]
        click      p(click)           play_time  p(click) · E[play time | click]
                                      like       p(click) · p(like | click)

    The joint terms are the utility's own (`Utility.weights`); an input whose parent
    `p` lacks is a ValueError naming both."""
    _check(p, p)
    missing = {o: GIVEN[o] for o in p if o in GIVEN and GIVEN[o] not in p}
    if missing:
        raise ValueError(
            f"joint: {sorted(missing)} need the predictions of what they are given "
            f"({missing})"
        )
    return {
        o: np.asarray(v, dtype=np.float64)
        * (np.asarray(p[GIVEN[o]], dtype=np.float64) if o in GIVEN else 1.0)
        for o, v in p.items()
    }


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
    Cormack et al. (2009): the weighted sum of `reciprocal_ranks`."""
    _check(p, weights, weights)
    return weighted_sum(reciprocal_ranks({o: p[o] for o in weights}, k), weights)


def reciprocal_ranks(p: Grid, k: float = 60.0) -> dict[str, np.ndarray]:
    """{objective: (R, C) 1 / (k + rank)}, rank = 1 for the candidate with the
    highest p_o in its request (ties share their mean rank)."""
    if not (is_number(k) and k >= 0):
        raise ValueError(f"rank_fusion: k must be a finite number >= 0, got {k!r}")
    _check(p, p)
    return {
        o: 1.0 / (k + rankdata(-np.asarray(v, dtype=np.float64), axis=1))
        for o, v in p.items()
    }


def ndcg(scores: np.ndarray, gains: np.ndarray, k: int = 10) -> float:
    """NDCG@k of ordering each request's candidates by `scores` (R, C), against
    their `gains` (R, C) >= 0 (the true utility), averaged over the requests: 1 for
    the ideal order, and 0 for a request whose gains are all 0. The value of
    scikit-learn's `ndcg_score(gains, scores, k=k, ignore_ties=True)`, computed from
    each request's top k alone (argpartition), which makes it several times faster
    for a search that calls it thousands of times; tied scores, which continuous
    predictions rarely make, are ordered arbitrarily, as there."""
    scores, gains = np.asarray(scores), np.asarray(gains, dtype=np.float64)
    if scores.shape != gains.shape or scores.ndim != 2:
        raise ValueError(
            f"scores and gains must both be (requests, candidates), got "
            f"{scores.shape} and {gains.shape}"
        )
    if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
        raise ValueError(f"ndcg: k must be an integer >= 1, got {k!r}")
    _check_finite("scores", scores)
    _check_finite("gains", gains)
    if (gains < 0).any():
        raise ValueError("gains must be >= 0")
    k = min(k, scores.shape[1])
    discount = 1.0 / np.log2(np.arange(2, k + 2))  # (k,)
    top = _top(scores, k)  # (R, k) candidates, best first
    dcg = np.take_along_axis(gains, top, 1) @ discount  # (R,)
    ideal = np.take_along_axis(gains, _top(gains, k), 1) @ discount  # (R,)
    return float(
        np.mean(np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0))
    )


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """(R, k): the indices of each row's k highest `scores` (R, C), highest first."""
    if k < scores.shape[1]:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (R, k), unordered
    else:
        top = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, order, 1)


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


SEARCHES = ("random", "differential evolution", "tpe", "gp")
DE_POPSIZE = 5  # differential evolution's population: members per searched coordinate


@dataclass(frozen=True)
class Search:
    """Every evaluation of one `search`, in the order it made them.

    names:  the searched coordinates.
    points: (evaluations, len(names)) each point evaluated.
    values: (evaluations,) its value (higher is better).
    """

    names: tuple[str, ...]
    points: np.ndarray
    values: np.ndarray

    @property
    def best(self) -> dict[str, float]:
        """{name: coordinate} of the best point found (the first, on a tie)."""
        k = int(np.argmax(self.values))
        return {n: float(x) for n, x in zip(self.names, self.points[k])}

    def best_so_far(self) -> np.ndarray:
        """(evaluations,): the best value found within the first 1, 2, ...
        evaluations."""
        return np.maximum.accumulate(self.values)

    def evaluations_to(self, target: float) -> float:
        """The number of evaluations after which the best value found is at least
        `target`, or inf if the search never reached it."""
        reached = np.flatnonzero(self.values >= target)
        return float(reached[0] + 1) if reached.size else math.inf


def search(
    value: Callable[[dict[str, float]], float],
    bounds: Mapping[str, tuple[float, float]],
    method: str,
    evaluations: int,
    seed: int,
) -> Search:
    """Maximise `value({name: x})` over the box `bounds` {name: (low, high)} with
    `method`, spending at most `evaluations` calls of `value`, and keep every call:

        "random"                  independent uniform draws
        "differential evolution"  SciPy's, a population of DE_POPSIZE per
                                  coordinate (Storn and Price 1997), no final
                                  polish
        "tpe"                     Optuna's tree-structured Parzen estimator, a
                                  Bayesian optimiser (Bergstra et al. 2011)
        "gp"                      Optuna's Gaussian-process Bayesian optimiser

    Each draws from `seed` and repeats exactly. Differential evolution stops early,
    with fewer evaluations, only when its whole population has one value. Optuna is
    imported here, on first use, and its log is silenced while the search runs.
    Returns the `Search`; an unknown method, a budget below 1 or an empty or inverted
    box is a ValueError."""
    if method not in SEARCHES:
        raise ValueError(f"search: method must be one of {SEARCHES}, got {method!r}")
    if not (isinstance(evaluations, int) and evaluations >= 1):
        raise ValueError(
            f"search: evaluations must be an integer >= 1, got {evaluations!r}"
        )
    names = tuple(bounds)
    box = np.array([bounds[n] for n in names], dtype=np.float64)  # (d, 2)
    if not (len(names) and np.isfinite(box).all() and (box[:, 0] < box[:, 1]).all()):
        raise ValueError(
            f"search: bounds must map names to finite (low, high), low < high; got "
            f"{dict(bounds)}"
        )
    points, values = [], []

    def record(x) -> float:  # one call of `value`, kept
        point = dict(zip(names, map(float, x)))
        points.append(list(point.values()))
        values.append(float(value(point)))
        return values[-1]

    if method == "random":
        rng = np.random.default_rng(seed)
        for x in rng.uniform(box[:, 0], box[:, 1], (evaluations, len(names))):
            record(x)
    elif method == "differential evolution":
        generations = math.ceil(evaluations / (DE_POPSIZE * len(names)))
        differential_evolution(  # minimises; past the budget, calls are not made
            lambda x: -record(x) if len(values) < evaluations else 0.0,
            box,
            popsize=DE_POPSIZE,  # × len(names) members: a generation's evaluations
            maxiter=generations - 1,  # the first generation is the initial one
            tol=0.0,  # stop early only when every member has the same value
            polish=False,
            seed=seed,
        )
    else:
        _optuna(record, names, box, method, evaluations, seed)
    return Search(names, np.array(points), np.array(values))


def _optuna(record, names, box, method: str, evaluations: int, seed: int) -> None:
    """Run an Optuna study of `evaluations` trials with the TPE or GP sampler,
    `record`ing each, Optuna's log silenced meanwhile."""
    # Optuna imports tqdm.auto, which warns in a notebook without ipywidgets
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import optuna

    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if method == "tpe"
        else optuna.samplers.GPSampler(seed=seed)
    )
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(
            lambda trial: record(
                [
                    trial.suggest_float(n, low, high)
                    for n, (low, high) in zip(names, box)
                ]
            ),
            n_trials=evaluations,
        )
    finally:
        optuna.logging.set_verbosity(verbosity)


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
