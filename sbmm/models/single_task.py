"""`SingleTask`: one independent network per objective, the baseline a shared bottom is
measured against.

It takes the same declarations as `SharedBottom` and returns the same
`{objective: prediction}` dict, so a chapter swaps one for the other in one line.
Inside, every objective has its own network:

    features ─► inputs[o] (own embeddings) ─► bottom[o] (own MLP)
             ─► towers[tower][o] (own head) ─► o

Nothing is shared: an objective's gradient reaches only its own network. A tower
declaration still fixes the head's hidden widths and the tower weight of its objectives'
losses. Parameters are grouped as in `SharedBottom` ("inputs", "bottom", "tower
<name>"), each part summed over the objectives, so the two models' `parameter_summary()`
read side by side.

At equal widths a single-task model has about n_objectives times the parameters of a
shared-bottom one (embeddings included). To compare at an equal parameter budget,
declare narrower features (e.g. `feed_features(config, id_dim=3)`) and a narrower
`bottom`, and compare `parameter_summary()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from torch import Tensor, nn

from ..inputs import Feature, InputLayer
from ..objectives import Objective, Tower
from .base import MultiTaskModel
from .mlp import check_widths

__all__ = ["SingleTask"]


class SingleTask(MultiTaskModel):
    """One network per objective, built from the declarations of a multi-task model.

    features: the input features; every objective gets its own input layer
              (own embedding tables).
    towers:   the towers and their objectives; each objective gets its own head of the
              tower's `hidden` widths ending in the objective's `dim` outputs.
    bottom:   widths of every objective's own bottom MLP; the seed's 64-32-16 by
              default. `()`: no bottom, each head reads its own inputs.
    options:  activation, dropout, batch_norm, embedding_std, as every sbmm model
              takes them (`MultiTaskModel`): every bottom's and every head's hidden
              layers, and the embeddings' std.

    forward(batch.features) → {objective name: (B,) logit (binary) or (B,)/(B, dim)
    value (regression)}, in the towers' declaration order, as `SharedBottom` returns it.
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
        d_in = self.inputs[self.objectives[0].name].dim
        d = bottom[-1] if bottom else d_in  # the width each head reads
        layers = self.layer_options
        self.bottom = nn.ModuleDict(
            {o.name: layers.mlp(d_in, bottom) for o in self.objectives}
        )
        self.towers = nn.ModuleDict(
            {
                t.name: nn.ModuleDict(
                    {o.name: layers.mlp(d, t.hidden, o.width) for o in t.objectives}
                )
                for t in self.tower_specs
            }
        )

    def build_inputs(self, features: Sequence[Feature]) -> nn.ModuleDict:
        """One input layer (own embedding tables) per objective, by objective name."""
        for o in self.objectives:
            if "." in o.name:
                raise ValueError(
                    f"objective {o.name!r}: SingleTask keys each network by its "
                    "objective's name, which must not contain '.'"
                )
        return nn.ModuleDict(
            {o.name: InputLayer(features, self.embedding_std) for o in self.objectives}
        )

    def shared_parameters(self) -> list[nn.Parameter]:
        """None: no parameter serves more than one objective."""
        return []

    def output_layers(self) -> Iterator[tuple[Objective, nn.Linear, slice]]:
        """Each objective's own network's last Linear, all of whose outputs are its."""
        for t in self.tower_specs:
            for o in t.objectives:
                yield o, self.towers[t.name][o.name][-1], slice(0, o.width)

    def forward(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for t in self.tower_specs:
            for o in t.objectives:
                # (B, d_in), this objective's own embeddings
                x = self.inputs[o.name](features)
                h = self.bottom[o.name](x)  # (B, bottom[-1] or d_in)
                y = self.towers[t.name][o.name](h)  # (B, o.width)
                out[o.name] = y.squeeze(1) if o.width == 1 else y
        return out
