"""The multi-layer perceptron every bottom and tower is made of."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..validation import is_count

__all__ = ["mlp", "check_widths"]


def mlp(
    in_dim: int, hidden: Sequence[int], out_dim: int | None = None
) -> nn.Sequential:
    """Linear → ReLU for each width in `hidden`, then a final Linear to `out_dim`
    (no activation) if given.

    (B, in_dim) → (B, hidden[-1]), or (B, out_dim) when out_dim is given.
    """
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def check_widths(name: str, widths: Sequence[int]) -> tuple[int, ...]:
    """`widths` as a tuple, or a ValueError naming `name` unless they are one or more
    integers >= 1."""
    widths = tuple(widths)
    if not widths or not all(is_count(w) for w in widths):
        raise ValueError(
            f"{name} widths must be one or more integers >= 1, got {widths}"
        )
    return widths
