"""Metrics (scikit-learn underneath).

`objective_metrics`: per objective, the metrics its kind reports (`sbmm.kinds`: AUC
and log loss for binary objectives, RMSE for regression and durations), against the
observed labels. `truth_auc` and `excess_log_loss` score a model
against a simulator's true probabilities instead: each impression counts as a positive
with weight p and as a negative with weight 1 − p, which is the expectation over every
0/1 label the world could have drawn, so the label noise of one finite test set drops
out.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from . import kinds
from .objectives import Objective, Tower
from .spaces import labelled_rows

__all__ = ["excess_log_loss", "objective_metrics", "scores", "truth_auc"]


def objective_metrics(
    objective: Objective,
    prediction: Tensor,
    labels: Mapping[str, Tensor],
    towers: Sequence[Tower] = (),
) -> dict[str, float]:
    """Metrics of one objective over the rows where its label is read
    (`sbmm.spaces.labelled_rows`): a like model given click is scored on clicked
    impressions, masked or trained on the entire space (`towers` then declare its
    chain).

    prediction: the objective's raw outputs, (B,) or (B, width).
    Returns its kind's metrics ({"auc", "logloss"} binary, {"rmse"} regression and
    lognormal), plus "n", the samples scored; only "n" for an imputation objective
    (`Objective.imputes`), which has no label (its loss is its fit).
    AUC is NaN when the admitted samples hold only one class (it is undefined there).
    Raises a ValueError naming the objective when a prediction is NaN or infinite.
    """
    keep = labelled_rows(objective, labels, towers)
    if objective.imputes is not None:
        return {"n": len(prediction) if keep is None else int(keep.sum())}
    y = labels[objective.target]
    if keep is not None:
        prediction, y = prediction[keep], y[keep]
    return scores(objective, prediction, y)


def scores(objective: Objective, prediction: Tensor, y: Tensor) -> dict[str, float]:
    """The metrics of `objective`'s kind, of raw outputs `prediction` (N, ...) against
    labels `y` (N, ...), scored on the expectation the kind reads from the outputs
    (σ(logit), the value, e^{μ + σ²/2}), plus "n"; {"n": 0} with no rows. A
    ValueError naming the objective when a prediction is not finite, and a
    FloatingPointError (a diverged run, as `sweep_lr` counts it) when the mean read
    from finite outputs overflows."""
    y = y.detach().double().cpu().numpy()
    p = prediction.detach().double().cpu()
    n = len(y)
    if n == 0:
        return {"n": 0}
    if not bool(torch.isfinite(p).all()):
        raise ValueError(
            f"objective {objective.name!r}: the model's predictions hold NaN or inf "
            "(are its weights finite?)"
        )
    kind = kinds.get(objective.kind)
    mean = kind.mean(p).numpy()
    if not np.isfinite(mean).all():  # e^{μ + σ²/2} past float range: diverged
        raise FloatingPointError(
            f"objective {objective.name!r}: the mean the model predicts overflows "
            f"on {int((~np.isfinite(mean)).sum())} rows (has training diverged?)"
        )
    return {**{m: kind.metric(m, y, mean) for m in kind.metrics}, "n": n}


def _as_outcomes(
    score: ArrayLike | Tensor, p_true: ArrayLike | Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each of the N rows twice, as outcome 1 with weight p and outcome 0 with weight
    1 − p: (labels (2N,), scores (2N,), weights (2N,))."""
    s, p = (
        np.asarray(torch.as_tensor(a).detach().double().cpu()) for a in (score, p_true)
    )
    if s.ndim != 1 or s.shape != p.shape:
        raise ValueError(
            f"score and p_true must be 1-d and of one length, got shapes {s.shape} and "
            f"{p.shape}"
        )
    if not np.all(np.isfinite(s)):
        raise ValueError("score holds NaN or infinite values")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("p_true must hold probabilities in [0, 1]")
    return np.r_[np.ones_like(p), np.zeros_like(p)], np.r_[s, s], np.r_[p, 1 - p]


def truth_auc(score: ArrayLike | Tensor, p_true: ArrayLike | Tensor) -> float:
    """The AUC of `score` (N,) (logits, probabilities, any monotone score) expected over
    labels drawn from the true probabilities `p_true` (N,). Scoring by `p_true` itself
    gives the highest value possible in that world (below 1 whenever outcomes are
    uncertain); a constant score gives 0.5."""
    y, s, w = _as_outcomes(score, p_true)
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s, sample_weight=w))


def excess_log_loss(q: ArrayLike | Tensor, p_true: ArrayLike | Tensor) -> float:
    """The expected log loss of predicted probabilities `q` (N,) minus that of the truth
    `p_true` (N,), over labels drawn from `p_true`: the mean KL(p ‖ q). Zero only for
    q = p; it measures calibration and ranking together."""
    from sklearn.metrics import log_loss

    y, q2, w = _as_outcomes(q, p_true)
    if not np.all((q2 >= 0) & (q2 <= 1)):
        raise ValueError(
            "q must hold probabilities in [0, 1] (apply a sigmoid to logits first)"
        )
    _, p2, _ = _as_outcomes(p_true, p_true)
    return float(log_loss(y, q2, sample_weight=w) - log_loss(y, p2, sample_weight=w))
