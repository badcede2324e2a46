"""Two regression tasks of controlled correlation: the generator of Ma et al.
(2018, MMoE, §3.2).

    u1, u2      orthonormal vectors in R^d (random)
    w1 = c·u1,  w2 = c·(p·u1 + sqrt(1 − p²)·u2)          so cos(w1, w2) = p
    x ~ N(0, I_d)
    f_k(x) = w_kᵀx + Σ_{i=1..m} sin(α_i·w_kᵀx + β_i)      the noise-free target of
                                                          task k
    y_k    = f_k(x) + ε_k,   ε_k ~ N(0, noise²)

The same α_i, β_i serve both tasks, as in the paper, so the tasks differ only through
w1, w2. Defaults follow Tang et al. (2020, PLE, §5.2.1): α_i, β_i ~ N(0, 1), c = 1, m =
10, noise variance 0.01 (our `noise` is the std, 0.1).

The labels' correlation is not p: the sinusoids bend each target, so corr(f1, f2) is a
non-linear function of p and of the draw of α, β, and the noise lowers it further. It is
0 at p = 0 (f1 and f2 then read independent projections of x), rises with p on [0, 1],
and reaches 1 − O(noise²) at p = 1, where f1 = f2 and the labels differ only by noise.
For p < 0 it depends on α, β: the sinusoids are not odd functions, so for some draws
even p = −1 gives positively correlated labels. Measure it with `label_correlation`.

For a sweep over p, keep `seed` fixed: u1, u2, α, β, x and the noise are then the same
draws at every p, and p alone changes.

The truth f_k(x) = E[y_k | x] is a function of the features alone, so the attainable
truth (the best any model of x can predict) is the truth itself. The batch holds it
under both names, "y1" and "attainable_y1", and `CORRELATED_TASKS_TRUTH_SPECS` pairs
each label with them, as every simulator does.
"""

from __future__ import annotations

import math

import torch

from .batch import Batch
from .truth import ATTAINABLE_PREFIX, TruthSpec, truth_specs

__all__ = ["CORRELATED_TASKS_TRUTH_SPECS", "correlated_tasks", "label_correlation"]

CORRELATED_TASKS_TRUTH_SPECS = truth_specs(  # the truth is E[y | x]: it is attainable
    TruthSpec("y1", "y1", "attainable_y1", kind="regression"),
    TruthSpec("y2", "y2", "attainable_y2", kind="regression"),
)


def correlated_tasks(
    n: int,
    p: float,
    *,
    d: int = 100,
    m: int = 10,
    c: float = 1.0,
    noise: float = 0.1,
    seed: int = 0,
) -> Batch:
    """`n` samples of two regression tasks whose weight vectors have cosine `p` in
    [-1, 1].

    d: input width; m: number of sinusoids; c: scale of the weight vectors; noise: std
    of each label's Gaussian noise; seed: seeds the torch.Generator that draws u1, u2
    (orthonormalised Gaussians), α, β, x and the noise, in that order.

    Returns a Batch with features {"x": (n, d) float32}, labels
    {"y1", "y2": (n,) float32}, and truth {"y1", "y2": (n,) float32}: the noise-free
    targets f1(x), f2(x), i.e. E[y_k | x], under the labels' own names, and again as
    "attainable_y1", "attainable_y2" (the same tensors: x leaves only the noise
    unexplained). `CORRELATED_TASKS_TRUTH_SPECS` declares them.
    """
    for name, value in (("n", n), ("d", d), ("m", m)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if d < 2:
        raise ValueError(
            f"d must be >= 2 (two orthonormal directions are needed), got {d}"
        )
    if not -1 <= p <= 1:
        raise ValueError(f"p must be in [-1, 1], got {p}")
    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"c must be a finite number > 0, got {c}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")

    g = torch.Generator().manual_seed(seed)
    # (d, 2): orthonormal u1, u2
    u, _ = torch.linalg.qr(torch.randn(d, 2, generator=g, dtype=torch.float64))
    # (m,), shared by both tasks
    alpha = torch.randn(m, generator=g, dtype=torch.float64)
    beta = torch.randn(m, generator=g, dtype=torch.float64)  # (m,)
    # (d, 2): w1, w2
    w = c * torch.stack([u[:, 0], p * u[:, 0] + math.sqrt(1 - p**2) * u[:, 1]], dim=1)
    x = torch.randn(n, d, generator=g)  # (n, d) float32
    z = x @ w.float()  # (n, 2): w_kᵀx
    f = z + torch.sin(z[:, :, None] * alpha.float() + beta.float()).sum(dim=2)  # (n, 2)
    y = f + noise * torch.randn(n, 2, generator=g)  # (n, 2)
    truth = {"y1": f[:, 0].contiguous(), "y2": f[:, 1].contiguous()}
    return Batch(
        features={"x": x},
        labels={"y1": y[:, 0].contiguous(), "y2": y[:, 1].contiguous()},
        truth={**truth, **{ATTAINABLE_PREFIX + k: v for k, v in truth.items()}},
    )


def label_correlation(batch: Batch, noise_free: bool = False) -> float:
    """Pearson correlation of y1 and y2 over the batch's rows: of the labels, or of the
    noise-free targets (`batch.truth`) when `noise_free`."""
    table = batch.truth if noise_free else batch.labels
    return float(torch.corrcoef(torch.stack([table["y1"], table["y2"]]).double())[0, 1])
