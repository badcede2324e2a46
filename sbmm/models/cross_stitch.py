"""`CrossStitch`: cross-stitch networks (Misra et al., CVPR 2016).

    features ─► inputs ─┬─ column 1, layer 1 ─┐ cross-stitch ┌─ column 1, layer 2 ─┐ ...
                        └─ column 2, layer 1 ─┘    unit 1    └─ column 2, layer 2 ─┘

One MLP column per tower, of the same widths, on the shared inputs; after every layer
a cross-stitch unit replaces each column's activation by a learned linear combination
of all columns' activations at that layer, x̃_t = Σ_s α_ts·x_s. The α learn how much
each task shares: α = I is one single-task network per tower, α = (1/T)·1 is (after
the first layer) a shared bottom.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..inputs import Feature
from ..objectives import Tower
from ..validation import check_number
from .base import MultiTaskModel
from .mlp import check_widths

__all__ = ["CrossStitch", "CrossStitchUnit"]


class CrossStitchUnit(nn.Module):
    """A cross-stitch unit over T columns: a learned (T, T) matrix α, row t the
    combination column t reads. forward: (B, T, d) → (B, T, d).

    Initialised as the paper's best: α_tt = `own`, the rest (1 − own)/(T − 1)
    (rows sum to 1; the paper's (α_S, α_D) = (0.9, 0.1) for two tasks)."""

    def __init__(self, n_columns: int, own: float = 0.9):
        super().__init__()
        other = (1 - own) / max(n_columns - 1, 1)
        alpha = torch.full((n_columns, n_columns), other)
        alpha.fill_diagonal_(own)
        self.alpha = nn.Parameter(alpha)  # (T, T)

    def forward(self, h: Tensor) -> Tensor:
        return torch.einsum("ts,bsd->btd", self.alpha, h)  # (B, T, d)


class CrossStitch(MultiTaskModel):
    """Cross-stitch network (Misra et al., CVPR 2016).

    features: the input features (their embeddings are shared by every column).
    towers:   the towers; each reads its own column.
    column:   widths of every column's MLP, one or more; (32, 16) by default. A
              cross-stitch unit follows every layer.
    own:      the initial weight of a column on itself in each unit, in [0, 1]; 0.9
              by default (the paper's).
    options:  activation, dropout, batch_norm, embedding_std, as every sbmm model
              takes them (`MultiTaskModel`): every column's and tower's hidden layers.

    forward(batch.features) → {objective name: prediction}, as every sbmm model.

    The paper stitches two AlexNet columns after their pooling and fully connected
    layers, with one α per pair of tasks and layer; here the columns are MLPs, with the
    same α per pair and layer, and the unit comes after each hidden layer's
    activation (and dropout).
    """

    def __init__(
        self,
        features: Sequence[Feature],
        towers: Sequence[Tower],
        column: Sequence[int] = (32, 16),
        own: float = 0.9,
        **options,
    ):
        super().__init__(features, towers, **options)
        column = check_widths("column", column)
        check_number("own", own)
        if own > 1:
            raise ValueError(f"own must be a number in [0, 1], got {own!r}")
        n, mlp = len(self.tower_specs), self.layer_options.mlp
        widths = [self.inputs.dim, *column]
        # layers[ℓ][t]: column t's layer ℓ, (B, widths[ℓ]) → (B, widths[ℓ + 1])
        self.layers = nn.ModuleList(
            nn.ModuleList(mlp(a, (b,)) for _ in range(n))
            for a, b in zip(widths, widths[1:])
        )
        self.stitches = nn.ModuleList(CrossStitchUnit(n, own) for _ in column)
        self.build_towers(column[-1])

    def represent(self, x: Tensor) -> dict[str, Tensor]:
        h = [x] * len(self.tower_specs)  # T × (B, d_in)
        for layer, stitch in zip(self.layers, self.stitches):
            mixed = stitch(torch.stack([f(v) for f, v in zip(layer, h)], 1))
            h = list(mixed.unbind(1))  # T × (B, width)
        return {t.name: v for t, v in zip(self.tower_specs, h)}
