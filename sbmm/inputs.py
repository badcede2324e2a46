"""Feature declarations and the input layer: sparse ids → embeddings (+ pooling), dense
values → one vector.

This is the "emb + pooling" front of a shared-bottom model. A model is declared with a
list of features; the input layer turns a batch's ``features`` dict into one dense
matrix for the bottom:

    Dense("duration")                          (B,)  or (B, dim) float  →  (B, dim)
    Categorical("item_id", vocab_size=1000)    (B,)  int ids            →  (B, dim)
                                                                           embedding
    MultiCategorical("tags", vocab_size=50)    (B, L) int ids, -1 pads  →  (B, dim)
                                                                           pooled
                                                                           embedding

and concatenates them in declaration order: (B, Σ dim).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from .validation import check_number

__all__ = [
    "Categorical",
    "Dense",
    "Feature",
    "InputLayer",
    "MultiCategorical",
    "TaskInputs",
]


@dataclass(frozen=True)
class Dense:
    """A real-valued feature of width `dim`; a batch holds it as (B,) when dim is 1,
    else (B, dim)."""

    name: str
    dim: int = 1  # values per sample


@dataclass(frozen=True)
class Categorical:
    """A single id in [0, vocab_size), looked up in its own embedding table."""

    name: str
    vocab_size: int  # number of distinct ids
    dim: int = 8  # embedding width


@dataclass(frozen=True)
class MultiCategorical:
    """A variable-length set of ids (tags), held as a (B, L) id tensor padded with -1,
    pooled to one vector."""

    name: str
    vocab_size: int  # number of distinct ids
    dim: int = 8  # embedding width
    pooling: Literal["mean", "sum"] = "mean"  # how the set's embeddings are combined;
    #                                           padding never counts


Feature = Dense | Categorical | MultiCategorical


def _check_declaration(feature: Feature) -> None:
    if not isinstance(feature, (Dense, Categorical, MultiCategorical)):
        raise TypeError(
            f"a feature must be Dense, Categorical or MultiCategorical, got {feature!r}"
        )
    if not feature.name or not isinstance(feature.name, str):
        raise ValueError(f"a feature needs a non-empty name, got {feature.name!r}")
    if "." in feature.name:
        raise ValueError(
            f"feature {feature.name!r}: a name must not contain '.' "
            "(PyTorch keys modules by it)"
        )
    if feature.dim < 1:
        raise ValueError(
            f"feature {feature.name!r}: dim must be >= 1, got {feature.dim}"
        )
    if isinstance(feature, (Categorical, MultiCategorical)) and feature.vocab_size < 1:
        raise ValueError(
            f"feature {feature.name!r}: vocab_size must be >= 1, got "
            f"{feature.vocab_size}"
        )
    if isinstance(feature, MultiCategorical) and feature.pooling not in ("mean", "sum"):
        raise ValueError(
            f"feature {feature.name!r}: pooling must be 'mean' or 'sum', got "
            f"{feature.pooling!r}"
        )


class InputLayer(nn.Module):
    """Embeds and concatenates the declared features of a batch: dict of tensors →
    (B, self.dim).

    Shapes and dtypes are checked on every call (free: they need no data). Id ranges
    need the data: they are checked on every call with CPU tensors, so an id outside its
    vocabulary raises a ValueError naming the feature instead of an opaque index error.
    On an accelerator that check would stop the host at each step until the device
    caught up (and under torch.compile it would break the graph), so there `fit`,
    `evaluate` and `predict` call `check_data` once per data set instead, and the
    forward pass does not.

    features:      the declarations, in the order their vectors are concatenated.
    embedding_std: every embedding table (Categorical and MultiCategorical) is drawn
                   from N(0, embedding_std²); the padding row of a MultiCategorical
                   table stays zero. A finite number > 0 (ValueError otherwise). The
                   default 1.0 is PyTorch's own `nn.Embedding` initialisation, left as
                   it draws. On real data with wide vocabularies a small std, such as
                   0.01, is the practitioner's choice (DeepCTR-style libraries draw
                   embeddings from a small normal).
    """

    def __init__(
        self,
        features: list[Feature] | tuple[Feature, ...],
        embedding_std: float = 1.0,
    ):
        super().__init__()
        features = tuple(features)
        if not features:
            raise ValueError("a model needs at least one feature")
        for f in features:
            _check_declaration(f)
        names = [f.name for f in features]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique, got {names}")
        check_number("embedding_std", embedding_std, strict=True)
        self.features = features
        self.dim = sum(f.dim for f in features)
        self.embeddings = nn.ModuleDict()
        for f in features:
            if isinstance(f, Dense):
                continue
            if isinstance(f, Categorical):
                table = nn.Embedding(f.vocab_size, f.dim)
            else:
                # One extra row, index vocab_size, stands for padding and is left out of
                # the pooling.
                table = nn.EmbeddingBag(
                    f.vocab_size + 1, f.dim, mode=f.pooling, padding_idx=f.vocab_size
                )
            if embedding_std != 1.0:  # 1.0 is the draw PyTorch has just made
                with torch.no_grad():
                    nn.init.normal_(table.weight, std=embedding_std)
                    if table.padding_idx is not None:
                        table.weight[table.padding_idx].zero_()
            self.embeddings[f.name] = table

    def forward(self, features: Mapping[str, Tensor]) -> Tensor:
        parts = [self._embed(f, self._get(features, f)) for f in self.features]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (B, Σ dim)

    def check_data(self, features: Mapping[str, Tensor], n: int | None = None) -> None:
        """Check a whole data set's (or a batch's) features once, before any weight
        moves: every declared feature present, a tensor of the declared dtype and shape
        with `n` rows, dense values finite, ids inside their vocabulary
        (multi-valued: -1 pads). Raises a ValueError or TypeError naming the feature.
        `fit`, `evaluate` and `predict` call it."""
        for f in self.features:
            x = self._get(features, f)
            self._check_tensor(f, x)
            if n is not None and len(x) != n:
                raise ValueError(f"feature {f.name!r} has {len(x)} rows, expected {n}")
            if isinstance(f, Dense):
                if not bool(torch.isfinite(x).all()):
                    bad = int((~torch.isfinite(x)).sum())
                    raise ValueError(
                        f"dense feature {f.name!r} holds {bad} NaN or inf values"
                    )
            else:
                self._check_range(
                    f, x, low=-1 if isinstance(f, MultiCategorical) else 0
                )

    @staticmethod
    def _get(features: Mapping[str, Tensor], f: Feature) -> Tensor:
        if f.name not in features:
            raise ValueError(
                f"feature {f.name!r} is missing from the batch (it has "
                f"{sorted(features)})"
            )
        value = features[f.name]
        if not isinstance(value, Tensor):
            raise TypeError(
                f"feature {f.name!r} must be a torch.Tensor, got {type(value).__name__}"
            )
        return value

    @staticmethod
    def _check_tensor(f: Feature, x: Tensor) -> None:
        """Dtype and shape of one feature's tensor (free: they need no data)."""
        if isinstance(f, Dense):
            if not x.is_floating_point():
                raise TypeError(
                    f"dense feature {f.name!r} must be a floating-point tensor, got "
                    f"{x.dtype}"
                )
            if not (x.dim() == 2 and x.shape[1] == f.dim) and not (
                x.dim() == 1 == f.dim
            ):
                raise ValueError(
                    f"dense feature {f.name!r} must have shape (B, {f.dim}), got "
                    f"{tuple(x.shape)}"
                )
            return
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise TypeError(
                f"id feature {f.name!r} must be an integer tensor, got {x.dtype}"
            )
        if isinstance(f, Categorical) and x.dim() != 1:
            raise ValueError(
                f"categorical feature {f.name!r} must have shape (B,), got "
                f"{tuple(x.shape)}"
            )
        if isinstance(f, MultiCategorical) and x.dim() != 2:
            raise ValueError(
                f"multi-valued feature {f.name!r} must have shape (B, L) padded with "
                f"-1, got {tuple(x.shape)}"
            )

    def _embed(self, f: Feature, x: Tensor) -> Tensor:
        self._check_tensor(f, x)
        if isinstance(f, Dense):
            return (x.unsqueeze(1) if x.dim() == 1 else x).to(self._dtype())  # (B, dim)
        if isinstance(f, Categorical):
            if self._checks_here(x):
                self._check_range(f, x, low=0)
            return self.embeddings[f.name](x.long())  # (B, dim)
        if self._checks_here(x):
            self._check_range(f, x, low=-1)
        # (B, L), padding → the padding row
        ids = x.long().masked_fill(x < 0, f.vocab_size)
        return self.embeddings[f.name](ids)  # (B, dim)

    @staticmethod
    def _checks_here(x: Tensor) -> bool:
        """Whether the forward pass checks id ranges itself: for CPU tensors outside
        torch.compile. On an accelerator the read-back would stall every step, under
        torch.compile it would break the graph; there `check_data` (run by fit/predict
        once per data set) covers it."""
        return x.device.type == "cpu" and not torch.compiler.is_compiling()

    @staticmethod
    def _check_range(f: Categorical | MultiCategorical, x: Tensor, low: int) -> None:
        if x.numel() == 0:
            return
        lo, hi = int(x.min()), int(x.max())
        if lo < low or hi >= f.vocab_size:
            raise ValueError(
                f"feature {f.name!r} has ids in [{lo}, {hi}] but its vocabulary is [0, "
                f"{f.vocab_size})" + (" (with -1 for padding)" if low < 0 else "")
            )

    def _dtype(self) -> torch.dtype:
        """The dtype dense features are cast to: the embedding tables' (the layer's
        only parameters), or the default one without any."""
        for table in self.embeddings.values():
            return table.weight.dtype
        return torch.get_default_dtype()


class TaskInputs(nn.Module):
    """Shared embeddings and, beside them, embeddings of its own for every task, in
    the spirit of STEM (Su et al., AAAI 2024): dict of tensors → (B, self.dim), the
    shared layer's vector followed by each task's embedded features, in `tasks`' order.

    features:      the declarations; the shared part embeds them all (as
                   `InputLayer`), each task's part only the id features
                   (Categorical, MultiCategorical): dense values have nothing to learn.
    tasks:         the task (tower) names, unique.
    embedding_std: as `InputLayer`'s, for every table.

    Every task reads every column forward; `trained_by(task)` says which columns a
    task's loss may train: the shared ones and its own ("all forward, task-specific
    backward"). The model detaches the others on the task's path. A ValueError, naming
    `task_embeddings`, when there is no id feature to give a task.
    """

    def __init__(
        self,
        features: list[Feature] | tuple[Feature, ...],
        tasks: list[str] | tuple[str, ...],
        embedding_std: float = 1.0,
    ):
        super().__init__()
        self.shared = InputLayer(features, embedding_std)
        ids = [f for f in self.shared.features if not isinstance(f, Dense)]
        if not ids:
            raise ValueError(
                "task_embeddings needs at least one Categorical or MultiCategorical "
                "feature to give each task embeddings of its own; the features are "
                f"all dense: {[f.name for f in self.shared.features]}"
            )
        tasks = tuple(tasks)
        if len(set(tasks)) != len(tasks) or not tasks:
            raise ValueError(f"task_embeddings: task names must be unique, got {tasks}")
        self.tasks = tasks
        self.own = nn.ModuleDict({t: InputLayer(ids, embedding_std) for t in tasks})
        self.dim = self.shared.dim + sum(layer.dim for layer in self.own.values())

    @property
    def features(self) -> tuple[Feature, ...]:
        """The declarations, as `InputLayer.features`."""
        return self.shared.features

    def forward(self, features: Mapping[str, Tensor]) -> Tensor:
        parts = [
            self.shared(features),
            *(layer(features) for layer in self.own.values()),
        ]
        return torch.cat(parts, dim=1)  # (B, shared dim + Σ_t own dim)

    def trained_by(self, task: str) -> Tensor:
        """(self.dim,) bool: the columns `task`'s loss trains (shared and its own)."""
        keep = torch.zeros(self.dim, dtype=torch.bool)
        keep[: self.shared.dim] = True
        start = self.shared.dim
        for t, layer in self.own.items():
            if t == task:
                keep[start : start + layer.dim] = True
            start += layer.dim
        return keep

    def check_data(self, features: Mapping[str, Tensor], n: int | None = None) -> None:
        """Check a data set's features once (`InputLayer.check_data`)."""
        self.shared.check_data(features, n)
