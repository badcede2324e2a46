"""Two-objective trade-off frontiers: which points are not dominated, and the area a
frontier dominates (its hypervolume), so that frontiers of different models compare by
one number per seed instead of point by point.

A model trained at several task-weight ratios gives, per seed, a set of points
(score on objective 1, score on objective 2), both higher-is-better. Comparing two
models at equal ratio r compares points that need not lie at the same place on the
trade-off (one model at r = 1 may sit where the other sits at r = 4). The hypervolume
of a set, the area of the region its points dominate above a reference point, does not
depend on which ratio produced which point:

    hv = pareto.hypervolumes(fronts, reference=(0.0, 0.0))  # (seeds, n, 2) points
    sbmm.compare(hv_mmoe, hv_shared_bottom, names=("MMoE", "SB"))
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["non_dominated", "hypervolume", "hypervolumes"]


def _points(points: ArrayLike) -> np.ndarray:
    """`points` as an (n, 2) float array; a ValueError unless it is one, with n >= 1
    and every value finite."""
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 1:
        raise ValueError(
            f"points must be an (n, 2) array of n >= 1 points (objective 1, objective "
            f"2), got shape {p.shape}"
        )
    if not np.isfinite(p).all():
        raise ValueError("points hold NaN or infinite values")
    return p


def _reference(reference: ArrayLike) -> np.ndarray:
    """`reference` as a (2,) float array; a ValueError unless it is one, finite."""
    r = np.asarray(reference, dtype=float)
    if r.shape != (2,) or not np.isfinite(r).all():
        raise ValueError(
            f"reference must be one finite point (objective 1, objective 2), got "
            f"{reference!r}"
        )
    return r


def non_dominated(points: ArrayLike) -> np.ndarray:
    """(n,) bool: which of the (n, 2) `points` no other point dominates (at least as
    high on both objectives and higher on one; both are higher-is-better). Of points
    listed more than once, each copy is kept."""
    p = _points(points)
    at_least = (p[None, :, :] >= p[:, None, :]).all(-1)  # (n, n): j ≥ i on both
    higher = (p[None, :, :] > p[:, None, :]).any(-1)  # (n, n): j > i on one
    return ~(at_least & higher).any(1)


def hypervolume(points: ArrayLike, reference: ArrayLike = (0.0, 0.0)) -> float:
    """The area of the region that the (n, 2) `points` dominate and that dominates
    `reference` (both objectives higher-is-better): the union of the rectangles from
    `reference` to each point. Dominated points add nothing; a point not above the
    reference on both objectives adds nothing; a set that dominates no area gives 0.
    ValueError for a wrong shape, no points, or a NaN or infinite value."""
    p, r = _points(points), _reference(reference)
    p = p[(p > r).all(1)]  # (m, 2): the points above the reference
    if len(p) == 0:
        return 0.0
    p = p[non_dominated(p)]
    p = p[np.argsort(-p[:, 0], kind="stable")]  # objective 1 falling, so 2 rises
    # Each point adds the strip between its height and the previous (lower) one, from
    # the reference to its own objective-1 value.
    heights = np.concatenate([[r[1]], p[:, 1]])  # (m + 1,)
    return float(np.sum((p[:, 0] - r[0]) * np.diff(heights)))


def hypervolumes(fronts: ArrayLike, reference: ArrayLike = (0.0, 0.0)) -> np.ndarray:
    """(seeds,): the `hypervolume` of each seed's points in `fronts`, (seeds, n, 2),
    against the same `reference`: one number per seed, for `sbmm.compare`.
    ValueError unless `fronts` is (seeds, n, 2) with seeds >= 1."""
    f = np.asarray(fronts, dtype=float)
    if f.ndim != 3 or f.shape[0] < 1:
        raise ValueError(
            f"fronts must be a (seeds, n, 2) array: per seed, n points of two "
            f"objectives, got shape {f.shape}"
        )
    return np.array([hypervolume(points, reference) for points in f])
