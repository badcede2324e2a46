"""Objectives and towers: the declarations a model is built from, and the samples each
admits.

An `Objective` is one thing the model predicts: a click (binary) or a play time
(regression). A `Tower` is a small MLP on top of the shared part that outputs a group of
objectives, usually the objectives of one scene. The loss they declare has the two
levels of adjustment of a shared-bottom model (see `sbmm.losses`):

    L = Σ_towers w_tower · Σ_objectives-in-tower w_objective · L_objective

Which samples an objective's loss, sample weights, statistics and metrics count is
decided in one place, `admitted`: the samples whose `mask` label is 1
(all when it has none). A conditional objective trained on its own sample space
(`given="click"`) has the mask of what it is given; one trained on every sample
("entire", "ips", "dr") has none.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Literal, Mapping, Sequence

from torch import Tensor

from .data.batch import Batch
from .sample_weights import SampleWeight, WeightSource, column_values
from .validation import is_count, is_number

__all__ = [
    "DEFAULT_PROPENSITY_FLOOR",
    "Objective",
    "Tower",
    "admitted",
    "declared",
    "labelled_rows",
    "ancestors",
    "check_towers",
]

SPACES = ("masked", "entire", "ips", "dr")  # how a conditional objective is trained
DEBIASED = ("ips", "dr")  # the spaces weighted by inverse propensities
DEFAULT_PROPENSITY_FLOOR = 0.05  # p̂ is clipped below here: each weight is at most 20


@dataclass(frozen=True)
class Objective:
    """One predicted target.

    name:          key of the prediction in a model's output dict.
    kind:          "binary" (the model outputs a logit; loss: binary cross-entropy) or
                   "regression" (the model outputs a value; loss: mean squared error).
    weight:        the objective's weight inside its tower.
    label:         the label column it trains on; defaults to `name`.
    mask:          name of a 0/1 label that must be 1 for a sample to count (a like
                   recorded on only some clicks counts where `like_seen` is 1); None:
                   every sample counts. An objective that follows another of the
                   model (like after click) declares `given` instead, which sets the
                   mask to that objective's label; a model refuses `mask` naming the
                   label of one of its binary objectives.
    sample_weight: per-sample loss weights: the name of a label or feature column, a
                   function Batch → (B,) tensor, or a `SampleWeight` declaration; None:
                   all weigh 1.
    dim:           values per sample for a regression objective
                   (the seed's 3- and 2-wide targets); its prediction and label are then
                   (B, dim), else (B,).
    given:         for a conditional objective, the binary objective it follows
                   (like is given click): its prediction is then conditional,
                   p(like | click) or E[play_time | click].
    space:         how a conditional objective is trained. "masked": on its own sample
                   space, the samples whose `given` label is 1 (its mask). "entire"
                   (ESMM, Ma et al., 2018): on every sample, through the product with
                   the probability of what it is given: p(click ∧ like) = p(click) ·
                   p(like | click) against click·like (binary), or E[play_time] =
                   p(click) · E[play_time | click] against play_time (regression).
                   "ips" and "dr" (see `sbmm.debias`; ESCM², Wang et al., 2022): its
                   own loss ℓ_i, averaged over every sample, each clicked one weighted
                   by the inverse of the model's own (detached) probability p̂_i of
                   what it is given: (1/N) Σ o_i ℓ_i / p̂_i (inverse propensity
                   scoring), or (1/N) Σ [ê_i + o_i (ℓ_i − ê_i) / p̂_i] (doubly robust),
                   ê_i the prediction of the objective that `imputes` it (a DR
                   objective needs exactly one).
    propensity_floor: for "ips" and "dr" only: p̂_i is clipped below at this floor,
                   in (0, 1] (default 0.05), which bounds each weight 1 / p̂_i.
    imputes:       makes this objective the error imputation of the "dr" objective
                   it names: a regression objective with no label of its own, whose
                   prediction ê_i is fitted by squared error to that objective's
                   per-sample loss ℓ_i (detached) on the samples where ℓ_i is
                   observed (clicked). Its weight sets how much that fit counts.

    The prediction dict has one entry per objective, whatever the space: a
    conditional objective's is its conditional logit (or value); an imputation's, ê.
    """

    name: str
    kind: Literal["binary", "regression"] = "binary"
    weight: float = 1.0
    label: str | None = None
    mask: str | None = None
    sample_weight: WeightSource | SampleWeight | None = None
    dim: int = 1
    given: str | None = None
    space: Literal["masked", "entire", "ips", "dr"] = "masked"
    propensity_floor: float | None = None
    imputes: str | None = None

    def __post_init__(self) -> None:
        def problem(text: str) -> ValueError:
            return ValueError(f"objective {self.name!r}: {text}")

        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"an objective needs a non-empty name, got {self.name!r}")
        if self.kind not in ("binary", "regression"):
            raise problem(f"kind must be 'binary' or 'regression', got {self.kind!r}")
        if not (is_number(self.weight) and self.weight >= 0):
            raise problem(f"weight must be a finite number >= 0, got {self.weight!r}")
        if not is_count(self.dim):
            raise problem(f"dim must be an integer >= 1, got {self.dim!r}")
        if self.kind == "binary" and self.dim != 1:
            raise problem(f"a binary objective has dim 1, got {self.dim}")
        if self.space not in SPACES:
            raise problem(f"space must be one of {SPACES}, got {self.space!r}")
        if self.space != "masked" and self.given is None:
            raise problem(
                f"a space={self.space!r} objective needs `given`, the objective it "
                "follows"
            )
        if self.space != "masked" and self.mask is not None:
            raise problem(
                f"a space={self.space!r} objective is trained on every sample; drop "
                "`mask`"
            )
        if self.space in DEBIASED:
            if self.propensity_floor is None:
                object.__setattr__(self, "propensity_floor", DEFAULT_PROPENSITY_FLOOR)
            floor = self.propensity_floor
            if not (is_number(floor) and 0 < floor <= 1):
                raise problem(f"propensity_floor must be in (0, 1], got {floor!r}")
            if self.sample_weight is not None:
                raise problem(
                    f"a space={self.space!r} objective takes no sample_weight: its "
                    "weights are the inverse propensities"
                )
        elif self.propensity_floor is not None:
            raise problem(
                "propensity_floor is for space='ips' or 'dr' only, not "
                f"space={self.space!r}"
            )
        if self.imputes is not None:
            self._check_imputation(problem)
        if self.given == self.name:
            raise ValueError(f"objective {self.name!r} cannot be given itself")
        if self.given is not None and self.space == "masked" and self.mask is None:
            # One spelling of the restriction: given="click" in its own space is
            # mask="click" (`check_towers` makes sure the mask is the label of what it
            # is given).
            object.__setattr__(self, "mask", self.given)
        sw = self.sample_weight
        if not (sw is None or isinstance(sw, (str, SampleWeight)) or callable(sw)):
            raise TypeError(
                f"objective {self.name!r}: sample_weight must be a column name, a "
                "function of the batch, a SampleWeight, or None"
            )
        if isinstance(sw, SampleWeight) and sw.on != "all" and self.kind != "binary":
            raise problem(
                f"SampleWeight(on={sw.on!r}) needs a binary objective (positives and "
                f"negatives of its label), but its kind is {self.kind!r}"
            )

    def _check_imputation(self, problem) -> None:
        """An imputation objective: a (B,) regression on no label of its own."""
        if not isinstance(self.imputes, str) or not self.imputes:
            raise problem(f"imputes must name an objective, got {self.imputes!r}")
        if self.imputes == self.name:
            raise problem("an objective cannot impute itself")
        if self.kind != "regression" or self.dim != 1:
            raise problem(
                "an imputation objective predicts one error per sample: declare "
                "kind='regression' with dim 1"
            )
        for field in ("label", "mask", "given", "sample_weight"):
            if getattr(self, field) is not None:
                raise problem(
                    f"an imputation objective takes no {field}: it fits the per-sample "
                    f"loss of {self.imputes!r}, on the samples where it is observed"
                )

    @property
    def target(self) -> str:
        """The label column this objective trains on."""
        return self.label or self.name

    def with_statistics(self, data: Batch) -> Objective:
        """This objective with its `SampleWeight`'s data-set statistics computed on
        `data` (the training data) over the samples it admits, and stored as numbers:
        clip_quantile becomes clip, "dataset_mean" becomes the mean weight. Returns the
        objective itself when there is none to compute."""
        sw = self.sample_weight
        if not (isinstance(sw, SampleWeight) and sw.needs_statistics):
            return self
        for column in (self.target, self.mask):
            if column is not None and column not in data.labels:
                raise ValueError(
                    f"objective {self.name!r}: label {column!r} is missing "
                    f"(labels: {sorted(data.labels)})"
                )
        rows = sw.weighted_rows(data.labels[self.target], admitted(self, data.labels))
        values = column_values(self.name, sw.column, data)  # (N,)
        values = values if rows is None else values[rows]  # (n_weighted,)
        try:
            return replace(self, sample_weight=sw.with_statistics(values))
        except ValueError as error:
            raise ValueError(f"objective {self.name!r}: {error}") from None


def admitted(objective: Objective, labels: Mapping[str, Tensor]) -> Tensor | None:
    """(B,) bool, the samples `objective` counts in its loss, sample-weight means,
    data-set statistics and metrics: those whose `mask` label is 1. None when it counts
    every sample."""
    if objective.mask is None:
        return None
    if objective.mask not in labels:
        raise ValueError(
            f"objective {objective.name!r}: mask {objective.mask!r} names no label "
            f"(labels: {sorted(labels)})"
        )
    return labels[objective.mask] > 0


@functools.lru_cache(maxsize=None)
def declared(towers: tuple[Tower, ...]) -> dict[str, Objective]:
    """{name: objective} over `towers`, built once per set of towers (declarations
    are frozen; read it, do not change it)."""
    return {o.name: o for t in towers for o in t.objectives}


def labelled_rows(
    objective: Objective, labels: Mapping[str, Tensor], towers: Sequence[Tower] = ()
) -> Tensor | None:
    """(B,) bool, the rows where `objective`'s own label is read and its prediction
    scored; None: all. These are the rows it admits, except for a conditional objective
    trained on every row ("entire", "ips", "dr"), whose label exists, and whose
    conditional prediction is scored, only where every label along its chain is 1
    (`towers` declare the chain); an imputation objective's are those of the objective
    it imputes."""
    by_name = declared(tuple(towers))
    if objective.imputes is not None:
        if objective.imputes not in by_name:
            raise ValueError(
                f"objective {objective.name!r}: the towers do not declare "
                f"{objective.imputes!r}, what it imputes"
            )
        return labelled_rows(by_name[objective.imputes], labels, towers)
    if not (objective.given is not None and objective.space != "masked"):
        return admitted(objective, labels)
    if objective.given not in by_name:
        raise ValueError(
            f"objective {objective.name!r}: the towers do not declare "
            f"{objective.given!r}, what it is given"
        )
    rows = None
    for parent in ancestors(objective, by_name):
        reached = labels[parent.target] > 0  # (B,)
        rows = reached if rows is None else rows & reached
    return rows


@dataclass(frozen=True)
class Tower:
    """A task tower: an MLP of `hidden` widths (ReLU) on the shared part's output,
    ending in one output per objective value. `weight` multiplies the tower's whole
    loss."""

    name: str
    objectives: Sequence[Objective]
    hidden: Sequence[int] = (32,)
    weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a tower needs a non-empty name, got {self.name!r}")
        if "." in self.name:
            raise ValueError(
                f"tower {self.name!r}: a name must not contain '.' (PyTorch keys "
                "modules by it)"
            )
        if not self.objectives:
            raise ValueError(f"tower {self.name!r} has no objectives")
        for o in self.objectives:
            if not isinstance(o, Objective):
                raise TypeError(
                    f"tower {self.name!r}: objectives must be Objective, got {o!r}"
                )
        if not all(is_count(h) for h in self.hidden):
            raise ValueError(
                f"tower {self.name!r}: hidden widths must be integers >= 1, got "
                f"{self.hidden}"
            )
        if not (is_number(self.weight) and self.weight >= 0):
            raise ValueError(
                f"tower {self.name!r}: weight must be a finite number >= 0, got "
                f"{self.weight!r}"
            )

    @property
    def out_dim(self) -> int:
        return sum(o.dim for o in self.objectives)


def check_towers(towers: Sequence[Tower]) -> tuple[Tower, ...]:
    """Validate a model's towers: at least one, unique tower and objective names, and
    every `given` naming a binary objective of the model without a cycle."""
    towers = tuple(towers)
    if not towers:
        raise ValueError("a model needs at least one tower")
    for t in towers:
        if not isinstance(t, Tower):
            raise TypeError(f"towers must be Tower declarations, got {t!r}")
    tower_names = [t.name for t in towers]
    if len(set(tower_names)) != len(tower_names):
        raise ValueError(f"tower names must be unique, got {tower_names}")
    names = [o.name for t in towers for o in t.objectives]
    if len(set(names)) != len(names):
        raise ValueError(f"objective names must be unique across towers, got {names}")
    by_name = {o.name: o for t in towers for o in t.objectives}
    binary_label = {o.target: o.name for o in by_name.values() if o.kind == "binary"}
    for o in by_name.values():
        parent_name = binary_label.get(o.mask)
        if o.given is None and parent_name not in (None, o.name):
            # One spelling for an objective that follows another: `given`. A `mask`
            # names a label that only says where an objective is observed.
            raise ValueError(
                f"objective {o.name!r} is masked by {o.mask!r}, the label of objective "
                f"{parent_name!r}: declare given={parent_name!r} (it follows "
                f"{parent_name!r}); mask= is for a label that is not an objective"
            )
        if o.given is None:
            continue
        if o.given not in by_name:
            raise ValueError(
                f"objective {o.name!r} is given {o.given!r}, which is not an objective "
                f"of the model {names}"
            )
        parent = by_name[o.given]
        if parent.kind != "binary":
            raise ValueError(
                f"objective {o.name!r} is given {o.given!r}, which must be a binary "
                "objective"
            )
        if o.dim != 1:
            raise ValueError(f"objective {o.name!r}: a conditional objective has dim 1")
        if o.space == "masked" and o.mask != parent.target:
            raise ValueError(
                f"objective {o.name!r} is given {o.given!r} in its own space, so it "
                f"counts where label {parent.target!r} is 1; declare "
                f"mask={parent.target!r} or none"
            )
        ancestors(o, by_name)  # raises on a cycle
    imputations: dict[str, list[str]] = {}
    for o in by_name.values():
        if o.imputes is None:
            continue
        target = by_name.get(o.imputes)
        if target is None or target.space != "dr":
            raise ValueError(
                f"objective {o.name!r} imputes {o.imputes!r}, which must be a "
                "space='dr' objective of the model"
            )
        imputations.setdefault(o.imputes, []).append(o.name)
    for o in by_name.values():
        found = imputations.get(o.name, [])
        if o.space == "dr" and len(found) != 1:
            raise ValueError(
                f"objective {o.name!r} is trained doubly robust (space='dr') and needs "
                "exactly one objective that imputes its error, e.g. "
                f"Objective({o.name + '_error'!r}, 'regression', imputes={o.name!r}); "
                f"found {found}"
            )
    return towers


def ancestors(
    objective: Objective, by_name: Mapping[str, Objective]
) -> list[Objective]:
    """The chain of objectives `objective` is given, nearest first (like → [click] or
    [click, stay])."""
    chain: list[Objective] = []
    while objective.given is not None:
        objective = by_name[objective.given]
        if objective in chain or len(chain) > len(by_name):
            raise ValueError(
                f"objectives given one another form a cycle: {[o.name for o in chain]}"
            )
        chain.append(objective)
    return chain
