"""Multi-task architectures: one constructor shape (features, towers, ...), one output
shape (a dict)."""

from .base import MultiTaskModel
from .mlp import mlp
from .mmoe import MMoE, OMoE
from .ple import PLE
from .shared_bottom import SharedBottom
from .single_task import SingleTask

__all__ = ["MMoE", "MultiTaskModel", "OMoE", "PLE", "SharedBottom", "SingleTask", "mlp"]
