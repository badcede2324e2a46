"""Data: the `Batch` table, and the simulators the book teaches on."""

from .batch import Batch

__all__ = ["Batch"]
