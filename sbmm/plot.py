"""The book's standard figures (matplotlib): learning curves against a reference level,
paired comparisons across seeds with their intervals, and what a gated model's experts
do (gate weights over training, expert use per task)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from .compare import Comparison, compare
from .expert_diagnostics import ExpertDiagnostics, ExpertSnapshot
from .train import History

__all__ = [
    "learning_curves",
    "history_curves",
    "plot_paired",
    "plot_gate_weights",
    "plot_expert_use",
]


def learning_curves(
    curves: Mapping[str, Sequence[float]],
    *,
    title: str,
    ylabel: str,
    floors: Mapping[str, float] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """One line per named curve (values per epoch, epochs counted from 1) and a dashed
    horizontal line per named floor (a reference level such as the loss of predicting
    the mean)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    for i, (name, level) in enumerate((floors or {}).items()):
        ax.axhline(level, linestyle="--", color=f"C{len(curves) + i}", label=name)
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def history_curves(history: History, names: Sequence[str], **kwargs) -> Axes:
    """`learning_curves` of the training and validation loss of the objectives `names`
    from a `History`."""
    curves = {}
    for name in names:
        curves[f"{name} (train)"] = history.train_loss[name]
        if history.valid_loss:
            curves[f"{name} (validation)"] = history.valid_loss[name]
    return learning_curves(curves, **kwargs)


def plot_paired(
    a: Any,
    b: Any = None,
    *,
    names: tuple[str, str] = ("A", "B"),
    level: float = 0.95,
    higher_is_better: bool = True,
    title: str | None = None,
    ylabel: str | None = None,
    jitter: float = 0.15,
    horizontal: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """The per-seed differences A − B of one or several paired comparisons.

    Give either the scores `a` and `b` of one comparison (anything `compare` takes),
    or as `a` alone a dict {label: (a, b)} or {label: Comparison} for several side by
    side; `names`, `level` and `higher_is_better` go to `compare`. Each comparison
    gets a column: a point per seed (spread sideways by a fixed, seeded jitter of at
    most `jitter`), its mean and confidence interval as a black error bar, and its
    verdict under the label; a dashed line marks zero. `horizontal=True` gives each
    comparison a row instead, labelled "label: verdict" on the left, which keeps the
    labels legible when there are more than four (in a figure of its own, the title
    then spans the figure, labels and all). The axis of the differences is labelled
    `ylabel` (whichever way it runs), by default "A − B per seed". Returns the Axes.
    """
    if b is not None:
        a = {f"{names[0]} − {names[1]}": (a, b)}
    elif not isinstance(a, Mapping) or not a:
        raise ValueError("give the scores a and b, or a dict {label: (a, b)} as a")
    comparisons = {
        label: pair
        if isinstance(pair, Comparison)
        else compare(*pair, level=level, names=names, higher_is_better=higher_is_better)
        for label, pair in a.items()
    }
    n = len(comparisons)
    own_figure = ax is None
    if own_figure:
        size = (6.5, 0.6 * n + 1.8) if horizontal else (min(6.5, 1.6 * n + 2.5), 4)
        _, ax = plt.subplots(figsize=size)

    def place(position, difference):
        """(x, y) of a point drawn at a comparison's `position`."""
        return (difference, position) if horizontal else (position, difference)

    rng = np.random.default_rng(0)
    legend = set()
    for i, c in enumerate(comparisons.values()):
        ax.scatter(
            *place(i + rng.uniform(-jitter, jitter, c.n), c.differences),
            s=18,
            alpha=0.6,
            color=f"C{i}",
            zorder=2,
        )
        low, high = c.interval
        text = f"mean and {format(100 * c.level, '.6g')}% CI"
        error = {"xerr" if horizontal else "yerr": [[c.mean - low], [high - c.mean]]}
        ax.errorbar(
            *place(i, c.mean),
            **error,
            fmt="D",
            color="black",
            markersize=5,
            capsize=6,
            zorder=3,
            label=None if text in legend else text,
        )
        legend.add(text)
    if ylabel is None:
        pairs = {c.names for c in comparisons.values()}
        ylabel = " − ".join(pairs.pop()) if len(pairs) == 1 else "difference"
        ylabel += " per seed"
    if horizontal:
        ax.axvline(0, linestyle="--", color="grey", linewidth=1, zorder=1)
        ax.set_yticks(
            range(n), [f"{label}: {c.verdict}" for label, c in comparisons.items()]
        )
        ax.set_ylim(n - 0.5, -1.3)  # the first comparison on top, the legend above it
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # tick labels apart
        ax.set_xlabel(ylabel)
        if own_figure and title:  # over the whole figure: the labels take its left
            ax.figure.suptitle(title)
        else:
            ax.set_title(title or "")
    else:
        ax.axhline(0, linestyle="--", color="grey", linewidth=1, zorder=1)
        ax.set_xticks(
            range(n), [f"{label}\n{c.verdict}" for label, c in comparisons.items()]
        )
        ax.set_xlim(-0.5, n - 0.5)
        ax.set(title=title or "", ylabel=ylabel)
    ax.legend(loc="upper right" if horizontal else "best")
    ax.grid(alpha=0.3, axis="x" if horizontal else "y")
    return ax


def plot_gate_weights(
    diagnostics: ExpertDiagnostics,
    seed: int | None = None,
    *,
    title: str,
    tasks: Sequence[str] | None = None,
) -> np.ndarray:
    """Each task's mean gate weight on every expert over training, from one run's
    `ExpertDiagnostics` (`seed`: which run; may be left out when one was measured):
    one panel per task (`tasks`, by default all), one line per expert, epochs on the
    x-axis (0: before training). Lines of experts no task's gate sees are left out.
    Returns the Axes, one per task, side by side in 6.5 inches, in a figure of
    constrained layout (show it without `tight_layout`)."""
    epochs, use = diagnostics.series("use", seed)  # (n,), (n, E, T)
    snapshot = next(iter(diagnostics.snapshots.values()))[0]
    names = list(snapshot.tasks) if tasks is None else list(tasks)
    unknown = [t for t in names if t not in snapshot.tasks]
    if unknown or not names:
        raise ValueError(
            f"plot_gate_weights: tasks must name the model's towers "
            f"{list(snapshot.tasks)}, got {names}"
        )
    fig, axes = plt.subplots(
        1,
        len(names),
        figsize=(6.5, 3.8),
        sharey=True,
        squeeze=False,
        layout="constrained",  # room for the legend outside, on the right
    )
    for ax, task in zip(axes[0], names):
        j = snapshot.tasks.index(task)
        for e, expert in enumerate(snapshot.experts):
            if use[:, e, j].max() > 0:  # an expert this task's gate sees
                ax.plot(epochs, use[:, e, j], marker="o", markersize=3, label=expert)
        ax.set(title=task, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("mean gate weight")
    axes[0, 0].set_ylim(0, None)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, title="expert", loc="outside right upper")
    fig.suptitle(title)
    return axes[0]


def plot_expert_use(
    snapshot: ExpertSnapshot, *, title: str, ax: Axes | None = None
) -> Axes:
    """How much each task leans on each expert at one snapshot: per expert, one bar
    per task of its mean gate weight (`ExpertSnapshot.use`); the dashed line is the
    share 1/E every expert would get from a uniform gate over E experts. Experts whose
    hidden units are all dead are marked "dead" above their bars. Returns the Axes."""
    use = snapshot.use  # (E, T)
    n_experts, n_tasks = use.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    width = 0.8 / n_tasks
    x = np.arange(n_experts)
    for j, task in enumerate(snapshot.tasks):
        ax.bar(x + (j - (n_tasks - 1) / 2) * width, use[:, j], width, label=task)
    for e in np.flatnonzero(snapshot.dead >= 1):
        ax.text(e, use[e].max(), "dead", ha="center", va="bottom")
    ax.axhline(1 / n_experts, linestyle="--", color="grey", linewidth=1, label="1/E")
    ax.set_xticks(x, snapshot.experts)
    ax.set(title=title, xlabel="expert", ylabel="mean gate weight")
    ax.legend(title="task")
    ax.grid(alpha=0.3, axis="y")
    return ax
