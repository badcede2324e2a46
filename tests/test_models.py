"""The model contract, for every architecture `sbmm.models` exports (found, not
listed: a new architecture is tested here without an edit), then the shared bottom's
own layers."""

import pytest
import torch

import sbmm
from sbmm.train.config import architectures

ARCHITECTURES = architectures()  # {name: class}, every MultiTaskModel subclass


def features():
    return [
        sbmm.Dense("x", 6),
        sbmm.Categorical("item", 10, dim=4),
        sbmm.MultiCategorical("tags", 7, dim=3),
    ]


def feed_model(towers):
    return sbmm.SharedBottom(features(), towers, bottom=(16, 8))


def feed_features(n=5):
    g = torch.Generator().manual_seed(1)
    tags = torch.randint(-1, 7, (n, 3), generator=g)
    tags[:, 0] = torch.randint(0, 7, (n,), generator=g)  # at least one tag each
    return {
        "x": torch.randn(n, 6, generator=g),
        "item": torch.randint(0, 10, (n,), generator=g),
        "tags": tags,
    }


def vector_tower():
    return sbmm.Tower("vec", [sbmm.Objective("v", "regression", dim=3)], hidden=(4,))


def test_the_library_s_architectures_are_found():
    assert {"SharedBottom", "SingleTask", "MMoE", "OMoE", "PLE"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_output_is_one_prediction_per_objective(architecture, two_scene_towers):
    model = ARCHITECTURES[architecture](features(), two_scene_towers + [vector_tower()])
    out = model(feed_features(5))
    assert list(out) == ["click", "like", "play_time", "v"]
    assert [tuple(t.shape) for t in out.values()] == [(5,), (5,), (5,), (5, 3)]


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_parameter_summary_counts_every_parameter_once(architecture, two_scene_towers):
    model = ARCHITECTURES[architecture](features(), two_scene_towers)
    summary = model.parameter_summary()
    assert {"inputs", "tower scene1", "tower scene2", "total"} <= set(summary)
    assert summary["total"] == sum(v for k, v in summary.items() if k != "total")
    assert summary["total"] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_an_objective_trains_the_shared_parameters_and_no_other_tower(
    architecture, two_scene_towers
):
    # Seeded: on 8 rows, an unlucky draw can leave a whole layer's ReLUs silent.
    torch.manual_seed(0)
    model = ARCHITECTURES[architecture](features(), two_scene_towers)
    model(feed_features(8))["click"].sum().backward()
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0 for p in model.shared_parameters()
    )
    assert all(p.grad is None for p in model.towers["scene2"].parameters())


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_a_missing_feature_is_named(architecture, two_scene_towers):
    model = ARCHITECTURES[architecture](features(), two_scene_towers)
    values = feed_features()
    del values["tags"]
    with pytest.raises(ValueError, match="'tags'"):
        model(values)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_learns_under_fit(architecture, two_scene_towers):
    """Labels that the features decide: the training loss falls, and `predict` gives
    a finite prediction per objective and row."""
    values = feed_features(64)
    click = (values["x"][:, 0] > 0).float()
    like = click * (values["x"][:, 1] > 0).float()
    data = sbmm.Batch(
        values, {"click": click, "like": like, "play_time": 3 * like + click}
    )
    sbmm.seed_everything(0)
    model = ARCHITECTURES[architecture](features(), two_scene_towers)
    history = sbmm.fit(model, data, epochs=5, batch_size=16, lr=1e-2, progress=False)
    assert history.train_loss["click"][-1] < history.train_loss["click"][0]
    prediction = sbmm.predict(model, data)
    assert list(prediction) == ["click", "like", "play_time"]
    assert all(p.shape == (64,) and p.isfinite().all() for p in prediction.values())


def test_parameter_summary_adds_up_by_part(two_scene_towers):
    model = feed_model(two_scene_towers)
    summary = model.parameter_summary()
    assert summary["inputs"] == 10 * 4 + 8 * 3  # the tags table has a padding row
    assert summary["bottom"] == (13 * 16 + 16) + (16 * 8 + 8)
    assert summary["tower scene1"] == (8 * 8 + 8) + (8 * 1 + 1)
    assert summary["tower scene2"] == (8 * 8 + 8) + (8 * 2 + 2)


def test_the_shared_bottom_and_the_inputs_are_what_every_objective_trains(
    two_scene_towers,
):
    model = feed_model(two_scene_towers)
    model(feed_features(8))["click"].sum().backward()
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0
        for p in model.bottom.parameters()
        if p.dim() > 1
    )
    assert model.inputs.embeddings["item"].weight.grad.abs().sum() > 0


def test_bottom_widths_are_validated(two_scene_towers):
    with pytest.raises(ValueError, match="bottom"):
        sbmm.SharedBottom([sbmm.Dense("x")], two_scene_towers, bottom=(8, 0))
    with pytest.raises(TypeError, match="towers"):
        sbmm.SharedBottom([sbmm.Dense("x")], ["click"])
