import math

import pytest
import torch

import sbmm
from sbmm.diagnostics import GradientCosine, dead_units
from sbmm.models.single_task import SingleTask


def regression_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.1 * torch.randn(n, generator=g)
    return sbmm.Batch({"x": x}, {"y": y, "z": x[:, 3].clone()})


def two_heads(a="y", b="y"):
    return [
        sbmm.Tower("A", [sbmm.Objective("a", "regression", label=a)], hidden=(4,)),
        sbmm.Tower("B", [sbmm.Objective("b", "regression", label=b)], hidden=(4,)),
    ]


def shared_bottom(towers, seed=0):
    sbmm.seed_everything(seed)
    return sbmm.SharedBottom([sbmm.Dense("x", 4)], towers, bottom=(8,))


def live_losses(model, data):
    _, losses = sbmm.multitask_loss(model.tower_specs, model(data.features), data)
    return losses


def test_identical_and_opposite_losses_have_cosine_one_and_minus_one():
    data = regression_data()
    model = shared_bottom(two_heads())
    loss = live_losses(model, data)["a"]
    cosine = GradientCosine(pairs=[("a", "b"), ("a", "c")], every=1)
    cosine(0, model, {"a": loss, "b": 3 * loss, "c": -loss})
    assert cosine.steps == [0]
    assert cosine.cosines[("a", "b")][0] == pytest.approx(1.0, abs=1e-6)
    assert cosine.cosines[("a", "c")][0] == pytest.approx(-1.0, abs=1e-6)


def test_identical_objectives_keep_cosine_one_through_training():
    data = regression_data()
    model = shared_bottom(two_heads())
    # same head, same label: same gradient
    model.towers["B"].load_state_dict(model.towers["A"].state_dict())
    cosine = GradientCosine(pairs=[("a", "b")], every=5)
    sbmm.fit(model, data, epochs=3, batch_size=32, progress=False, callbacks=[cosine])
    assert cosine.steps == list(range(0, 24, 5))
    assert all(c == pytest.approx(1.0, abs=1e-5) for c in cosine.cosines[("a", "b")])


def test_objectives_on_disjoint_parameters_have_cosine_zero():
    data = regression_data()
    sbmm.seed_everything(0)
    model = SingleTask([sbmm.Dense("x", 4)], two_heads("y", "z"), bottom=(8,))
    cosine = GradientCosine(pairs=[("a", "b")], every=4, module="bottom")
    sbmm.fit(model, data, epochs=1, batch_size=32, progress=False, callbacks=[cosine])
    assert len(cosine.steps) == 2 and cosine.cosines[("a", "b")] == [0.0, 0.0]
    with pytest.raises(ValueError, match="SingleTask shares no parameters"):
        GradientCosine(pairs=[("a", "b")], every=1)(0, model, live_losses(model, data))


def test_by_default_the_cosine_covers_every_shared_parameter():
    data = regression_data()
    data = sbmm.Batch(
        {**data.features, "item": torch.arange(len(data)) % 7}, data.labels
    )
    sbmm.seed_everything(0)
    model = sbmm.SharedBottom(
        [sbmm.Dense("x", 4), sbmm.Categorical("item", 7, dim=2)],
        two_heads(),
        bottom=(8,),
    )
    a = live_losses(model, data)["a"]
    # b also pulls on the embeddings
    b = a + 100 * model.inputs.embeddings["item"].weight.sum()
    params = model.shared_parameters()  # the embeddings and the bottom
    flat = [
        torch.cat(
            [
                g.reshape(-1)
                for g in torch.autograd.grad(loss, params, retain_graph=True)
            ]
        )
        for loss in (a, b)
    ]
    expected = float(torch.cosine_similarity(*flat, dim=0))
    default, bottom = (
        GradientCosine([("a", "b")], every=1),
        GradientCosine([("a", "b")], every=1, module="bottom"),
    )
    for cosine in (default, bottom):
        cosine(0, model, {"a": a, "b": b})
    assert expected < 0.99 and default.cosines[("a", "b")][0] == pytest.approx(
        expected, abs=1e-6
    )
    # the bottom alone sees no difference
    assert bottom.cosines[("a", "b")][0] == pytest.approx(1.0, abs=1e-6)
    # MMoE has no bottom; by default its embeddings and experts are compared.
    mmoe = sbmm.MMoE([sbmm.Dense("x", 4)], two_heads(), expert=(8,), n_experts=2)
    loss = live_losses(mmoe, data)["a"]
    cosine = GradientCosine([("a", "b")], every=1)
    cosine(0, mmoe, {"a": loss, "b": -loss})
    assert cosine.cosines[("a", "b")][0] == pytest.approx(-1.0, abs=1e-6)


def test_unrelated_targets_disagree_more_than_the_same_target():
    data = regression_data()
    same, other = (
        GradientCosine([("a", "b")], every=2),
        GradientCosine([("a", "b")], every=2),
    )
    sbmm.fit(
        shared_bottom(two_heads("y", "y")),
        data,
        epochs=2,
        batch_size=32,
        progress=False,
        callbacks=[same],
    )
    sbmm.fit(
        shared_bottom(two_heads("y", "z")),
        data,
        epochs=2,
        batch_size=32,
        progress=False,
        callbacks=[other],
    )
    mean = lambda c: sum(c.cosines[("a", "b")]) / len(c.steps)  # noqa: E731
    assert mean(same) > mean(other) + 0.2


def test_zero_gradient_gives_nan():
    data = regression_data()
    model = shared_bottom(two_heads())
    loss = live_losses(model, data)["a"]
    cosine = GradientCosine(pairs=[("a", "b")], every=1)
    cosine(0, model, {"a": loss, "b": 0 * loss})
    assert math.isnan(cosine.cosines[("a", "b")][0])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="pairs"):
        GradientCosine(pairs=[])
    with pytest.raises(ValueError, match="pairs"):
        GradientCosine(pairs=[("a", "b", "c")])
    with pytest.raises(ValueError, match="every"):
        GradientCosine(pairs=[("a", "b")], every=0)
    data = regression_data()
    model = shared_bottom(two_heads())
    with pytest.raises(ValueError, match="'like'"):
        GradientCosine(pairs=[("a", "like")], every=1)(
            0, model, live_losses(model, data)
        )
    with pytest.raises(ValueError, match="'experts'"):
        GradientCosine(pairs=[("a", "b")], every=1, module="experts")(
            0, model, live_losses(model, data)
        )


def test_dead_units_counts_the_relus_that_never_fire():
    data = regression_data()
    model = shared_bottom(two_heads())
    assert 0 <= dead_units(model, data) < 0.5  # a fresh model: most units fire
    with torch.no_grad():
        model.towers["A"][0].bias.fill_(-1e3)  # tower A's 4 units: never fire
    assert dead_units(model, data, under="towers") == 0.5  # 4 of the towers' 8 units
    assert dead_units(model, data[:1], under="towers.A") == 1.0
    with pytest.raises(ValueError, match="no ReLU layer under 'heads'"):
        dead_units(model, data, under="heads")
