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
from typing import Mapping, Sequence

from torch import Tensor

from . import kinds
from .data.batch import Batch
from .sample_weights import SampleWeight, WeightSource, column_values
from .validation import is_count, is_number

__all__ = [
    "DEFAULT_PROPENSITY_FLOOR",
    "Objective",
    "Tower",
    "admitted",
    "declared",
    "ancestors",
    "check_towers",
]

DEFAULT_PROPENSITY_FLOOR = 0.05  # p̂ is clipped below here: each weight is at most 20


# How a masked loss is normalised (`Objective.mean_over`).
MEAN_OVER = ("admitted", "batch")


@dataclass(frozen=True)
class Objective:
    """One predicted target.

    name:          key of the prediction in a model's output dict.
    kind:          a registered kind (`sbmm.kinds`): "binary" (the model outputs a
                   logit; loss: binary cross-entropy), "regression" (a value; squared
                   error) or "lognormal" (a positive duration: μ and log σ of its log;
                   Gaussian likelihood of log T; its mean is e^{μ + σ²/2}).
    weight:        the objective's weight inside its tower.
    label:         the label column it trains on; defaults to `name`.
    mask:          name of a 0/1 label that must be 1 for a sample to count (a like
                   recorded on only some clicks counts where `like_seen` is 1); None:
                   every sample counts. An objective that follows another of the
                   model (like after click) declares `given` instead, which sets the
                   mask to that objective's label; a model refuses `mask` naming the
                   label of one of its binary objectives.
    mean_over:     how a masked loss is normalised: "admitted" (default), the mean
                   over the rows the mask admits, Σ m·ℓ / Σ m, so the objective weighs
                   as much whether a batch holds 4 of its labels or 400; or "batch",
                   Σ m·ℓ / B, the same sum over the whole batch's size, so each
                   admitted row weighs as much as a row of an objective that counts
                   every row (a scarce label then moves the bottom little). Only for
                   an objective with a mask (or `given`) in its own space.
    sample_weight: per-sample loss weights: the name of a label or feature column, a
                   function Batch → (B,) tensor, or a `SampleWeight` declaration; None:
                   all weigh 1.
    dim:           values per sample for a regression objective
                   (the seed's 3- and 2-wide targets); its prediction and label are then
                   (B, dim), else (B,). A kind of several outputs per value (lognormal)
                   predicts (B, outputs) for its (B,) label.
    given:         for a conditional objective, the binary objective it follows
                   (like is given click): its prediction is then conditional,
                   p(like | click) or E[play_time | click].
    space:         how a conditional objective is trained (`sbmm.spaces`). "masked":
                   on its own sample
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
                   "escm2_ips" and "escm2_dr" (ESCM², Wang et al., 2022, as its
                   paper defines it): ESMM's entire-space loss (the "entire" one)
                   plus `counterfactual_weight` times the IPS or DR loss.
    counterfactual_weight: for "escm2_ips" and "escm2_dr" only: λ, the weight of the
                   counterfactual (IPS or DR) loss beside the entire-space one
                   (default 1.0, the paper's reference set-up weighs both 0.5).
    imputes:       makes this objective the error imputation of the "dr" (or
                   "escm2_dr") objective it names: a regression objective with no
                   label of its own, whose prediction ê_i is fitted by squared error
                   to that objective's per-sample loss ℓ_i (detached) on the samples
                   where ℓ_i is observed (clicked). Its weight sets how much that fit
                   counts.
    propensity_weighted: for an imputation only: False (default), its fit is the
                   plain mean over the observed samples, Σ o_i (ê_i − ℓ_i)² / Σ o_i;
                   True, each observed sample weighs 1 / p̂_i and the sum is averaged
                   over every sample, (1/N) Σ o_i (ê_i − ℓ_i)² / p̂_i, as DR-JL (Wang
                   et al., 2019) and ESCM² fit it: an estimate of the fit over every
                   impression, not over the clicked ones.

    The prediction dict has one entry per objective, whatever the space: a
    conditional objective's is its conditional logit (or value); an imputation's, ê.
    """

    name: str
    kind: str = "binary"
    weight: float = 1.0
    label: str | None = None
    mask: str | None = None
    sample_weight: WeightSource | SampleWeight | None = None
    dim: int = 1
    given: str | None = None
    space: str = "masked"
    propensity_floor: float | None = None
    imputes: str | None = None
    mean_over: str = "admitted"
    counterfactual_weight: float | None = None
    propensity_weighted: bool = False

    def __post_init__(self) -> None:
        def problem(text: str) -> ValueError:
            return ValueError(f"objective {self.name!r}: {text}")

        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"an objective needs a non-empty name, got {self.name!r}")
        try:
            kind = kinds.get(self.kind)
        except ValueError as error:
            raise problem(str(error)) from None
        if not (is_number(self.weight) and self.weight >= 0):
            raise problem(f"weight must be a finite number >= 0, got {self.weight!r}")
        if not is_count(self.dim):
            raise problem(f"dim must be an integer >= 1, got {self.dim!r}")
        if self.dim != 1 and not kind.multi_valued:
            raise problem(f"a {self.kind} objective has dim 1, got {self.dim}")
        from .spaces import SPACES  # spaces build on declarations: import on use

        if self.space not in SPACES:
            raise problem(f"space must be one of {tuple(SPACES)}, got {self.space!r}")
        if self.imputes is not None:
            self._check_imputation(kind, problem)
        if self.given == self.name:
            raise ValueError(f"objective {self.name!r} cannot be given itself")
        SPACES[self.space].declare(self, problem)
        if self.mean_over not in MEAN_OVER:
            raise problem(
                f"mean_over must be one of {MEAN_OVER}, got {self.mean_over!r}"
            )
        if self.mean_over == "batch" and (self.mask is None or self.space != "masked"):
            raise problem(
                "mean_over='batch' normalises a masked loss; this objective counts "
                "every row (declare a mask, or given= in space='masked')"
            )
        if self.propensity_weighted not in (False, True):
            raise problem(
                f"propensity_weighted must be True or False, got "
                f"{self.propensity_weighted!r}"
            )
        if self.propensity_weighted and self.imputes is None:
            raise problem(
                "propensity_weighted weighs the fit of an error imputation; this "
                "objective imputes nothing (declare imputes=...)"
            )
        sw = self.sample_weight
        if not (sw is None or isinstance(sw, (str, SampleWeight)) or callable(sw)):
            raise TypeError(
                f"objective {self.name!r}: sample_weight must be a column name, a "
                "function of the batch, a SampleWeight, or None"
            )
        if isinstance(sw, SampleWeight) and sw.on != "all" and not kind.probability:
            raise problem(
                f"SampleWeight(on={sw.on!r}) needs a binary objective (positives and "
                f"negatives of its label), but its kind is {self.kind!r}"
            )

    def _check_imputation(self, kind: kinds.Kind, problem) -> None:
        """An imputation objective: a (B,) regression on no label of its own."""
        if not isinstance(self.imputes, str) or not self.imputes:
            raise problem(f"imputes must name an objective, got {self.imputes!r}")
        if self.imputes == self.name:
            raise problem("an objective cannot impute itself")
        if kind.probability or kind.outputs != 1 or self.dim != 1:
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

    @functools.cached_property
    def width(self) -> int:
        """The model's raw outputs for this objective: dim × its kind's outputs per
        value (a lognormal duration: μ and log σ)."""
        return self.dim * kinds.get(self.kind).outputs

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
        """The tower's raw outputs: its objectives' widths."""
        return sum(o.width for o in self.objectives)


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
    binary_label = {
        o.target: o.name for o in by_name.values() if kinds.get(o.kind).probability
    }
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
        if not kinds.get(parent.kind).probability:
            raise ValueError(
                f"objective {o.name!r} is given {o.given!r}, which must be a binary "
                "objective"
            )
        if o.dim != 1:
            raise ValueError(f"objective {o.name!r}: a conditional objective has dim 1")
        ancestors(o, by_name)  # raises on a cycle
    from .spaces import DR, SPACES  # spaces build on declarations: import on use

    for o in by_name.values():
        target = by_name.get(o.imputes) if o.imputes is not None else None
        dr = target is not None and issubclass(SPACES[target.space], DR)
        if o.imputes is not None and not dr:
            raise ValueError(
                f"objective {o.name!r} imputes {o.imputes!r}, which must be a "
                "space='dr' (or 'escm2_dr') objective of the model"
            )
    for o in by_name.values():
        SPACES[o.space].check_in(o, by_name)
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
