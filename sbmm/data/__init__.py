"""Data: the `Batch` table, the way in from real tables (`Schema`, `TableEncoder`,
loaders), the book's simulators, and how their truth scores labels.

The way in from tables needs pandas, so its names (`Schema`, `TableEncoder`,
`load_census`, the log loaders, ...) are imported on first use, not with `sbmm.data`.
"""

import importlib

from .batch import Batch
from .feed import (
    FEED_TRUTH_SPECS,
    FeedConfig,
    FeedData,
    FeedSimulator,
    Latent,
    Requests,
    feed_features,
)
from .synthetic import CORRELATED_TASKS_TRUTH_SPECS, correlated_tasks, label_correlation
from .truth import TruthSpec, truth_specs

# {name: the submodule that defines it}, for the names that need pandas
_ON_FIRST_USE = {
    "CENSUS_SCHEMA": "census",
    "CensusIncome": "census",
    "load_census": "census",
    "OOV": "encoding",
    "Schema": "encoding",
    "TableEncoder": "encoding",
    "split_frame": "encoding",
    "load_aliccp": "logs",
    "load_aliexpress": "logs",
    "load_kuairand": "logs",
}
_SUBMODULES = frozenset(_ON_FIRST_USE.values())


def __getattr__(name: str):
    """The pandas-backed name or submodule `name`, imported now (PEP 562); an
    AttributeError for any other name."""
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _ON_FIRST_USE:
        module = importlib.import_module(f".{_ON_FIRST_USE[name]}", __name__)
        value = globals()[name] = getattr(module, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_ON_FIRST_USE, *_SUBMODULES})


__all__ = [
    "Batch",
    "CENSUS_SCHEMA",
    "CensusIncome",
    "OOV",
    "Schema",
    "TableEncoder",
    "load_aliccp",
    "load_aliexpress",
    "load_census",
    "load_kuairand",
    "split_frame",
    "CORRELATED_TASKS_TRUTH_SPECS",
    "FEED_TRUTH_SPECS",
    "FeedConfig",
    "FeedData",
    "FeedSimulator",
    "Latent",
    "Requests",
    "TruthSpec",
    "correlated_tasks",
    "feed_features",
    "label_correlation",
    "truth_specs",
]
