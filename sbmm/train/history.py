"""`History`: what a training run measured, one entry per epoch."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["History", "TOTAL"]

TOTAL = "total"  # History's key for the weighted sum of the objectives' losses


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
    best_epoch:        with `fit(keep_best=True)`, the epoch (from 1) of lowest
                       validation "total", whose weights the model holds at the end;
                       otherwise None.
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
