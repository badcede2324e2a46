"""`MMoE`: multi-gate mixture-of-experts (Ma et al., 2018), and its control `OMoE`.

    features ─► inputs ─► n experts ─┬─ gate of tower 1 (softmax) ─► tower 1
                          (shared)    └─ gate of tower 2 ──────────► tower 2

Every tower reads its own mixture of the shared experts, so towers whose tasks disagree
can lean on different experts instead of pulling one shared bottom in two directions.
`OMoE` (one-gate mixture-of-experts, the paper's control) has the same experts but one
gate that every tower reads: the same mixture for all, so what MMoE gains over it is
what the per-task gates buy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from ..inputs import Feature
from ..objectives import Tower
from .base import MultiTaskModel
from .experts import Experts, Gate
from .mlp import check_widths

__all__ = ["MMoE", "OMoE"]


class MMoE(MultiTaskModel):
    """Multi-gate mixture-of-experts.

    features:  the input features.
    towers:    the towers and their objectives; each tower gets its own gate.
    n_experts: number of shared experts.
    expert:    widths of every expert's MLP, one or more.
    gate_batch_norm: batch-normalise every gate's logits before its softmax
               (torch-rechub's gates); False by default.
    options:   activation, dropout, batch_norm, embedding_std, as every sbmm model
               takes them (`MultiTaskModel`): every expert's and every tower's hidden
               layers (not the gates'), and the embeddings' std.

    forward(batch.features) → {objective name: prediction}, as every sbmm model.
    """

    def __init__(
        self,
        features: Sequence[Feature],
        towers: Sequence[Tower],
        n_experts: int = 4,
        expert: Sequence[int] = (32, 16),
        gate_batch_norm: bool = False,
        **options,
    ):
        super().__init__(features, towers, **options)
        expert = check_widths("expert", expert)
        self.experts = Experts(self.inputs.dim, expert, n_experts, self.layer_options)
        names = dict.fromkeys(self.gate_of(t.name) for t in self.tower_specs)
        self.gates = nn.ModuleDict(
            {g: Gate(self.inputs.dim, n_experts, gate_batch_norm) for g in names}
        )
        self.build_towers(expert[-1])

    def gate_of(self, tower: str) -> str:
        """The name of the gate `tower` reads: in MMoE, its own (named after it)."""
        return tower

    def shared_parameters(self) -> list[nn.Parameter]:
        """The input layer and the experts (each gate serves one tower)."""
        return [*self.inputs.parameters(), *self.experts.parameters()]

    def gate_weights(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Each tower's gate weights over the experts: {tower: (B, n_experts)}."""
        x = self.inputs(features)
        weights = {g: gate.weights(x) for g, gate in self.gates.items()}
        return {t.name: weights[self.gate_of(t.name)] for t in self.tower_specs}

    def represent(self, x: Tensor) -> dict[str, Tensor]:
        e = self.experts(x)  # (B, n_experts, d)
        mixes = {g: gate(x, e) for g, gate in self.gates.items()}  # each (B, d)
        return {t.name: mixes[self.gate_of(t.name)] for t in self.tower_specs}


class OMoE(MMoE):
    """One-gate mixture-of-experts: MMoE with a single gate, named "shared", that every
    tower reads (Ma et al.'s control for the per-task gates). Same arguments as `MMoE`;
    the gate is a shared parameter, since every objective's loss reaches it."""

    def gate_of(self, tower: str) -> str:
        """The name of the gate `tower` reads: the one shared gate."""
        return "shared"

    def shared_parameters(self) -> list[nn.Parameter]:
        """The input layer, the experts and the one gate."""
        return [*super().shared_parameters(), *self.gates.parameters()]
