"""Training: `fit`, one model on one data set, in one process or data-parallel.

In-memory data lives on the training device; each epoch shuffles an index tensor and
cuts batches by slicing it (no per-sample Dataset/collate). Losses are accumulated on
the device and read once per epoch (no host synchronisation inside an epoch). Under
`torchrun`, `fit` trains data-parallel (see `distributed`).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..data.batch import Batch
from ..losses import Across, objective_losses
from ..models.base import MultiTaskModel
from ..runtime import default_device, seed_everything
from ..weighting import Static, Weighting
from . import distributed
from .checkpoint import copy_state, load_checkpoint, restore_run, save_checkpoint
from .checks import (
    adam,
    check_data,
    check_model,
    check_options,
    check_stopping,
    check_weight_decay,
    progress_enabled,
)
from .evaluation import losses_and_metrics
from .history import TOTAL, History
from .stopping import EarlyStopping, Watch

__all__ = ["StepCallback", "fit"]

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
# A step callback: called as callback(step, model, losses) after each forward pass and
# before the backward pass, while `losses` ({objective: loss}) still hold their graphs
# (so a callback may take gradients of them with retain_graph=True). `step` counts
# optimiser steps from 0 over the whole run.
StepCallback = Callable[[int, nn.Module, dict[str, Tensor]], None]


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
    early_stopping: EarlyStopping | None = None,
    weight_decay: float = 0.0,
) -> History:
    """Train `model` on `train` with the loss its towers declare; return the `History`.

    epochs, batch_size: passes over the data, and samples per optimiser step (the last
                        step of an epoch takes the remainder).
    lr, optimizer:      Adam(lr) by default; or a function parameters → optimizer.
    weight_decay:       > 0: AdamW(lr, weight_decay) instead, decoupled weight decay on
                        every parameter (embeddings included); not with `optimizer`.
    seed:               seeds everything first (initial weights are the caller's: seed
                        before building the model for a fully reproducible run), then
                        the shuffling.
    device:             where model and data live during training; CUDA when present.
    progress:           a tqdm bar over epochs; silenced by TQDM_DISABLE=1.
    callbacks:          functions called at every step before the backward pass (see
                        `StepCallback`), for diagnostics such as the cosine between
                        gradients.
    weighting:          how the objectives' losses combine (`sbmm.weighting`); by
                        default `Static()`, the declared Σ_t w_t Σ_o w_o L_o. The
                        strategy is the one owner of the combination: "total" in the
                        History, for training and validation alike, and the choice of
                        `keep_best`, are its.
    precision:          "bf16" runs forward passes and losses under bfloat16 autocast
                        (parameters and optimiser stay fp32); "fp32" (default) does not.
    compile:            torch.compile the model for training: True or a backend name.
    checkpoint:         a file to write the run's state to after every epoch (rank 0
                        only).
    resume:             continue from `checkpoint` if it exists: the finished epochs are
                        not repeated and the run goes on exactly as it would have.
    keep_best:          end with the weights of the epoch of lowest validation "total"
                        (early stopping without stopping: every epoch runs);
                        History.best_epoch says which. Needs `valid`.
    early_stopping:     an `EarlyStopping` rule: the run watches its validation number
                        (the total, or an objective's loss or metric), stops after
                        `patience` epochs without improvement and ends with the best
                        epoch's weights (so it implies keep_best, on that number).
                        History.epochs says how many ran. Needs `valid`.

    The objectives' losses are summed under their declared weights, not averaged:
    with T objectives of weight 1 the gradient is T times a peer library's mean (declare
    weights 1/T, or divide lr, to train as they do).

    Everything is checked before the first step, and errors name the data set and the
    feature or objective: train and valid (features present, of the declared dtype and
    shape, finite, ids inside their vocabularies; labels present, finite and 0/1 where
    read), and the options.

    Under `torchrun --nproc_per_node=N` the same call trains data-parallel: every rank
    holds the data, takes its share of each global batch, and gradients are averaged by
    DDP; every mean (masked and weighted ones too) divides by the global batch's count,
    so N ranks train like one process; History is the same on every rank. Strategies
    that take gradients themselves (`takes_gradients`: GradNorm, PCGrad) are refused
    there.

    Raises FloatingPointError, naming the objective, when a loss becomes NaN or inf; the
    model then holds the weights it had before that epoch.
    """
    model = check_model(model)
    check_options(
        epochs, batch_size, lr, precision, keep_best, valid, resume, checkpoint
    )
    rule = check_stopping(early_stopping, keep_best, valid, model)
    check_weight_decay(weight_decay, optimizer)
    train = check_data("train", train, model)
    if valid is not None:
        valid = check_data("valid", valid, model)
    weighting = weighting if weighting is not None else Static()
    if not isinstance(weighting, Weighting):
        raise TypeError(
            "weighting must be an sbmm.weighting strategy, "
            f"got {type(weighting).__name__}"
        )
    if seed is not None:
        seed_everything(seed)

    context, device = distributed.setup(
        torch.device(device) if device is not None else None
    )
    device = device if device is not None else default_device()
    if context.active and weighting.takes_gradients:
        raise ValueError(
            f"{type(weighting).__name__} takes gradients outside DDP and cannot train "
            "data-parallel"
        )
    model.to(device)
    # Training never sees a simulator's truth; both data sets move to the device once.
    train = Batch(train.features, train.labels).to(device)
    if valid is not None:
        valid = Batch(valid.features, valid.labels).to(device)
    weighting.bind(model)
    params = [*model.parameters(), *weighting.parameters()]
    opt = optimizer(params) if optimizer is not None else adam(params, lr, weight_decay)
    names = [TOTAL, *(o.name for o in model.objectives)]
    history = History(
        {k: [] for k in names}, {k: [] for k in names} if valid is not None else {}
    )
    history.weights = {o.name: [] for o in model.objectives}
    first_epoch, best_model = 0, None
    if resume and Path(checkpoint).exists():
        first_epoch, best_model = _restore(
            checkpoint, device, model, opt, weighting, history
        )
    watch = Watch.replay(rule, history) if rule is not None else None

    net: nn.Module = model
    if context.active:
        ids = [device] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if compile:
        net = torch.compile(net, **({} if compile is True else {"backend": compile}))
    step = _Step(
        net, model, opt, weighting, tuple(callbacks), precision, device, context
    )
    step.count = first_epoch * math.ceil(len(train) / batch_size)

    show = progress_enabled(progress) and context.is_main
    for epoch in tqdm(range(first_epoch, epochs), desc="epochs", disable=not show):
        if watch is not None and watch.stop:
            break
        before = copy_state(model)
        start = time.perf_counter()
        epoch_loss = _train_epoch(step, train, batch_size, names)
        history.seconds.append(time.perf_counter() - start)
        for name in [
            *names[1:],
            TOTAL,
        ]:  # an objective's name says more than the total's
            value = epoch_loss[name]
            if not math.isfinite(value):
                model.load_state_dict(before)
                raise FloatingPointError(
                    f"epoch {epoch + 1}: the loss of {name!r} is {value}; "
                    "the model holds the weights from before that epoch. "
                    "Lower the learning rate or check the data"
                )
        for name in names:
            history.train_loss[name].append(epoch_loss[name])
        weighting.end_epoch({name: epoch_loss[name] for name in names[1:]})
        for name, w in weighting.weights().items():
            history.weights[name].append(w)
        if valid is not None:
            losses, metrics = losses_and_metrics(model, valid)
            losses = {TOTAL: weighting.total(losses), **losses}
            for name in names:
                history.valid_loss[name].append(float(losses[name]))
            history.valid_metrics.append(metrics)
            if watch is not None and watch.update(history):
                best_model = copy_state(model)
        if checkpoint is not None and context.is_main:
            save_checkpoint(
                checkpoint, model=model, optimizer=opt, weighting=weighting,
                history=history, epoch=epoch + 1, best_model=best_model,
            )  # fmt: skip
    if watch is not None:
        model.load_state_dict(best_model)
    return history


@dataclass
class _Step:
    """One optimiser step on a batch, with everything it needs."""

    net: nn.Module  # the model as trained (DDP-wrapped, compiled)
    model: MultiTaskModel  # the model itself, for callbacks
    opt: torch.optim.Optimizer
    weighting: Weighting
    callbacks: tuple[StepCallback, ...]
    precision: str
    device: torch.device
    context: distributed.Context
    count: int = 0  # optimiser steps taken over the whole run

    def __call__(self, batch: Batch) -> tuple[Tensor, ...]:
        """Train on `batch`; return the weighted total and each objective's loss,
        detached."""
        towers, context = self.model.tower_specs, self.context
        across: Across | None = None
        if context.active:
            across = lambda statistic: distributed.mean(statistic, context)  # noqa: E731
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self.precision == "bf16"
            else contextlib.nullcontext()
        )
        with autocast:
            losses = objective_losses(
                towers, self.net(batch.features), batch, across=across
            )
        for callback in self.callbacks:
            callback(self.count, self.model, losses)
        self.opt.zero_grad(set_to_none=True)
        total = self.weighting.backward(losses)
        for p in (
            self.weighting.parameters()
        ):  # the strategy's own parameters live outside DDP
            distributed.average(p.grad, context)
        self.opt.step()
        self.weighting.after_step()
        self.count += 1
        return (total.float(), *(loss.detach().float() for loss in losses.values()))


def _train_epoch(
    step: _Step, train: Batch, batch_size: int, names: list[str]
) -> dict[str, float]:
    """One pass over `train` in a fresh random order; the mean of each of `names`'
    losses over the steps. Losses stay on the device until the epoch's one host
    synchronisation."""
    step.model.train()
    context, n = step.context, len(train)
    order = distributed.broadcast(torch.randperm(n, device=step.device), context)
    per_step = []  # per step: the total and each objective's loss, on the device
    for i in range(0, n, batch_size):
        rows = order[i : i + batch_size]
        if context.active:
            rows = rows.tensor_split(context.world)[context.rank]  # this rank's share
        per_step.append(torch.stack(step(train[rows])))  # (1 + n_objectives,)
    means = distributed.average(
        torch.stack(per_step).mean(0), context
    )  # (1 + n_objectives,)
    return dict(zip(names, means.tolist()))


def _restore(
    path: str | os.PathLike,
    device: torch.device,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    weighting: Weighting,
    history: History,
) -> tuple[int, dict[str, Tensor] | None]:
    """Load the checkpoint at `path` onto `device` into the run's objects, all or
    nothing (see `restore_run`); return the number of epochs it had finished and the
    best epoch's weights (None unless the run keeps them)."""
    return restore_run(load_checkpoint(path, device), model, opt, weighting, history)
