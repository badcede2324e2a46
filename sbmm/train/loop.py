"""Training and evaluation: `fit`, `evaluate`, `predict`, and the `History` of a run.

In-memory data lives on the training device; each epoch shuffles an index tensor and cuts batches by
slicing it (no per-sample Dataset/collate). Losses are accumulated on the device and read once per
epoch (no host synchronisation inside an epoch). Evaluation runs in large batches under
`torch.inference_mode()`. Under `torchrun`, `fit` trains data-parallel (see `distributed`).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..data.batch import Batch
from ..metrics import objective_metrics
from ..models.base import MultiTaskModel
from ..objectives import check_labels, multitask_loss, objective_losses
from ..profile import default_device, seed_everything
from ..weighting import GradNorm, PCGrad, Static, Weighting
from . import distributed
from .checkpoint import load_checkpoint, save_checkpoint

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
    best_epoch:        with `fit(keep_best=True)`, the epoch (from 1) of lowest validation total loss,
                       whose weights the model holds at the end; otherwise None.
    """

    train_loss: dict[str, list[float]] = field(default_factory=dict)
    valid_loss: dict[str, list[float]] = field(default_factory=dict)
    valid_metrics: list[dict[str, dict[str, float]]] = field(default_factory=list)
    weights: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None

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
    precision: Literal["fp32", "bf16"] = "fp32",
    compile: bool | str = False,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    keep_best: bool = False,
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
    precision:          "bf16" runs forward passes and losses under bfloat16 autocast (parameters and
                        optimiser stay fp32); "fp32" (default) does not.
    compile:            torch.compile the model for training: True (default backend) or a backend name.
    checkpoint:         a file to write the run's state to after every epoch (by rank 0 only).
    resume:             continue from `checkpoint` if it exists: the finished epochs are not repeated and
                        the run goes on exactly as it would have (weights, optimiser, shuffling, History).
    keep_best:          end with the weights of the epoch of lowest validation total loss (early stopping
                        without stopping: every epoch runs); History.best_epoch says which. Needs `valid`.

    Under `torchrun --nproc_per_node=N` the same call trains data-parallel: every rank holds the data,
    takes its share of each global batch of `batch_size`, and gradients are averaged by DDP; History is
    the same on every rank. GradNorm and PCGrad, which take gradients outside DDP, are refused there.

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
    for data in (train, valid) if valid is not None else (train,):
        check_labels(towers, data)
        model.check_inputs(data.features)
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    if keep_best and valid is None:
        raise ValueError("keep_best=True needs validation data (valid) to choose the best epoch by")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint file to resume from")
    if seed is not None:
        seed_everything(seed)

    context, device = distributed.setup(torch.device(device) if device is not None else None)
    device = device if device is not None else default_device()
    model.to(device)
    # Training never sees a simulator's truth; both data sets move to the device once.
    train = Batch(train.features, train.labels).to(device)
    if valid is not None:
        valid = Batch(valid.features, valid.labels).to(device)
    weighting = weighting if weighting is not None else Static()
    if not isinstance(weighting, Weighting):
        raise TypeError(f"weighting must be an sbmm.weighting strategy, got {type(weighting).__name__}")
    if context.active and isinstance(weighting, (GradNorm, PCGrad)):
        raise ValueError(f"{type(weighting).__name__} takes gradients outside DDP and cannot train data-parallel")
    weighting.bind(model)
    params = [*model.parameters(), *weighting.parameters()]
    opt = optimizer(params) if optimizer is not None else torch.optim.Adam(params, lr=lr)
    names = ["total", *(o.name for o in model.objectives)]
    history = History({k: [] for k in names}, {k: [] for k in names} if valid is not None else {})
    history.weights = {o.name: [] for o in model.objectives}
    first_epoch, best_model = 0, None
    if resume and Path(checkpoint).exists():
        first_epoch, best_model = _restore(load_checkpoint(checkpoint, device), model, opt, weighting, history)

    net: nn.Module = model
    if context.active:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if compile:
        net = torch.compile(net, **({} if compile is True else {"backend": compile}))
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    )
    n = len(train)
    callbacks = tuple(callbacks)
    step = first_epoch * math.ceil(n / batch_size)

    show = _progress_enabled(progress) and context.is_main
    for epoch in tqdm(range(first_epoch, epochs), desc="epochs", disable=not show):
        model.train()
        start = time.perf_counter()
        order = distributed.broadcast(torch.randperm(n, device=device), context)
        step_losses: list[tuple[Tensor, ...]] = []  # per step: the total and each objective's loss, on the device
        for i in range(0, n, batch_size):
            rows = order[i : i + batch_size]
            if context.active:
                rows = rows.tensor_split(context.world)[context.rank]  # this rank's share of the global batch
            batch = train[rows]
            with autocast():
                losses = objective_losses(towers, net(batch.features), batch)
            for callback in callbacks:
                callback(step, model, losses)
            opt.zero_grad(set_to_none=True)
            total = weighting.backward(losses)
            for p in weighting.parameters():  # the strategy's own parameters live outside DDP
                distributed.average(p.grad, context)
            opt.step()
            weighting.after_step()
            step += 1
            step_losses.append((total.float(), *(loss.detach().float() for loss in losses.values())))
        per_step = torch.stack([torch.stack(column) for column in zip(*step_losses)])  # (1 + n_objectives, steps)
        epoch_loss = distributed.average(per_step.mean(1), context).tolist()  # the epoch's one host sync
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
            best = history.best_epoch
            if keep_best and (best is None or losses["total"] < history.valid_loss["total"][best - 1]):
                history.best_epoch = epoch + 1
                best_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if checkpoint is not None and context.is_main:
            save_checkpoint(checkpoint, model=model, optimizer=opt, weighting=weighting, history=history,
                            epoch=epoch + 1, best_model=best_model)
    if keep_best:
        model.load_state_dict(best_model)
    return history


def _restore(
    state: dict, model: nn.Module, opt: torch.optim.Optimizer, weighting: Weighting, history: History
) -> tuple[int, dict[str, Tensor] | None]:
    """Load a checkpoint's state into the run's objects; return the number of epochs it had finished and
    the best epoch's weights (None unless the run keeps them)."""
    model.load_state_dict(state["model"])
    weighting.load_state_dict(state["weighting"])  # first: another strategy's state fails here, clearly
    opt.load_state_dict(state["optimizer"])
    for key, value in state["history"].items():
        setattr(history, key, value)
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"]["cuda"]:
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state["epoch"], state.get("best_model")


@torch.inference_mode()
def predict(model: MultiTaskModel, data: Batch, batch_size: int = 65_536) -> dict[str, Tensor]:
    """The model's predictions on every row of `data`, in evaluation mode, computed on the model's device
    in batches of `batch_size`; returns {objective: (N,) or (N, dim)} on that device."""
    model = _check_model(model)
    data = _check_data("data", data)
    model.check_inputs(data.features)
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
