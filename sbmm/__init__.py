"""sbmm: multi-task, multi-objective ranking models for recommendation, centred on the shared-bottom model.

Data flows as: Batch (features, labels, truth) → inputs (embeddings + pooling, dense) → bottom → towers →
{objective: prediction} → per-objective losses (masks, sample weights) → weighted total → optimiser.
"""

from . import data, plot
from .claims import check
from .data import Batch
from .inputs import Categorical, Dense, InputLayer, MultiCategorical
from .metrics import objective_metrics
from .models import MultiTaskModel, SharedBottom
from .objectives import Objective, Tower, check_labels, multitask_loss, objective_loss
from .profile import PROFILES, Profile, default_device, profile, seed_everything
from .seed import SharedBottomMultiTaskModel
from .train import History, evaluate, fit, predict

__all__ = [
    "Batch",
    "Categorical",
    "Dense",
    "History",
    "InputLayer",
    "MultiCategorical",
    "MultiTaskModel",
    "Objective",
    "PROFILES",
    "Profile",
    "SharedBottom",
    "SharedBottomMultiTaskModel",
    "Tower",
    "check",
    "check_labels",
    "default_device",
    "evaluate",
    "fit",
    "multitask_loss",
    "objective_loss",
    "objective_metrics",
    "predict",
    "profile",
    "seed_everything",
]
