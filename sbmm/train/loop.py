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
from collections.abc import Callable, Iterable
from functools import partial
from typing import Literal

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..data.batch import Batch
from ..losses import objective_losses
from ..models.base import MultiTaskModel
from ..runtime import default_device, seed_everything
from ..weighting import Weighting
from . import distributed
from .checkpoint import (
    check_checkpoint_path,
    copy_state,
    load_checkpoint,
    restore_run,
    save_checkpoint,
)
from .checks import check_data, check_model, check_weighting, progress_enabled
from .history import TOTAL, History
from .protocol import OptimizerFactory, Recorder, TrainSpec, finish
from .stopping import EarlyStopping

__all__ = ["EpochCallback", "StepCallback", "fit"]

# A step callback: called as callback(step, model, losses) after each forward pass and
# before the backward pass, while `losses` ({objective: loss}) still hold their graphs
# (so a callback may take gradients of them with retain_graph=True). `step` counts
# optimiser steps from 0 over the whole run.
StepCallback = Callable[[int, nn.Module, dict[str, Tensor]], None]

# An epoch callback: called as callback(epoch, model, seed) before the first epoch
# (epoch 0, or the epochs a resumed run has done) and after each epoch, with `epoch`
# the epochs finished, the run's model (its weights as the epoch left them) and its
# seed (`fit`'s, None without one; each replica's in `fit_replicas`). For diagnostics
# such as `sbmm.expert_diagnostics.ExpertDiagnostics`.
EpochCallback = Callable[[int, nn.Module, "int | None"], None]


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
    epoch_callbacks: Iterable[EpochCallback] = (),
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
    epoch_callbacks:    functions called before the first epoch and after each one
                        (see `EpochCallback`), for diagnostics such as the experts'
                        (`sbmm.expert_diagnostics`); with `fit_replicas`' the same.
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

    The options (all but the run's own: seed, device, progress, callbacks, weighting,
    compile, checkpoint, resume) form a `TrainSpec`, checked as `fit_replicas` checks
    them. The objectives' losses are summed under their declared weights, not
    averaged: with T objectives of weight 1 the gradient is T times a peer library's
    mean (declare weights 1/T, or divide lr, to train as they do).

    Everything is checked before the first step, and errors name the data set and the
    feature or objective: train and valid (features present, of the declared dtype and
    shape, finite, ids inside their vocabularies; labels present, finite and 0/1 where
    read), and the options (a batch_size that leaves a batch norm model a batch of one
    row, an AUC watched on validation labels of one class, included).

    With validation data, the History reports each objective's best epoch and whether
    it converged (`History.converged`), and a `NotConverged` warning names the
    objectives whose best validation epoch is the last one run (unless early stopping
    ended the run).

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
    spec = TrainSpec(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        weight_decay=weight_decay,
        keep_best=keep_best,
        early_stopping=early_stopping,
        precision=precision,
    )
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint file to resume from")
    if checkpoint is not None:  # a path that cannot be written fails now, not later
        checkpoint = check_checkpoint_path(checkpoint)
    train = check_data("train", train, model)
    if valid is not None:
        valid = check_data("valid", valid, model)
    weighting = check_weighting(weighting)
    if seed is not None:
        seed_everything(seed)

    context, device = distributed.setup(
        torch.device(device) if device is not None else None
    )
    spec.check_run(model, train, valid, context.world)
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
    opt = spec.make_optimizer([*model.parameters(), *weighting.parameters()])
    names = [TOTAL, *(o.name for o in model.objectives)]
    history = History.start(names, validated=valid is not None)
    first_epoch, best = 0, None
    if resume and checkpoint.exists():
        first_epoch, best = restore_run(
            load_checkpoint(checkpoint, device), model, opt, weighting, history,
            epochs=epochs,
        )  # fmt: skip
    recorder = Recorder(model, weighting, spec.rule, valid, history, best=best)

    net: nn.Module = model
    if context.active:
        ids = [device] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if compile:
        net = torch.compile(net, **({} if compile is True else {"backend": compile}))
    step = _Step(net, model, opt, weighting, tuple(callbacks), precision, context)
    step.count = first_epoch * math.ceil(len(train) / batch_size)

    epoch_callbacks = tuple(epoch_callbacks)
    for callback in epoch_callbacks:
        callback(first_epoch, model, seed)
    show = progress_enabled(progress) and context.is_main
    for epoch in tqdm(range(first_epoch, epochs), desc="epochs", disable=not show):
        if not recorder.running:
            break
        before = copy_state(model)
        start = time.perf_counter()
        epoch_loss = _train_epoch(step, train, batch_size)
        seconds = time.perf_counter() - start
        try:
            recorder.check_finite(epoch_loss)
        except FloatingPointError:
            model.load_state_dict(before)
            raise
        recorder.record(epoch_loss, seconds)
        for callback in epoch_callbacks:
            callback(epoch + 1, model, seed)
        if checkpoint is not None and context.is_main:
            save_checkpoint(
                checkpoint, model=model, optimizer=opt, weighting=weighting,
                history=history, epoch=epoch + 1, best_model=recorder.best,
            )  # fmt: skip
    finish([recorder], warn=context.is_main)
    return history


class _Step:
    """One optimiser step on a batch, with everything it needs, set up once per run
    (the step itself creates no context, closure or list it could reuse).

    net:       the model as trained (DDP-wrapped, compiled); `model` the model itself,
               for callbacks.
    precision: "bf16" runs the forward pass and losses under bfloat16 autocast.
    count:     optimiser steps taken over the whole run.
    """

    def __init__(
        self,
        net: nn.Module,
        model: MultiTaskModel,
        opt: torch.optim.Optimizer,
        weighting: Weighting,
        callbacks: tuple[StepCallback, ...],
        precision: str,
        context: distributed.Context,
    ):
        self.net, self.model, self.opt, self.weighting = net, model, opt, weighting
        self.callbacks, self.context = callbacks, context
        self.towers = model.tower_specs
        device = next(model.parameters()).device
        self.autocast = (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if precision == "bf16"
            else contextlib.nullcontext()
        )
        # Under DDP: each mean's count over the ranks, and the strategy's own
        # parameters, which live outside DDP, averaged by hand.
        self.across = (
            partial(distributed.mean, context=context) if context.active else None
        )
        self.outside_ddp = weighting.parameters() if context.active else []
        self.count = 0

    def __call__(self, batch: Batch) -> tuple[Tensor, ...]:
        """Train on `batch`; return the weighted total and each objective's loss,
        detached (0-d tensors on the device)."""
        with self.autocast:
            predictions = self.net(batch.features)
            losses = objective_losses(
                self.towers, predictions, batch, across=self.across
            )
        for callback in self.callbacks:
            callback(self.count, self.model, losses)
        self.opt.zero_grad(set_to_none=True)
        total = self.weighting.backward(losses)
        for p in self.outside_ddp:
            distributed.average(p.grad, self.context)
        self.opt.step()
        self.weighting.after_step()
        self.count += 1
        return (total, *(loss.detach() for loss in losses.values()))


def _train_epoch(step: _Step, train: Batch, batch_size: int) -> list[float]:
    """One pass over `train` in a fresh random order; the mean over the steps of the
    total and of each objective's loss, in that order. Losses stay on the device until
    the epoch's one host synchronisation."""
    step.model.train()
    context, n = step.context, len(train)
    order = distributed.broadcast(torch.randperm(n, device=train.device), context)
    per_step = []  # per step: the total and each objective's loss, 0-d on the device
    for i in range(0, n, batch_size):
        rows = order[i : i + batch_size]
        if context.active:
            rows = rows.tensor_split(context.world)[context.rank]  # this rank's share
        per_step.append(step(train[rows]))
    # (steps, 1 + n_objectives), in fp32 whatever the precision
    losses = torch.stack([torch.stack(k).float() for k in zip(*per_step)], 1)
    return distributed.average(losses.mean(0), context).tolist()
