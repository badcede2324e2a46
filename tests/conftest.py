import pytest
import torch

import sbmm


@pytest.fixture
def two_scene_batch() -> sbmm.Batch:
    """A small batch shaped like the feed: dense inputs, click (0/1), like only where
    click is 1, play time."""
    g = torch.Generator().manual_seed(0)
    n = 64
    x = torch.randn(n, 6, generator=g)
    click = (torch.rand(n, generator=g) < 0.4).float()
    like = click * (torch.rand(n, generator=g) < 0.5).float()
    play_time = click * torch.rand(n, generator=g) * 30
    return sbmm.Batch({"x": x}, {"click": click, "like": like, "play_time": play_time})


@pytest.fixture
def two_scene_towers() -> list[sbmm.Tower]:
    return [
        sbmm.Tower("scene1", [sbmm.Objective("click")], hidden=(8,), weight=1.0),
        sbmm.Tower(
            "scene2",
            [
                sbmm.Objective("like", given="click"),
                sbmm.Objective("play_time", "regression", given="click"),
            ],
            hidden=(8,),
            weight=0.5,
        ),
    ]
