"""`SharedBottom`: the shared-bottom multi-task model (Caruana, 1997), built from declarations.

    features ─► inputs (embeddings + pooling, dense) ─► bottom MLP (shared) ─► one MLP per tower
             ─► {objective: logit or value}

Every objective's gradient flows into the same bottom: that is the sharing (hard parameter sharing).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from torch import Tensor, nn

from ..inputs import Feature
from ..objectives import Tower
from .base import MultiTaskModel
from .mlp import mlp

__all__ = ["SharedBottom"]


class SharedBottom(MultiTaskModel):
    """Shared-bottom model.

    features: the input features (`Dense`, `Categorical`, `MultiCategorical`).
    towers:   the towers and their objectives.
    bottom:   widths of the shared MLP (ReLU after each layer); the seed's 64-32-16 by default.

    forward(batch.features) → {objective name: (B,) logit (binary) or (B,)/(B, dim) value (regression)}
    """

    def __init__(self, features: Sequence[Feature], towers: Sequence[Tower], bottom: Sequence[int] = (64, 32, 16)):
        super().__init__(features, towers)
        bottom = tuple(bottom)
        if not bottom or any(not (isinstance(w, int) and w >= 1) for w in bottom):
            raise ValueError(f"bottom widths must be one or more integers >= 1, got {bottom}")
        self.bottom = mlp(self.inputs.dim, bottom)
        self.towers = nn.ModuleDict({t.name: mlp(bottom[-1], t.hidden, t.out_dim) for t in self.tower_specs})

    def forward(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        x = self.inputs(features)  # (B, d_in)
        h = self.bottom(x)  # (B, bottom[-1]), shared by every tower
        out: dict[str, Tensor] = {}
        for t in self.tower_specs:
            out.update(self.split_outputs(t, self.towers[t.name](h)))  # (B, t.out_dim) → per objective
        return out
