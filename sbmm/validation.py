"""The checks of plain arguments that several modules make, written once."""

from __future__ import annotations

import math

__all__ = ["is_number", "is_count", "check_number"]


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
