"""The checks every training entry point (`fit`, `fit_replicas`, `predict`, `evaluate`)
runs before it touches a weight: the model, the data sets and the weighting strategy
(the options are `TrainSpec`'s). Errors name the data set and the feature, objective or
option."""

from __future__ import annotations

import os

from torch import nn

from ..data.batch import Batch
from ..losses import check_labels
from ..models.base import MultiTaskModel
from ..weighting import Static, Weighting

__all__ = ["check_data", "check_model", "check_weighting", "progress_enabled"]


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


def check_weighting(weighting: Weighting | None) -> Weighting:
    """`weighting`, or `Static()` for None; a TypeError unless it is a strategy."""
    weighting = weighting if weighting is not None else Static()
    if not isinstance(weighting, Weighting):
        raise TypeError(
            "weighting must be an sbmm.weighting strategy, "
            f"got {type(weighting).__name__}"
        )
    return weighting
