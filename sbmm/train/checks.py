"""The checks every training entry point (`fit`, `fit_replicas`, `predict`, `evaluate`)
runs before it touches a weight: the model, the data sets and the options. Errors name
the data set and the feature, objective or option."""

from __future__ import annotations

import os

from torch import nn

from ..data.batch import Batch
from ..losses import check_labels
from ..models.base import MultiTaskModel
from ..validation import is_count, is_number

__all__ = ["check_model", "check_data", "check_options", "progress_enabled"]


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
