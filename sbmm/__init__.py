"""sbmm: multi-task, multi-objective ranking models for recommendation, centred on the
shared-bottom model.

Data flows as: Batch (features, labels, truth) → inputs (embeddings + pooling, dense) →
bottom → towers → {objective: prediction} → per-objective losses
(masks, sample weights) → weighting strategy → optimiser.

`import sbmm` loads the library alone. What needs more is imported on first use: the
way in from tables (`Schema`, `TableEncoder`, `load_census`: pandas), `sbmm.fusion`
(SciPy, scikit-learn), `sbmm.plot` (matplotlib) and `sbmm.export` (a module called as
`sbmm.export(model, path)`; ONNX and ONNX Runtime load on the first export or load).
The book's own helpers (profiles, claims, its figure style, the seed article's model)
are `sbmm.book`, which a chapter imports itself: `from sbmm import book`.
"""

import importlib

from . import data, debias, diagnostics, expert_diagnostics, kinds, spaces, weighting
from .anchors import AnchorTable, anchor_table, gap_closed, gap_closed_by_run
from .compare import Comparison, compare, mean_interval
from .data import Batch, TruthSpec
from .inputs import Categorical, Dense, InputLayer, MultiCategorical
from .losses import multitask_loss, objective_loss, objective_losses, sample_weights
from .metrics import objective_metrics
from .models import (
    AITM,
    PLE,
    AdaTT,
    CrossStitch,
    DSelectK,
    MMoE,
    MultiTaskModel,
    OMoE,
    SharedBottom,
    SingleTask,
)
from .objectives import Objective, Tower
from .runtime import default_device, seed_everything
from .sample_weights import SampleWeight
from .tables import Table, table
from .train import (
    EarlyStopping,
    History,
    LrSweep,
    NotConverged,
    Replicas,
    TrainSpec,
    evaluate,
    fit,
    fit_replicas,
    load_checkpoint,
    predict,
    predict_joint,
    save_checkpoint,
    sweep_lr,
)
from .weighting import (
    DWA,
    FAMO,
    MGDA,
    RLW,
    CAGrad,
    GradNorm,
    MetaBalance,
    NashMTL,
    PCGrad,
    Static,
    Uncertainty,
    Weighting,
)

_FROM_DATA = ("CensusIncome", "Schema", "TableEncoder", "load_census")  # pandas
_SUBMODULES = ("export", "fusion", "plot")


def __getattr__(name: str):
    """A name imported on first use (PEP 562): the submodules `export`, `fusion` and
    `plot`, and `sbmm.data`'s pandas-backed names; an AttributeError for any other
    name."""
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _FROM_DATA:
        value = globals()[name] = getattr(data, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_DATA, *_SUBMODULES})


__all__ = [
    "AITM",
    "DWA",
    "FAMO",
    "MGDA",
    "PLE",
    "RLW",
    "AdaTT",
    "AnchorTable",
    "Batch",
    "CAGrad",
    "Categorical",
    "CensusIncome",
    "Comparison",
    "CrossStitch",
    "DSelectK",
    "Dense",
    "EarlyStopping",
    "GradNorm",
    "History",
    "InputLayer",
    "LrSweep",
    "MMoE",
    "MetaBalance",
    "MultiCategorical",
    "MultiTaskModel",
    "NashMTL",
    "NotConverged",
    "OMoE",
    "Objective",
    "PCGrad",
    "Replicas",
    "SampleWeight",
    "Schema",
    "SharedBottom",
    "SingleTask",
    "Static",
    "Table",
    "TableEncoder",
    "Tower",
    "TrainSpec",
    "TruthSpec",
    "Uncertainty",
    "Weighting",
    "anchor_table",
    "compare",
    "default_device",
    "evaluate",
    "export",
    "fit",
    "fit_replicas",
    "gap_closed",
    "gap_closed_by_run",
    "load_census",
    "load_checkpoint",
    "mean_interval",
    "multitask_loss",
    "objective_loss",
    "objective_losses",
    "objective_metrics",
    "predict",
    "predict_joint",
    "sample_weights",
    "save_checkpoint",
    "seed_everything",
    "sweep_lr",
    "table",
]
