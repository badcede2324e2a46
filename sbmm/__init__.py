"""sbmm: multi-task, multi-objective ranking models for recommendation, centred on the
shared-bottom model.

Data flows as: Batch (features, labels, truth) → inputs (embeddings + pooling, dense) →
bottom → towers → {objective: prediction} → per-objective losses
(masks, sample weights) → weighted total → optimiser.
"""

from . import anchors, book, data, debias, diagnostics, fusion, plot, weighting
from .anchors import AnchorTable, anchor_table, gap_closed, gap_closed_by_run
from .book import (
    PROFILES,
    Profile,
    SharedBottomMultiTaskModel,
    check,
    profile,
    use_profile,
)
from .compare import Comparison, compare, mean_interval
from .data import Batch, CensusIncome, Schema, TableEncoder, TruthSpec, load_census
from .inputs import Categorical, Dense, InputLayer, MultiCategorical
from .metrics import objective_metrics
from .models import MMoE, OMoE, PLE, MultiTaskModel, SharedBottom, SingleTask
from .losses import (
    check_labels,
    multitask_loss,
    objective_loss,
    objective_losses,
    sample_weights,
)
from .objectives import Objective, Tower, admitted
from .sample_weights import SampleWeight
from .runtime import default_device, seed_everything
from .tables import Table, table
from .train import (
    EarlyStopping,
    History,
    Replicas,
    evaluate,
    fit,
    fit_replicas,
    load_checkpoint,
    predict,
    predict_joint,
    save_checkpoint,
)

__all__ = [
    "AnchorTable",
    "TruthSpec",
    "anchor_table",
    "gap_closed",
    "gap_closed_by_run",
    "Batch",
    "CensusIncome",
    "Categorical",
    "Comparison",
    "Dense",
    "EarlyStopping",
    "History",
    "InputLayer",
    "MultiCategorical",
    "MMoE",
    "MultiTaskModel",
    "OMoE",
    "Objective",
    "PLE",
    "PROFILES",
    "Replicas",
    "admitted",
    "Profile",
    "SampleWeight",
    "Schema",
    "SharedBottom",
    "SharedBottomMultiTaskModel",
    "SingleTask",
    "Table",
    "TableEncoder",
    "Tower",
    "check",
    "check_labels",
    "compare",
    "mean_interval",
    "default_device",
    "evaluate",
    "fit",
    "fit_replicas",
    "load_census",
    "load_checkpoint",
    "multitask_loss",
    "objective_loss",
    "objective_losses",
    "objective_metrics",
    "predict",
    "predict_joint",
    "profile",
    "sample_weights",
    "save_checkpoint",
    "seed_everything",
    "table",
    "use_profile",
]
