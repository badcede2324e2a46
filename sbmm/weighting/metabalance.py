"""`MetaBalance`: adapting the auxiliary objectives' gradient magnitudes (He et al.,
2022)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..models.base import MultiTaskModel
from ..validation import check_number
from .base import GradientWeighting

__all__ = ["MetaBalance"]


class MetaBalance(GradientWeighting):
    """MetaBalance (He et al., WWW 2022): one target objective, the others auxiliary;
    each auxiliary gradient on a shared parameter is rescaled toward the target's
    magnitude there, so that no auxiliary objective dominates the shared layers nor
    is drowned by the target.

    For every shared parameter tensor θ and objective o, m_o is a moving average of
    ‖∇_θ c_o·L_o‖ (m_o ← β·m_o + (1 − β)·‖g_o‖, from 0), and each auxiliary gradient
    becomes

        g_o ← r·(m_target / m_o)·g_o + (1 − r)·g_o,

    r the relax factor: r = 1 gives every auxiliary gradient the target's magnitude,
    r = 0 leaves it as it is. θ then gets g_target + Σ_aux g_o; the towers get their
    own objectives' ordinary gradients.

    target: the target objective's name; the first declared objective by default.
    relax:  r in [0, 1]; 0.7 by default (torch-rechub's; the paper tunes it per data
            set).
    beta:   the moving average's β in [0, 1); 0.9 by default (the paper's).

    As torch-rechub's implementation: the magnitudes are adapted in both directions
    (the paper also studies only shrinking or only growing them), per shared parameter
    tensor, with 1e-5 added to m_o in the ratio. `coefficients()` are each objective's
    mean scale over the shared tensors at the last step.
    """

    STATE = ("norms",)

    def __init__(
        self, target: str | None = None, relax: float = 0.7, beta: float = 0.9
    ):
        if target is not None and not isinstance(target, str):
            raise TypeError(
                f"MetaBalance: target must be an objective's name, got {target!r}"
            )
        check_number("MetaBalance: relax", relax)
        check_number("MetaBalance: beta", beta)
        if relax > 1 or beta >= 1:
            raise ValueError(
                f"MetaBalance: relax must be in [0, 1] and beta in [0, 1), got relax="
                f"{relax!r}, beta={beta!r}"
            )
        self.target, self.relax, self.beta = target, relax, beta

    def bind(self, model: MultiTaskModel) -> None:
        super().bind(model)
        if self.target is not None:
            self._check_names([self.target], "target")
        self.index = self.names.index(self.target) if self.target else 0
        self.sizes = [p.numel() for p in self.shared]
        device = self.shared[0].device
        self.norms = torch.zeros(len(self.names), len(self.shared), device=device)
        self.sizes_t = torch.tensor(self.sizes, device=device)  # (P,)

    def combine(self, grads: Tensor) -> Tensor:
        per_tensor = grads.split(self.sizes, dim=1)  # P × (K, n_p)
        norms = torch.stack([g.norm(dim=1) for g in per_tensor], 1)  # (K, P)
        self.norms = self.beta * self.norms + (1 - self.beta) * norms
        ratio = self.norms[self.index] / (self.norms + 1e-5)  # (K, P)
        scale = self.relax * ratio + (1 - self.relax)  # (K, P)
        scale[self.index] = 1.0  # the target's own gradient is kept
        self.alpha = scale.mean(1)  # (K,)
        full = scale.repeat_interleave(self.sizes_t, dim=1)  # (K, n_shared)
        return (full * grads).sum(0)  # (n_shared,)
