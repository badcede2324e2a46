"""Multi-task architectures: one constructor shape (features, towers, ...), one output shape (a dict)."""

from .base import MultiTaskModel
from .mlp import mlp
from .shared_bottom import SharedBottom

__all__ = ["MultiTaskModel", "SharedBottom", "mlp"]
