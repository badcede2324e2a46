"""`DSelectK`: MMoE with DSelect-k gates (Hazimeh et al., NeurIPS 2021), a
differentiable selection of k experts per tower.

A softmax gate gives every expert some weight; a top-k gate picks k but is not
differentiable. DSelect-k's gate is a mix of k single-expert selectors: selector i
reads m = ⌈log₂ n⌉ binary digits through a smooth step S, and weighs expert j by
Π_l (S(z_il) if bit l of j is 1, else 1 − S(z_il)); once every S(z_il) has saturated
at 0 or 1 the selector picks one expert, and the gate at most k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..inputs import Feature
from ..objectives import Tower
from ..validation import check_number, is_count
from .mmoe import MMoE

__all__ = ["DSelectGate", "DSelectK", "smooth_step"]


def smooth_step(t: Tensor, gamma: float) -> Tensor:
    """DSelect-k's smooth step: 0 for t ≤ −γ/2, 1 for t ≥ γ/2, and the cubic
    −2t³/γ³ + 3t/(2γ) + ½ between (continuously differentiable, exactly 0 or 1
    outside, unlike a sigmoid)."""
    cubic = -2 / gamma**3 * t**3 + 3 / (2 * gamma) * t + 0.5
    return torch.where(
        t <= -gamma / 2, 0.0, torch.where(t >= gamma / 2, 1.0, cubic)
    ).to(t)


class DSelectGate(nn.Module):
    """A per-example DSelect-k gate over `n_experts` experts, read from an input of
    width `in_dim`: k selectors, each with m = ⌈log₂ n⌉ code logits z_i = W_i x, mixed
    by softmax(V x) over the selectors.

        r_i(j) = Π_l S(z_il)^[bit l of j] · (1 − S(z_il))^[not bit l of j]  (B, n)
        weights(x) = Σ_i softmax(V x)_i · r_i                            (B, n)

    The codes start near 0 (weights and biases uniform in ±γ/100), where every step
    is near ½ and every expert has weight. With n not a power of 2, a code c ≥ n (it
    names no expert) counts for expert c − n, so that every selector's weights still
    sum to 1 and a saturated selector still picks one expert.
    weights: (B, in_dim) → (B, n_experts), rows summing to 1;
    forward: (B, in_dim), (B, n, d) → (B, d)."""

    def __init__(self, in_dim: int, n_experts: int, k: int, gamma: float = 1.0):
        super().__init__()
        self.k, self.gamma = k, gamma
        self.m = max(1, math.ceil(math.log2(n_experts)))
        self.codes = nn.Linear(in_dim, k * self.m)  # z: (B, k·m)
        # start inside the smooth region (|z| ≪ γ/2: every S(z) near ½, every expert
        # weighted), so that no expert starts without gradient
        nn.init.uniform_(self.codes.weight, -gamma / 100, gamma / 100)
        nn.init.uniform_(self.codes.bias, -gamma / 100, gamma / 100)
        self.mix = nn.Linear(in_dim, k)  # selector weights' logits
        codes = torch.arange(2**self.m)
        bits = (codes[:, None] >> torch.arange(self.m)) & 1  # (2^m, m)
        self.register_buffer("bits", bits.float(), persistent=False)
        self.register_buffer("expert", codes % n_experts, persistent=False)  # (2^m,)
        self.n = n_experts

    def selectors(self, x: Tensor) -> Tensor:
        """Each selector's weights over the experts: (B, k, n), rows summing to 1."""
        s = smooth_step(self.codes(x), self.gamma).view(-1, self.k, 1, self.m)
        # (B, k, 2^m, m): S(z) where code c's bit l is 1, 1 − S(z) where it is 0
        factors = self.bits * s + (1 - self.bits) * (1 - s)
        r = factors.prod(-1)  # (B, k, 2^m), summing to 1 over the codes
        out = r.new_zeros(*r.shape[:2], self.n)
        return out.index_add(2, self.expert, r)  # (B, k, n)

    def weights(self, x: Tensor) -> Tensor:
        mix = torch.softmax(self.mix(x), dim=-1)  # (B, k)
        return torch.einsum("bk,bkn->bn", mix, self.selectors(x))  # (B, n)

    def forward(self, x: Tensor, expert_outputs: Tensor) -> Tensor:
        # (B, n) · (B, n, d) → (B, d)
        return torch.einsum("be,bed->bd", self.weights(x), expert_outputs)


class DSelectK(MMoE):
    """MMoE whose per-tower gates are DSelect-k gates (Hazimeh et al., NeurIPS 2021).

    features, towers, n_experts, expert, and the experts' options (expert_norm,
    expert_activation, feature_gate, task_embeddings) and the layer options: as
    `MMoE`'s.
    k:     the experts each gate selects, 1 ≤ k ≤ n_experts; 2 by default.
    gamma: the smooth step's width γ > 0; 1.0 by default (the paper's default).

    forward(batch.features) → {objective name: prediction}, as every sbmm model.

    The paper adds an entropy penalty on the selectors to drive the smooth steps to
    0 or 1 during training; this library's losses are the declared objectives', so
    it is not added here, and a gate selects exactly k experts only where its steps
    have saturated (`DSelectGate.selectors`). The paper's static gate (one selection
    for every example) is the per-example gate with W = 0.
    """

    def __init__(
        self,
        features: Sequence[Feature],
        towers: Sequence[Tower],
        n_experts: int = 4,
        expert: Sequence[int] = (32, 16),
        k: int = 2,
        gamma: float = 1.0,
        **options,
    ):
        if "gate_batch_norm" in options:
            raise TypeError("DSelectK's gates take no gate_batch_norm")
        super().__init__(
            features, towers, n_experts=n_experts, expert=expert, **options
        )
        if not (is_count(k) and k <= n_experts):
            raise ValueError(
                f"k must be an integer in [1, n_experts = {n_experts}], got {k!r}"
            )
        check_number("gamma", gamma, strict=True)
        self.k = k
        self.gates = nn.ModuleDict(
            {g: DSelectGate(self.inputs.dim, n_experts, k, gamma) for g in self.gates}
        )
