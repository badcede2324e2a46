"""`PCGrad`: projecting conflicting gradients (Yu et al., 2020)."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import GradientWeighting

__all__ = ["PCGrad", "project_conflicts"]


class PCGrad(GradientWeighting):
    """Projecting conflicting gradients (Yu et al., 2020), on the model's shared
    parameters.

    Each objective's gradient g_o = ∇ c_o·L_o on the shared parameters is, for every
    other objective j in random order, projected off g_j when they conflict
    (g_o·g_j < 0):  g_o ← g_o − (g_o·g_j/‖g_j‖²) g_j. The shared parameters get Σ_o of
    the projected g_o; the others (towers) their ordinary gradients. A model with no
    shared parameters trains as under `Static`.
    """

    needs_shared = False

    def combine(self, grads: Tensor) -> Tensor:
        return project_conflicts(grads).sum(0)  # (n_shared,)


def project_conflicts(
    grads: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """PCGrad's projection: (K, n) gradients → (K, n), each row projected off every
    other row it conflicts with, visiting the others in random order (from `generator`,
    or torch's global generator)."""
    projected = grads.clone()
    k = grads.shape[0]
    for i in range(k):
        for j in torch.randperm(k, generator=generator).tolist():
            if j == i:
                continue
            dot = projected[i] @ grads[j]
            if dot < 0:
                projected[i] -= dot / grads[j].pow(2).sum().clamp_min(1e-20) * grads[j]
    return projected
