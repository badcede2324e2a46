"""Data: the `Batch` table, the way in from real tables (`Schema`, `TableEncoder`,
loaders), the book's simulators, and how their truth scores labels."""

from .batch import Batch
from .census import CENSUS_SCHEMA, CensusIncome, load_census
from .encoding import OOV, Schema, TableEncoder, split_frame
from .logs import load_aliccp, load_aliexpress, load_kuairand
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
