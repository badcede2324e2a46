"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the model's and the optimiser's state, the weighting strategy's state, the `History`
so far, the number of finished epochs, the best epoch's weights (with `fit(keep_best=True)`) and the
random generators' states (so the next epoch shuffles as
the uninterrupted run would have). It is written atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(
    path: str | os.PathLike, *, model, optimizer, weighting, history, epoch: int, best_model: dict | None = None
) -> None:
    """Write the run's state after `epoch` finished epochs to `path` (`best_model`: the best epoch's
    state_dict, when the run keeps it)."""
    path = Path(path)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "weighting": weighting.state_dict(),
        "history": asdict(history),
        "epoch": epoch,
        "best_model": best_model,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location: torch.device | str = "cpu") -> dict:
    """The state saved by `save_checkpoint` (a dict with model, optimizer, weighting, history, epoch,
    best_model, rng)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=False)
