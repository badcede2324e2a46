"""`MMoE`: multi-gate mixture-of-experts (Ma et al., 2018), and its control `OMoE`.

    features ─► inputs ─► n experts ─┬─ gate of tower 1 (softmax) ─► tower 1
                          (shared)    └─ gate of tower 2 ──────────► tower 2

Every tower reads its own mixture of the shared experts, so towers whose tasks disagree
can lean on different experts instead of pulling one shared bottom in two directions.
`OMoE` (one-gate mixture-of-experts, the paper's control) has the same experts but one
gate that every tower reads: the same mixture for all, so what MMoE gains over it is
what the per-task gates buy.

The fixes industry makes to such experts are options, all off by default (then the
model is the plain MMoE, weight for weight under the same seed): HoME's normalised
experts with Swish and its feature gate (`expert_norm`, `expert_activation`,
`feature_gate`, see `ExpertOptions`), and STEM's task-specific embeddings
(`task_embeddings`, see `TaskInputs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..inputs import Feature, InputLayer, TaskInputs
from ..objectives import Tower
from .base import MultiTaskModel
from .experts import ExpertOptions, Experts, ExpertTrace, Gate
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
    expert_norm, expert_activation, feature_gate:
               HoME's fixes to the experts (`ExpertOptions`): batch norm in every
               expert layer, the experts' own activation ("silu" is Swish), and a
               low-rank feature gate of that rank per expert (0: none).
    task_embeddings: STEM's shared-plus-task-specific embeddings (`TaskInputs`): each
               tower has id embeddings of its own beside the shared ones; every tower's
               gate and experts read all of them, but a tower's loss trains only the
               shared ones and its own ("all forward, task-specific backward"). The
               experts then run once per tower (T times the experts' cost). STEM-Net
               also gives each task experts of its own; here the experts stay MMoE's.
    options:   activation, dropout, batch_norm, embedding_std, as every sbmm model
               takes them (`MultiTaskModel`): every expert's and every tower's hidden
               layers (not the gates'), and the embeddings' std.

    forward(batch.features) → {objective name: prediction}, as every sbmm model.
    A bad option raises a ValueError or TypeError naming it.
    """

    def __init__(
        self,
        features: Sequence[Feature],
        towers: Sequence[Tower],
        n_experts: int = 4,
        expert: Sequence[int] = (32, 16),
        gate_batch_norm: bool = False,
        expert_norm: bool = False,
        expert_activation: str | None = None,
        feature_gate: int = 0,
        task_embeddings: bool = False,
        **options,
    ):
        if not isinstance(task_embeddings, bool):
            raise TypeError(
                f"task_embeddings must be True or False, got {task_embeddings!r}"
            )
        self.task_embeddings = task_embeddings
        fixes = ExpertOptions(expert_norm, expert_activation, feature_gate)
        super().__init__(features, towers, **options)
        expert = check_widths("expert", expert)
        d_in = self.inputs.dim
        self.experts = Experts(d_in, expert, n_experts, self.layer_options, fixes)
        names = dict.fromkeys(self.gate_of(t.name) for t in self.tower_specs)
        self.gates = nn.ModuleDict(
            {g: Gate(d_in, n_experts, gate_batch_norm) for g in names}
        )
        self.build_towers(expert[-1])

    def build_inputs(self, features: Sequence[Feature]) -> nn.Module:
        """The shared `InputLayer`, or with `task_embeddings` a `TaskInputs`."""
        if not self.task_embeddings:
            return InputLayer(features, self.embedding_std)
        names = [t.name for t in self.tower_specs]
        return TaskInputs(features, names, self.embedding_std)

    def gate_of(self, tower: str) -> str:
        """The name of the gate `tower` reads: in MMoE, its own (named after it)."""
        return tower

    def shared_parameters(self) -> list[nn.Parameter]:
        """The shared input layer and the experts (each gate serves one tower; each
        task's own embeddings serve it alone)."""
        inputs = self.inputs.shared if self.task_embeddings else self.inputs
        return [*inputs.parameters(), *self.experts.parameters()]

    def gate_weights(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Each tower's gate weights over the experts: {tower: (B, n_experts)}."""
        x = self.inputs(features)
        weights = {g: gate.weights(x) for g, gate in self.gates.items()}
        return {t.name: weights[self.gate_of(t.name)] for t in self.tower_specs}

    def expert_trace(self, features: Mapping[str, Tensor]) -> ExpertTrace:
        """The experts on a batch, for the diagnostics (`ExpertTrace`): experts named
        "0", "1", ...; every tower's gate over all of them."""
        x = self.inputs(features)  # (B, d_in)
        outputs, units = self.experts.trace(x)
        names = tuple(str(e) for e in range(len(self.experts.nets)))
        return ExpertTrace(names, outputs, tuple(units), self.gate_weights(features))

    def expert_parameters(self) -> dict[str, list[nn.Parameter]]:
        """{expert name: its parameters} (its feature gate's slice is shared by all
        the feature gate's experts, so it is left out)."""
        return {
            str(e): list(net.parameters()) for e, net in enumerate(self.experts.nets)
        }

    def represent(self, x: Tensor) -> dict[str, Tensor]:
        if self.task_embeddings:
            return self._represent_per_task(x)
        e = self.experts(x)  # (B, n_experts, d)
        mixes = {g: gate(x, e) for g, gate in self.gates.items()}  # each (B, d)
        return {t.name: mixes[self.gate_of(t.name)] for t in self.tower_specs}

    def _represent_per_task(self, x: Tensor) -> dict[str, Tensor]:
        """Task-specific embeddings: each tower reads every column of x, but its path
        carries gradient only to the shared columns and its own."""
        frozen = x.detach()
        out = {}
        for t in self.tower_specs:
            keep = self.inputs.trained_by(t.name).to(x.device)  # (d_in,)
            x_t = torch.where(keep, x, frozen)  # (B, d_in), x's values
            gate = self.gates[self.gate_of(t.name)]
            out[t.name] = gate(x_t, self.experts(x_t))  # (B, d)
        return out


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
