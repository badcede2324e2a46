"""`SharedBottom`: the shared-bottom multi-task model (Caruana, 1997), built from
declarations.

    features ─► inputs (embeddings + pooling, dense) ─► bottom MLP (shared)
             ─► one MLP per tower ─► {objective: logit or value}

Every objective's gradient flows into the same bottom: that is the sharing
(hard parameter sharing). With no bottom (`bottom=()`) the towers sit on the input
layer's output and share only the embeddings, as ESMM's towers do.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from ..inputs import Feature
from ..objectives import Tower
from .base import MultiTaskModel
from .mlp import check_widths

__all__ = ["SharedBottom"]


class SharedBottom(MultiTaskModel):
    """Shared-bottom model.

    features: the input features (`Dense`, `Categorical`, `MultiCategorical`).
    towers:   the towers and their objectives.
    bottom:   widths of the shared MLP; the seed's 64-32-16 by default. `()`: no
              bottom, the towers read the inputs (B, inputs.dim) themselves.
    options:  activation, dropout, batch_norm, embedding_std, as every sbmm model
              takes them (`MultiTaskModel`): the bottom's and every tower's hidden
              layers, and the embeddings' std.

    forward(batch.features) → {objective name: (B,) logit (binary) or (B,)/(B, dim)
    value (regression)}
    """

    def __init__(
        self,
        features: Sequence[Feature],
        towers: Sequence[Tower],
        bottom: Sequence[int] = (64, 32, 16),
        **options,
    ):
        super().__init__(features, towers, **options)
        bottom = check_widths("bottom", bottom, allow_empty=True)
        self.bottom = self.layer_options.mlp(self.inputs.dim, bottom)  # () → identity
        self.build_towers(bottom[-1] if bottom else self.inputs.dim)

    def represent(self, x: Tensor) -> dict[str, Tensor]:
        h = self.bottom(x)  # (B, bottom[-1] or inputs.dim), shared by every tower
        return {t.name: h for t in self.tower_specs}
