"""`MMoE`: multi-gate mixture-of-experts (Ma et al., 2018).

    features ─► inputs ─► n experts (MLPs) ─┬─ gate of tower 1 (softmax over experts) ─► tower 1
                          (shared)           └─ gate of tower 2 ─────────────────────── ► tower 2

Every tower reads its own mixture of the shared experts, so towers whose tasks disagree can lean on
different experts instead of pulling one shared bottom in two directions.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from torch import Tensor, nn

from ..inputs import Feature
from ..objectives import Tower
from .base import MultiTaskModel
from .experts import Experts, Gate
from .mlp import check_widths

__all__ = ["MMoE"]


class MMoE(MultiTaskModel):
    """Multi-gate mixture-of-experts.

    features:  the input features.
    towers:    the towers and their objectives; each tower gets its own gate.
    n_experts: number of shared experts.
    expert:    widths of every expert's MLP (ReLU after each layer).

    forward(batch.features) → {objective name: prediction}, as every sbmm model.
    """

    def __init__(
        self, features: Sequence[Feature], towers: Sequence[Tower], n_experts: int = 4, expert: Sequence[int] = (32, 16)
    ):
        super().__init__(features, towers)
        expert = check_widths("expert", expert)
        self.experts = Experts(self.inputs.dim, expert, n_experts)
        self.gates = nn.ModuleDict({t.name: Gate(self.inputs.dim, n_experts) for t in self.tower_specs})
        self.build_towers(expert[-1])

    def shared_parameters(self) -> list[nn.Parameter]:
        """The input layer and the experts (each gate serves one tower)."""
        return [*self.inputs.parameters(), *self.experts.parameters()]

    def gate_weights(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Each tower's gate weights over the experts: {tower: (B, n_experts)}."""
        x = self.inputs(features)
        return {t.name: self.gates[t.name].weights(x) for t in self.tower_specs}

    def represent(self, x: Tensor) -> dict[str, Tensor]:
        e = self.experts(x)  # (B, n_experts, d)
        return {t.name: self.gates[t.name](x, e) for t in self.tower_specs}  # each (B, d)
