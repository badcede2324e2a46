"""Experts and gates, the parts of the gated bottoms (MMoE, PLE).

An expert is an MLP like a shared bottom; a gate is a softmax over experts, computed
from the gate's input, that mixes the experts' outputs into one vector per sample:

    experts(x):        (B, d_in)  → (B, n_experts, d_out)
    gate(x, outputs):  (B, d_in), (B, n_experts, d_out) → (B, d_out),
                       Σ_e softmax(W x)_e · outputs_e
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .mlp import LayerOptions

__all__ = ["Experts", "Gate"]


class Experts(nn.Module):
    """`n` independent MLPs of the same `widths` on the same input, every layer built
    with `options` (the model's activation, dropout and batch norm)."""

    def __init__(
        self, in_dim: int, widths: Sequence[int], n: int, options: LayerOptions
    ):
        super().__init__()
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(
                f"the number of experts must be an integer >= 1, got {n!r}"
            )
        self.nets = nn.ModuleList(options.mlp(in_dim, widths) for _ in range(n))
        self.out_dim = widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([net(x) for net in self.nets], dim=1)  # (B, n, d_out)


class Gate(nn.Module):
    """A linear softmax gate over `n_experts` experts, read from an input of width
    `in_dim`."""

    def __init__(self, in_dim: int, n_experts: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, n_experts)

    def weights(self, x: Tensor) -> Tensor:
        return torch.softmax(self.linear(x), dim=-1)  # (B, n_experts), rows sum to 1

    def forward(self, x: Tensor, expert_outputs: Tensor) -> Tensor:
        # (B, n) · (B, n, d) → (B, d)
        return torch.einsum("be,bed->bd", self.weights(x), expert_outputs)
