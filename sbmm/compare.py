"""`compare`: is model A better than model B, given one score of each per training seed?

The runs are paired by seed, so the comparison works on the per-seed differences
d = a - b: their mean estimates how much A beats B, and a paired Student t interval,
mean ± t(level, n - 1) · sd / √n, says how far that estimate can be trusted. A is
called better or worse only when the interval excludes 0.

    print(compare(mmoe_auc, shared_bottom_auc, names=("MMoE", "SB")))
    # MMoE − SB = +0.0123 (95% CI +0.0081 to +0.0165, 10 seeds): better

That interval counts the seeds' noise only: every seed is scored on the same test rows,
and another draw of test rows would move every score. `TestRows` resamples the test
rows once, for every model scored on them, and `compare` of two models' `RowAUC`s puts
both noises in the interval (see `compare`):

    rows = TestRows(test_labels)  # (rows,) 0/1
    compare(rows.auc(mmoe_scores), rows.auc(single_task_scores))  # (seeds, rows) each
    # ... (95% CI ..., 10 seeds × 9,976 test rows): ...

`family=m` says the comparison is one of m made together: its interval is then at
level 1 - (1 - level) / m (Bonferroni), so that all m intervals hold together with
probability at least `level`, and its verdict is read from that interval.

`mean_interval` is the interval for the mean of one model's per-seed scores: the t
interval, or of a `RowAUC` the interval that counts the test rows too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

__all__ = [
    "Comparison",
    "RowAUC",
    "TestRows",
    "bonferroni",
    "compare",
    "mean_interval",
]

WIDTH = 88  # columns of the book's code and output column
CHUNK = 200  # resamplings of the test rows scored at once (memory: CHUNK × rows)


@dataclass(frozen=True)
class Comparison:
    """The paired comparison of A with B that `compare` returns.

    `mean` is the mean of the per-seed `differences` a - b, `interval` its (low, high)
    confidence interval, and `verdict` is "better", "worse" or "indistinguishable" for
    A relative to B ("indistinguishable" exactly when the interval contains 0; with
    `higher_is_better=False`, as for a loss, a negative difference is "better").
    `level` is the confidence stated for the interval: with `family` = m > 1 it is the
    level all m comparisons made together hold at, and this interval is at
    `bonferroni(level, m)`. `rows` is the number of test rows whose resampling the
    interval counts (None: it counts the seeds' noise only). `str()` gives a summary
    for a notebook, `prose()` the difference and its interval for a sentence.
    """

    mean: float
    interval: tuple[float, float]
    level: float
    differences: tuple[float, ...]
    verdict: str
    names: tuple[str, str] = ("A", "B")
    higher_is_better: bool = True
    family: int = 1
    rows: int | None = None

    @property
    def n(self) -> int:
        """The number of seeds (paired scores)."""
        return len(self.differences)

    def format(self, decimals: int = 4, label: str = "") -> str:
        """The summary with every number shown to `decimals` decimal places,
        e.g. "A − B = +0.0123 (95% CI +0.0081 to +0.0165, 10 seeds): better", after
        "`label`: " if one is given; the part in brackets goes on a second, indented
        line if one line would pass 88 columns. A comparison that counts test rows
        says "10 seeds × 9,976 test rows"."""
        head = f"{self.names[0]} − {self.names[1]} = {self.mean:+.{decimals}f}"
        head = f"{label}: {head}" if label else head
        samples = f"{self.n} seeds"
        if self.rows is not None:
            samples += f" × {self.rows:,} test rows"
        tail = f"({self._interval_text(decimals)}, {samples}): {self.verdict}"
        if len(head) + 1 + len(tail) <= WIDTH:
            return f"{head} {tail}"
        return f"{head}\n    {tail}"

    def prose(self, decimals: int = 3) -> str:
        """The mean difference and its interval as a sentence quotes them,
        e.g. "+0.012 (95% CI +0.008 to +0.017)", or with a family of 9
        "+0.012 (95% CI +0.005 to +0.019, Bonferroni over 9)"."""
        return f"{self.mean:+.{decimals}f} ({self._interval_text(decimals)})"

    def _interval_text(self, decimals: int) -> str:
        low, high = self.interval
        level = format(100 * self.level, ".6g")
        text = f"{level}% CI {low:+.{decimals}f} to {high:+.{decimals}f}"
        if self.family > 1:
            text += f", Bonferroni over {self.family}"
        return text

    def __str__(self) -> str:
        return self.format()


def compare(
    a: Any,
    b: Any,
    *,
    level: float = 0.95,
    names: tuple[str, str] = ("A", "B"),
    higher_is_better: bool = True,
    family: int = 1,
) -> Comparison:
    """Compare the scores `a` of model A with the scores `b` of model B, paired by seed.

    `a` and `b` are either sequences (lists, NumPy arrays, 1-D tensors) of the same
    length n >= 2, the i-th entries coming from the same seed, or both dicts
    seed -> score with the same keys (paired by key), or both `RowAUC`s from one
    `TestRows` (below). Returns a `Comparison` holding the mean of the differences
    a - b, its confidence interval, the differences and the verdict for A ("better",
    "worse" or "indistinguishable", the last whenever the interval contains 0); pass
    `higher_is_better=False` for scores where lower is better, such as a loss.
    `names` name A and B in the summary and in error messages. `family`: the number
    of comparisons this one is made with; the interval is at `bonferroni(level,
    family)`, so that all of them hold together with probability at least `level`.

    Scores per seed: the interval is the paired Student t interval. Why t rather than
    a bootstrap: experiments here have few seeds (typically 10), and at n = 10 the
    percentile bootstrap interval is too narrow (a nominal 95% interval covers
    noticeably less often), while the t interval is exact when the differences are
    normal and stays close to its nominal coverage for the mildly skewed differences
    of metrics averaged over many examples. If all differences are equal the
    interval has zero width, at their common value.

    `RowAUC`s: the mean difference of AUCs d̄ (over seeds, on the test rows) moves
    with the seeds and with the test rows drawn. Its variance is estimated as
    s²/n + V, where s² is the variance of the per-seed differences (the t interval's)
    and V the part of the test rows' bootstrap variance of d̄ (rows resampled with
    one index for both models and every seed) that the seeds share: the bootstrap
    variance of d̄, less that of each seed's own departure from d̄ divided by n, which
    s² already counts. The interval is d̄ ± t · √(s²/n + V) with Welch-Satterthwaite
    degrees of freedom (s²/n + V)² / ((s²/n)² / (n - 1)): the t interval above when
    the rows add nothing, the normal interval of a row bootstrap when the seeds do.
    A two-way percentile bootstrap (rows and seeds resampled together) counts the
    seed-by-row part twice and lacks the t's width at 10 seeds; this interval covers
    at its nominal rate where that one over-covers (tests/test_compare.py).

    Raises ValueError, naming the side (A or B, as given by `names`), for scores
    that are not a one-dimensional collection of finite real numbers, for lengths
    that differ, for dict keys that differ, for a dict paired with a non-dict, for a
    `RowAUC` paired with anything but a `RowAUC` of the same `TestRows`, for fewer
    than 2 seeds, for a `level` outside (0, 1) and a `family` that is not an integer
    >= 1; TypeError for a `higher_is_better` that is not a bool (a string such as
    "yes" would be read as True, "no" too).
    """
    if isinstance(names, str) or len(names) != 2:
        raise ValueError(f"names must be a pair of names for A and B, got {names!r}")
    name_a, name_b = map(str, names)
    single = bonferroni(level, family)  # each interval's own level
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise TypeError(
            f"higher_is_better must be True or False, got {higher_is_better!r}"
        )

    rows: int | None = None
    if isinstance(a, RowAUC) or isinstance(b, RowAUC):
        differences, mean, low, high = _row_interval(a, b, single, name_a, name_b)
        rows = len(a.rows)
    else:
        differences = _paired_differences(a, b, name_a, name_b)
        mean, low, high = _t_interval(differences, single)
    if low <= 0 <= high:
        verdict = "indistinguishable"
    else:
        verdict = "better" if (mean > 0) == higher_is_better else "worse"
    return Comparison(
        mean=mean,
        interval=(low, high),
        level=float(level),
        differences=tuple(differences.tolist()),
        verdict=verdict,
        names=(name_a, name_b),
        higher_is_better=bool(higher_is_better),
        family=int(family),
        rows=rows,
    )


def bonferroni(level: float, family: int) -> float:
    """The level each of `family` intervals needs for all of them to hold together with
    probability at least `level`: 1 - (1 - level) / family. ValueError for a `level`
    outside (0, 1) or a `family` that is not an integer >= 1."""
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    if isinstance(family, bool) or not isinstance(family, Integral) or family < 1:
        raise ValueError(
            f"family must be the number of comparisons made, an integer >= 1, "
            f"got {family!r}"
        )
    return 1 - (1 - float(level)) / int(family)


def _paired_differences(a: Any, b: Any, name_a: str, name_b: str) -> np.ndarray:
    """(seeds,): the differences a - b of scores paired by position or by dict key,
    checked as `compare` says."""
    seeds: list[Any] | None = None
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)):
            which, other = name_a, name_b
            if not isinstance(a, Mapping):
                which, other = name_b, name_a
            raise ValueError(
                f"{which} is a dict seed -> score but {other} is not; "
                "give both as dicts (paired by seed) or both as sequences"
            )
        only_a = [seed for seed in a if seed not in b]
        only_b = [seed for seed in b if seed not in a]
        if only_a or only_b:
            raise ValueError(
                f"the seeds of {name_a} and {name_b} differ: only in {name_a}: "
                f"{only_a}, only in {name_b}: {only_b}"
            )
        seeds = list(a)
        a, b = [a[seed] for seed in seeds], [b[seed] for seed in seeds]

    x, y = _scores(a, name_a), _scores(b, name_b)
    if len(x) != len(y):
        raise ValueError(
            f"{name_a} has {len(x)} scores but {name_b} has {len(y)}; "
            "they must be paired by seed"
        )
    if len(x) < 2:
        raise ValueError(
            f"{name_a} and {name_b} need scores from at least 2 seeds, got {len(x)}"
        )
    for name, scores in ((name_a, x), (name_b, y)):
        bad = np.flatnonzero(~np.isfinite(scores)).tolist()
        if bad:
            where = f"positions {bad}"
            if seeds is not None:
                where = f"seeds {[seeds[i] for i in bad]}"
            raise ValueError(f"{name} has non-finite scores (NaN or inf) at {where}")
    return x - y


def mean_interval(scores: Any, level: float = 0.95) -> tuple[float, float]:
    """The (low, high) interval at `level` for the mean of `scores`, one per seed: the
    interval `compare` puts around a mean difference, for one model's scores alone,
    as for an error bar. `scores` is a sequence, array or 1-D tensor of at least 2
    finite numbers (the Student t interval), or a `RowAUC` of at least 2 seeds (the
    interval that counts the test rows too). ValueError for anything else."""
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    if isinstance(scores, RowAUC):
        if len(scores.values) < 2:
            raise ValueError("an interval needs the AUCs of at least 2 seeds")
        _, low, high = _rows_and_seeds(scores.values, scores.draws, level)
        return low, high
    x = _scores(scores, "the scores")
    if len(x) < 2 or not np.all(np.isfinite(x)):
        raise ValueError(
            f"an interval needs at least 2 finite scores, got {x.tolist()}"
        )
    _, low, high = _t_interval(x, level)
    return low, high


class TestRows:
    """A set of test rows' binary labels and `draws` resamplings of the rows with
    replacement (a bootstrap), drawn once, so that every model scored with `auc` is
    scored on the same resampled rows: comparisons between them are paired by row as
    well as by seed.

    labels: (rows,) 0/1 or boolean labels (a sequence, array or tensor), both
            classes present.
    draws:  the number of resamplings, >= 100.
    seed:   the seed of the NumPy generator that draws them (the same seed, the same
            resamplings).

    ValueError for labels that are not one-dimensional 0/1 values of both classes,
    for fewer than 100 draws, and for rows so few that a resampling lacks a class.
    """

    __test__ = False  # a name that starts with "Test" is not a pytest test class

    def __init__(self, labels: Any, draws: int = 1000, seed: int = 0):
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
        if np.asarray(labels).dtype.kind == "b":  # True and False read as 1 and 0
            labels = np.asarray(labels, dtype=np.int8)
        y = _scores(labels, "the test labels")
        if not np.isin(y, (0, 1)).all():
            raise ValueError(
                f"the test labels must be 0 or 1, got {np.unique(y)[:5].tolist()}"
            )
        if isinstance(draws, bool) or not isinstance(draws, Integral) or draws < 100:
            raise ValueError(f"draws must be an integer >= 100, got {draws!r}")
        n, positive = len(y), y == 1
        self._pos, self._neg = np.flatnonzero(positive), np.flatnonzero(~positive)
        if not len(self._pos) or not len(self._neg):
            raise ValueError("the test labels need both classes for an AUC")
        rng = np.random.default_rng(seed)
        drawn = rng.integers(0, n, (draws, n))  # (draws, rows): the rows drawn
        offsets = (np.arange(draws) * n)[:, None]
        counts = np.bincount((drawn + offsets).ravel(), minlength=draws * n)
        counts = counts.reshape(draws, n).astype(np.int32)  # times each row is drawn
        self._pos_counts = counts[:, self._pos]  # (draws, positives)
        self._neg_counts = counts[:, self._neg]  # (draws, negatives)
        pairs = self._pos_counts.sum(1, dtype=np.int64)
        pairs *= self._neg_counts.sum(1, dtype=np.int64)  # (draws,)
        if not pairs.all():
            raise ValueError(
                f"{len(self._pos)} positive and {len(self._neg)} negative test rows "
                "are too few: a resampling lacks a class"
            )
        self._pairs = pairs

    def __len__(self) -> int:
        """The number of test rows."""
        return len(self._pos) + len(self._neg)

    @property
    def draws(self) -> int:
        """The number of resamplings."""
        return len(self._pairs)

    def auc(self, scores: Any) -> RowAUC:
        """Each seed's AUC on these rows and on every resampling of them.

        scores: (seeds, rows) or (rows,) scores, higher meaning positive (logits or
                probabilities: the AUC reads only their order), row k of one model's
                seed k; an array, a tensor or a sequence of 1-D arrays.

        The AUC is the Mann-Whitney count, ties counted one half, as
        `sklearn.metrics.roc_auc_score` computes it on the resampled rows: per
        seed, the negatives are sorted once, and each resampling's count of
        negatives below every positive is a cumulative sum of its row counts, so
        that all resamplings are scored in one vectorised pass. ValueError for
        scores of another number of rows, or not finite.
        """
        x = _score_matrix(scores, len(self))
        values = np.empty(len(x))  # (seeds,)
        draws = np.empty((self.draws, len(x)))  # (draws, seeds)
        for k, row in enumerate(x):
            order = np.argsort(row[self._neg], kind="stable")  # (negatives,)
            negatives = row[self._neg][order]  # sorted
            below = np.searchsorted(negatives, row[self._pos], "left")  # (positives,)
            up_to = np.searchsorted(negatives, row[self._pos], "right")
            values[k] = (below + up_to).sum() / (2 * len(self._pos) * len(self._neg))
            for start in range(0, self.draws, CHUNK):
                chunk = slice(start, start + CHUNK)
                counted = np.zeros((len(self._pairs[chunk]), len(order) + 1), np.int64)
                # counted[:, j]: how many of the j lowest negatives each resampling drew
                np.cumsum(self._neg_counts[chunk][:, order], axis=1, out=counted[:, 1:])
                twice = counted[:, below] + counted[:, up_to]  # (chunk, positives)
                pairs = (self._pos_counts[chunk] * twice).sum(1)
                draws[chunk, k] = pairs / (2 * self._pairs[chunk])
        return RowAUC(values, draws, self)


@dataclass(frozen=True, eq=False)
class RowAUC:
    """One model's AUC per seed on a `TestRows` (`TestRows.auc`): `values`, (seeds,),
    on the rows as they are, and `draws`, (draws, seeds), on each resampling; `rows`
    is the `TestRows`, which a comparison checks both models share. Give two of them
    to `compare`."""

    values: np.ndarray
    draws: np.ndarray
    rows: TestRows


def _row_interval(
    a: Any, b: Any, level: float, name_a: str, name_b: str
) -> tuple[np.ndarray, float, float, float]:
    """(differences (seeds,), mean, low, high) of A's and B's `RowAUC`s: the interval
    `compare` describes, at `level`."""
    for name, other, value in ((name_a, name_b, a), (name_b, name_a, b)):
        if not isinstance(value, RowAUC):
            raise ValueError(
                f"{other} is a RowAUC but {name} is {type(value).__name__}: compare "
                "two models' TestRows.auc, or two sets of per-seed scores"
            )
    if a.rows is not b.rows:
        raise ValueError(
            f"{name_a} and {name_b} were scored on different TestRows: resample the "
            "test rows once and score both models on them, so that they are paired"
        )
    if len(a.values) != len(b.values) or len(a.values) < 2:
        raise ValueError(
            f"{name_a} has {len(a.values)} seeds and {name_b} {len(b.values)}: they "
            "must be paired by seed, at least 2"
        )
    differences = a.values - b.values  # (seeds,)
    return (differences, *_rows_and_seeds(differences, a.draws - b.draws, level))


def _rows_and_seeds(
    values: np.ndarray, draws: np.ndarray, level: float
) -> tuple[float, float, float]:
    """(mean, low, high): the interval at `level` for the mean over seeds of `values`,
    (seeds,), counting the seeds' noise and the test rows' (`draws`, (draws, seeds):
    the same on each resampling of the rows), as `compare` describes it."""
    n = len(values)
    mean = float(values.mean())
    resampled_mean = draws.mean(1)  # (draws,)
    # Each seed's own departure from the mean moves with the rows too; s² counts it.
    own = (draws - resampled_mean[:, None]).var(0, ddof=1).sum() / (n - 1)
    shared = max(float(resampled_mean.var(ddof=1)) - own / n, 0.0)
    seeds = float(values.var(ddof=1)) / n
    if seeds + shared == 0:
        return mean, mean, mean
    from scipy import stats  # SciPy loads when an interval is first computed

    dof = (seeds + shared) ** 2 / (seeds**2 / (n - 1)) if seeds > 0 else math.inf
    half = float(stats.t.ppf((1 + level) / 2, dof)) * math.sqrt(seeds + shared)
    return mean, mean - half, mean + half


def _score_matrix(scores: Any, rows: int) -> np.ndarray:
    """`scores` as a (seeds, rows) float64 array; ValueError unless it has `rows`
    finite scores per seed."""
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().double().numpy()
    try:
        x = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    except (TypeError, ValueError) as error:
        raise ValueError(f"the scores are not an array of numbers: {error}") from error
    if x.ndim != 2 or x.shape[1] != rows:
        raise ValueError(
            f"the scores must be (seeds, rows) with {rows:,} rows, got shape {x.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(x).all(1)).tolist()
    if bad:
        raise ValueError(f"the scores of seeds (rows) {bad} are not all finite")
    return x


def _t_interval(x: np.ndarray, level: float) -> tuple[float, float, float]:
    """(mean, low, high): mean(x) ± t((1 + level) / 2, n - 1) · sd(x) / √n. If all of
    `x` are equal the interval has zero width at their common value (a computed mean
    and standard deviation would add rounding noise to both)."""
    if np.all(x == x[0]):
        return float(x[0]), float(x[0]), float(x[0])
    mean = float(x.mean())
    from scipy import stats  # SciPy loads when an interval is first computed

    t = float(stats.t.ppf((1 + level) / 2, len(x) - 1))
    half = t * float(x.std(ddof=1)) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def _scores(scores: Any, name: str) -> np.ndarray:
    """`scores` (a sequence, array or tensor) as a 1-D float64 array; ValueError naming
    `name` if they are not a one-dimensional collection of real numbers."""
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu()
        if scores.is_floating_point():
            scores = scores.double()
        scores = scores.numpy()
    try:
        array = np.asarray(scores)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"the scores of {name} are not an array of numbers: {error}"
        ) from error
    if array.dtype.kind not in "iuf":
        raise ValueError(
            f"the scores of {name} must be real numbers, got {array.dtype} values"
        )
    if array.ndim != 1:
        raise ValueError(
            f"the scores of {name} must be one-dimensional (one per seed), "
            f"got shape {array.shape}"
        )
    return array.astype(np.float64)
