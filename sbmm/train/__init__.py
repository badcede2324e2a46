"""Training: `fit` (single process or data-parallel under torchrun), `evaluate`,
`predict`, checkpoints.

`python -m sbmm.train CONFIG.toml` runs a training from a config file (see `__main__`).
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .evaluation import evaluate, predict
from .history import History
from .loop import StepCallback, fit
from .replicas import Replicas, fit_replicas

__all__ = [
    "History",
    "Replicas",
    "StepCallback",
    "evaluate",
    "fit",
    "fit_replicas",
    "load_checkpoint",
    "predict",
    "save_checkpoint",
]
