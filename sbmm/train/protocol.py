"""The epoch protocol `fit` and `fit_replicas` share; they differ only in how an
epoch's steps are taken.

- `TrainSpec`: how a run trains (epochs, batch size, optimiser, early stopping, ...),
  every option checked once, when the spec is made; `check_run` then checks what needs
  the model and the data, before any weight moves.
- `Recorder`: one run's record. After each epoch's steps it takes the epoch's mean
  training losses and does everything else: the finite check, the `History`, the
  weighting strategy's epoch end, validation, the early-stopping watch and the best
  weights; at the end it restores those weights and warns (`NotConverged`) about the
  objectives whose best validation epoch was the last one run.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..data.batch import Batch
from ..models.base import MultiTaskModel
from ..spaces import labelled_rows
from ..validation import is_count, is_number
from ..weighting import Weighting
from .checkpoint import copy_state
from .evaluation import losses_and_metrics
from .history import TOTAL, History
from .stopping import EarlyStopping, Watch

__all__ = ["NotConverged", "OptimizerFactory", "Recorder", "TrainSpec", "finish"]

# A function that builds the run's optimiser over the parameters it is given.
OptimizerFactory = Callable[[Iterable[Tensor]], torch.optim.Optimizer]


class NotConverged(UserWarning):
    """A run's best validation epoch, for some objective, was the last one it ran: it
    was still improving when it stopped (see `History.converged`). `objectives` names
    them; `runs` is (runs still improving, runs trained) of the call."""

    objectives: tuple[str, ...] = ()
    runs: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class TrainSpec:
    """How a run trains. Every option is checked when the spec is made: a ValueError
    (TypeError for a wrong type) names the option and the value.

    epochs:         passes over the training data, >= 1.
    batch_size:     rows per optimiser step, >= 1; an epoch's last step takes the rest.
    lr:             the default optimiser's learning rate, > 0.
    optimizer:      None: Adam(lr), or AdamW(lr, weight_decay) when weight_decay > 0;
                    else a function parameters → torch.optim.Optimizer.
    weight_decay:   the default optimiser's decoupled weight decay, >= 0; give your
                    own optimizer its decay instead.
    keep_best:      end with the weights of the epoch of lowest validation total.
    early_stopping: an `EarlyStopping` rule (it implies keep_best, on its number).
    precision:      "fp32", or "bf16" for bfloat16 autocast of forward passes and
                    losses.
    """

    epochs: int = 10
    batch_size: int = 1024
    lr: float = 1e-3
    optimizer: OptimizerFactory | None = None
    weight_decay: float = 0.0
    keep_best: bool = False
    early_stopping: EarlyStopping | None = None
    precision: Literal["fp32", "bf16"] = "fp32"

    def __post_init__(self) -> None:
        if not is_count(self.epochs):
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not is_count(self.batch_size):
            raise ValueError(
                f"batch_size must be an integer >= 1, got {self.batch_size!r}"
            )
        if not (is_number(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if self.optimizer is not None and not callable(self.optimizer):
            raise TypeError(
                "optimizer must be a function parameters → torch.optim.Optimizer, "
                f"got {self.optimizer!r}"
            )
        if not (is_number(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(
                f"weight_decay must be a number >= 0, got {self.weight_decay!r}"
            )
        if self.weight_decay and self.optimizer is not None:
            raise ValueError(
                f"weight_decay={self.weight_decay!r} is for the default optimiser; "
                "give it to your optimizer= function instead"
            )
        if not isinstance(self.keep_best, bool):
            raise TypeError(f"keep_best must be True or False, got {self.keep_best!r}")
        rule = self.early_stopping
        if rule is not None and not isinstance(rule, EarlyStopping):
            kind = type(rule).__name__
            raise TypeError(f"early_stopping must be an sbmm.EarlyStopping, got {kind}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(
                f"precision must be 'fp32' or 'bf16', got {self.precision!r}"
            )

    @property
    def rule(self) -> EarlyStopping | None:
        """The rule that chooses the epoch a run ends with: `early_stopping`, or with
        `keep_best` alone the validation total without stopping; None when the run
        keeps its last epoch."""
        if self.early_stopping is None and self.keep_best:
            return EarlyStopping(patience=None)
        return self.early_stopping

    def make_optimizer(
        self, params: Iterable[Tensor], **defaults
    ) -> torch.optim.Optimizer:
        """The run's optimiser over `params`: the `optimizer` function's, or Adam(lr)
        (AdamW(lr, weight_decay) when weight_decay > 0) with the keyword `defaults`
        (such as fused=True)."""
        if self.optimizer is not None:
            optimizer = self.optimizer(params)
            if not isinstance(optimizer, torch.optim.Optimizer):
                raise TypeError(
                    "optimizer must return a torch.optim.Optimizer, got "
                    f"{type(optimizer).__name__}"
                )
            return optimizer
        if self.weight_decay:
            return torch.optim.AdamW(
                params, lr=self.lr, weight_decay=self.weight_decay, **defaults
            )
        return torch.optim.Adam(params, lr=self.lr, **defaults)

    def check_run(
        self, model: MultiTaskModel, train: Batch, valid: Batch | None, world: int = 1
    ) -> None:
        """What the options ask of a checked model and checked data, before any weight
        moves (ValueError naming the option): validation data for keep_best and early
        stopping; the watched objective and metric on this model, and both classes in
        the validation labels an AUC is watched on; with batch norm, no batch of one
        row on any of `world` ranks."""
        rule = self.rule
        if rule is not None and valid is None:
            option = (
                "keep_best=True" if self.early_stopping is None else "early_stopping"
            )
            raise ValueError(f"{option} needs validation data (valid) to watch")
        if rule is not None:
            rule.check(model.objectives)
            if rule.metric == "auc":
                _check_both_classes(rule.objective, model, valid)
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            _check_no_single_row(self.batch_size, len(train), world)


def _check_both_classes(name: str, model: MultiTaskModel, valid: Batch) -> None:
    """A ValueError unless objective `name`'s validation labels, on the rows where it
    is read, hold both classes (else its AUC is NaN at every epoch)."""
    objective = next(o for o in model.objectives if o.name == name)
    rows = labelled_rows(objective, valid.labels, model.tower_specs)  # (N,) or None
    labels = valid.labels[objective.target]
    labels = labels if rows is None else labels[rows]
    classes = labels.unique().tolist()
    if len(classes) < 2:
        raise ValueError(
            f"early_stopping watches the AUC of {name!r}, but its validation labels "
            f"on the {len(labels)} rows where it is read hold only {classes}: the AUC "
            "would be NaN at every epoch. Watch its 'loss', or validate on data with "
            "both classes"
        )


def _smallest_share(batch_size: int, n: int, world: int) -> int:
    """The fewest rows any rank gets in any batch of an epoch over `n` rows."""
    last = n % batch_size or batch_size
    return min(batch_size, last, n) // world


def _check_no_single_row(batch_size: int, n: int, world: int) -> None:
    """A ValueError, suggesting the nearest batch_size that avoids it, when some batch
    of an epoch gives a rank exactly one row (batch norm cannot train on one)."""
    if _smallest_share(batch_size, n, world) != 1:
        return
    near = sorted(range(1, n + 1), key=lambda b: (abs(b - batch_size), b))
    other = next(b for b in near if _smallest_share(b, n, world) != 1)
    where = f" on one of {world} ranks" if world > 1 else ""
    raise ValueError(
        f"batch_size={batch_size} over {n} training rows leaves a batch of one row"
        f"{where}, on which batch norm cannot train; choose another batch_size, e.g. "
        f"{other}"
    )


class Recorder:
    """One run's record, epoch after epoch: its `History`, its early-stopping watch
    and its best weights.

    model, weighting: the run's model and its bound weighting strategy.
    rule:             the spec's `rule` (None: the run keeps its last epoch).
    valid:            checked validation data on the model's device, or None.
    history:          the run's History, empty or restored from a checkpoint (then
                      the watch replays it).
    seed:             named in errors and warnings (fit_replicas' replicas).
    best:             the best epoch's weights restored from a checkpoint.
    """

    def __init__(
        self,
        model: MultiTaskModel,
        weighting: Weighting,
        rule: EarlyStopping | None,
        valid: Batch | None,
        history: History,
        seed: int | None = None,
        best: dict[str, Tensor] | None = None,
    ):
        self.model, self.weighting, self.valid = model, weighting, valid
        self.history, self.seed, self.best = history, seed, best
        self.watch = Watch.replay(rule, history) if rule is not None else None
        self.names = list(history.train_loss)  # "total", then each objective

    @property
    def running(self) -> bool:
        """Whether the run goes on: False once early stopping has stopped it."""
        return self.watch is None or not self.watch.stop

    def check_finite(self, losses: Sequence[float]) -> None:
        """A FloatingPointError naming the seed (if any), the epoch and the first
        objective (then the total) whose epoch loss, among `losses` (in the order of
        `names`), is NaN or inf."""
        where = f"seed {self.seed}, " if self.seed is not None else ""
        epoch = self.history.epochs + 1
        values = dict(zip(self.names, losses))
        for name in [*self.names[1:], TOTAL]:  # an objective says more than the total
            if not math.isfinite(values[name]):
                raise FloatingPointError(
                    f"{where}epoch {epoch}: the loss of {name!r} is {values[name]}; "
                    "the model holds the weights from before that epoch. Lower the "
                    "learning rate or check the data"
                )

    def record(self, losses: Sequence[float], seconds: float) -> None:
        """Take an epoch's mean training losses (in the order of `names`) and its
        training time: append them to the History, end the strategy's epoch, validate,
        and let the watch keep the weights when the epoch is the best so far."""
        history = self.history
        history.seconds.append(seconds)
        for name, value in zip(self.names, losses):
            history.train_loss[name].append(value)
        self.weighting.end_epoch(dict(zip(self.names[1:], losses[1:])))
        for name, w in self.weighting.weights().items():
            history.weights[name].append(w)
        if self.valid is None:
            return
        valid_losses, metrics = losses_and_metrics(self.model, self.valid)
        valid_losses = {TOTAL: self.weighting.total(valid_losses), **valid_losses}
        for name in self.names:
            history.valid_loss[name].append(float(valid_losses[name]))
        history.valid_metrics.append(metrics)
        if self.watch is not None and self.watch.update(history):
            self.best = copy_state(self.model)

    def finish(self) -> None:
        """End the run: the model takes the best epoch's weights (when a rule chose
        one), and the History notes whether early stopping's patience ran out."""
        if self.watch is not None:
            self.model.load_state_dict(self.best)
            self.history.stopped = self.watch.stop
            self.history.patience = self.watch.rule.patience

    def unconverged(self) -> list[str]:
        """The names whose best validation epoch is the last one run, in a run that
        early stopping did not end (none without validation data)."""
        if self.valid is None or self.history.stopped:
            return []
        last = self.history.epochs
        return [k for k, epoch in self.history.best_epochs.items() if epoch == last]


def finish(recorders: Sequence[Recorder], warn: bool = True) -> None:
    """End every run (`Recorder.finish`), then, with `warn`, warn once
    (`NotConverged`) about the objectives still improving at the end."""
    for recorder in recorders:
        recorder.finish()
    if warn:
        _warn_unconverged(recorders)


def _warn_unconverged(recorders: Sequence[Recorder]) -> None:
    """One `NotConverged` warning naming the objectives whose best validation epoch
    was the last one run, and, for replicas, at which seeds; none if there are none."""
    runs = [(r.seed, r.unconverged()) for r in recorders]
    names = list(dict.fromkeys(n for _, found in runs for n in found))
    if not names:
        return
    if len(recorders) == 1:
        where = ", ".join(map(repr, names))
    else:
        parts = []
        for name in names:
            seeds = [seed for seed, found in runs if name in found]
            at = (
                f"all {len(runs)} seeds"
                if len(seeds) == len(runs)
                else f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))} "
                f"of {len(runs)}"
            )
            parts.append(f"{name!r} at {at}")
        where = "; ".join(parts)
    warning = NotConverged(
        f"still improving at the last epoch: {where}. Train longer (more epochs or a "
        "higher learning rate) before comparing; History.converged() reports each "
        "objective"
    )
    warning.objectives = tuple(names)  # what a reader of many warnings tallies
    warning.runs = (sum(1 for _, found in runs if found), len(runs))
    warnings.warn(warning, stacklevel=4)  # the caller of fit or fit_replicas
