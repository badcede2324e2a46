"""The small two-task world the expert tests share: a dense and a categorical feature,
click on the feed and like given click, labels the features decide."""

import torch

import sbmm

FEATURES = [sbmm.Dense("x", 5), sbmm.Categorical("item", 7, dim=3)]


def towers() -> list[sbmm.Tower]:
    return [
        sbmm.Tower("feed", [sbmm.Objective("click")], hidden=(8,)),
        sbmm.Tower("video", [sbmm.Objective("like", given="click")], hidden=(8,)),
    ]


def batch(n: int = 32, seed: int = 0) -> sbmm.Batch:
    """`n` rows: click where x₀ (plus noise) is positive, like among clicks where x₁
    is."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    click = (x[:, 0] + 0.5 * torch.randn(n, generator=g) > 0).float()
    like = click * (x[:, 1] > 0).float()
    return sbmm.Batch(
        {"x": x, "item": torch.randint(0, 7, (n,), generator=g)},
        {"click": click, "like": like},
    )
