"""From a table to a `Batch`: a `Schema` says which columns are what, a `TableEncoder`
fitted on the training split turns any split into tensors and declares the features.

    frame (pandas DataFrame, or {column: array})
      ─► TableEncoder(schema).fit(train_frame)       vocabularies, dense statistics
      ─► .transform(frame) → Batch                    features + labels as tensors
      ─► .features                                    [Categorical, Dense, ...] for a
                                                      model's declaration

Categorical and multi-valued columns get a vocabulary fitted on the training split,
most frequent value first, with id 0 kept for values outside it (out of vocabulary:
unseen in training, or seen fewer than `min_count` times). Dense columns are scaled
with the training split's statistics only, so nothing about the validation or test
rows leaks into the inputs. Every column is checked when it is read, and a bad one is
refused with its name: a missing column, NaN in a categorical, a string in a dense
column, text or inf in a label (a missing label stays NaN: `fit` refuses it where an
objective reads it); an id column whose values are of another kind than in training
(text where integers were fitted: every row would be out of vocabulary); a
`min_count` that leaves a column no value of its own; a dense value that becomes inf
or 0 in float32 after scaling, or a column whose distinct values collapse there.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch

from ..inputs import Categorical, Dense, Feature, MultiCategorical
from ..validation import is_count, split_bounds
from .batch import Batch

__all__ = ["OOV", "Schema", "TableEncoder", "split_frame"]

OOV = 0  # the id of every value outside a column's vocabulary
Scaling = Literal["standard", "minmax", "none"]
# The kinds of raw values a column may hold, by pandas' inferred type of the column.
KINDS = {
    "integer": {"number"},
    "floating": {"number"},
    "mixed-integer-float": {"number"},
    "decimal": {"number"},
    "string": {"text"},
    "boolean": {"bool"},
    "empty": set(),
}
SAMPLE = 2**17  # rows drawn to see whether a dense column's values collapse


@dataclass(frozen=True)
class Schema:
    """Which columns of a table are what.

    categorical:  one raw value per row (any hashable: a string, an int code).
    dense:        real numbers.
    multi_valued: a list, tuple or array of raw values per row (tags, a history).
    labels:       what objectives train on: 0/1 for binary objectives, real numbers
                  for regression.
    """

    categorical: tuple[str, ...] = ()
    dense: tuple[str, ...] = ()
    multi_valued: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for role in ("categorical", "dense", "multi_valued", "labels"):
            names = getattr(self, role)
            if isinstance(names, str) or not isinstance(names, Sequence):
                raise TypeError(
                    f"Schema.{role} must be a sequence of column names, got {names!r}"
                )
            object.__setattr__(self, role, tuple(names))
            for name in names:
                if not isinstance(name, str) or not name:
                    raise ValueError(f"Schema.{role}: {name!r} is not a column name")
                if "." in name:
                    raise ValueError(
                        f"column {name!r}: a name must not contain '.' (PyTorch keys "
                        "embedding tables by it); rename the column"
                    )
                if name in seen:
                    raise ValueError(
                        f"column {name!r} is both {seen[name]} and {role} in the schema"
                    )
                seen[name] = role
        if not (self.categorical or self.dense or self.multi_valued):
            raise ValueError("a schema needs at least one feature column")

    @property
    def features(self) -> tuple[str, ...]:
        """The feature columns, in declaration order: categorical, dense,
        multi-valued."""
        return (*self.categorical, *self.dense, *self.multi_valued)


@dataclass
class TableEncoder:
    """Turns tables into `Batch`es, with what it learned from the training split.

    schema:    which columns are what.
    dim:       embedding width of every categorical and multi-valued feature, or
               {column: width} (columns not named get 8).
    min_count: a value needs this many training rows to get its own id; rarer ones
               share the out-of-vocabulary id 0, whose embedding then learns what an
               unseen value looks like (with 1 it is never trained, so unseen values
               at test time read its initial vector).
    scaling:   dense columns as (x − mean) / std ("standard"), (x − min) / (max − min)
               ("minmax"), or unchanged ("none"); statistics from the training split.
    pooling:   how a multi-valued feature's embeddings combine ("mean" or "sum").

    `fit(train)` learns the vocabularies and statistics and returns the encoder;
    `transform(frame)` → Batch; `features` are the declarations for a model.
    """

    schema: Schema
    dim: int | Mapping[str, int] = 8
    min_count: int = 1
    scaling: Scaling = "standard"
    pooling: Literal["mean", "sum"] = "mean"
    vocabularies: dict[str, pd.Index] = field(default_factory=dict, init=False)
    statistics: dict[str, tuple[float, float]] = field(default_factory=dict, init=False)
    # the kinds of raw values ("number", "text", ...) each id column was fitted on
    kinds: dict[str, set[str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.schema, Schema):
            raise TypeError(f"schema must be an sbmm Schema, got {self.schema!r}")
        if not is_count(self.min_count):
            raise ValueError(
                f"min_count must be an integer >= 1, got {self.min_count!r}"
            )
        if self.scaling not in ("standard", "minmax", "none"):
            raise ValueError(
                f"scaling must be 'standard', 'minmax' or 'none', got {self.scaling!r}"
            )
        if self.pooling not in ("mean", "sum"):
            raise ValueError(f"pooling must be 'mean' or 'sum', got {self.pooling!r}")
        widths = self.dim if isinstance(self.dim, Mapping) else {"": self.dim}
        for name, width in widths.items():
            if not is_count(width):
                where = f"dim of {name!r}" if name else "dim"
                raise ValueError(f"{where} must be an integer >= 1, got {width!r}")
        if isinstance(self.dim, Mapping):
            ids = {*self.schema.categorical, *self.schema.multi_valued}
            unknown = sorted(set(self.dim) - ids)
            if unknown:
                raise ValueError(
                    f"dim names {unknown}, which are not categorical or multi-valued "
                    "columns of the schema"
                )

    def fit(self, frame: pd.DataFrame | Mapping[str, object]) -> TableEncoder:
        """Learn each categorical and multi-valued column's vocabulary and each dense
        column's statistics from `frame`, the training split. Returns the encoder."""
        frame = _as_frame(frame)
        if len(frame) == 0:
            raise ValueError("the training table has no rows")
        for name in self.schema.categorical:
            values = _categorical(frame, name)
            self.vocabularies[name] = self._vocabulary(name, values)
            self.kinds[name] = _kinds(values)
        for name in self.schema.multi_valued:
            _, values = _lists(frame, name)
            self.vocabularies[name] = self._vocabulary(name, values)
            self.kinds[name] = _kinds(values)
        for name in self.schema.dense:
            x = _numbers(frame, name, "dense column")
            if self.scaling == "minmax":
                low, high = float(x.min()), float(x.max())
                self.statistics[name] = (low, high - low or 1.0)
            elif self.scaling == "standard":
                with np.errstate(over="ignore"):  # refused below, naming the column
                    self.statistics[name] = (float(x.mean()), float(x.std()) or 1.0)
            else:
                self.statistics[name] = (0.0, 1.0)
            if not all(map(math.isfinite, self.statistics[name])):
                raise ValueError(
                    f"dense column {name!r}: its {self.scaling} scaling statistics "
                    f"overflow (values from {x.min():g} to {x.max():g}); clip it or "
                    "take its logarithm first"
                )
            _check_collapse(name, x, self._scaled(name, x), self.scaling)
        return self

    def transform(
        self, frame: pd.DataFrame | Mapping[str, object], labels: bool = True
    ) -> Batch:
        """The rows of `frame` as a Batch: {column: (N,) int64 ids} for categorical,
        (N,) float32 for dense (scaled), (N, L) int64 ids padded with -1 for
        multi-valued features; labels (N,) float32, NaN where a label is missing (a
        like never recorded: `fit` refuses it only in rows an objective reads), and
        skipped when `labels` is False, for rows to predict on."""
        self._check_fitted()
        frame = _as_frame(frame)
        features: dict[str, torch.Tensor] = {}
        for name in self.schema.categorical:
            values = _categorical(frame, name)
            self._check_kinds(name, values, "categorical column", lambda i: i)
            features[name] = torch.from_numpy(self._ids(name, values))  # (N,)
        for name in self.schema.dense:
            x = self._scaled(name, _numbers(frame, name, "dense column"))
            features[name] = torch.from_numpy(x)  # (N,)
        for name in self.schema.multi_valued:
            lengths, values = _lists(frame, name)
            self._check_kinds(name, values, "multi-valued column", _row_of(lengths))
            features[name] = self._padded(name, lengths, values)  # (N, L)
        targets = {}
        if labels:
            for name in self.schema.labels:
                y = _numbers(frame, name, "label column", missing=True)
                targets[name] = torch.from_numpy(y.astype(np.float32))  # (N,)
        return Batch(features, targets)

    def fit_transform(self, frame: pd.DataFrame | Mapping[str, object]) -> Batch:
        """`fit(frame)`, then `transform(frame)`."""
        return self.fit(frame).transform(frame)

    @property
    def features(self) -> list[Feature]:
        """The feature declarations for a model, in the schema's order; a categorical
        feature's vocabulary holds its fitted values and the out-of-vocabulary id."""
        self._check_fitted()
        out: list[Feature] = []
        for name in self.schema.categorical:
            out.append(Categorical(name, self._size(name), self._dim(name)))
        out += [Dense(name) for name in self.schema.dense]
        for name in self.schema.multi_valued:
            size, dim = self._size(name), self._dim(name)
            out.append(MultiCategorical(name, size, dim, pooling=self.pooling))
        return out

    def _check_fitted(self) -> None:
        if not self.vocabularies and not self.statistics:
            raise RuntimeError("the encoder is not fitted: call fit(train) first")

    def _vocabulary(self, name: str, values: pd.Series) -> pd.Index:
        """The values seen at least `min_count` times, most frequent first (ties in
        order of first appearance); value i of it gets id i + 1. A ValueError naming
        the column when `min_count` leaves none of its values."""
        counts = values.value_counts(sort=False).sort_values(
            ascending=False, kind="stable"
        )
        vocabulary = pd.Index(counts.index[counts.to_numpy() >= self.min_count])
        if len(counts) and not len(vocabulary):
            raise ValueError(
                f"column {name!r}: min_count={self.min_count} leaves it no value of "
                f"its own (its most frequent value appears {counts.iloc[0]} times in "
                "the training split), so every row would be out of vocabulary; lower "
                "min_count"
            )
        return vocabulary

    def _check_kinds(self, name: str, values: pd.Series, what: str, row_of) -> None:
        """Refuse values of a kind the column was not fitted on (text where numbers
        were): each would be out of vocabulary. `row_of` maps a value's position to
        its row."""
        fitted = self.kinds[name]
        new = _kinds(values) - fitted
        if not (fitted and new):
            return
        first = next(i for i, v in enumerate(values) if _kind(v) in new)
        value = values.iloc[first]
        raise ValueError(
            f"{what} {name!r} was fitted on {' and '.join(sorted(fitted))} values but "
            f"holds {' and '.join(sorted(new))} values (the first {value!r} in row "
            f"{row_of(first)}), each of which would be out of vocabulary; read "
            "every split with the same types (a CSV reader makes a whole column text "
            "when one value is not a number)"
        )

    def _scaled(self, name: str, x: np.ndarray) -> np.ndarray:
        """The dense column `name`'s values `x` scaled and as float32; a ValueError
        naming the column and row for a value that becomes inf or 0 there."""
        shift, scale = self.statistics[name]
        scaled = (x - shift) / scale
        with np.errstate(over="ignore"):
            single = scaled.astype(np.float32)
        lost = (np.isinf(single) & np.isfinite(scaled)) | (
            (single == 0) & (scaled != 0)
        )
        if lost.any():
            row = int(np.argmax(lost))
            raise ValueError(
                f"dense column {name!r}: {float(x[row])!r} in row {row} becomes "
                f"{single[row]} in float32 after {self.scaling} scaling (shift "
                f"{shift:g}, scale {scale:g}); clip it, take its logarithm or scale "
                "the column first"
            )
        return single

    def _ids(self, name: str, values: pd.Series) -> np.ndarray:
        """Each value's id: its place in the vocabulary + 1, or `OOV`."""
        return (
            self.vocabularies[name].get_indexer(values).astype(np.int64) + 1
        )  # -1 → 0

    def _padded(
        self, name: str, lengths: np.ndarray, values: pd.Series
    ) -> torch.Tensor:
        """Each row's ids, left-aligned and padded with -1: (N, longest row or 1)."""
        ids = np.full((len(lengths), max(1, lengths.max(initial=0))), -1, np.int64)
        keep = np.arange(ids.shape[1]) < lengths[:, None]  # (N, L), row-major order
        ids[keep] = self._ids(name, values)
        return torch.from_numpy(ids)

    def _size(self, name: str) -> int:
        return len(self.vocabularies[name]) + 1  # the vocabulary and the OOV id

    def _dim(self, name: str) -> int:
        return self.dim.get(name, 8) if isinstance(self.dim, Mapping) else self.dim


def split_frame(
    frame: pd.DataFrame, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[pd.DataFrame, ...]:
    """Shuffle the rows with `seed` and cut them into consecutive parts of the given
    fractions (positive, summing to 1; the last part takes the rounding remainder), so
    that encoders can be fitted on the first part alone."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"split_frame takes a DataFrame, got {type(frame).__name__}")
    if not is_count(seed, 0):
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    bounds = split_bounds(len(frame), fractions)
    order = np.random.default_rng(seed).permutation(len(frame))
    return tuple(
        frame.iloc[order[a:b]].reset_index(drop=True)
        for a, b in itertools.pairwise(bounds)
    )


def _kind(value: object) -> str:
    """What a raw value is: "bool", "number", "text", or its type's name."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Number):
        return "number"
    return "text" if isinstance(value, str) else type(value).__name__


def _kinds(values: pd.Series) -> set[str]:
    """The kinds of raw values in `values` (see `_kind`)."""
    inferred = pd.api.types.infer_dtype(values, skipna=False)
    if inferred in KINDS:
        return set(KINDS[inferred])
    return {_kind(v) for v in values.unique()}


def _row_of(lengths: np.ndarray):
    """For a multi-valued column of rows of `lengths` values: a value's position, all
    rows' values in a row → its row."""
    ends = np.cumsum(lengths)
    return lambda position: int(np.searchsorted(ends, position, "right"))


def _check_collapse(name: str, x: np.ndarray, single: np.ndarray, scaling: str):
    """Refuse a dense column whose distinct training values `x` mostly merge once
    scaled to float32 (`single`): an outlier that squeezes the others together, or
    large values left unscaled. Judged on a sample of rows."""
    if len(x) > SAMPLE:
        rows = np.random.default_rng(0).integers(0, len(x), SAMPLE)
        x, single = x[rows], single[rows]
    distinct, kept = len(np.unique(x)), len(np.unique(single))
    if kept <= min(distinct, 2**16) / 2:
        raise ValueError(
            f"dense column {name!r}: its {distinct} distinct values (from {x.min():g} "
            f"to {x.max():g}) become {kept} in float32 after {scaling} scaling; an "
            "outlier, or large values unscaled? Clip it, take its logarithm or scale "
            "the column first"
        )


def _as_frame(frame: pd.DataFrame | Mapping[str, object]) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    if isinstance(frame, Mapping):
        for name, column in frame.items():
            if np.ndim(column) > 1 and not _is_ragged(column):
                raise ValueError(
                    f"column {name!r} has shape {np.shape(column)}; a table's columns "
                    "hold one value (or, multi-valued, one list) per row"
                )
        return pd.DataFrame(
            {k: list(v) if _is_ragged(v) else v for k, v in frame.items()}
        )
    raise TypeError(
        f"a table must be a pandas DataFrame or a dict of columns, got "
        f"{type(frame).__name__}"
    )


def _is_ragged(column: object) -> bool:
    return isinstance(column, np.ndarray) and column.dtype == object


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        raise ValueError(
            f"column {name!r} is missing from the table (it has {list(frame.columns)})"
        )
    return frame[name]


def _categorical(frame: pd.DataFrame, name: str) -> pd.Series:
    values = _column(frame, name)
    missing = values.isna()
    if missing.any():
        raise ValueError(
            f"categorical column {name!r} holds {int(missing.sum())} missing values "
            f"(NaN or None), the first in row {int(np.argmax(missing.to_numpy()))}; "
            "fill them with a value of their own (e.g. 'unknown') if missing means "
            "something"
        )
    return values


def _numbers(
    frame: pd.DataFrame, name: str, what: str, missing: bool = False
) -> np.ndarray:
    """The column `name` as float64; a ValueError naming it for text, inf, or (unless
    `missing`, when they stay NaN) missing values."""
    values = _column(frame, name)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers)
    if missing:
        bad &= ~values.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{what} {name!r} holds {int(bad.sum())} values that are not finite "
            f"numbers, the first {values.iloc[row]!r} in row {row}"
        )
    return numbers


def _lists(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, pd.Series]:
    """The multi-valued column `name` as each row's number of values (N,) and all the
    values, row after row; an error naming the column and row for a cell that is not
    a list, tuple or array, or a value that is missing."""
    cells = _column(frame, name).tolist()
    for row, cell in enumerate(cells):
        if isinstance(cell, (str, bytes)) or not isinstance(
            cell, (list, tuple, np.ndarray)
        ):
            raise TypeError(
                f"multi-valued column {name!r} must hold a list, tuple or array per "
                f"row; row {row} holds {cell!r}"
            )
    lengths = np.fromiter(map(len, cells), np.int64, len(cells))
    if cells and all(isinstance(cell, np.ndarray) for cell in cells):
        values = pd.Series(np.concatenate([c.reshape(-1) for c in cells]))  # fast path
    else:
        values = pd.Series(list(itertools.chain.from_iterable(cells)), dtype=object)
    missing = values.isna().to_numpy()
    if missing.any():
        row = _row_of(lengths)(int(np.argmax(missing)))
        raise ValueError(
            f"multi-valued column {name!r} holds a missing value (NaN or None) in "
            f"row {row}"
        )
    return lengths, values
