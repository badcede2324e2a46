"""`History`: what a training run measured, one entry per epoch, and whether each
objective converged."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..validation import is_count

__all__ = ["DEFAULT_PATIENCE", "TOTAL", "History"]

TOTAL = "total"  # History's key for the weighted sum of the objectives' losses
# `History.converged`'s patience for a run without an early-stopping patience: an
# objective converged when its best validation epoch is at least this many before the
# last (the two epochs after the best did not improve on it).
DEFAULT_PATIENCE = 2


@dataclass
class History:
    """What `fit` measured, one entry per epoch.

    train_loss[name]:  mean over the epoch's steps of each objective's loss, and
                       "total": the weighted sum under the weighting strategy's weights
                       in force.
    valid_loss[name]:  the same losses, and the same "total", on the validation data at
                       the end of each epoch (if given).
    valid_metrics:     per epoch, `evaluate`'s {objective: {metric: value}} on the
                       validation data.
    weights[name]:     the weighting strategy's weight of each objective at the end of
                       each epoch.
    seconds:           wall-clock time of each epoch's training steps (not validation).
    best_epoch:        with `keep_best` or `early_stopping`, the epoch (from 1) of the
                       best watched number, whose weights the model holds at the end;
                       otherwise None.
    stopped:           True when early stopping's patience ran out: the run stopped
                       there (or would have, had epochs remained).
    patience:          the early-stopping rule's patience, if the run had one:
                       `converged`'s default.

    `best_epochs` and `converged` say, per objective, where each one's own validation
    loss was lowest and whether it had stopped improving.
    """

    train_loss: dict[str, list[float]] = field(default_factory=dict)
    valid_loss: dict[str, list[float]] = field(default_factory=dict)
    valid_metrics: list[dict[str, dict[str, float]]] = field(default_factory=list)
    weights: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped: bool = False
    patience: int | None = None

    @classmethod
    def start(cls, names: Sequence[str], validated: bool) -> History:
        """An empty History for a run over `names` ("total" first, then each
        objective), with validation losses when `validated`."""
        return cls(
            train_loss={k: [] for k in names},
            valid_loss={k: [] for k in names} if validated else {},
            weights={k: [] for k in names[1:]},
        )

    @property
    def epochs(self) -> int:
        return len(self.seconds)

    @property
    def best_epochs(self) -> dict[str, int]:
        """{"total" and each objective: the epoch (from 1) of its lowest validation
        loss}, the first on a tie; NaN and inf are never lowest (an objective with no
        finite loss gets the last epoch). Empty without validation data."""
        best = {}
        for name, values in self.valid_loss.items():
            finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
            best[name] = 1 + min(finite)[1] if finite else len(values)
        return best

    def converged(self, patience: int | None = None) -> dict[str, bool]:
        """{"total" and each objective: whether it converged}: early stopping's
        patience ran out in this run (`stopped`), or its best validation epoch
        (`best_epochs`) is at least `patience` epochs before the last one run.

        patience: by default the run's early-stopping patience, else DEFAULT_PATIENCE
                  (2). ValueError for a run without validation data.
        """
        if not self.valid_loss:
            raise ValueError("converged needs a run with validation data")
        if patience is None:
            patience = self.patience if self.patience is not None else DEFAULT_PATIENCE
        if not is_count(patience):
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        last = len(self.valid_metrics)
        return {
            name: self.stopped or last - epoch >= patience
            for name, epoch in self.best_epochs.items()
        }
