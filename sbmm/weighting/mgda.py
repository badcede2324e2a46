"""`MGDA`: the multiple-gradient descent algorithm (Sener & Koltun, 2018)."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import Tensor

from .base import GradientWeighting

__all__ = ["MGDA", "min_norm_weights"]


class MGDA(GradientWeighting):
    """Multi-task learning as multi-objective optimisation (Sener & Koltun, NeurIPS
    2018): the shared parameters step along the minimum-norm point of the convex hull
    of the objectives' gradients,

        α* = argmin_{α ∈ Δ_K} ‖Σ_o α_o g_o‖²,   d = Σ_o α*_o g_o,

    with g_o = ∇_θsh c_o·L_o on the shared parameters (`min_norm_weights`: exact up
    to 8 objectives, the paper's closed form for two among them; its Frank-Wolfe
    solver beyond). d is a common descent direction (d·g_o ≥ ‖d‖² for every o), or 0
    at a Pareto-stationary point.
    Each tower gets its own objectives' ordinary gradient, as in the paper. An
    objective whose gradient is exactly 0 at a step (a masked objective with no
    eligible sample in the batch) is left out of the hull for that step, where it
    would make d = 0.

    Differs from the paper: this is MGDA on the shared parameters, not its upper-bound
    form MGDA-UB, which takes the gradients with respect to one shared representation
    Z (one backward pass through the towers per objective, then one through the
    bottom). sbmm's architectures do not all have one: MMoE's and PLE's towers each
    read their own mixture of the experts. So the K backward passes here go through
    the whole shared part, which is MGDA's exact form and its full cost. No gradient
    normalisation (the paper's "none" option, LibMTL's default).
    """

    def combine(self, grads: Tensor) -> Tensor:
        gram = grads @ grads.T  # (K, K)
        active = gram.diagonal() > 0  # (K,) a gradient that is not zero
        alpha = torch.zeros(len(gram), dtype=torch.float64)
        if active.any():
            alpha[active.cpu()] = min_norm_weights(gram[active][:, active])
        self.alpha = alpha.to(grads)  # (K,)
        return self.alpha @ grads  # (n_shared,)


def min_norm_weights(
    gram: Tensor, iterations: int = 250, tolerance: float = 1e-8
) -> Tensor:
    """The weights α ∈ Δ_K of the minimum-norm point Σ_o α_o g_o of the convex hull
    of K vectors, from their (K, K) Gram matrix M = G Gᵀ; returns (K,) float64 on the
    CPU.

    Up to `EXACT` objectives, exactly: the minimum over the faces of the simplex of
    each face's equality-constrained minimum (M_S α = λ1, 1ᵀα = 1) that is feasible
    (α ≥ 0). With two vectors this is the paper's closed form
    α_1 = clip((g_2 − g_1)·g_2 / ‖g_1 − g_2‖², 0, 1). Beyond, Sener & Koltun's
    Algorithm 2 (`frank_wolfe`), which converges as 1/iterations.
    """
    m = gram.detach().double().cpu().numpy()  # (K, K)
    k = len(m)
    if k > EXACT:
        return torch.from_numpy(frank_wolfe(m, iterations, tolerance))
    best, best_value = np.full(k, 1.0 / k), np.inf
    for size in range(1, k + 1):
        for face in itertools.combinations(range(k), size):
            s = list(face)
            kkt = np.zeros((size + 1, size + 1))  # [[M_S, 1], [1ᵀ, 0]]
            kkt[:size, :size], kkt[:size, size], kkt[size, :size] = (
                m[np.ix_(s, s)],
                1,
                1,
            )
            rhs = np.zeros(size + 1)
            rhs[size] = 1
            solution = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:size]
            if (solution < -1e-12).any() or abs(solution.sum() - 1) > 1e-9:
                continue
            alpha = np.zeros(k)
            alpha[s] = solution.clip(min=0)
            value = alpha @ m @ alpha
            if value < best_value - 1e-15:
                best, best_value = alpha, value
    return torch.from_numpy(best)


# Up to this many objectives `min_norm_weights` visits every face of the simplex
# (2^K − 1 small solves); beyond, Frank-Wolfe.
EXACT = 8


def frank_wolfe(m: np.ndarray, iterations: int, tolerance: float) -> np.ndarray:
    """Sener & Koltun's Algorithm 2 on the (K, K) Gram matrix `m`: Frank-Wolfe from the
    uniform weights, each iteration moving toward the vertex e_t with the least
    (Mα)_t by the exact line search of their Algorithm 1 (min over γ ∈ [0, 1] of
    ‖γθ + (1 − γ)θ̄‖²), until α changes by less than `tolerance`."""
    k = len(m)
    alpha = np.full(k, 1.0 / k)
    for _ in range(iterations):
        m_alpha = m @ alpha  # (K,)
        t = int(np.argmin(m_alpha))
        # θ = Σ α_o g_o and θ̄ = g_t: ‖θ‖², θ·θ̄ and ‖θ̄‖²
        aa, at, tt = alpha @ m_alpha, m_alpha[t], m[t, t]
        curvature = aa + tt - 2 * at  # ‖θ − θ̄‖²
        if curvature <= 1e-20:
            break
        gamma = float(np.clip((tt - at) / curvature, 0.0, 1.0))
        new = gamma * alpha
        new[t] += 1 - gamma
        change = np.abs(new - alpha).sum()
        alpha = new
        if change < tolerance:
            break
    return alpha
