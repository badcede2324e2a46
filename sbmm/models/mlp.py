"""The multi-layer perceptron every bottom and tower is made of."""

from __future__ import annotations

from typing import Sequence

from torch import nn

__all__ = ["mlp"]


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int | None = None) -> nn.Sequential:
    """Linear → ReLU for each width in `hidden`, then a final Linear to `out_dim` (no activation) if given.

    (B, in_dim) → (B, hidden[-1]), or (B, out_dim) when out_dim is given.
    """
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    if out_dim is not None:
        layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)
