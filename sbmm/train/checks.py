"""The checks every training entry point (`fit`, `fit_replicas`, `predict`, `evaluate`)
runs before it touches a weight: the model, the data sets and the options. Errors name
the data set and the feature, objective or option."""

from __future__ import annotations

import os

import torch
from torch import nn

from ..data.batch import Batch
from ..losses import check_labels
from ..models.base import MultiTaskModel
from ..validation import is_count, is_number
from .stopping import EarlyStopping

__all__ = [
    "adam",
    "check_data",
    "check_model",
    "check_options",
    "check_stopping",
    "check_weight_decay",
    "progress_enabled",
]


def check_model(model: nn.Module) -> MultiTaskModel:
    if not isinstance(model, MultiTaskModel):
        raise TypeError(
            "fit/evaluate need an sbmm model built from declarations "
            "(e.g. sbmm.SharedBottom), "
            f"got {type(model).__name__}"
        )
    return model


def check_data(
    name: str, data: Batch, model: MultiTaskModel, labels: bool = True
) -> Batch:
    """`data` if it is a non-empty Batch whose features (and, with `labels`, labels) fit
    the model; else an error that names `name` and the feature or objective."""
    if not isinstance(data, Batch):
        raise TypeError(f"{name} must be an sbmm Batch, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} has no rows")
    try:
        model.check_inputs(data.features, len(data))
        if labels:
            check_labels(model.tower_specs, data)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{name}: {error}") from None
    return data


def progress_enabled(progress: bool) -> bool:
    return progress and os.environ.get("TQDM_DISABLE", "").lower() not in (
        "1",
        "true",
        "yes",
    )


def check_options(
    epochs, batch_size, lr, precision, keep_best, valid, resume, checkpoint
):
    if not is_count(epochs):
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not is_count(batch_size):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not (is_number(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    if keep_best and valid is None:
        raise ValueError(
            "keep_best=True needs validation data (valid) to choose the best epoch"
        )
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint file to resume from")


def check_stopping(
    rule: EarlyStopping | None, keep_best: bool, valid, model: MultiTaskModel
) -> EarlyStopping | None:
    """The rule that chooses the epoch a run ends with: `rule`, or with `keep_best`
    alone the validation total without stopping; None when the run keeps its last
    epoch. Errors name the option."""
    if rule is None:
        return EarlyStopping(patience=None) if keep_best else None
    if not isinstance(rule, EarlyStopping):
        raise TypeError(
            f"early_stopping must be an sbmm.EarlyStopping, got {type(rule).__name__}"
        )
    if valid is None:
        raise ValueError("early_stopping needs validation data (valid) to watch")
    rule.check(model.objectives)
    return rule


def check_weight_decay(weight_decay, optimizer) -> None:
    if not (is_number(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    if weight_decay and optimizer is not None:
        raise ValueError(
            "weight_decay is for the default optimiser; give it to your optimizer= "
            "function instead"
        )


def adam(params, lr: float, weight_decay: float, **options) -> torch.optim.Optimizer:
    """The default optimiser: Adam(lr), or AdamW(lr, weight_decay) when weight_decay
    > 0 (decoupled weight decay)."""
    if weight_decay:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **options)
    return torch.optim.Adam(params, lr=lr, **options)
