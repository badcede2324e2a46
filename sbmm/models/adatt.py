"""`AdaTT`: the adaptive task-to-task fusion network (Li et al., KDD 2023), in its
task-specific-experts form (AdaTT-sp).

    level input of task t ─► task t's experts ─┐
                                                ├─ all tasks' experts (B, T·m, d)
    fused_t = gate_t(input_t) · all experts  +  Σ_i v_ti · task t's own expert i

Every task has m experts of its own; at every level each task fuses all tasks'
experts through its own softmax gate (task-to-task fusion, learned per example), and
adds a learned linear combination of its own experts (the native-expert residual), so
that a task never depends on its gate alone to find its own experts. Stacked levels
read each task's fused output of the level below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..inputs import Feature
from ..objectives import Tower
from ..validation import is_count
from .base import MultiTaskModel
from .experts import Experts, Gate
from .mlp import LayerOptions, check_widths

__all__ = ["AdaTT", "FusionLevel"]


class FusionLevel(nn.Module):
    """One AdaTT level over the tasks `names`: m experts per task, each task's gate
    over all T·m experts, and each task's native-expert residual.

    forward: {task: (B, in_dim)} → {task: (B, d)}, d = widths[-1]. The residual is the
    task's own expert itself when m = 1, else Σ_i v_ti·expert_ti with learned v_t
    (m,)."""

    def __init__(
        self,
        names: Sequence[str],
        in_dim: int,
        widths: Sequence[int],
        m: int,
        options: LayerOptions,
    ):
        super().__init__()
        self.names = list(names)
        self.experts = nn.ModuleDict(
            {t: Experts(in_dim, widths, m, options) for t in names}
        )
        self.gates = nn.ModuleDict(
            {t: Gate(in_dim, len(self.names) * m) for t in names}
        )
        self.residual = (
            nn.ModuleDict({t: nn.Linear(m, 1, bias=False) for t in names})
            if m > 1
            else None
        )

    def fuse(self, inputs: Mapping[str, Tensor]) -> tuple[dict, Tensor]:
        """Every task's own expert outputs {task: (B, m, d)} and all of them
        (B, T·m, d), in the order of `names`."""
        own = {t: self.experts[t](inputs[t]) for t in self.names}  # each (B, m, d)
        return own, torch.cat([own[t] for t in self.names], dim=1)

    def forward(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        own, every = self.fuse(inputs)
        out = {}
        for t in self.names:
            fused = self.gates[t](inputs[t], every)  # (B, d)
            if self.residual is None:
                native = own[t][:, 0]  # (B, d)
            else:  # v_t: (1, m) · (B, m, d) → (B, d)
                native = torch.einsum("m,bmd->bd", self.residual[t].weight[0], own[t])
            out[t] = fused + native
        return out


class AdaTT(MultiTaskModel):
    """Adaptive task-to-task fusion network, AdaTT-sp (Li et al., KDD 2023).

    features:  the input features (their embeddings are shared by every task).
    towers:    the towers; each is one task, with experts of its own.
    n_experts: m, the experts per task at every level; 2 by default.
    expert:    widths of every expert's MLP, one or more; (32, 16) by default.
    levels:    fusion levels stacked, >= 1; 2 by default. Level 1's experts and gates
               read the inputs; level ℓ's task t reads task t's fused output of ℓ − 1.
    options:   activation, dropout, batch_norm, embedding_std, as every sbmm model
               takes them (`MultiTaskModel`): every expert's and tower's hidden layers
               (not the gates').

    forward(batch.features) → {objective name: prediction}, as every sbmm model.

    The paper's other variant, AdaTT with shared experts beside the task-specific
    ones, is not built here; nor is its optional extra gate on the fused output.
    """

    def __init__(
        self,
        features: Sequence[Feature],
        towers: Sequence[Tower],
        n_experts: int = 2,
        expert: Sequence[int] = (32, 16),
        levels: int = 2,
        **options,
    ):
        super().__init__(features, towers, **options)
        expert = check_widths("expert", expert)
        if not is_count(n_experts):
            raise ValueError(
                f"the number of experts per task must be an integer >= 1, got "
                f"{n_experts!r}"
            )
        if not is_count(levels):
            raise ValueError(f"levels must be an integer >= 1, got {levels!r}")
        names = [t.name for t in self.tower_specs]
        dims = [self.inputs.dim] + [expert[-1]] * (levels - 1)
        self.levels = nn.ModuleList(
            FusionLevel(names, d, expert, n_experts, self.layer_options) for d in dims
        )
        self.build_towers(expert[-1])

    def shared_parameters(self) -> list[nn.Parameter]:
        """The inputs, every level's experts (every task's gate reads them all), and
        the gates and residuals of every level but the last (the levels above read
        their output): what more than one tower's loss reaches."""
        shared = [*self.inputs.parameters()]
        for i, level in enumerate(self.levels):
            shared += level.experts.parameters()
            if i < len(self.levels) - 1:
                shared += level.gates.parameters()
                if level.residual is not None:
                    shared += level.residual.parameters()
        return shared

    def represent(self, x: Tensor) -> dict[str, Tensor]:
        h = {t.name: x for t in self.tower_specs}  # {task: (B, d_in)}
        for level in self.levels:
            h = level(h)  # {task: (B, d)}
        return h
