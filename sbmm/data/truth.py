"""`TruthSpec`: how a simulator's truth scores one of its labels.

A simulator's batch holds, for each label, two truth columns:

- the *truth*: the label's expectation given everything the world drew, the
  per-impression noise ε included. No model reaches it: no feature tells ε.
- the *attainable* truth: the label's expectation given the features only, ε integrated
  out: the best prediction any model of the features can make, the ceiling of a
  learning curve.

A label that exists only after another one (a like, after a click) is scored on the rows
where that *parent* label is positive, and its truth columns are conditional on it
(``p_like_given_click``). Each simulator declares its specs (`FeedData.truth_specs`,
`CORRELATED_TASKS_TRUTH_SPECS`), so evaluation code reads from one place which columns
and rows score a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import torch
from torch import Tensor

from .. import kinds
from .batch import Batch

__all__ = ["ATTAINABLE_PREFIX", "TruthSpec", "truth_specs"]

ATTAINABLE_PREFIX = "attainable_"  # the attainable truth of p_stay: attainable_p_stay


@dataclass(frozen=True)
class TruthSpec:
    """One label and the truth columns that score it.

    label:      the label column.
    truth:      the truth column of its expectation given everything drawn, noise too.
    attainable: the truth column of its expectation given the features only.
    parent:     the label that must be positive for this one to exist (like: "click"),
                or None; the label is scored on those rows, and its truth columns are
                conditional on them.
    kind:       the label's kind (`sbmm.kinds`): "binary" (the truth columns are
                probabilities) or "regression" (expected values); it says how the
                label is scored.
    """

    label: str
    truth: str
    attainable: str
    parent: str | None = None
    kind: str = "binary"

    def __post_init__(self) -> None:
        kinds.get(self.kind)  # a ValueError naming an unknown kind

    def rows(self, batch: Batch) -> Tensor:
        """(N,) bool: the rows of `batch` on which the label is scored."""
        if self.parent is None:
            return torch.ones(len(batch), dtype=torch.bool, device=batch.device)
        if self.parent not in batch.labels:
            raise ValueError(
                f"label {self.label!r} needs its parent label {self.parent!r}"
            )
        return batch.labels[self.parent] > 0


def truth_specs(*specs: TruthSpec) -> Mapping[str, TruthSpec]:
    """A read-only {label: spec} mapping of `specs`, in their order."""
    return MappingProxyType({spec.label: spec for spec in specs})
