import pytest
import torch

import sbmm
from sbmm.models.single_task import SingleTask


def features():
    return [
        sbmm.Dense("x", 6),
        sbmm.Categorical("item", 10, dim=4),
        sbmm.MultiCategorical("tags", 7, dim=3),
    ]


def feature_values(n=8):
    g = torch.Generator().manual_seed(1)
    tags = torch.randint(-1, 7, (n, 3), generator=g)
    tags[:, 0] = torch.randint(0, 7, (n,), generator=g)  # at least one tag each
    return {
        "x": torch.randn(n, 6, generator=g),
        "item": torch.randint(0, 10, (n,), generator=g),
        "tags": tags,
    }


def test_each_objective_trains_only_its_own_network(two_scene_towers):
    model = SingleTask(features(), two_scene_towers, bottom=(16, 8))
    model(feature_values())["like"].sum().backward()
    for part in (model.inputs, model.bottom):
        for name, net in part.items():
            touched = [
                p.grad is not None and bool(p.grad.abs().sum() > 0)
                for p in net.parameters()
            ]
            if name == "like":
                # (embedding rows of ids absent from the batch get zero gradient)
                assert any(touched)
            else:
                assert not any(touched), f"the like loss reached {name}'s network"
    assert all(p.grad is not None for p in model.towers["scene2"]["like"].parameters())
    assert all(p.grad is None for p in model.towers["scene2"]["play_time"].parameters())
    assert all(p.grad is None for p in model.towers["scene1"].parameters())


def test_no_parameter_is_shared_between_objectives(two_scene_towers):
    model = SingleTask(features(), two_scene_towers, bottom=(16, 8))
    owners = {}
    for name in ("click", "like", "play_time"):
        tower = "scene1" if name == "click" else "scene2"
        for module in (
            model.inputs[name],
            model.bottom[name],
            model.towers[tower][name],
        ):
            for p in module.parameters():
                assert id(p) not in owners, (
                    f"{name} shares a parameter with {owners[id(p)]}"
                )
                owners[id(p)] = name
    assert len(owners) == len(list(model.parameters()))
    # what gradient-based weightings (PCGrad, GradNorm) act on
    assert model.shared_parameters() == []


def test_parameter_summary_counts_one_network_per_objective(two_scene_towers):
    shared = sbmm.SharedBottom(
        features(), two_scene_towers, bottom=(16, 8)
    ).parameter_summary()
    single = SingleTask(
        features(), two_scene_towers, bottom=(16, 8)
    ).parameter_summary()
    assert (
        list(single)
        == list(shared)
        == ["inputs", "bottom", "tower scene1", "tower scene2", "total"]
    )
    assert single["inputs"] == 3 * shared["inputs"] == 3 * (10 * 4 + 8 * 3)
    assert single["bottom"] == 3 * shared["bottom"]
    assert single["tower scene1"] == shared["tower scene1"] == (8 * 8 + 8) + (8 * 1 + 1)
    # one 1-output head each
    assert single["tower scene2"] == 2 * ((8 * 8 + 8) + (8 * 1 + 1))
    assert single["total"] == sum(v for k, v in single.items() if k != "total")


def test_masked_objective_trains_on_its_admitted_samples(
    two_scene_batch, two_scene_towers
):
    sbmm.seed_everything(0)
    model = SingleTask([sbmm.Dense("x", 6)], two_scene_towers, bottom=(8,))
    history = sbmm.fit(
        model, two_scene_batch, epochs=10, batch_size=16, lr=3e-2, progress=False
    )
    assert (
        history.train_loss["play_time"][-1] < 0.7 * history.train_loss["play_time"][0]
    )
    # Changing the like labels of unclicked samples (which the mask excludes) changes
    # nothing.
    labels = dict(two_scene_batch.labels, like=two_scene_batch.labels["like"].clone())
    unclicked = labels["click"] == 0
    labels["like"][unclicked] = 1.0
    sbmm.seed_everything(0)
    other = SingleTask([sbmm.Dense("x", 6)], two_scene_towers, bottom=(8,))
    again = sbmm.fit(
        other,
        sbmm.Batch(two_scene_batch.features, labels),
        epochs=10,
        batch_size=16,
        lr=3e-2,
        progress=False,
    )
    assert again.train_loss == history.train_loss


def test_bad_declarations_raise(two_scene_towers):
    with pytest.raises(ValueError, match="bottom"):
        SingleTask([sbmm.Dense("x")], two_scene_towers, bottom=(8, 0))
    with pytest.raises(TypeError, match="towers"):
        SingleTask([sbmm.Dense("x")], ["click"])
    with pytest.raises(ValueError, match="'a.b'"):
        SingleTask([sbmm.Dense("x")], [sbmm.Tower("t", [sbmm.Objective("a.b")])])
    with pytest.raises(ValueError, match="feature"):
        SingleTask([], two_scene_towers)


def test_the_first_input_layer_is_the_first_thing_built(two_scene_towers):
    """No input layer is built and thrown away: after a seed, the first objective's
    input layer holds the weights an `InputLayer` built alone would draw."""
    sbmm.seed_everything(3)
    model = SingleTask(features(), two_scene_towers, bottom=(16, 8))
    sbmm.seed_everything(3)
    alone = sbmm.InputLayer(features())
    first = model.inputs[model.objectives[0].name]
    for (name, p), q in zip(first.named_parameters(), alone.parameters()):
        assert torch.equal(p, q), name
