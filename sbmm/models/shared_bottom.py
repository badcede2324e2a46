"""`SharedBottom`: the shared-bottom multi-task model (Caruana, 1997), built from
declarations.

    features ─► inputs (embeddings + pooling, dense) ─► bottom MLP (shared)
             ─► one MLP per tower ─► {objective: logit or value}

Every objective's gradient flows into the same bottom: that is the sharing
(hard parameter sharing).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from ..inputs import Feature
from ..objectives import Tower
from .base import MultiTaskModel
from .mlp import check_widths, mlp

__all__ = ["SharedBottom"]


class SharedBottom(MultiTaskModel):
    """Shared-bottom model.

    features: the input features (`Dense`, `Categorical`, `MultiCategorical`).
    towers:   the towers and their objectives.
    bottom:   widths of the shared MLP (ReLU after each layer); the seed's 64-32-16 by
              default.

    forward(batch.features) → {objective name: (B,) logit (binary) or (B,)/(B, dim)
    value (regression)}
    """

    def __init__(
        self,
        features: Sequence[Feature],
        towers: Sequence[Tower],
        bottom: Sequence[int] = (64, 32, 16),
    ):
        super().__init__(features, towers)
        bottom = check_widths("bottom", bottom)
        self.bottom = mlp(self.inputs.dim, bottom)
        self.build_towers(bottom[-1])

    def represent(self, x: Tensor) -> dict[str, Tensor]:
        h = self.bottom(x)  # (B, bottom[-1]), shared by every tower
        return {t.name: h for t in self.tower_specs}
