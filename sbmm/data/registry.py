"""Data sets by name: what a run's `[data] dataset = "..."` reads (`sbmm.train`).

Each entry is a function (path, fractions, seed, **options) → `Splits`, the train,
valid and test tables and their `Schema`, ready for a `TableEncoder` fitted on the
training table; its keyword-only options are the [data] keys a config may give it.
Adding a data set is one decorated function in any module imported before the config
is read:

    @register("movielens")
    def movielens(path, fractions, seed, *, nrows=None) -> Splits: ...

`path` is the folder the data set was downloaded to, or the entry's own `path` when
the config names none (only Census-Income, whose test file the repository holds, has
one).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from .census import DATA, load_census
from .encoding import Schema, split_frame
from .logs import load_aliccp, load_aliexpress, load_kuairand

__all__ = ["DATASETS", "Dataset", "Splits", "dataset", "register"]


class Splits(NamedTuple):
    """A data set's three tables and the schema that says which columns are what."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    schema: Schema


@dataclass(frozen=True)
class Dataset:
    """A data set a config can name: how to `load` it, and its default `path`."""

    name: str
    load: Callable[..., Splits]
    path: Path | None = None

    @property
    def options(self) -> tuple[str, ...]:
        """The keyword-only options `load` takes (the [data] keys of its own)."""
        parameters = inspect.signature(self.load).parameters.values()
        return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)


DATASETS: dict[str, Dataset] = {}


def register(name: str, path: str | os.PathLike | None = None):
    """A decorator that makes a loader of `Splits` a data set a config can name."""

    def add(load: Callable[..., Splits]) -> Callable[..., Splits]:
        DATASETS[name] = Dataset(name, load, None if path is None else Path(path))
        return load

    return add


def dataset(name: object) -> Dataset:
    """The data set registered as `name`; a ValueError naming it and the known ones."""
    if name not in DATASETS:
        raise ValueError(
            f"no data set is named {name!r}; known: {', '.join(sorted(DATASETS))}"
        )
    return DATASETS[name]


def _train_and_test(read: Callable[[str], tuple], fractions, seed: int) -> Splits:
    """A data set published as a train and a test split: train is the training
    split and the test split is halved (with `seed`) into valid and test, as in the
    papers' set-ups; with the training split alone, it is cut by `fractions`."""
    train, schema = read("train")
    try:
        test, _ = read("test")
    except FileNotFoundError:
        return Splits(*split_frame(train, fractions, seed), schema)
    return Splits(train, *split_frame(test, (0.5, 0.5), seed), schema)


@register("census", path=DATA)
def census(path: Path, fractions: Iterable[float], seed: int) -> Splits:
    """UCI's Census-Income (KDD), the MMoE paper's benchmark (`load_census`)."""
    data = load_census(path, tuple(fractions), seed)
    return Splits(data.train, data.valid, data.test, data.schema)


@register("aliccp")
def aliccp(
    path: Path, fractions: Iterable[float], seed: int, *, nrows: int | None = None
) -> Splits:
    """Ali-CCP's impressions (`load_aliccp`), `nrows` of each split at most."""
    return _train_and_test(
        lambda split: load_aliccp(path, split, nrows), fractions, seed
    )


@register("kuairand")
def kuairand(
    path: Path,
    fractions: Iterable[float],
    seed: int,
    *,
    variant: str = "pure",
    log: str = "standard",
    nrows: int | None = None,
) -> Splits:
    """KuaiRand's impressions (`load_kuairand`), cut by `fractions`."""
    frame, schema = load_kuairand(path, variant, log, nrows)
    return Splits(*split_frame(frame, fractions, seed), schema)


@register("aliexpress")
def aliexpress(
    path: Path,
    fractions: Iterable[float],
    seed: int,
    *,
    countries: Iterable[str] | str = ("NL",),
    nrows: int | None = None,
) -> Splits:
    """AliExpress's impressions in `countries` (`load_aliexpress`)."""
    countries = countries if isinstance(countries, str) else tuple(countries)

    def read(split: str) -> tuple:
        return load_aliexpress(path, countries, split, nrows)

    return _train_and_test(read, fractions, seed)
