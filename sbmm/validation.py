"""The checks of plain arguments that several modules make, written once."""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["check_number", "is_count", "is_number", "split_bounds"]


def is_number(x) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def is_count(x, minimum: int = 1) -> bool:
    """An int (not a bool) of at least `minimum`."""
    return isinstance(x, int) and not isinstance(x, bool) and x >= minimum


def check_number(what: str, x, *, minimum: float = 0.0, strict: bool = False) -> float:
    """`x` if it is a finite number >= `minimum` (> with `strict`); else a ValueError
    naming `what`."""
    ok = is_number(x) and (x > minimum if strict else x >= minimum)
    if not ok:
        relation = ">" if strict else ">="
        raise ValueError(
            f"{what} must be a finite number {relation} {minimum:g}, got {x!r}"
        )
    return x


def split_bounds(n: int, fractions) -> list[int]:
    """Where to cut n shuffled rows into consecutive parts of `fractions` (positive,
    summing to 1; the last part takes the rounding remainder): [0, ..., n]. A
    ValueError otherwise."""
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Iterable):
        raise TypeError(
            f"split fractions must be a sequence of numbers, got {fractions!r}"
        )
    fractions = tuple(fractions)
    if (
        not fractions
        or not all(is_number(f) for f in fractions)
        or any(f <= 0 for f in fractions)
        or abs(sum(fractions) - 1) > 1e-6
    ):
        raise ValueError(
            f"split fractions must be positive and sum to 1, got {fractions}"
        )
    cuts = [round(n * sum(fractions[: i + 1])) for i in range(len(fractions) - 1)]
    return [0, *cuts, n]
