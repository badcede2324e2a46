"""Predicting and scoring a trained model: `predict`, `evaluate`, and the losses and
metrics that validation during training records. Evaluation runs in large batches
under `torch.inference_mode()`."""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.batch import Batch
from ..losses import objective_losses
from ..metrics import objective_metrics
from ..models.base import MultiTaskModel
from .checks import check_data, check_model

__all__ = ["EVAL_BATCH_SIZE", "predict", "evaluate", "losses_and_metrics"]

EVAL_BATCH_SIZE = 65_536  # rows per forward pass when predicting and evaluating


@torch.inference_mode()
def predict(
    model: MultiTaskModel, data: Batch, batch_size: int = EVAL_BATCH_SIZE
) -> dict[str, Tensor]:
    """The model's predictions on every row of `data`, in evaluation mode, computed on
    the model's device in batches of `batch_size`; returns {objective: (N,) or (N, dim)}
    there. The features are checked first (see `MultiTaskModel.check_inputs`)."""
    model = check_model(model)
    data = check_data("data", data, model, labels=False)
    return _predict(model, data, batch_size)


def _predict(model: MultiTaskModel, data: Batch, batch_size: int) -> dict[str, Tensor]:
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        parts = [
            model(data[i : i + batch_size].to(device).features)
            for i in range(0, len(data), batch_size)
        ]
    return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}


def losses_and_metrics(
    model: MultiTaskModel, data: Batch, batch_size: int = EVAL_BATCH_SIZE
) -> tuple[dict[str, Tensor], dict[str, dict[str, float]]]:
    """Each objective's loss (a 0-d tensor) and metrics on checked data."""
    predictions = _predict(model, data, batch_size)
    data = data.to(next(model.parameters()).device)
    towers = model.tower_specs
    losses = objective_losses(towers, predictions, data)
    metrics = {
        o.name: objective_metrics(o, predictions[o.name], data.labels, towers)
        for o in model.objectives
    }
    return losses, metrics


def evaluate(
    model: MultiTaskModel, data: Batch, batch_size: int = EVAL_BATCH_SIZE
) -> dict[str, dict[str, float]]:
    """Per-objective metrics of `model` on `data`: {objective: {"auc", "logloss", "n"}
    or {"rmse", "n"}, each with "loss", the objective's own (masked, weighted) loss over
    the rows its loss admits (every row for an entire-space objective, whose metrics are
    scored where its condition holds; see `sbmm.objectives.labelled_rows`). Features and
    labels are checked first."""
    model = check_model(model)
    data = check_data("data", data, model)
    losses, metrics = losses_and_metrics(model, data, batch_size)
    return {name: {**m, "loss": float(losses[name])} for name, m in metrics.items()}
