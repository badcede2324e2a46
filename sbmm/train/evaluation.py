"""Predicting and scoring a trained model: `predict`, `predict_joint`, `evaluate`, and
the losses and metrics that validation during training records. Evaluation runs in
large batches under `torch.inference_mode()`."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import kinds
from ..conditional import entire_space_inputs, joint_prediction
from ..data.batch import Batch
from ..losses import objective_losses
from ..metrics import objective_metrics, scores
from ..models.base import MultiTaskModel
from ..spaces import resolve
from .checks import check_data, check_model

__all__ = [
    "EVAL_BATCH_SIZE",
    "evaluate",
    "losses_and_metrics",
    "predict",
    "predict_joint",
]

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


@torch.inference_mode()
def predict_joint(
    model: MultiTaskModel, data: Batch, batch_size: int = EVAL_BATCH_SIZE
) -> dict[str, Tensor]:
    """The model's predictions over the entire space, for ranking every row: a binary
    objective's probability of it and of everything it is given, p(click ∧ like) =
    p(click) · p(like | click) (its own probability when it is given nothing); a
    regression objective's unconditional expectation, E[play] = p(click) ·
    E[play | click], and a duration's mean, e^{μ + σ²/2} (`Kind.mean` of
    `Kind.joint`). {objective: (N,) or (N, dim)}, on the model's device; features are
    checked first, as in `predict`."""
    model = check_model(model)
    data = check_data("data", data, model, labels=False)
    predictions = _predict(model, data, batch_size)
    out = {}
    for o in model.objectives:
        joint = joint_prediction(o, predictions, model.tower_specs)
        out[o.name] = kinds.get(o.kind).mean(joint)
    return out


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
    return _scored(model, predictions, data.to(next(model.parameters()).device))


def _scored(
    model: MultiTaskModel, predictions: dict[str, Tensor], data: Batch
) -> tuple[dict[str, Tensor], dict[str, dict[str, float]]]:
    """The losses and metrics of `predictions` against `data`, on one device."""
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
    """Per-objective metrics of `model` on `data`, each saying which rows it covers:

    {objective: {"auc", "logloss", "n"} (binary) or {"rmse", "n"} (regression),
                 "loss", "n_loss"}

    - "auc", "logloss", "rmse" score the prediction where the objective's label is
      read, "n" rows (`sbmm.spaces.labelled_rows`): a like given click, masked or
      entire-space, on the clicked rows.
    - "loss" is the objective's own (masked, weighted) training loss over "n_loss"
      rows: the rows its loss admits, every row for an entire-space objective.
    - an objective given another also gets "joint_auc", "joint_logloss", "joint_n"
      (binary) or "joint_rmse", "joint_n" (regression): the joint prediction
      (`predict_joint`) against the joint label (click · like) over every row, which
      is what ranking by it serves. (Validation during training leaves them out.)

    Features and labels are checked first."""
    model = check_model(model)
    data = check_data("data", data, model)
    predictions = _predict(model, data, batch_size)
    data = data.to(next(model.parameters()).device)
    losses, metrics = _scored(model, predictions, data)
    out = {}
    spaces = resolve(model.tower_specs)
    for o in model.objectives:
        out[o.name] = {**metrics[o.name], "loss": float(losses[o.name])}
        rows = spaces[o.name].loss_rows(data.labels)  # where the loss averages
        out[o.name]["n_loss"] = len(data) if rows is None else int(rows.sum())
        if o.given is not None and o.imputes is None:
            joint, target = entire_space_inputs(o, predictions, model.tower_specs, data)
            joint_scores = scores(o, joint, target)
            out[o.name].update({f"joint_{k}": v for k, v in joint_scores.items()})
    return out
