"""Early stopping: which validation number a run watches, when it is better, and when
to stop waiting for it.

    EarlyStopping(patience=3, objective="income", metric="auc")

watches the income objective's validation AUC after each epoch; the run stops once
three epochs in a row have not improved on the best, and ends with the best epoch's
weights. `fit` and `fit_replicas` take it as `early_stopping=`; `keep_best=True` alone
watches the validation total and never stops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import kinds
from ..objectives import Objective
from ..validation import is_count, is_number
from .history import TOTAL, History

__all__ = ["EarlyStopping"]


@dataclass(frozen=True)
class EarlyStopping:
    """The validation number a run watches, and how long it waits for it to improve.

    patience:  epochs without improvement after which the run stops; None: never stop
               (only keep the best epoch's weights).
    objective: "total" (the weighting strategy's validation total) or the name of an
               objective.
    metric:    "loss" (the objective's own validation loss), or one of the metrics
               `evaluate` reports for its kind (`sbmm.kinds`): "auc" or "logloss"
               (binary), "rmse" (regression). Its kind says which are better higher
               (AUC); the others are better lower.
    min_delta: an epoch improves only when it beats the best by more than this.
    """

    patience: int | None = 3
    objective: str = TOTAL
    metric: str = "loss"
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        if self.patience is not None and not is_count(self.patience):
            raise ValueError(
                f"early stopping: patience must be an integer >= 1 or None, got "
                f"{self.patience!r}"
            )
        if not (is_number(self.min_delta) and self.min_delta >= 0):
            raise ValueError(
                f"early stopping: min_delta must be a number >= 0, got "
                f"{self.min_delta!r}"
            )
        if self.objective == TOTAL and self.metric != "loss":
            raise ValueError(
                f"early stopping: the total has only a loss, not {self.metric!r}"
            )

    def check(self, objectives: tuple[Objective, ...]) -> None:
        """A ValueError unless the model has the watched objective and it reports the
        watched metric."""
        if self.objective == TOTAL:
            return
        by_name = {o.name: o for o in objectives}
        if self.objective not in by_name:
            raise ValueError(
                f"early stopping watches objective {self.objective!r}, which the model "
                f"does not have (it has {sorted(by_name)} and 'total')"
            )
        known = ("loss", *kinds.get(by_name[self.objective].kind).metrics)
        if self.metric not in known:
            raise ValueError(
                f"early stopping: objective {self.objective!r} reports "
                f"{', '.join(known)}, not {self.metric!r}"
            )

    def value(self, history: History, epoch: int) -> float:
        """The watched number at validated epoch `epoch` (from 1) of `history`."""
        if self.metric == "loss":
            return history.valid_loss[self.objective][epoch - 1]
        return history.valid_metrics[epoch - 1][self.objective][self.metric]

    def improves(self, value: float, best: float | None) -> bool:
        """Whether `value` beats `best` (None: nothing yet) by more than min_delta; a
        NaN (an AUC over one class) beats only a NaN or nothing."""
        if best is None or math.isnan(best):
            return True
        if math.isnan(value):
            return False
        if kinds.higher_is_better(self.metric):
            return value > best + self.min_delta
        return value < best - self.min_delta


@dataclass
class Watch:
    """One run's watch: the best value so far, its epoch, and the epochs since."""

    rule: EarlyStopping
    best: float | None = None
    since: int = 0  # validated epochs since the best

    def update(self, history: History) -> bool:
        """Read the epoch `history` just validated (its last); set `history.best_epoch`
        and return True when it is the best so far."""
        epoch = len(history.valid_metrics)
        if not self.see(self.rule.value(history, epoch)):
            return False
        history.best_epoch = epoch
        return True

    def see(self, value: float) -> bool:
        """Take one epoch's watched value; True when it is the best so far."""
        if self.rule.improves(value, self.best):
            self.best, self.since = value, 0
            return True
        self.since += 1
        return False

    @classmethod
    def replay(cls, rule: EarlyStopping, history: History) -> Watch:
        """The watch of a resumed run, as it stood after the epochs `history` holds."""
        watch = cls(rule)
        for epoch in range(1, len(history.valid_metrics) + 1):
            watch.see(rule.value(history, epoch))
        return watch

    @property
    def stop(self) -> bool:
        """Whether the run has waited `patience` epochs without improvement."""
        return self.rule.patience is not None and self.since >= self.rule.patience
