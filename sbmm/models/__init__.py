"""Multi-task architectures: one constructor shape (features, towers, ...), one output
shape (a dict)."""

from .adatt import AdaTT
from .aitm import AITM
from .base import MultiTaskModel
from .cross_stitch import CrossStitch
from .dselect_k import DSelectK
from .mlp import mlp
from .mmoe import MMoE, OMoE
from .ple import PLE
from .shared_bottom import SharedBottom
from .single_task import SingleTask

__all__ = [
    "AITM",
    "PLE",
    "AdaTT",
    "CrossStitch",
    "DSelectK",
    "MMoE",
    "MultiTaskModel",
    "OMoE",
    "SharedBottom",
    "SingleTask",
    "mlp",
]
