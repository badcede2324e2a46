"""Training: `fit` (single process or data-parallel under torchrun), `fit_replicas`,
the `TrainSpec` and epoch protocol they share, early stopping, convergence
(`History.converged`, `NotConverged`), a learning-rate sweep (`sweep_lr`), `evaluate`,
`predict`, `predict_joint`, checkpoints.

`python -m sbmm.train CONFIG.toml` runs a training from a config file (see `__main__`).
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .evaluation import evaluate, predict, predict_joint
from .history import History
from .loop import StepCallback, fit
from .protocol import NotConverged, TrainSpec
from .replicas import Replicas, fit_replicas
from .stopping import EarlyStopping
from .sweep import LrSweep, sweep_lr

__all__ = [
    "EarlyStopping",
    "History",
    "LrSweep",
    "NotConverged",
    "Replicas",
    "StepCallback",
    "TrainSpec",
    "evaluate",
    "fit",
    "fit_replicas",
    "load_checkpoint",
    "predict",
    "predict_joint",
    "save_checkpoint",
    "sweep_lr",
]
