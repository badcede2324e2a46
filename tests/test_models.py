import pytest
import torch

import sbmm


def feed_model(towers):
    features = [
        sbmm.Dense("x", 6),
        sbmm.Categorical("item", 10, dim=4),
        sbmm.MultiCategorical("tags", 7, dim=3),
    ]
    return sbmm.SharedBottom(features, towers, bottom=(16, 8))


def feed_features(n=5):
    g = torch.Generator().manual_seed(1)
    tags = torch.randint(-1, 7, (n, 3), generator=g)
    tags[:, 0] = torch.randint(0, 7, (n,), generator=g)  # at least one tag each
    return {
        "x": torch.randn(n, 6, generator=g),
        "item": torch.randint(0, 10, (n,), generator=g),
        "tags": tags,
    }


def test_output_is_one_prediction_per_objective(two_scene_towers):
    model = feed_model(
        two_scene_towers
        + [sbmm.Tower("vec", [sbmm.Objective("v", "regression", dim=3)])]
    )
    out = model(feed_features(5))
    assert list(out) == ["click", "like", "play_time", "v"]
    assert [tuple(t.shape) for t in out.values()] == [(5,), (5,), (5,), (5, 3)]


def test_parameter_summary_adds_up_by_part(two_scene_towers):
    model = feed_model(two_scene_towers)
    summary = model.parameter_summary()
    assert summary["inputs"] == 10 * 4 + 8 * 3  # the tags table has a padding row
    assert summary["bottom"] == (13 * 16 + 16) + (16 * 8 + 8)
    assert summary["tower scene1"] == (8 * 8 + 8) + (8 * 1 + 1)
    assert summary["tower scene2"] == (8 * 8 + 8) + (8 * 2 + 2)
    assert summary["total"] == sum(v for k, v in summary.items() if k != "total")


def test_every_objective_trains_the_shared_bottom_and_only_its_own_tower(
    two_scene_towers,
):
    model = feed_model(two_scene_towers)
    out = model(feed_features(8))
    out["click"].sum().backward()
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0
        for p in model.bottom.parameters()
        if p.dim() > 1
    )
    assert all(p.grad is None for p in model.towers["scene2"].parameters())
    assert model.inputs.embeddings["item"].weight.grad.abs().sum() > 0


def test_bottom_widths_are_validated(two_scene_towers):
    with pytest.raises(ValueError, match="bottom"):
        sbmm.SharedBottom([sbmm.Dense("x")], two_scene_towers, bottom=(8, 0))
    with pytest.raises(TypeError, match="towers"):
        sbmm.SharedBottom([sbmm.Dense("x")], ["click"])
