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
    `in_dim`. With `batch_norm`, its logits are batch-normalised before the softmax
    (the Linear then has no bias), as torch-rechub's gates are."""

    def __init__(self, in_dim: int, n_experts: int, batch_norm: bool = False):
        super().__init__()
        if not isinstance(batch_norm, bool):
            raise TypeError(
                f"gate_batch_norm must be True or False, got {batch_norm!r}"
            )
        self.linear = nn.Linear(in_dim, n_experts, bias=not batch_norm)
        self.norm = nn.BatchNorm1d(n_experts) if batch_norm else nn.Identity()

    def weights(self, x: Tensor) -> Tensor:
        logits = self.norm(self.linear(x))  # (B, n_experts)
        return torch.softmax(logits, dim=-1)  # rows sum to 1

    def forward(self, x: Tensor, expert_outputs: Tensor) -> Tensor:
        # (B, n) · (B, n, d) → (B, d)
        return torch.einsum("be,bed->bd", self.weights(x), expert_outputs)
