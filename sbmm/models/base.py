"""What every multi-task model shares: features in, a dict of predictions out.

A model is built from declarations (features, towers of objectives). This class builds
the input layer and the towers, and turns each tower's raw outputs into the
`{objective: prediction}` dict; an architecture says only how the inputs become each
tower's representation (`represent`): the shared bottom's output for `SharedBottom`, a
gated mix of experts for MMoE and PLE. So architectures swap with one line, and the
trainer, losses and metrics never look inside.

    features ─► inputs (B, d_in) ─► represent ─► {tower: (B, d)} ─► towers
             ─► {objective: ...}

Every architecture takes the same keyword-only layer options, kept here and applied to
all its MLPs, the bottom or experts and the towers' hidden layers alike: `activation`,
`dropout` and `batch_norm` (see `LayerOptions`), and `embedding_std`, the standard
deviation every embedding table is drawn with (see `InputLayer`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from .. import kinds
from ..data.batch import Batch
from ..inputs import Feature, InputLayer
from ..losses import check_labels
from ..objectives import Objective, Tower, check_towers
from ..spaces import labelled_rows
from .mlp import LayerOptions

__all__ = ["MultiTaskModel"]


class MultiTaskModel(nn.Module):
    """Base class: holds the input layer, the declarations, the layer options and the
    towers.

    features:      the input features.
    towers:        the towers and their objectives.
    activation:    every hidden layer's activation, by name: "relu" (the default),
                   "leaky_relu", "prelu", "elu", "gelu", "silu", "tanh" or "sigmoid"
                   (`ACTIVATIONS` in sbmm/models/mlp.py).
    dropout:       Dropout after every hidden layer's activation, p in [0, 1); 0 (none)
                   by default.
    batch_norm:    BatchNorm1d between every hidden layer's Linear (then without a
                   bias) and its activation; False by default. Training batches then
                   need 2 rows or more.
    embedding_std: every embedding table is drawn from N(0, embedding_std²), a finite
                   number > 0. The default 1.0 is PyTorch's own `nn.Embedding`
                   initialisation. On real data with wide vocabularies a small std,
                   such as 0.01, is the practitioner's choice (DeepCTR-style libraries
                   draw embeddings from a small normal).

    The layer options apply to the bottom or experts and to the towers' hidden layers;
    the towers' last Linear and the gates have none. With the defaults a model is the
    plain Linear → ReLU one, weight for weight under the same seed. A bad option raises
    a ValueError naming it (a TypeError for a batch_norm that is not a bool).

    A subclass builds its shared part with `self.layer_options.mlp`, then calls
    `build_towers(d)` with the width of the representation each tower reads, and
    implements `represent`.
    """

    def __init__(
        self,
        features: Sequence[Feature],
        towers: Sequence[Tower],
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        embedding_std: float = 1.0,
    ):
        super().__init__()
        self.tower_specs = check_towers(towers)
        self.layer_options = LayerOptions(activation, dropout, batch_norm)
        self.embedding_std = embedding_std
        self.inputs = self.build_inputs(features)

    def build_inputs(self, features: Sequence[Feature]) -> nn.Module:
        """The input layer: one `InputLayer` that every objective reads, its tables
        drawn with `self.embedding_std`. An architecture with inputs of its own per
        objective (`SingleTask`) overrides it."""
        return InputLayer(features, self.embedding_std)

    def build_towers(self, in_dim: int) -> None:
        """One MLP per tower, of its `hidden` widths and the model's layer options,
        from `in_dim` to its objectives' values."""
        self.towers = nn.ModuleDict(
            {
                t.name: self.layer_options.mlp(in_dim, t.hidden, t.out_dim)
                for t in self.tower_specs
            }
        )

    def represent(self, x: Tensor) -> dict[str, Tensor]:  # pragma: no cover - abstract
        """The architecture: (B, d_in) inputs → {tower name: (B, d) what that tower
        reads}."""
        raise NotImplementedError

    def forward(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """{name: tensor} features → {objective: (B,) logit or (B,)/(B, dim) value}."""
        h = self.represent(self.inputs(features))  # {tower: (B, d)}
        out: dict[str, Tensor] = {}
        for t in self.tower_specs:
            out.update(self.split_outputs(t, self.towers[t.name](h[t.name])))
        return out

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return tuple(o for t in self.tower_specs for o in t.objectives)

    def output_layers(self) -> Iterator[tuple[Objective, nn.Linear, slice]]:
        """Each objective's last Linear and the slice of its outputs that are the
        objective's raw outputs."""
        for t in self.tower_specs:
            start, last = 0, self.towers[t.name][-1]
            for o in t.objectives:
                yield o, last, slice(start, start + o.width)
                start += o.width

    @torch.no_grad()
    def init_output_bias(self, data: Batch) -> MultiTaskModel:
        """Start every objective's output bias at the raw output of the best constant
        (`Kind.constant`) on `data`, the training data, over the rows where its label
        is read (`sbmm.spaces.labelled_rows`): the logit of its base rate (binary),
        its mean (regression), the mean and log spread of log T (lognormal). A
        conditional objective starts at its rate given what it is given. An
        imputation, and an objective with no such row, keep theirs. Returns the model,
        so that `build=lambda: sbmm.SharedBottom(...).init_output_bias(train)` works
        in `fit_replicas`. Labels are checked first (`sbmm.losses.check_labels`)."""
        check_labels(self.tower_specs, data)
        for o, layer, outputs in self.output_layers():
            rows = labelled_rows(o, data.labels, self.tower_specs)
            if o.imputes is not None or (rows is not None and not bool(rows.any())):
                continue
            y = data.labels[o.target] if rows is None else data.labels[o.target][rows]
            constant = kinds.get(o.kind).constant(y)  # (width,)
            layer.bias[outputs] = constant.to(layer.bias)
        return self

    def shared_parameters(self) -> list[nn.Parameter]:
        """The parameters more than one objective's loss reaches: everything outside the
        towers (inputs, bottom, experts, gates). Weighting strategies that act on
        gradients (PCGrad, GradNorm) use them."""
        tower_ids = {id(p) for p in self.towers.parameters()}
        return [p for p in self.parameters() if id(p) not in tower_ids]

    def check_inputs(
        self, features: Mapping[str, Tensor], n: int | None = None
    ) -> None:
        """Check a data set's features (`n` rows) once (see `InputLayer.check_data`):
        `fit`, `evaluate` and `predict` call it, so training on a GPU needs no per-step
        check."""
        for layer in self.modules():
            if isinstance(layer, InputLayer):
                layer.check_data(features, n)

    def parameter_summary(self) -> dict[str, int]:
        """Trainable parameters by part: "inputs" (embeddings), every other top-level
        part (e.g. "bottom"), one entry per tower ("tower <name>"), and "total"."""
        counts: dict[str, int] = {}
        for name, module in self.named_children():
            if isinstance(module, nn.ModuleDict) and name == "towers":
                for tower, head in module.items():
                    counts[f"tower {tower}"] = sum(p.numel() for p in head.parameters())
            else:
                counts[name] = sum(p.numel() for p in module.parameters())
        counts["total"] = sum(p.numel() for p in self.parameters())
        return counts

    @staticmethod
    def split_outputs(tower: Tower, out: Tensor) -> dict[str, Tensor]:
        """(B, tower.out_dim) raw outputs → {objective: (B,) or (B, width)} in
        declaration order (`Objective.width`)."""
        if len(tower.objectives) == 1:
            (o,) = tower.objectives
            return {o.name: out.squeeze(1) if o.width == 1 else out}
        columns = torch.split(out, [o.width for o in tower.objectives], dim=1)
        return {
            o.name: c.squeeze(1) if o.width == 1 else c
            for o, c in zip(tower.objectives, columns)
        }
