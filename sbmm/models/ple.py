"""`PLE`: progressive layered extraction (Tang et al., 2020); with one level it is CGC.

Each level has experts of its own for every tower and experts shared by all towers. A
tower's gate mixes its own experts with the shared ones; between levels, a shared gate
mixes all experts into the next level's shared input:

    level l:  tower t: h_t ← gate_t(h_t, [specific_t(h_t), shared(s)])
              shared:  s   ← gate_s(s,   [specific_1(h_1), …, specific_T(h_T),
                                          shared(s)])   (not on the last level)

At the first level every h_t and s is the input vector. Separating specific from shared
experts is what lets PLE escape the seesaw that a fully shared bottom (or MMoE's fully
shared experts) can fall into.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..inputs import Feature
from ..objectives import Tower
from .base import MultiTaskModel
from .experts import ExpertOptions, Experts, ExpertTrace, Gate
from .mlp import LayerOptions, check_widths

__all__ = ["PLE"]


class _ExtractionLevel(nn.Module):
    """One level of PLE: specific experts per tower, shared experts, and their gates."""

    def __init__(
        self,
        in_dim: int,
        widths: tuple[int, ...],
        towers: Sequence[str],
        n_specific: int,
        n_shared: int,
        last: bool,
        options: LayerOptions,
        gate_batch_norm: bool,
        fixes: ExpertOptions,
    ):
        super().__init__()
        self.towers = tuple(towers)
        self.specific = nn.ModuleDict(
            {
                t: Experts(in_dim, widths, n_specific, options, fixes)
                for t in self.towers
            }
        )
        self.shared = Experts(in_dim, widths, n_shared, options, fixes)
        n_gated = n_specific + n_shared
        self.gates = nn.ModuleDict(
            {t: Gate(in_dim, n_gated, gate_batch_norm) for t in self.towers}
        )
        n_all = len(self.towers) * n_specific + n_shared
        self.shared_gate = None if last else Gate(in_dim, n_all, gate_batch_norm)

    def forward(
        self, h: dict[str, Tensor], s: Tensor
    ) -> tuple[dict[str, Tensor], Tensor | None]:
        shared = self.shared(s)  # (B, n_shared, d)
        # each (B, n_specific, d)
        specific = {t: self.specific[t](h[t]) for t in self.towers}
        # (B, d)
        h_next = {
            t: self.gates[t](h[t], torch.cat([specific[t], shared], dim=1))
            for t in self.towers
        }
        if self.shared_gate is None:
            return h_next, None
        everything = torch.cat([*specific.values(), shared], dim=1)  # (B, n_all, d)
        return h_next, self.shared_gate(s, everything)


class PLE(MultiTaskModel):
    """Progressive layered extraction; `levels=1` is the customised gate control (CGC)
    model.

    features:   the input features.
    towers:     the towers and their objectives.
    n_specific: experts of its own per tower, per level.
    n_shared:   experts shared by all towers, per level.
    expert:     widths of every expert's MLP, at every level; one or more.
    levels:     extraction levels.
    options:    activation, dropout, batch_norm, embedding_std, as every sbmm model
                takes them (`MultiTaskModel`): every expert's and every tower's hidden
                layers (not the gates'), and the embeddings' std.
    gate_batch_norm: batch-normalise every gate's logits before its softmax
                (torch-rechub's gates); False by default.
    expert_norm, expert_activation, feature_gate:
                HoME's fixes to every level's experts (`ExpertOptions`), as in
                `MMoE`; all off by default.

    forward(batch.features) → {objective name: prediction}, as every sbmm model.
    """

    def __init__(
        self,
        features: Sequence[Feature],
        towers: Sequence[Tower],
        n_specific: int = 1,
        n_shared: int = 1,
        expert: Sequence[int] = (32, 16),
        levels: int = 1,
        gate_batch_norm: bool = False,
        expert_norm: bool = False,
        expert_activation: str | None = None,
        feature_gate: int = 0,
        **options,
    ):
        fixes = ExpertOptions(expert_norm, expert_activation, feature_gate)
        super().__init__(features, towers, **options)
        expert = check_widths("expert", expert)
        if not (isinstance(levels, int) and levels >= 1):
            raise ValueError(f"levels must be an integer >= 1, got {levels!r}")
        names = [t.name for t in self.tower_specs]
        dims = [self.inputs.dim] + [expert[-1]] * (levels - 1)
        self.levels = nn.ModuleList(
            _ExtractionLevel(
                d,
                expert,
                names,
                n_specific,
                n_shared,
                last=(i == levels - 1),
                options=self.layer_options,
                gate_batch_norm=gate_batch_norm,
                fixes=fixes,
            )
            for i, d in enumerate(dims)
        )
        self.build_towers(expert[-1])

    def shared_parameters(self) -> list[nn.Parameter]:
        """The input layer, and every level's shared experts and shared gate
        (not the towers' own experts)."""
        shared = [*self.inputs.parameters()]
        for level in self.levels:
            shared += [
                *level.shared.parameters(),
                *(level.shared_gate.parameters() if level.shared_gate else []),
            ]
        return shared

    def gate_weights(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Each tower's first-level gate weights over [its own experts, the shared
        experts]: {tower: (B, n)}."""
        x = self.inputs(features)
        return {
            t.name: self.levels[0].gates[t.name].weights(x) for t in self.tower_specs
        }

    def expert_trace(self, features: Mapping[str, Tensor]) -> ExpertTrace:
        """The first level's experts on a batch, for the diagnostics (`ExpertTrace`):
        each tower's own experts, named "<tower>.0", "<tower>.1", ..., then the shared
        ones, "shared.0", ...; each tower's gate weighs its own and the shared ones
        (0 on the other towers' experts)."""
        x = self.inputs(features)  # (B, d_in)
        names, outputs, units, owners = [], [], [], []
        for owner, experts in self._first_experts():
            out, fired = experts.trace(x)
            names += [f"{owner or 'shared'}.{e}" for e in range(out.shape[1])]
            owners += [owner] * out.shape[1]
            outputs.append(out)
            units += fired
        shared = [i for i, o in enumerate(owners) if o is None]
        gates = {}
        for t, weights in self.gate_weights(features).items():
            own = [i for i, o in enumerate(owners) if o == t]
            full = x.new_zeros(len(x), len(names))  # (B, E)
            full[:, own + shared] = weights  # the gate's order: its own, then shared
            gates[t] = full
        return ExpertTrace(tuple(names), torch.cat(outputs, 1), tuple(units), gates)

    def expert_parameters(self) -> dict[str, list[nn.Parameter]]:
        """{expert name: its parameters}, for the first level's experts (names as in
        `expert_trace`)."""
        return {
            f"{owner or 'shared'}.{e}": list(net.parameters())
            for owner, experts in self._first_experts()
            for e, net in enumerate(experts.nets)
        }

    def _first_experts(self) -> list[tuple[str | None, Experts]]:
        """The first level's experts: (tower, its own), ..., then (None, shared)."""
        level = self.levels[0]
        return [*((t, level.specific[t]) for t in level.towers), (None, level.shared)]

    def represent(self, x: Tensor) -> dict[str, Tensor]:
        h, s = {t.name: x for t in self.tower_specs}, x
        for level in self.levels:
            h, s = level(h, s)  # {tower: (B, d)}, (B, d) or None after the last level
        return h
