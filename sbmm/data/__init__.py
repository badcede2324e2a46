"""Data: the `Batch` table, and the simulators the book teaches on."""

from .batch import Batch
from .feed import FeedConfig, FeedData, FeedSimulator, feed_features
from .synthetic import correlated_tasks, label_correlation

__all__ = [
    "Batch",
    "FeedConfig",
    "FeedData",
    "FeedSimulator",
    "correlated_tasks",
    "feed_features",
    "label_correlation",
]
