"""`NashMTL`: multi-task learning as a bargaining game (Navon et al., 2022)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..validation import check_number
from .base import GradientWeighting

__all__ = ["NashMTL", "nash_weights"]


class NashMTL(GradientWeighting):
    """Nash-MTL (Navon et al., ICML 2022): the shared update is the Nash bargaining
    solution between the objectives, d = Σ_o α_o g_o with α > 0 solving

        (GᵀG α)_o = 1/α_o   for every objective o,

    G's columns the objectives' gradients g_o = ∇_θsh c_o·L_o on the shared
    parameters (`nash_weights`). Every objective then gains d·g_o = 1/α_o (before
    normalising and clipping): the product of the gains is maximal in a ball, none is
    sacrificed, and no objective dominates by the size of its gradient. The α_o weight
    the losses themselves, so each tower trains on α_o·c_o·L_o, as in the paper's
    code.

    normalize: solve on GᵀG/‖GᵀG‖_F, as the paper's code does (α then grows by
               ‖GᵀG‖_F^½); True by default. False: the paper's equation as written.
    max_norm:  clip the shared gradient's norm to this, as the paper's code does (1.0
               by default); None: no clipping.

    Differs from the paper's code in the solver only: the equation is the stationary
    point of the strictly convex ½αᵀGᵀGα − Σ_o log α_o, which Newton's method solves
    to machine precision in a few steps, where the paper's code runs a sequence of
    convex programs (CVXPY) that stop at a tolerance of 1e-3.
    """

    def __init__(self, normalize: bool = True, max_norm: float | None = 1.0):
        if not isinstance(normalize, bool):
            raise TypeError(
                f"NashMTL: normalize must be True or False, got {normalize!r}"
            )
        if max_norm is not None:
            check_number("NashMTL: max_norm", max_norm, strict=True)
        self.normalize, self.max_norm = normalize, max_norm

    def combine(self, grads: Tensor) -> Tensor:
        gram = grads @ grads.T  # (K, K)
        if self.normalize:
            gram = gram / gram.norm().clamp_min(1e-20)
        self.alpha = nash_weights(gram).to(grads)  # (K,)
        d = self.alpha @ grads  # (n_shared,)
        if self.max_norm is not None:
            d = d * (self.max_norm / (d.norm() + 1e-6)).clamp(max=1.0)
        return d

    def tower_weights(self) -> Tensor:
        return self.alpha


def nash_weights(gram: Tensor, iterations: int = 100) -> Tensor:
    """The α > 0 with (M α)_o = 1/α_o for a (K, K) Gram matrix M = GᵀG: (K,) float64 on
    the CPU.

    Damped Newton on f(α) = ½αᵀMα − Σ_o log α_o (gradient Mα − 1/α, Hessian
    M + diag(1/α²)), from α_o = 1/‖g_o‖ (the answer when the gradients are
    orthogonal), halving each step until α stays positive and f decreases. A ridge
    of 1e-10·max_o ‖g_o‖² keeps a zero gradient from sending its α to infinity.
    """
    m = gram.detach().double().cpu().numpy()  # (K, K)
    m = m + 1e-10 * max(float(np.diag(m).max()), 1e-30) * np.eye(len(m))
    alpha = 1 / np.sqrt(np.diag(m))

    def f(a: np.ndarray) -> float:
        return 0.5 * a @ m @ a - np.log(a).sum()

    for _ in range(iterations):
        grad = m @ alpha - 1 / alpha
        if np.abs(grad * alpha).max() < 1e-12:  # relative: α_o(Mα)_o − 1
            break
        step = np.linalg.solve(m + np.diag(1 / alpha**2), grad)
        t = 1.0
        while t > 1e-10 and (
            (alpha - t * step <= 0).any() or f(alpha - t * step) > f(alpha)
        ):
            t /= 2
        alpha = alpha - t * step
    return torch.from_numpy(alpha)
