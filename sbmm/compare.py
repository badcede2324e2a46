"""`compare`: is model A better than model B, given one score of each per training seed?

The runs are paired by seed, so the comparison works on the per-seed differences
d = a - b: their mean estimates how much A beats B, and a paired Student t interval,
mean ± t(level, n - 1) · sd / √n, says how far that estimate can be trusted. A is
called better or worse only when the interval excludes 0.

    print(compare(mmoe_auc, shared_bottom_auc, names=("MMoE", "SB")))
    # MMoE − SB = +0.0123 (95% CI +0.0081 to +0.0165, 10 seeds): better

`mean_interval` is the same t interval for the mean of one set of per-seed scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import torch

__all__ = ["Comparison", "compare", "mean_interval"]

WIDTH = 88  # columns of the book's code and output column


@dataclass(frozen=True)
class Comparison:
    """The paired comparison of A with B that `compare` returns.

    `mean` is the mean of the per-seed `differences` a - b, `interval` its (low, high)
    confidence interval at `level`, and `verdict` is "better", "worse" or
    "indistinguishable" for A relative to B ("indistinguishable" exactly when the
    interval contains 0; with `higher_is_better=False`, as for a loss, a negative
    difference is "better"). `str()` gives a summary for a notebook, `prose()` the
    difference and its interval for a sentence.
    """

    mean: float
    interval: tuple[float, float]
    level: float
    differences: tuple[float, ...]
    verdict: str
    names: tuple[str, str] = ("A", "B")
    higher_is_better: bool = True

    @property
    def n(self) -> int:
        """The number of seeds (paired scores)."""
        return len(self.differences)

    def format(self, decimals: int = 4, label: str = "") -> str:
        """The summary with every number shown to `decimals` decimal places,
        e.g. "A − B = +0.0123 (95% CI +0.0081 to +0.0165, 10 seeds): better", after
        "`label`: " if one is given; the part in brackets goes on a second, indented
        line if one line would pass 88 columns."""
        head = f"{self.names[0]} − {self.names[1]} = {self.mean:+.{decimals}f}"
        head = f"{label}: {head}" if label else head
        tail = f"({self._interval_text(decimals)}, {self.n} seeds): {self.verdict}"
        if len(head) + 1 + len(tail) <= WIDTH:
            return f"{head} {tail}"
        return f"{head}\n    {tail}"

    def prose(self, decimals: int = 3) -> str:
        """The mean difference and its interval as a sentence quotes them,
        e.g. "+0.012 (95% CI +0.008 to +0.017)"."""
        return f"{self.mean:+.{decimals}f} ({self._interval_text(decimals)})"

    def _interval_text(self, decimals: int) -> str:
        low, high = self.interval
        level = format(100 * self.level, ".6g")
        return f"{level}% CI {low:+.{decimals}f} to {high:+.{decimals}f}"

    def __str__(self) -> str:
        return self.format()


def compare(
    a: Any,
    b: Any,
    *,
    level: float = 0.95,
    names: tuple[str, str] = ("A", "B"),
    higher_is_better: bool = True,
) -> Comparison:
    """Compare the scores `a` of model A with the scores `b` of model B, paired by seed.

    `a` and `b` are either sequences (lists, NumPy arrays, 1-D tensors) of the same
    length n >= 2, the i-th entries coming from the same seed, or both dicts
    seed -> score with the same keys (paired by key). Returns a `Comparison` holding
    the mean of the differences a - b, its paired Student t confidence interval at
    `level`, the differences and the verdict for A ("better", "worse" or
    "indistinguishable", the last whenever the interval contains 0); pass
    `higher_is_better=False` for scores where lower is better, such as a loss.
    `names` name A and B in the summary and in error messages. If all differences
    are equal the interval has zero width, at their common value.

    Why t rather than a bootstrap: experiments here have few seeds (typically 10),
    and at n = 10 the percentile bootstrap interval is too narrow (a nominal 95%
    interval covers noticeably less often), while the t interval is exact when the
    differences are normal and stays close to its nominal coverage for the mildly
    skewed differences of metrics averaged over many examples.

    Raises ValueError, naming the side (A or B, as given by `names`), for scores
    that are not a one-dimensional collection of finite real numbers, for lengths
    that differ, for dict keys that differ, for a dict paired with a non-dict, for
    fewer than 2 seeds, and for a `level` outside (0, 1); TypeError for a
    `higher_is_better` that is not a bool (a string such as "yes" would be read as
    True, "no" too).
    """
    if isinstance(names, str) or len(names) != 2:
        raise ValueError(f"names must be a pair of names for A and B, got {names!r}")
    name_a, name_b = map(str, names)
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    if not isinstance(higher_is_better, (bool, np.bool_)):
        raise TypeError(
            f"higher_is_better must be True or False, got {higher_is_better!r}"
        )

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

    differences = x - y
    mean, low, high = _t_interval(differences, level)
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
    )


def mean_interval(scores: Any, level: float = 0.95) -> tuple[float, float]:
    """The (low, high) Student t interval at `level` for the mean of `scores`, one per
    seed (a sequence, array or 1-D tensor of at least 2 finite numbers): the interval
    `compare` puts around a mean difference, for one model's scores alone, as for an
    error bar. ValueError for anything else."""
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    x = _scores(scores, "the scores")
    if len(x) < 2 or not np.all(np.isfinite(x)):
        raise ValueError(
            f"an interval needs at least 2 finite scores, got {x.tolist()}"
        )
    _, low, high = _t_interval(x, level)
    return low, high


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
