"""`Batch`: the in-memory table every model, trainer and metric reads.

A batch is three dicts of tensors that share their first dimension
(one row per impression):

- ``features``: what a model may read (dense values, ids, padded multi-valued ids),
- ``labels``:   what was observed and what objectives train on,
- ``truth``:    what a simulator knows and a real log never does (true probabilities and
  expectations, counterfactual ones included); empty for real data.

Rows are selected by slicing or by an index tensor, so a trainer batches in-memory data
without a per-sample ``Dataset``/collate step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..validation import split_bounds

__all__ = ["Batch"]


@dataclass
class Batch:
    features: dict[str, Tensor]
    labels: dict[str, Tensor]
    truth: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rows = None
        for part in ("features", "labels", "truth"):
            table = getattr(self, part)
            if not isinstance(table, dict):
                raise TypeError(
                    f"Batch.{part} must be a dict of tensors, got "
                    f"{type(table).__name__}"
                )
            for name, value in table.items():
                if not isinstance(value, Tensor):
                    raise TypeError(
                        f"{part[:-1]} {name!r} must be a torch.Tensor, got "
                        f"{type(value).__name__}"
                    )
                if value.dim() == 0:
                    raise ValueError(
                        f"{part[:-1]} {name!r} must have one row per sample, got a "
                        "scalar"
                    )
                if rows is None:
                    rows = (name, value.shape[0])
                elif value.shape[0] != rows[1]:
                    raise ValueError(
                        f"{part[:-1]} {name!r} has {value.shape[0]} rows but "
                        f"{rows[0]!r} has {rows[1]}"
                    )

    def __len__(self) -> int:
        for table in (self.features, self.labels, self.truth):
            for value in table.values():
                return value.shape[0]
        return 0

    def __getitem__(self, rows: slice | Tensor) -> Batch:
        """The rows `rows` (a slice, or an index / boolean tensor) of every tensor."""
        if isinstance(rows, Tensor) and rows.dtype != torch.bool:
            rows = rows.to(self.device)
            # index_select: faster than t[rows]
            take = lambda t: t.index_select(0, rows)  # noqa: E731
        else:
            take = lambda t: t[rows]  # noqa: E731
        return Batch._trusted(
            {k: take(v) for k, v in self.features.items()},
            {k: take(v) for k, v in self.labels.items()},
            {k: take(v) for k, v in self.truth.items()},
        )

    @classmethod
    def _trusted(cls, features: dict, labels: dict, truth: dict) -> Batch:
        """A batch cut from a checked one: skips the checks, which cost more than a
        small training step."""
        batch = object.__new__(cls)
        batch.features, batch.labels, batch.truth = features, labels, truth
        return batch

    @property
    def device(self) -> torch.device:
        for table in (self.features, self.labels, self.truth):
            for value in table.values():
                return value.device
        return torch.device("cpu")

    def to(self, device: torch.device | str) -> Batch:
        """A copy of the batch on `device` (the same object when it is already
        there)."""
        device = torch.device(device)
        if self.device == device:
            return self

        def move(table: dict[str, Tensor]) -> dict[str, Tensor]:
            return {k: v.to(device, non_blocking=True) for k, v in table.items()}

        return Batch._trusted(move(self.features), move(self.labels), move(self.truth))

    def split(
        self, fractions: tuple[float, ...] = (0.8, 0.1, 0.1), seed: int = 0
    ) -> tuple[Batch, ...]:
        """Shuffle the rows with `seed` and cut them into consecutive parts of the given
        fractions.

        The fractions must be positive and sum to 1; the last part takes the rounding
        remainder.
        """
        bounds = split_bounds(len(self), fractions)
        order = torch.randperm(
            len(self), generator=torch.Generator().manual_seed(seed)
        ).to(self.device)
        return tuple(self[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:]))
