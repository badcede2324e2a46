"""Training: `fit` (single process or data-parallel under torchrun), `fit_replicas`,
early stopping, `evaluate`, `predict`, `predict_joint`, checkpoints.

`python -m sbmm.train CONFIG.toml` runs a training from a config file (see `__main__`).
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .evaluation import evaluate, predict, predict_joint
from .history import History
from .loop import StepCallback, fit
from .replicas import Replicas, fit_replicas
from .stopping import EarlyStopping

__all__ = [
    "EarlyStopping",
    "History",
    "Replicas",
    "StepCallback",
    "evaluate",
    "fit",
    "fit_replicas",
    "load_checkpoint",
    "predict",
    "predict_joint",
    "save_checkpoint",
]
