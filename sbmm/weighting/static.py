"""`Static`: the declared weights, or given ones."""

from __future__ import annotations

from typing import Mapping

from ..models.base import MultiTaskModel
from ..validation import check_number
from .base import Weighting

__all__ = ["Static"]


class Static(Weighting):
    """Fixed weights: the declared c_o = w_tower · w_objective, or, for the objectives
    `weights` names ({objective: weight}), w_tower · weight: the given weight takes the
    place of the objective's own weight, inside its tower."""

    batchable = True

    def __init__(self, weights: Mapping[str, float] | None = None):
        self.given = dict(weights or {})
        for name, w in self.given.items():
            check_number(f"Static: the weight of objective {name!r}", w)

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        self._check_names(self.given, "weights")
        tower_of = {o.name: t for t in model.tower_specs for o in t.objectives}
        for name, w in self.given.items():
            self.declared[name] = tower_of[name].weight * w
