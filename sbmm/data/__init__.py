"""Data: the `Batch` table, the book's simulators, and how their truth scores labels."""

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

__all__ = [
    "Batch",
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
