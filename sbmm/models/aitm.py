"""`AITM`: the adaptive information transfer multi-task model (Xi et al., KDD 2021),
for objectives that follow one another (impression → click → like).

    features ─► inputs (shared) ─┬─ task network 1 ─► q_1 = z_1 ─────────────► tower 1
                                 │                      └─ transfer ─► p_1 ─┐
                                 └─ task network 2 ─► q_2 ─── transfer unit(p_1, q_2)
                                                                 = z_2 ─────► tower 2

The towers are the conversion steps in declaration order. Each step has a task network
of its own on the shared embeddings; from the second on, what the step before learned
(p_{t−1} = g(z_{t−1}), a learned transfer) and the step's own q_t are fused by an
attention-based transfer unit into z_t, what tower t reads. Information flows from an
earlier step to a later one only: an earlier tower's prediction does not depend on a
later step's parameters, and its loss trains none of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..inputs import Feature
from ..objectives import Tower
from .base import MultiTaskModel
from .mlp import check_widths

__all__ = ["AITM", "TransferUnit"]


class TransferUnit(nn.Module):
    """AITM's adaptive information transfer (AIT) unit: self-attention over the two
    inputs u ∈ {p_{t−1}, q_t}, each (B, d):

        w_u = softmax_u(⟨h_1(u), h_2(u)⟩ / √d),   z_t = Σ_u w_u·h_3(u)

    with h_1, h_2, h_3 linear maps of d → d. forward: (B, d), (B, d) → (B, d);
    `weights` gives (B, 2), the weights of (p_{t−1}, q_t)."""

    def __init__(self, dim: int):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        self.scale = 1 / math.sqrt(dim)

    def weights(self, transferred: Tensor, own: Tensor) -> Tensor:
        u = torch.stack([transferred, own], 1)  # (B, 2, d)
        scores = (self.query(u) * self.key(u)).sum(-1) * self.scale  # (B, 2)
        return torch.softmax(scores, dim=1)

    def forward(self, transferred: Tensor, own: Tensor) -> Tensor:
        u = torch.stack([transferred, own], 1)  # (B, 2, d)
        w = self.weights(transferred, own)  # (B, 2)
        return torch.einsum("bu,bud->bd", w, self.value(u))  # (B, d)


class AITM(MultiTaskModel):
    """Adaptive information transfer multi-task model (Xi et al., KDD 2021).

    features: the input features; their embeddings are the only part every step
              shares.
    towers:   the towers, the conversion steps in order (click before like): tower t
              reads z_t, which draws on the steps before it and on none after.
    task:     widths of each step's task network (the paper's "tower" before the
              transfer), on the inputs; (32, 16) by default. q_t has width task[-1].
    options:  activation, dropout, batch_norm, embedding_std, as every sbmm model
              takes them (`MultiTaskModel`): the task networks, the transfers and the
              towers' hidden layers.

    forward(batch.features) → {objective name: prediction}, as every sbmm model.

    The transfer g is one hidden layer of width task[-1] (a fully connected layer, as
    in the paper). Not included: the paper's behavioural expectation calibrator, a
    loss term max(ŷ_t − ŷ_{t−1}, 0) that keeps a later step's probability below an
    earlier one's; in sbmm the declared objectives (`given=`, entire-space training)
    say what each prediction means.
    """

    def __init__(
        self,
        features: Sequence[Feature],
        towers: Sequence[Tower],
        task: Sequence[int] = (32, 16),
        **options,
    ):
        super().__init__(features, towers, **options)
        task = check_widths("task", task)
        d, names = task[-1], [t.name for t in self.tower_specs]
        mlp = self.layer_options.mlp
        self.tasks = nn.ModuleDict({n: mlp(self.inputs.dim, task) for n in names})
        # into step t from the step before it: the transfer g and the AIT unit
        self.transfers = nn.ModuleDict({n: mlp(d, (d,)) for n in names[1:]})
        self.units = nn.ModuleDict({n: TransferUnit(d) for n in names[1:]})
        self.build_towers(d)

    def shared_parameters(self) -> list[nn.Parameter]:
        """The inputs, and every step's part that a later step reads (all but the last
        step's task network, transfer and unit): what more than one tower's loss
        reaches."""
        names = [t.name for t in self.tower_specs]
        shared = [*self.inputs.parameters()]
        for name in names[:-1]:
            shared += self.tasks[name].parameters()
            if name in self.units:
                shared += [*self.transfers[name].parameters()]
                shared += [*self.units[name].parameters()]
        return shared

    def represent(self, x: Tensor) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        before = None  # z_{t−1}: (B, d)
        for t in self.tower_specs:
            own = self.tasks[t.name](x)  # q_t: (B, d)
            if before is not None:
                own = self.units[t.name](self.transfers[t.name](before), own)
            out[t.name] = before = own  # z_t
        return out

    def transfer_weights(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """{tower: (B, 2)} for every step after the first: its transfer unit's
        attention on (what came from the step before, its own q_t)."""
        x = self.inputs(features)
        out, before = {}, None
        for t in self.tower_specs:
            own = self.tasks[t.name](x)
            if before is not None:
                p = self.transfers[t.name](before)
                out[t.name] = self.units[t.name].weights(p, own)
                own = self.units[t.name](p, own)
            before = own
        return out
