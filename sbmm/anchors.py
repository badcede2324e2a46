"""Anchors: a model's score beside the scores that give it a meaning.

An AUC of 0.70 is poor where the features allow 0.90, and near the ceiling where they
allow 0.71. On a simulator's test set, each objective's score sits among three anchors,
all against the same observed labels, on the same rows:

    constant    the best constant: the base rate (binary) or the mean label of the rows
    attainable  the attainable truth, the label's expectation given the features: the
                best any model of the features can do (on a finite test set, up to
                sampling error)
    truth       the noisy truth: it also knows the per-impression noise that no feature
                explains, so it scores above the ceiling; no model closes that last gap

and the share of the attainable gap closed,

    (model − constant) / (attainable − constant):

0 for the constant, 1 for a model that predicts the attainable truth. Binary objectives
get AUC and log loss, regression ones RMSE; a label with a parent (like, among clicks)
is scored on the rows where its parent label is 1.

Use::

    test = data.test
    table = sbmm.anchor_table(sbmm.predict(model, test), test, data.truth_specs)
    table                              # a table in a notebook; print(table) as text
    table["like", "auc"].share         # one row
    sbmm.gap_closed(prediction["like"], test, data.truth_specs["like"])
    sbmm.gap_closed_by_run([sbmm.predict(m, test) for m in models], test, specs)

Predictions are keyed by the label they score: rename or rescale others first (for a
model of the stay time in units of 3 s, ``{"stay_time": 3 * prediction["stay_u"]}``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from . import kinds
from .data.batch import Batch
from .data.truth import TruthSpec
from .tables import Table

__all__ = ["Anchor", "AnchorTable", "anchor_table", "gap_closed", "gap_closed_by_run"]

Specs = Mapping[str, TruthSpec] | Iterable[TruthSpec]


@dataclass(frozen=True)
class Anchor:
    """One objective's score under one metric, beside its anchors.

    metric:   "auc" (higher is better), "logloss" or "rmse" (lower is better).
    n:        the rows scored.
    constant, model, attainable, truth: the metric of the best constant, of the model,
              of the attainable truth and of the noisy truth, against the labels of
              those rows; NaN where undefined (no rows, or an AUC over one class).
    """

    objective: str
    metric: str
    n: int
    constant: float
    model: float
    attainable: float
    truth: float

    @property
    def share(self) -> float:
        """(model − constant) / (attainable − constant): the share of the attainable gap
        closed; NaN when the attainable truth does no better than the constant."""
        gap = self.attainable - self.constant
        return (self.model - self.constant) / gap if gap != 0 else math.nan


@dataclass(frozen=True, repr=False)
class AnchorTable:
    """Anchor rows, one per objective and metric; ``table[objective, metric]`` is a row.

    Prints as a text table (`str`) and as an HTML table in a notebook.
    """

    rows: tuple[Anchor, ...]

    def __getitem__(self, key: tuple[str, str]) -> Anchor:
        for row in self.rows:
            if (row.objective, row.metric) == key:
                return row
        raise KeyError(key)

    def __iter__(self) -> Iterator[Anchor]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        """The header and, per row, its cells as text."""
        header = [f.name for f in fields(Anchor)] + ["gap closed"]
        body = [
            [row.objective, row.metric, f"{row.n:,}"]
            + [f"{v:.4f}" for v in (row.constant, row.model, row.attainable, row.truth)]
            + [f"{row.share:.1%}"]
            for row in self.rows
        ]
        return header, body

    def _table(self) -> Table:
        header, body = self._cells()
        return Table(tuple(header), tuple(map(tuple, body)), left=2)

    def __str__(self) -> str:
        return str(self._table())

    __repr__ = __str__  # a notebook's plain-text view: the table, at 4 decimals

    def _repr_html_(self) -> str:
        return self._table()._repr_html_()


def anchor_table(
    predictions: Mapping[str, Tensor | ArrayLike], batch: Batch, specs: Specs
) -> AnchorTable:
    """The anchors of every objective of `predictions`, on `batch` (a test set).

    predictions: {objective: (N,) logits (binary) or values (regression)}, as
                 `sbmm.predict` returns them, keyed by the label each scores;
                 N = len(batch).
    batch:       the labels, and the truth and attainable columns of each spec.
    specs:       {label: TruthSpec} (`FeedData.truth_specs`), or TruthSpecs.
    Returns an AnchorTable: per objective, rows "auc" and "logloss" (binary) or "rmse".
    Raises ValueError naming an objective without a spec, a missing column, a bad shape.
    """
    by_label = _by_label(specs)
    rows = []
    for objective, prediction in predictions.items():
        if objective not in by_label:
            declared = sorted(by_label)
            raise ValueError(
                f"unknown objective {objective!r}: the truth specs declare {declared}"
            )
        spec = by_label[objective]
        metrics = kinds.get(spec.kind).metrics
        rows += _anchors(objective, prediction, batch, spec, metrics)
    return AnchorTable(tuple(rows))


def gap_closed(
    prediction: Tensor | ArrayLike,
    batch: Batch,
    spec: TruthSpec,
    metric: str | None = None,
) -> float:
    """The share of the attainable gap that `prediction` (N,) (logits or values)
    closes on the label of `spec` over `batch`, under `metric`: "auc" (the default) or
    "logloss" for a binary label, "rmse" for a regression one. 0: no better than the
    constant; 1: as good as the attainable truth."""
    if not isinstance(spec, TruthSpec):
        raise TypeError(f"spec must be a TruthSpec, got {type(spec).__name__}")
    allowed = kinds.get(spec.kind).metrics  # first: the default
    metric = allowed[0] if metric is None else metric
    if metric not in allowed:
        raise ValueError(
            f"metric {metric!r} does not score a {spec.kind} label; "
            f"use one of {allowed}"
        )
    return _anchors(spec.label, prediction, batch, spec, (metric,))[0].share


def gap_closed_by_run(
    predictions: Sequence[Mapping[str, Tensor | ArrayLike]],
    batch: Batch,
    specs: Specs,
    metric: str | None = None,
) -> np.ndarray:
    """(runs, objectives): the share of the attainable gap each run closes on each
    objective of `specs`, in their order, as `gap_closed` scores it.

    predictions: one {objective: (N,) logits or values} per run (a seed, a model), as
                 `sbmm.predict` returns them, keyed by the label each scores.
    Raises ValueError naming a run that lacks an objective of `specs`."""
    by_label = _by_label(specs)
    shares = np.empty((len(predictions), len(by_label)))
    for i, prediction in enumerate(predictions):
        for j, (label, spec) in enumerate(by_label.items()):
            if label not in prediction:
                raise ValueError(
                    f"run {i} has no prediction for objective {label!r}; "
                    f"it predicts {sorted(prediction)}"
                )
            shares[i, j] = gap_closed(prediction[label], batch, spec, metric)
    return shares


def _by_label(specs: Specs) -> dict[str, TruthSpec]:
    values = list(specs.values() if isinstance(specs, Mapping) else specs)
    for spec in values:
        if not isinstance(spec, TruthSpec):
            raise TypeError(f"specs must be TruthSpecs, got {type(spec).__name__}")
    return {spec.label: spec for spec in values}


def _anchors(
    objective: str,
    prediction: Tensor | ArrayLike,
    batch: Batch,
    spec: TruthSpec,
    metrics: tuple[str, ...],
) -> list[Anchor]:
    """The Anchor of `objective` under each of `metrics`, on the rows `spec` scores."""
    needed = [("label", batch.labels, spec.label), ("truth", batch.truth, spec.truth)]
    needed += [("truth", batch.truth, spec.attainable)]
    needed += [("label", batch.labels, spec.parent)] if spec.parent is not None else []
    for part, table, name in needed:
        if name not in table:
            raise ValueError(
                f"objective {objective!r}: the batch has no {part} column {name!r}"
            )
    score = torch.as_tensor(prediction).detach().double().cpu()
    if score.shape != (len(batch),):
        raise ValueError(
            f"objective {objective!r}: prediction of shape {tuple(score.shape)} for a "
            f"batch of {len(batch)} rows; expected ({len(batch)},)"
        )
    if not torch.isfinite(score).all():
        raise ValueError(
            f"objective {objective!r}: prediction holds NaN or infinite values"
        )

    rows = spec.rows(batch).cpu()
    column = lambda t: t.detach().double().cpu()[rows].numpy()  # noqa: E731 (N,) → (n,)
    y = column(batch.labels[spec.label])
    kind = kinds.get(spec.kind)
    score = kind.mean(score)  # logits → probabilities; values stay
    n = len(y)
    scores = {  # (n,) each; the best constant is the base rate, or the mean label
        "constant": np.full(n, y.mean() if n else math.nan),
        "model": score[rows].numpy(),
        "attainable": column(batch.truth[spec.attainable]),
        "truth": column(batch.truth[spec.truth]),
    }
    return [
        Anchor(
            objective,
            metric,
            n,
            **{k: kind.metric(metric, y, s) for k, s in scores.items()},
        )
        for metric in metrics
    ]
