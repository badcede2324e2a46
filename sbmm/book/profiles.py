"""Profiles: how big a chapter's experiments are.

`SBMM_PROFILE` unset (or "default") gives sizes that run a chapter on a laptop CPU in a
few minutes; `SBMM_PROFILE=full` gives GPU-sized data, epochs and seeds. A profile
changes sizes, never the code path. A chapter starts with `from sbmm import book` and
`P = book.use_profile()`: the profile, with its CPU thread count applied.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass

import torch

from ..train.protocol import NotConverged
from .figures import use_book_style

__all__ = ["Profile", "PROFILES", "profile", "use_profile", "FIRST_WORLD"]


@dataclass(frozen=True)
class Profile:
    name: str
    n_samples: int  # samples (impressions) a chapter simulates for its main data set
    epochs: int  # training epochs per model
    n_seeds: int  # repeated runs behind every spread or mean
    batch_size: int  # training batch size
    # PyTorch's CPU threads, or None to leave PyTorch's choice. The default profile's
    # small models run fastest on one thread, and one thread makes results repeat to the
    # printed digit on any CPU.
    threads: int | None = None


PROFILES = {
    "default": Profile(
        "default", n_samples=20_000, epochs=10, n_seeds=3, batch_size=256, threads=1
    ),
    "full": Profile("full", n_samples=500_000, epochs=20, n_seeds=5, batch_size=4096),
}


# The feed world the first chapters were measured on, before the default world was made
# small enough to learn (FeedConfig's defaults); a chapter passes it to FeedSimulator
# until its rework moves it to the default world.
FIRST_WORLD = dict(n_users=2_000, n_items=1_000, n_authors=100, latent_dim=8)


def profile() -> Profile:
    """The profile named by the SBMM_PROFILE environment variable
    (unset or empty: "default")."""
    name = os.environ.get("SBMM_PROFILE", "").strip() or "default"
    if name not in PROFILES:
        raise ValueError(
            f"SBMM_PROFILE must be one of {sorted(PROFILES)}, got {name!r}"
        )
    return PROFILES[name]


def use_profile() -> Profile:
    """`profile()`, after setting PyTorch's CPU thread count to the profile's `threads`
    (if it sets one), matplotlib to the book's figure style, and the runs'
    `NotConverged` warnings to print as one plain line (in a notebook, one line per
    cell that tallies them): what a chapter's first cell calls."""
    use_book_style()
    warnings.formatwarning = _plain_not_converged
    _tally_not_converged_per_cell()
    chosen = profile()
    if chosen.threads is not None:
        torch.set_num_threads(chosen.threads)
    return chosen


_FORMAT_WARNING = warnings.formatwarning


def _plain_not_converged(message, category, filename, lineno, line=None) -> str:
    """A `NotConverged` warning as "NotConverged: ..." alone: on a page, the kernel's
    temporary file and line say nothing to a reader and change from run to run.
    Every other warning as Python formats it."""
    if issubclass(category, NotConverged):
        return f"{category.__name__}: {message}\n"
    return _FORMAT_WARNING(message, category, filename, lineno, line)


def _tally_not_converged_per_cell() -> None:
    """In a notebook (IPython), hold a cell's `NotConverged` warnings and print them
    at the cell's end as one line that tallies them: a cell that trains twenty
    models says once that they were still improving, and which objectives. Outside
    IPython, or called again, it does nothing."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "_sbmm_tallies", False):
        return
    held: list[NotConverged] = []
    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, NotConverged):
            held.append(message)
        else:
            show(message, category, filename, lineno, file, line)

    def tally(result) -> None:
        if held:
            print(_tally(held), file=sys.stderr)
            held.clear()

    warnings.simplefilter("always", NotConverged)  # count every call, not the first
    warnings.showwarning = showwarning
    shell.events.register("post_run_cell", tally)
    shell._sbmm_tallies = True


def _tally(held: list[NotConverged]) -> str:
    """One line for a cell's `NotConverged` warnings."""
    if len(held) == 1:
        return f"NotConverged: {held[0]}"
    names = ", ".join(map(repr, dict.fromkeys(n for w in held for n in w.objectives)))
    improving = sum(w.runs[0] for w in held)
    trained = sum(w.runs[1] for w in held)
    return (
        f"NotConverged: {len(held)} training calls in this cell ended with {names} "
        f"still improving at the last epoch ({improving} of their {trained} runs). "
        "Train longer (more epochs or a higher learning rate) before comparing; "
        "History.converged() reports each objective"
    )
