"""Training and evaluation: `fit`, `evaluate`, `predict`, and the `History` of a run.

In-memory data lives on the training device; each epoch shuffles an index tensor and cuts batches by
slicing it (no per-sample Dataset/collate). Losses are accumulated on the device and read once per
epoch. Evaluation runs in large batches under `torch.inference_mode()`.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import Tensor, nn
from tqdm import tqdm

from .data.batch import Batch
from .metrics import objective_metrics
from .models.base import MultiTaskModel
from .objectives import check_labels, multitask_loss, objective_losses
from .profile import default_device, seed_everything
from .weighting import Static, Weighting

__all__ = ["History", "StepCallback", "fit", "evaluate", "predict"]

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
# A step callback: called as callback(step, model, losses) after each forward pass and before the
# backward pass, while `losses` ({objective: loss}) still hold their graphs (so a callback may take
# gradients of them with retain_graph=True). `step` counts optimiser steps from 0 over the whole run.
StepCallback = Callable[[int, nn.Module, dict[str, Tensor]], None]


@dataclass
class History:
    """What `fit` measured, one entry per epoch.

    train_loss[name]:  mean over the epoch's steps of each objective's loss, and "total" (the weighted sum).
    valid_loss[name]:  the same losses on the validation data at the end of each epoch (if given).
    valid_metrics:     per epoch, `evaluate`'s {objective: {metric: value}} on the validation data.
    weights[name]:     the weighting strategy's weight of each objective at the end of each epoch.
    seconds:           wall-clock time of each epoch's training steps (not validation).
    """

    train_loss: dict[str, list[float]] = field(default_factory=dict)
    valid_loss: dict[str, list[float]] = field(default_factory=dict)
    valid_metrics: list[dict[str, dict[str, float]]] = field(default_factory=list)
    weights: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.seconds)


def _check_model(model: nn.Module) -> MultiTaskModel:
    if not isinstance(model, MultiTaskModel):
        raise TypeError(
            f"fit/evaluate need an sbmm model built from declarations (e.g. sbmm.SharedBottom), "
            f"got {type(model).__name__}"
        )
    return model


def _check_data(name: str, data: Batch) -> Batch:
    if not isinstance(data, Batch):
        raise TypeError(f"{name} must be an sbmm Batch, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} has no rows")
    return data


def _progress_enabled(progress: bool) -> bool:
    return progress and os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")


def fit(
    model: MultiTaskModel,
    train: Batch,
    valid: Batch | None = None,
    *,
    epochs: int = 10,
    batch_size: int = 1024,
    lr: float = 1e-3,
    optimizer: OptimizerFactory | None = None,
    seed: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    callbacks: Iterable[StepCallback] = (),
    weighting: Weighting | None = None,
) -> History:
    """Train `model` on `train` with the loss its towers declare; return the `History`.

    epochs, batch_size: passes over the data, and samples per optimiser step (the last step of an
                        epoch takes the remainder).
    lr, optimizer:      Adam(lr) by default; or a function parameters → optimizer.
    seed:               seeds everything first (initial weights are the caller's: seed before building
                        the model for a fully reproducible run), then the shuffling.
    device:             where model and data live during training; CUDA when present by default.
    progress:           a tqdm bar over epochs; silenced by TQDM_DISABLE=1.
    callbacks:          functions called at every step before the backward pass (see `StepCallback`),
                        for diagnostics such as the cosine between objectives' gradients.
    weighting:          how the objectives' losses combine into gradients (`sbmm.weighting`); by default
                        `Static()`, the declared Σ_t w_t Σ_o w_o L_o. "total" in the History is what
                        the strategy minimised (training) and the declared total (validation).

    Raises FloatingPointError, naming the objective, when a loss becomes NaN or inf.
    """
    model = _check_model(model)
    train = _check_data("train", train)
    if valid is not None:
        valid = _check_data("valid", valid)
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    towers = model.tower_specs
    check_labels(towers, train)
    if valid is not None:
        check_labels(towers, valid)
    if seed is not None:
        seed_everything(seed)

    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    train = train.to(device)
    weighting = weighting if weighting is not None else Static()
    if not isinstance(weighting, Weighting):
        raise TypeError(f"weighting must be an sbmm.weighting strategy, got {type(weighting).__name__}")
    weighting.bind(model)
    params = [*model.parameters(), *weighting.parameters()]
    opt = optimizer(params) if optimizer is not None else torch.optim.Adam(params, lr=lr)
    names = ["total", *(o.name for o in model.objectives)]
    history = History({k: [] for k in names}, {k: [] for k in names} if valid is not None else {})
    history.weights = {o.name: [] for o in model.objectives}
    n = len(train)
    callbacks = tuple(callbacks)
    step = 0

    for epoch in tqdm(range(epochs), desc="epochs", disable=not _progress_enabled(progress)):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(n, device=device)
        step_losses: list[tuple[Tensor, ...]] = []  # per step: the total and each objective's loss, on the device
        for i in range(0, n, batch_size):
            batch = train[order[i : i + batch_size]]
            losses = objective_losses(towers, model(batch.features), batch)
            for callback in callbacks:
                callback(step, model, losses)
            opt.zero_grad(set_to_none=True)
            total = weighting.backward(losses)
            opt.step()
            weighting.after_step()
            step += 1
            step_losses.append((total, *(loss.detach() for loss in losses.values())))
        per_step = torch.stack([torch.stack(column) for column in zip(*step_losses)])  # (1 + n_objectives, steps)
        epoch_loss = per_step.mean(1).tolist()  # the epoch's one host sync
        history.seconds.append(time.perf_counter() - start)
        for name, value in sorted(zip(names, epoch_loss), key=lambda nv: nv[0] == "total"):  # objectives first
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"epoch {epoch + 1}: the loss of {name!r} is {value}; lower the learning rate or check the data"
                )
            history.train_loss[name].append(value)
        weighting.end_epoch({name: history.train_loss[name][-1] for name in names[1:]})
        for name, w in weighting.weights().items():
            history.weights[name].append(w)
        if valid is not None:
            losses, metrics = _evaluate(model, valid, batch_size=65_536)
            for name in names:
                history.valid_loss[name].append(losses[name])
            history.valid_metrics.append(metrics)
    return history


@torch.inference_mode()
def predict(model: MultiTaskModel, data: Batch, batch_size: int = 65_536) -> dict[str, Tensor]:
    """The model's predictions on every row of `data`, in evaluation mode, computed on the model's device
    in batches of `batch_size`; returns {objective: (N,) or (N, dim)} on that device."""
    model = _check_model(model)
    data = _check_data("data", data)
    device = next(model.parameters()).device
    model.eval()
    parts = [model(data[i : i + batch_size].to(device).features) for i in range(0, len(data), batch_size)]
    return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}


def _evaluate(model: MultiTaskModel, data: Batch, batch_size: int) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    predictions = predict(model, data, batch_size)
    data = data.to(next(model.parameters()).device)
    total, losses = multitask_loss(model.tower_specs, predictions, data)
    loss_values = {"total": float(total), **{k: float(v) for k, v in losses.items()}}
    targets = {o.name: o.target for o in model.objectives}
    metrics = {
        o.name: objective_metrics(o, predictions[o.name], data.labels, targets.get(o.given)) for o in model.objectives
    }
    return loss_values, metrics


def evaluate(model: MultiTaskModel, data: Batch, batch_size: int = 65_536) -> dict[str, dict[str, float]]:
    """Per-objective metrics of `model` on `data`: {objective: {"auc", "logloss", "n"} or {"rmse", "n"},
    each with "loss", the objective's own (masked, weighted) loss}."""
    model = _check_model(model)
    check_labels(model.tower_specs, _check_data("data", data))
    losses, metrics = _evaluate(model, data, batch_size)
    return {name: {**m, "loss": losses[name]} for name, m in metrics.items()}
