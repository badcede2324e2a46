"""`CAGrad`: conflict-averse gradient descent (Liu et al., 2021)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..validation import check_number
from .base import GradientWeighting

__all__ = ["CAGrad", "cagrad_direction"]


class CAGrad(GradientWeighting):
    """Conflict-averse gradient descent (Liu et al., NeurIPS 2021): the shared update
    maximises the worst objective's improvement within a ball around the mean
    gradient g_0 = (1/K) Σ_o g_o,

        max_d min_o g_o·d   subject to ‖d − g_0‖ ≤ c‖g_0‖,

    solved through its dual over w ∈ Δ_K (`cagrad_direction`):
    w* = argmin_w g_wᵀg_0 + c‖g_0‖·‖g_w‖ with g_w = Σ_o w_o g_o, then
    d = (g_0 + c‖g_0‖/‖g_w‖ · g_w) / (1 + c²). At c = 0 it is gradient descent on the
    mean loss; c → ∞ approaches MGDA. g_o = ∇_θsh c_o·L_o on the shared parameters;
    each tower gets its own objectives' ordinary gradient.

    c: the radius of the ball, relative to ‖g_0‖; 0.4 by default (the paper's choice
       for its multi-task supervised benchmarks; LibMTL's default is 0.5).

    As the paper's code: the dual is solved by SciPy's SLSQP from the uniform w, and d
    is divided by 1 + c² (its `rescale=1`). The shared gradient is the mean, not the
    sum, of the objectives': 1/K of `Static`'s when they agree.
    """

    def __init__(self, c: float = 0.4):
        check_number("CAGrad: c", c)
        self.c = c

    def combine(self, grads: Tensor) -> Tensor:
        d, self.alpha = cagrad_direction(grads, self.c)
        return d


def cagrad_direction(grads: Tensor, c: float) -> tuple[Tensor, Tensor]:
    """CAGrad's update from (K, n) gradients: the (n,) direction d and the (K,) dual
    weights w (on the CPU); uniform w, and d = g_0, at c = 0."""
    k = grads.shape[0]
    g0 = grads.mean(0)  # (n,)
    w = torch.full((k,), 1.0 / k, dtype=torch.float64)
    if c == 0:
        return g0, w
    from scipy.optimize import minimize  # SciPy loads at the first step with c > 0

    m = (grads @ grads.T).detach().double().cpu().numpy()  # (K, K)
    b = np.full(k, 1.0 / k)  # g_0 = Gᵀb
    radius = c * np.sqrt(b @ m @ b + 1e-8)  # c‖g_0‖

    def dual(x: np.ndarray) -> float:  # g_wᵀg_0 + c‖g_0‖·‖g_w‖
        return float(x @ m @ b + radius * np.sqrt(x @ m @ x + 1e-8))

    result = minimize(
        dual,
        b,
        bounds=[(0.0, 1.0)] * k,
        constraints={"type": "eq", "fun": lambda x: 1.0 - x.sum()},
    )  # SLSQP
    w = torch.from_numpy(result.x)
    gw = w.to(grads) @ grads  # (n,)
    d = g0 + radius / (gw.norm() + 1e-8) * gw
    return d / (1 + c**2), w
