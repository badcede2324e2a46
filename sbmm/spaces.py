"""Training spaces: for each objective, which rows it counts and what loss it takes
there. One object per objective, resolved once per set of towers.

    masked   its own sample space: the rows whose `mask` label is 1 (like given click:
             the clicked impressions); every row when it has no mask
    entire   ESMM (Ma et al., 2018): every row, through the product with the
             probability of what it is given (`sbmm.conditional`)
    ips      every row, each observed one weighted by the inverse of the model's own
             propensity (`sbmm.debias`)
    dr       doubly robust: IPS with an imputed error, fitted by the objective that
             `imputes` it, whose loss this space computes too
    escm2_ips, escm2_dr
             ESCM² (Wang et al., 2022): ESMM's entire-space loss plus λ times the IPS
             or DR loss, λ the objective's `counterfactual_weight`

Each space says, for its objective:

    rows(labels)       (B,) bool: where the objective's label is read and its
                       prediction scored (None: every row)
    loss_rows(labels)  where its loss averages (None: every row)
    losses(...)        {objective: loss} it sets (DR: its own and its imputation's)

and `declare` checks (and completes) an objective's declaration for the space, and
`check_in` checks it among the model's other objectives. `resolve(towers)` builds the
spaces of a model once; `objective_losses` (in `sbmm.losses`) and the metrics read
them, and nothing else compares space names. A new space is one class in `SPACES`.
"""

from __future__ import annotations

import functools
from typing import Callable, ClassVar, Mapping, Sequence

from torch import Tensor

from . import kinds
from .conditional import chain_rows, entire_space_inputs
from .data.batch import Batch
from .debias import dr_losses, ips_loss
from .objectives import DEFAULT_PROPENSITY_FLOOR, Objective, Tower, admitted, declared
from .validation import is_number

__all__ = [
    "DR",
    "IPS",
    "SPACES",
    "Entire",
    "Imputation",
    "Masked",
    "Space",
    "labelled_rows",
    "plan",
    "resolve",
    "schedule",
]

Across = Callable[[Tensor], Tensor] | None  # see `sbmm.losses.Across`
Problem = Callable[[str], ValueError]  # text → an error naming the objective


class Space:
    """How one objective of a model is trained; built by `resolve`."""

    name: ClassVar[str]
    first: ClassVar[bool] = False  # sets other objectives' losses too: computed first
    escm2: ClassVar[bool] = False  # adds ESMM's loss to a counterfactual one (ESCM²)

    def __init__(self, objective: Objective, towers: tuple[Tower, ...]):
        self.objective, self.towers = objective, towers

    @classmethod
    def declare(cls, objective: Objective, problem: Problem) -> None:
        """Check `objective`'s fields for this space (a ValueError from `problem`);
        set what the space implies. By default: no propensity floor, no
        counterfactual weight."""
        if objective.propensity_floor is not None:
            raise problem(
                "propensity_floor is for space='ips' or 'dr' only, not "
                f"space={objective.space!r}"
            )
        cls.refuse_counterfactual_weight(objective, problem)

    @classmethod
    def refuse_counterfactual_weight(
        cls, objective: Objective, problem: Problem
    ) -> None:
        if objective.counterfactual_weight is not None and not cls.escm2:
            raise problem(
                "counterfactual_weight is for space='escm2_ips' or 'escm2_dr' only, "
                f"not space={objective.space!r}"
            )

    @classmethod
    def check_in(cls, objective: Objective, by_name: Mapping[str, Objective]) -> None:
        """Check `objective` among the model's objectives `by_name`. Nothing by
        default."""

    def rows(self, labels: Mapping[str, Tensor]) -> Tensor | None:
        return admitted(self.objective, labels)

    def loss_rows(self, labels: Mapping[str, Tensor]) -> Tensor | None:
        return admitted(self.objective, labels)

    def losses(
        self, predictions: Mapping[str, Tensor], batch: Batch, across: Across
    ) -> dict[str, Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.objective.name!r})"


class Masked(Space):
    """Its own sample space: the mean loss over the rows it admits, or, declared with
    mean_over="batch", their summed loss over the batch's size."""

    name = "masked"

    def loss_rows(self, labels):
        if self.objective.mean_over == "batch":
            return None
        return admitted(self.objective, labels)

    @classmethod
    def declare(cls, objective: Objective, problem: Problem) -> None:
        super().declare(objective, problem)
        if objective.given is not None and objective.mask is None:
            # One spelling of the restriction: given="click" in its own space is
            # mask="click" (`check_in` makes sure the mask is the label of what it is
            # given).
            object.__setattr__(objective, "mask", objective.given)

    @classmethod
    def check_in(cls, objective: Objective, by_name: Mapping[str, Objective]) -> None:
        if objective.given is None:
            return
        parent = by_name[objective.given]
        if objective.mask != parent.target:
            raise ValueError(
                f"objective {objective.name!r} is given {objective.given!r} in its "
                f"own space, so it counts where label {parent.target!r} is 1; declare "
                f"mask={parent.target!r} or none"
            )

    def losses(self, predictions, batch, across):
        o = self.objective
        loss = _losses.objective_loss(o, predictions[o.name], batch, across=across)
        return {o.name: loss}


class _OnEveryRow(Space):
    """A conditional objective trained on every row: its label is read where its
    chain holds."""

    @classmethod
    def declare(cls, objective: Objective, problem: Problem) -> None:
        cls.needs_chain(objective, problem)
        super().declare(objective, problem)

    @classmethod
    def needs_chain(cls, objective: Objective, problem: Problem) -> None:
        """A given objective, with no mask of its own."""
        if objective.given is None:
            raise problem(
                f"a space={cls.name!r} objective needs `given`, the objective it "
                "follows"
            )
        if objective.mask is not None:
            raise problem(
                f"a space={cls.name!r} objective is trained on every sample; drop "
                "`mask`"
            )

    def rows(self, labels):
        o = self.objective
        if o.given not in declared(self.towers):
            raise ValueError(
                f"objective {o.name!r}: the towers do not declare {o.given!r}, what it "
                "is given"
            )
        return chain_rows(o, labels, self.towers)

    def loss_rows(self, labels):
        return None


class Entire(_OnEveryRow):
    """ESMM: the joint prediction against the joint label, on every row."""

    name = "entire"

    @classmethod
    def declare(cls, objective: Objective, problem: Problem) -> None:
        super().declare(objective, problem)
        cls.needs_entire_space(objective, problem)

    @classmethod
    def needs_entire_space(cls, objective: Objective, problem: Problem) -> None:
        if not kinds.get(objective.kind).entire_space:
            raise problem(
                f"a {objective.kind!r} objective cannot train on the entire space; "
                "declare space='masked', 'ips' or 'dr'"
            )

    def losses(self, predictions, batch, across):
        return {self.objective.name: entire_loss(self, predictions, batch, across)}


def entire_loss(space: Space, predictions, batch: Batch, across) -> Tensor:
    """ESMM's loss of `space`'s objective: its joint prediction against its joint
    label, over every row (the CTCVR loss of like given click)."""
    o = space.objective
    prediction, target = entire_space_inputs(o, predictions, space.towers, batch)
    return _losses.objective_loss(o, prediction, batch, target, across=across)


class IPS(_OnEveryRow):
    """Inverse propensity scoring over every row (`sbmm.debias.ips_loss`)."""

    name = "ips"

    @classmethod
    def declare(cls, objective: Objective, problem: Problem) -> None:
        cls.needs_chain(objective, problem)
        cls.refuse_counterfactual_weight(objective, problem)
        if objective.propensity_floor is None:
            object.__setattr__(objective, "propensity_floor", DEFAULT_PROPENSITY_FLOOR)
        floor = objective.propensity_floor
        if not (is_number(floor) and 0 < floor <= 1):
            raise problem(f"propensity_floor must be in (0, 1], got {floor!r}")
        if objective.sample_weight is not None:
            raise problem(
                f"a space={cls.name!r} objective takes no sample_weight: its "
                "weights are the inverse propensities"
            )

    def losses(self, predictions, batch, across):
        o = self.objective
        return {o.name: ips_loss(o, predictions, self.towers, batch, across)}


class DR(IPS):
    """Doubly robust (`sbmm.debias.dr_losses`): sets its own loss and that of the
    objective that imputes its error."""

    name = "dr"
    first = True

    @functools.cached_property
    def imputation(self) -> Objective:
        """The objective that imputes this one's error."""
        by_name = declared(self.towers)
        return next(o for o in by_name.values() if o.imputes == self.objective.name)

    @classmethod
    def check_in(cls, objective: Objective, by_name: Mapping[str, Objective]) -> None:
        found = [o.name for o in by_name.values() if o.imputes == objective.name]
        if len(found) != 1:
            raise ValueError(
                f"objective {objective.name!r} is trained doubly robust (space='dr') "
                "and needs exactly one objective that imputes its error, e.g. "
                f"Objective({objective.name + '_error'!r}, 'regression', "
                f"imputes={objective.name!r}); found {found}"
            )

    def losses(self, predictions, batch, across):
        o, i = self.objective, self.imputation
        dr, imp = dr_losses(o, i, predictions, self.towers, batch, across)
        return {o.name: dr, i.name: imp}


class _ESCM2:
    """ESCM² on top of a counterfactual space (IPS or DR): ESMM's entire-space loss
    plus λ times that space's loss, λ the objective's `counterfactual_weight`; any
    other loss the space sets (DR's imputation) is kept as it is."""

    escm2 = True

    @classmethod
    def declare(cls, objective: Objective, problem: Problem) -> None:
        super().declare(objective, problem)
        escm2_declare(objective, problem)

    def losses(self, predictions, batch, across):
        o = self.objective
        found = super().losses(predictions, batch, across)
        risk = entire_loss(self, predictions, batch, across)
        return {**found, o.name: risk + o.counterfactual_weight * found[o.name]}


class ESCM2IPS(_ESCM2, IPS):
    """ESCM² with its IPS regulariser: L_CTCVR + λ · L_IPS."""

    name = "escm2_ips"


class ESCM2DR(_ESCM2, DR):
    """ESCM² with its DR regulariser: L_CTCVR + λ · L_DR; its imputation's loss as in
    `DR`."""

    name = "escm2_dr"


def escm2_declare(objective: Objective, problem: Problem) -> None:
    """An ESCM² objective: of a kind the entire space takes, and its λ (1.0 unless
    declared), a finite number >= 0."""
    Entire.needs_entire_space(objective, problem)
    if objective.counterfactual_weight is None:
        object.__setattr__(objective, "counterfactual_weight", 1.0)
    weight = objective.counterfactual_weight
    if not (is_number(weight) and weight >= 0):
        raise problem(f"counterfactual_weight must be a number >= 0, got {weight!r}")


class Imputation(Space):
    """The error imputation of a DR objective: no label of its own; it is read and
    scored on the rows of the objective it imputes, whose space sets its loss."""

    name = "imputation"

    def __init__(self, objective: Objective, towers: tuple[Tower, ...], imputed: Space):
        super().__init__(objective, towers)
        self.imputed = imputed  # the space of the objective it imputes

    def rows(self, labels):
        return self.imputed.rows(labels)

    def loss_rows(self, labels):
        if self.objective.propensity_weighted:
            return None  # (1/N) Σ o (ê − ℓ)² / p̂: over every row
        return self.imputed.rows(labels)

    def losses(self, predictions, batch, across):
        return {}  # set by the DR objective's space


SPACES: dict[str, type[Space]] = {
    s.name: s for s in (Masked, Entire, IPS, DR, ESCM2IPS, ESCM2DR)
}


@functools.lru_cache(maxsize=256)
def _plan(towers: tuple[Tower, ...]) -> tuple[dict[str, Space], tuple[Space, ...]]:
    """The spaces of `towers` by objective, in declaration order, and in the order
    their losses are computed."""
    by_name = declared(towers)
    spaces: dict[str, Space] = {}
    for o in by_name.values():  # imputations last: they read what they impute
        if o.imputes is None:
            spaces[o.name] = SPACES[o.space](o, towers)
    for o in by_name.values():
        if o.imputes is not None:
            if o.imputes not in by_name:
                raise ValueError(
                    f"objective {o.name!r}: the towers do not declare "
                    f"{o.imputes!r}, what it imputes"
                )
            spaces[o.name] = Imputation(o, towers, spaces[o.imputes])
    spaces = {name: spaces[name] for name in by_name}  # declaration order
    # Spaces that set several losses (DR, with its imputation's) first, then the
    # others in declaration order: a fixed order of the graph, so runs repeat bit for
    # bit.
    return spaces, tuple(sorted(spaces.values(), key=lambda s: not s.first))


_LAST: list = [None, None]  # the last towers planned, and their plan


def plan(towers: Sequence[Tower]) -> tuple[dict[str, Space], tuple[Space, ...]]:
    """`_plan` of `towers`, built once per set of towers (declarations are frozen).
    The tuple of the last call is recognised by identity, without hashing every
    declaration again: a training step asks for the same model's towers each time."""
    if _LAST[0] is towers and isinstance(towers, tuple):
        return _LAST[1]
    found = _plan(tuple(towers))
    _LAST[:] = towers, found
    return found


def resolve(towers: Sequence[Tower]) -> dict[str, Space]:
    """{objective: its Space} over `towers`, in declaration order."""
    return plan(towers)[0]


def schedule(towers: Sequence[Tower]) -> tuple[Space, ...]:
    """The spaces of `towers` in the order their losses are computed: those that set
    several losses first (DR, with its imputation's), then the others in declaration
    order."""
    return plan(towers)[1]


def labelled_rows(
    objective: Objective, labels: Mapping[str, Tensor], towers: Sequence[Tower] = ()
) -> Tensor | None:
    """(B,) bool, the rows where `objective`'s own label is read and its prediction
    scored; None: all. These are the rows it admits, except for a conditional objective
    trained on every row ("entire", "ips", "dr"), whose label exists, and whose
    conditional prediction is scored, only where every label along its chain is 1
    (`towers` declare the chain); an imputation objective's are those of the objective
    it imputes. Without `towers`, an objective of its own space only."""
    towers = tuple(towers)
    by_name = declared(towers)
    if by_name.get(objective.name) == objective:
        return resolve(towers)[objective.name].rows(labels)
    if objective.imputes is None:
        return SPACES[objective.space](objective, towers).rows(labels)
    if objective.imputes not in by_name:
        raise ValueError(
            f"objective {objective.name!r}: the towers do not declare "
            f"{objective.imputes!r}, what it imputes"
        )
    return labelled_rows(by_name[objective.imputes], labels, towers)


# `sbmm.losses` reduces an objective's loss over its rows and resolves every model's
# spaces here: imported last, so that either module may be imported first.
from . import losses as _losses  # noqa: E402
