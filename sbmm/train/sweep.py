"""Choosing a learning rate fairly: `sweep_lr` trains replicas of one model at every
value of a grid, scores each replica on the validation data, and names the best value
only when it lies inside the grid.

    sweep = sbmm.train.sweep_lr(build, train, valid, lrs=[1e-3, 3e-3, 1e-2],
                                seeds=range(5), epochs=20, early_stopping=STOP)
    sweep.table()   # per lr: mean score, its 95% interval, share of converged runs
    lr = sweep.best # ValueError "extend the grid below/above ..." on the edge
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..compare import mean_interval
from ..data.batch import Batch
from ..models.base import MultiTaskModel
from ..validation import is_number
from .history import TOTAL, History
from .replicas import Replicas, fit_replicas

__all__ = ["LrSweep", "sweep_lr"]

# A replica's score: (trained model, its History) → a number.
Score = Callable[[MultiTaskModel, History], float]


@dataclass(frozen=True)
class LrSweep:
    """What `sweep_lr` measured.

    lrs:              the grid, ascending.
    seeds:            the replicas' seeds, the same at every lr.
    scores:           (lrs, seeds): each replica's validation score; NaN for every
                      replica at an lr whose training diverged.
    runs:             per lr, the trained `Replicas` (None where training diverged).
    higher_is_better: whether a higher score is better (the default score, the best
                      validation total, is a loss: lower is better).
    """

    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    scores: np.ndarray
    runs: tuple[Replicas | None, ...]
    higher_is_better: bool = False

    @property
    def means(self) -> np.ndarray:
        """(lrs,): the mean score over the seeds (NaN where training diverged)."""
        return self.scores.mean(axis=1)

    @property
    def intervals(self) -> np.ndarray:
        """(lrs, 2): the 95% Student t interval (low, high) of each mean over the seeds
        (`sbmm.compare.mean_interval`); NaN where training diverged."""
        return np.array(
            [
                mean_interval(row) if np.isfinite(row).all() else (np.nan, np.nan)
                for row in self.scores
            ]
        )

    def converged(self, patience: int | None = None) -> dict[float, dict]:
        """{lr: {seed: {"total" and each objective: converged}}} (see
        `Replicas.converged`); an lr whose training diverged is left out."""
        return {
            lr: run.converged(patience)
            for lr, run in zip(self.lrs, self.runs)
            if run is not None
        }

    def table(self) -> list[dict[str, float]]:
        """Per lr: {"lr", "mean", "low", "high", "converged"}: the mean score, its 95%
        interval and the share of replicas whose every objective converged (NaN where
        training diverged)."""
        rows = []
        for lr, mean, (low, high), run in zip(
            self.lrs, self.means, self.intervals, self.runs
        ):
            share = np.nan
            if run is not None:
                share = np.mean([all(c.values()) for c in run.converged().values()])
            rows.append(
                {"lr": lr, "mean": mean, "low": low, "high": high, "converged": share}
            )
        return rows

    @property
    def best(self) -> float:
        """The lr of the best mean score, when it lies inside the grid. A ValueError
        when it is the grid's lowest or highest value (the optimum may lie beyond it:
        extend the grid past that end), or when training diverged at every lr."""
        means = self.means if self.higher_is_better else -self.means
        if np.isnan(means).all():
            raise ValueError(f"training diverged at every lr of {list(self.lrs)}")
        k = int(np.nanargmax(means))
        if k in (0, len(self.lrs) - 1):
            end, side = ("lowest", "below") if k == 0 else ("highest", "above")
            raise ValueError(
                f"the best mean score is at lr={self.lrs[k]:g}, the {end} value of the "
                f"grid {list(self.lrs)}: extend the grid {side} {self.lrs[k]:g}"
            )
        return self.lrs[k]


def sweep_lr(
    build: Callable[[], MultiTaskModel],
    train: Batch,
    valid: Batch,
    *,
    lrs: Sequence[float],
    seeds: Sequence[int],
    score: Score | None = None,
    higher_is_better: bool = False,
    **fit_kwargs,
) -> LrSweep:
    """Train `fit_replicas(build, train, valid, seeds=seeds, lr=lr, **fit_kwargs)` at
    every lr of the grid and score every replica.

    lrs:              at least 3 distinct numbers > 0, in any order (sorted here).
    seeds:            at least 2 (an interval needs them), the same at every lr.
    score:            a replica's score from its trained model and History; by default
                      its lowest validation total (the epoch keep_best would keep).
    higher_is_better: say True for a score such as an AUC.
    fit_kwargs:       everything else `fit_replicas` takes (epochs, batch_size,
                      early_stopping, ...), the same at every lr.

    An lr whose training diverges (FloatingPointError) gets NaN scores and counts as
    worse than any other. Returns the `LrSweep`; its `best` refuses a value on the
    grid's edge. A bad grid, too few seeds, or a missing `valid` raises a ValueError
    before anything trains.
    """
    grid = _check_grid(lrs)
    seeds = tuple(seeds)
    if len(seeds) < 2:
        raise ValueError(
            f"sweep_lr needs at least 2 seeds for an interval, got {seeds}"
        )
    if valid is None:
        raise ValueError("sweep_lr needs validation data (valid) to score the runs")
    if score is not None and not callable(score):
        raise TypeError(
            f"score must be a function (model, history) → float, got {score!r}"
        )
    scores, runs = [], []
    for lr in grid:
        try:
            run = fit_replicas(build, train, valid, seeds=seeds, lr=lr, **fit_kwargs)
        except FloatingPointError:
            scores.append([np.nan] * len(seeds))
            runs.append(None)
            continue
        scores.append([_score(score, model, history) for _, model, history in run])
        runs.append(run)
    return LrSweep(grid, seeds, np.array(scores), tuple(runs), higher_is_better)


def _check_grid(lrs: Sequence[float]) -> tuple[float, ...]:
    """`lrs` sorted ascending; a ValueError naming the grid unless it holds at least
    3 distinct finite numbers > 0 (a best value needs a neighbour on each side)."""
    if isinstance(lrs, (str, bytes)) or not isinstance(lrs, Sequence):
        raise TypeError(f"lrs must be a sequence of numbers, got {lrs!r}")
    if not all(is_number(lr) and lr > 0 for lr in lrs):
        raise ValueError(f"lrs must be finite numbers > 0, got {list(lrs)}")
    grid = tuple(sorted(lrs))
    if len(set(grid)) != len(grid) or len(grid) < 3:
        raise ValueError(
            f"lrs must hold at least 3 distinct values (a best value needs a "
            f"neighbour on each side), got {list(lrs)}"
        )
    return grid


def _score(score: Score | None, model: MultiTaskModel, history: History) -> float:
    """The replica's score: `score(model, history)`, or its lowest validation total."""
    if score is None:
        return min(history.valid_loss[TOTAL])
    return float(score(model, history))
