"""The book's standard figures (matplotlib): learning curves against a reference level."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from .train import History

__all__ = ["learning_curves", "history_curves"]


def learning_curves(
    curves: Mapping[str, Sequence[float]],
    *,
    title: str,
    ylabel: str,
    floors: Mapping[str, float] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """One line per named curve (values per epoch, epochs counted from 1) and a dashed horizontal line per
    named floor (a reference level such as the loss of predicting the mean)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    for i, (name, level) in enumerate((floors or {}).items()):
        ax.axhline(level, linestyle="--", color=f"C{len(curves) + i}", label=name)
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def history_curves(history: History, names: Sequence[str], **kwargs) -> Axes:
    """`learning_curves` of the training and validation loss of the objectives `names` from a `History`."""
    curves = {}
    for name in names:
        curves[f"{name} (train)"] = history.train_loss[name]
        if history.valid_loss:
            curves[f"{name} (validation)"] = history.valid_loss[name]
    return learning_curves(curves, **kwargs)
