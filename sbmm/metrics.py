"""Per-objective metrics: AUC and log loss for binary objectives, RMSE for regression (scikit-learn)."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score
from torch import Tensor

from .objectives import Objective

__all__ = ["objective_metrics"]


def objective_metrics(
    objective: Objective, prediction: Tensor, labels: Mapping[str, Tensor], given_label: str | None = None
) -> dict[str, float]:
    """Metrics of one objective over the samples its mask (and, for a conditional objective, the label
    `given_label` of what it is given) admits: a like model is scored on clicked impressions.

    prediction: (B,) logits for a binary objective, (B,) or (B, dim) values for a regression one.
    Returns {"auc", "logloss"} (binary) or {"rmse"} (regression), plus "n", the samples scored.
    AUC is NaN when the admitted samples hold only one class (it is undefined there).
    """
    y = labels[objective.target]
    for name in (objective.mask, given_label):
        if name is not None:
            keep = labels[name] > 0
            prediction, y, labels = prediction[keep], y[keep], {k: v[keep] for k, v in labels.items()}
    y = y.detach().double().cpu().numpy()
    p = prediction.detach().double().cpu()
    n = len(y)
    if n == 0:
        return {"n": 0}
    if objective.kind == "regression":
        return {"rmse": math.sqrt(mean_squared_error(y, p.numpy())), "n": n}
    prob = torch.sigmoid(p).numpy()
    auc = roc_auc_score(y, prob) if len(np.unique(y)) == 2 else math.nan
    return {"auc": float(auc), "logloss": float(log_loss(y, prob, labels=[0, 1])), "n": n}
